//! Names to addresses for what the config may give as a DNS name: `[sip] advertise` and the
//! trunk's host (A/AAAA, and SRV per RFC 3263 §4.2 when the trunk URI has no port). Uses
//! hickory-resolver (maintained, async, reads /etc/resolv.conf and /etc/hosts) rather than any
//! DNS code of ours. Names are resolved at start and, for the trunk, again on every qualify
//! round, so a PBX that moves is followed.
//!
//! Must not know: SIP transactions, calls, SQL. The choice of what to look up ([`plan`]) and
//! the SRV order ([`srv_order`]) are pure and tested without a network.

use crate::sip::endpoint::Transport;
use crate::sip::uri::Uri;
use hickory_resolver::config::{ResolveHosts, ResolverConfig};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::TokioResolver;
use std::net::{IpAddr, SocketAddr};

/// The system's resolver (hosts file first, then the name servers of /etc/resolv.conf).
#[derive(Clone)]
pub struct Resolver(TokioResolver);

/// What a SIP URI asks to look up (RFC 3263 §4): nothing for an IP literal, A/AAAA for a name
/// with a port, SRV `_sip._udp`/`_sip._tcp` (then A/AAAA of the targets) for a name without.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    Literal(Transport, SocketAddr),
    Host {
        host: String,
        port: u16,
        transport: Transport,
    },
    Srv {
        host: String,
        transport: Transport,
    },
}

/// The lookup plan for `uri` (a `sip:` or `sips:` URI; `sips:` and `;transport=tls` mean TLS,
/// port 5061 unless given).
pub fn plan(uri: &str) -> Result<Plan, String> {
    let Ok(Uri::Sip(u)) = Uri::parse(uri) else {
        return Err(format!("{uri:?} is not a sip: URI"));
    };
    let named = match u.params.value("transport") {
        Some(t) => Some(
            Transport::from_param(t)
                .ok_or_else(|| format!("{uri:?}: transport {t} is not supported"))?,
        ),
        None => None,
    };
    let transport = match (u.secure, named) {
        (true, Some(Transport::Udp)) => return Err(format!("{uri:?}: a sips: URI cannot use UDP")),
        (true, _) => Transport::Tls,
        (false, t) => t.unwrap_or(Transport::Udp),
    };
    let default_port = transport.default_port();
    let host = u.params.value("maddr").unwrap_or(&u.host).to_string();
    if let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>() {
        return Ok(Plan::Literal(
            transport,
            SocketAddr::new(ip, u.port.unwrap_or(default_port)),
        ));
    }
    Ok(match u.port {
        Some(port) => Plan::Host {
            host,
            port,
            transport,
        },
        None => Plan::Srv { host, transport },
    })
}

/// SRV records `(priority, weight, port, target)` in the order to try them (RFC 2782): lowest
/// priority first; within one priority the heavier weight first (a deterministic stand-in for
/// the weighted random pick, so one trunk is used steadily). A lone `.` target means "no such
/// service" and is dropped.
pub fn srv_order(mut records: Vec<(u16, u16, u16, String)>) -> Vec<(String, u16)> {
    records.retain(|r| r.3 != "." && !r.3.is_empty());
    records.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)).then(a.3.cmp(&b.3)));
    records.into_iter().map(|r| (r.3, r.2)).collect()
}

/// IPv4 before IPv6 (ctid's default listeners are IPv4), otherwise as the resolver gave them.
fn prefer_v4(mut ips: Vec<IpAddr>) -> Vec<IpAddr> {
    ips.sort_by_key(|ip| !ip.is_ipv4());
    ips
}

