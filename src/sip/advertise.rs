//! The address ctid tells its peers to use (`[sip] advertise`): behind NAT or a load balancer
//! the bound address is not the one peers reach, so Via sent-by, Contact, the host of ctid's
//! From URIs and the SDP `c=`/`o=` lines carry the advertised address instead. The sockets
//! stay on the bind address.
//!
//! Must not know: sockets, DNS (a name is resolved to an address before it gets here), calls.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// `ip` or `ip:port` (`[v6]:port`); without a port, the port of the local socket is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub struct Advertise {
    pub ip: IpAddr,
    pub port: Option<u16>,
}

impl Advertise {
    /// `203.0.113.7`, `203.0.113.7:5070`, `2001:db8::7`, `[2001:db8::7]:5070`.
    pub fn parse(s: &str) -> Result<Advertise, String> {
        let s = s.trim();
        if let Ok(a) = s.parse::<SocketAddr>() {
            if a.port() == 0 {
                return Err(format!("{s:?}: port 0 cannot be advertised"));
            }
            return Ok(Advertise {
                ip: a.ip(),
                port: Some(a.port()),
            });
        }
        match s.trim_matches(['[', ']']).parse::<IpAddr>() {
            Ok(ip) if ip.is_unspecified() => Err(format!(
                "{s:?}: an unspecified address (0.0.0.0, ::) cannot be advertised"
            )),
            Ok(ip) => Ok(Advertise { ip, port: None }),
            Err(_) => Err(format!(
                "{s:?} is not an address: expected ip or ip:port (IPv6 as [addr]:port)"
            )),
        }
    }

    /// The address to write into headers for a message that goes out on (or came in on)
    /// `local`. Only an address of the same family is replaced: an IPv6 listener keeps its
    /// own address when the advertised one is IPv4.
    pub fn apply(advertise: Option<&Advertise>, local: SocketAddr) -> SocketAddr {
        match advertise {
            Some(a) if a.ip.is_ipv4() == local.is_ipv4() => {
                SocketAddr::new(a.ip, a.port.unwrap_or(local.port()))
            }
            _ => local,
        }
    }
}

impl TryFrom<String> for Advertise {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Advertise::parse(&s)
    }
}

impl From<Advertise> for String {
    fn from(a: Advertise) -> String {
        a.to_string()
    }
}

impl fmt::Display for Advertise {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.port {
            Some(p) => write!(f, "{}", SocketAddr::new(self.ip, p)),
            None => write!(f, "{}", self.ip),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_addresses_with_and_without_port() {
        let a = Advertise::parse("203.0.113.7").unwrap();
        assert_eq!((a.ip.to_string(), a.port), ("203.0.113.7".into(), None));
        let a = Advertise::parse("203.0.113.7:5070").unwrap();
        assert_eq!(a.port, Some(5070));
        assert_eq!(
            Advertise::parse("[2001:db8::7]:5070").unwrap().port,
            Some(5070)
        );
        assert_eq!(Advertise::parse("2001:db8::7").unwrap().port, None);
        assert_eq!(Advertise::parse("[2001:db8::7]").unwrap().port, None);
        assert_eq!(a.to_string(), "203.0.113.7:5070");
        for bad in [
            "",
            "0.0.0.0",
            "::",
            "1.2.3.4:0",
            "1.2.3.4:99999",
            "pbx:5060:1",
            "a b",
        ] {
            assert!(Advertise::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn applies_to_the_same_family_and_keeps_the_local_port_unless_given() {
        let a = Advertise::parse("203.0.113.7").unwrap();
        assert_eq!(
            Advertise::apply(Some(&a), local("10.0.0.2:5060")),
            local("203.0.113.7:5060")
        );
        let a = Advertise::parse("203.0.113.7:15060").unwrap();
        assert_eq!(
            Advertise::apply(Some(&a), local("10.0.0.2:5060")),
            local("203.0.113.7:15060")
        );
        assert_eq!(
            Advertise::apply(Some(&a), local("[::1]:5060")),
            local("[::1]:5060")
        );
        assert_eq!(
            Advertise::apply(None, local("10.0.0.2:5060")),
            local("10.0.0.2:5060")
        );
    }
}