impl Resolver {
    /// The resolver of /etc/resolv.conf; without one (a minimal container), the hosts file only.
    pub fn system() -> Resolver {
        let mut builder = match TokioResolver::builder_tokio() {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "no usable /etc/resolv.conf: only /etc/hosts resolves names");
                TokioResolver::builder_with_config(
                    ResolverConfig::new(),
                    TokioConnectionProvider::default(),
                )
            }
        };
        builder.options_mut().use_hosts_file = ResolveHosts::Always;
        Resolver(builder.build())
    }

    /// The addresses of `host` (an IP literal is its own answer), IPv4 first.
    pub async fn ips(&self, host: &str) -> Result<Vec<IpAddr>, String> {
        if let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        let found = self
            .0
            .lookup_ip(host)
            .await
            .map_err(|e| format!("cannot resolve {host:?}: {e}"))?;
        let ips: Vec<IpAddr> = found.iter().collect();
        if ips.is_empty() {
            return Err(format!("{host:?} has no A or AAAA record"));
        }
        Ok(prefer_v4(ips))
    }

    /// Where requests for `uri` go (RFC 3263 §4): transport and the first address found.
    pub async fn sip_target(&self, uri: &str) -> Result<(Transport, SocketAddr), String> {
        match plan(uri)? {
            Plan::Literal(t, a) => Ok((t, a)),
            Plan::Host {
                host,
                port,
                transport,
            } => {
                let ip = self.ips(&host).await?[0];
                Ok((transport, SocketAddr::new(ip, port)))
            }
            Plan::Srv { host, transport } => {
                let proto = match transport {
                    Transport::Udp => "_sip._udp",
                    Transport::Tcp => "_sip._tcp",
                    Transport::Tls => "_sips._tcp",
                };
                let name = format!("{proto}.{}.", host.trim_end_matches('.'));
                if let Ok(srv) = self.0.srv_lookup(name.as_str()).await {
                    let records = srv
                        .iter()
                        .map(|r| (r.priority(), r.weight(), r.port(), r.target().to_utf8()))
                        .collect();
                    for (target, port) in srv_order(records) {
                        if let Ok(ips) = self.ips(target.trim_end_matches('.')).await {
                            return Ok((transport, SocketAddr::new(ips[0], port)));
                        }
                    }
                }
                // No SRV record: the host's A/AAAA on the default port (RFC 3263 §4.2).
                let ip = self.ips(&host).await?[0];
                let port = transport.default_port();
                Ok((transport, SocketAddr::new(ip, port)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_need_no_lookup_names_with_port_need_a_and_without_port_srv() {
        assert_eq!(
            plan("sip:192.0.2.10;transport=tcp"),
            Ok(Plan::Literal(
                Transport::Tcp,
                "192.0.2.10:5060".parse().unwrap()
            ))
        );
        assert_eq!(
            plan("sip:[2001:db8::1]:5070"),
            Ok(Plan::Literal(
                Transport::Udp,
                "[2001:db8::1]:5070".parse().unwrap()
            ))
        );
        assert_eq!(
            plan("sip:pbx.example.com:5080"),
            Ok(Plan::Host {
                host: "pbx.example.com".into(),
                port: 5080,
                transport: Transport::Udp
            })
        );
        assert_eq!(
            plan("sip:pbx.example.com;transport=tcp"),
            Ok(Plan::Srv {
                host: "pbx.example.com".into(),
                transport: Transport::Tcp
            })
        );
        assert_eq!(
            plan("sip:x@pbx.example.com;maddr=10.0.0.1"),
            Ok(Plan::Literal(
                Transport::Udp,
                "10.0.0.1:5060".parse().unwrap()
            ))
        );
        assert_eq!(
            plan("sips:10.0.0.1"),
            Ok(Plan::Literal(
                Transport::Tls,
                "10.0.0.1:5061".parse().unwrap()
            ))
        );
        assert_eq!(
            plan("sip:10.0.0.1:5071;transport=TLS"),
            Ok(Plan::Literal(
                Transport::Tls,
                "10.0.0.1:5071".parse().unwrap()
            ))
        );
        for bad in [
            "sips:pbx.example.com;transport=udp",
            "tel:+1555",
            "sip:pbx;transport=sctp",
            "x",
        ] {
            assert!(plan(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn srv_records_by_priority_then_weight_without_the_null_target() {
        let order = srv_order(vec![
            (20, 0, 5060, "backup.example.".into()),
            (10, 10, 5062, "light.example.".into()),
            (10, 90, 5061, "heavy.example.".into()),
            (5, 0, 0, ".".into()),
        ]);
        assert_eq!(
            order,
            vec![
                ("heavy.example.".to_string(), 5061),
                ("light.example.".to_string(), 5062),
                ("backup.example.".to_string(), 5060)
            ]
        );
    }

    #[test]
    fn ipv4_first() {
        let ips = vec!["::1".parse().unwrap(), "127.0.0.1".parse().unwrap()];
        assert_eq!(
            prefer_v4(ips),
            vec![
                "127.0.0.1".parse::<IpAddr>().unwrap(),
                "::1".parse::<IpAddr>().unwrap()
            ]
        );
    }

    #[tokio::test]
    async fn localhost_resolves_from_the_hosts_file() {
        let r = Resolver::system();
        let ips = r.ips("localhost").await.expect("localhost in /etc/hosts");
        assert!(ips[0].is_loopback(), "{ips:?}");
        assert_eq!(
            r.sip_target("sip:localhost:5099;transport=tcp").await,
            Ok((Transport::Tcp, SocketAddr::new(ips[0], 5099)))
        );
    }
}
