//! SIP over TLS (RFC 3261 §26.2): the listener's handshake and the connections ctid dials to
//! `sips:`/`;transport=tls` destinations, on rustls (ring provider: no C toolchain beyond what
//! the crate builds; TLS 1.2 and 1.3). Once the handshake is done a connection is served by
//! the TCP code ([`super::tcp::serve`]: framing, limits, timeouts), tagged [`Transport::Tls`].
//!
//! Owns: the server and client configurations, swapped whole on SIGHUP ([`TlsContext::reload`])
//! so that new connections use a renewed certificate while open ones keep theirs.
//!
//! Must not know: SIP messages, calls.

use super::limits::ConnLimiter;
use super::tcp::{serve, Peer, TcpSettings};
use super::Inbound;
use crate::config::Tls as TlsConfig;
use crate::sip::endpoint::Transport;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tokio_util::sync::CancellationToken;

/// Why the TLS files could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{file}: {why}")]
    File { file: String, why: String },
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("client certificate verifier: {0}")]
    Verifier(String),
}

fn file_err(path: &std::path::Path, why: impl std::fmt::Display) -> TlsError {
    TlsError::File {
        file: path.display().to_string(),
        why: why.to_string(),
    }
}

/// rustls on the `ring` provider. rustls 0.23.48 deprecates it for having no post-quantum key
/// exchange; it is kept because it builds with just a C compiler (aws-lc-rs, the default,
/// wants cmake/a larger C build on a fresh machine), and the SIP phones and PBXs ctid talks to
/// (OpenSSL 3.0 in Debian bookworm's baresip and kamailio) offer no post-quantum groups either.
#[allow(deprecated)]
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certs(path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_err(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_err(path, e))?;
    if certs.is_empty() {
        return Err(file_err(path, "no certificate in the file"));
    }
    Ok(certs)
}

fn roots(ca_file: Option<&std::path::Path>) -> Result<rustls::RootCertStore, TlsError> {
    let mut store = rustls::RootCertStore::empty();
    match ca_file {
        Some(f) => {
            for c in certs(f)? {
                store.add(c).map_err(|e| file_err(f, e))?;
            }
        }
        None => store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    Ok(store)
}

/// The server side: ctid's certificate and key, and (with `verify_clients`) the authorities
/// whose client certificates are accepted.
fn server_config(cfg: &TlsConfig) -> Result<Option<rustls::ServerConfig>, TlsError> {
    let (Some(cert_file), Some(key_file)) = (&cfg.cert_file, &cfg.key_file) else {
        return Ok(None);
    };
    let chain = certs(cert_file)?;
    let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| file_err(key_file, e))?;
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?;
    let builder = if cfg.verify_clients {
        let roots = Arc::new(roots(cfg.ca_file.as_deref())?);
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(roots, provider())
                .build()
                .map_err(|e| TlsError::Verifier(e.to_string()))?;
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    Ok(Some(builder.with_single_cert(chain, key)?))
}

/// The client side: servers are checked against `ca_file` (or the built-in Mozilla roots).
fn client_config(cfg: &TlsConfig) -> Result<rustls::ClientConfig, TlsError> {
    let roots = roots(cfg.ca_file.as_deref())?;
    Ok(rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

struct Configs {
    server: Option<Arc<rustls::ServerConfig>>,
    client: Arc<rustls::ClientConfig>,
    names: HashMap<SocketAddr, ServerName<'static>>,
}

/// The TLS configurations in use, shared by the listeners and the driver.
pub struct TlsContext {
    current: RwLock<Arc<Configs>>,
}

impl TlsContext {
    /// Load the files of `[sip.tls]` (checked already by the config check).
    pub fn load(cfg: &TlsConfig) -> Result<Arc<TlsContext>, TlsError> {
        Ok(Arc::new(TlsContext {
            current: RwLock::new(Arc::new(Self::configs(cfg)?)),
        }))
    }

    fn configs(cfg: &TlsConfig) -> Result<Configs, TlsError> {
        let names = cfg
            .server_names
            .iter()
            .filter_map(|(a, n)| {
                let addr = a.parse().ok()?;
                let name = ServerName::try_from(n.clone()).ok()?;
                Some((addr, name))
            })
            .collect();
        Ok(Configs {
            server: server_config(cfg)?.map(Arc::new),
            client: Arc::new(client_config(cfg)?),
            names,
        })
    }

    /// Read the files again (SIGHUP): new connections use them, open ones keep what they
    /// negotiated. On an error the old configuration stays.
    pub fn reload(&self, cfg: &TlsConfig) -> Result<(), TlsError> {
        let fresh = Arc::new(Self::configs(cfg)?);
        match self.current.write() {
            Ok(mut c) => *c = fresh,
            Err(poisoned) => *poisoned.into_inner() = fresh,
        }
        Ok(())
    }

    fn now(&self) -> Arc<Configs> {
        match self.current.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

/// Accept TLS connections until cancelled: admission per source as for TCP, then the
/// handshake (bounded by the message timeout, so a silent client cannot hold a slot), then
/// the TCP serving loop.
pub async fn listen(
    listener: TcpListener,
    ctx: Arc<TlsContext>,
    settings: TcpSettings,
    limiter: Arc<ConnLimiter>,
    inbound: mpsc::Sender<Inbound>,
    cancel: CancellationToken,
) {
    loop {
        let (stream, remote) = tokio::select! {
            _ = cancel.cancelled() => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "tls accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let guard = match limiter.admit(remote.ip()) {
            Ok(g) => g,
            Err(why) => {
                limiter.refused(remote.ip(), why);
                drop(stream);
                continue;
            }
        };
        let Some(server) = ctx.now().server.clone() else {
            tracing::warn!("tls listener without a certificate; connection closed");
            continue;
        };
        let inbound = inbound.clone();
        let cancel = cancel.clone();
        let trusted = guard.trusted();
        tokio::spawn(async move {
            let (Ok(local), Ok(remote)) = (stream.local_addr(), stream.peer_addr()) else {
                return;
            };
            let _ = stream.set_nodelay(true);
            let accept = TlsAcceptor::from(server).accept(stream);
            match tokio::time::timeout(settings.message_timeout, accept).await {
                Ok(Ok(tls)) => {
                    let peer = Peer {
                        local,
                        remote,
                        transport: Transport::Tls,
                        trusted,
                        proven: false,
                    };
                    serve(tls, peer, settings, inbound, cancel).await
                }
                Ok(Err(e)) => {
                    tracing::debug!(%remote, error = %e, "tls handshake failed");
                    metrics::counter!("ctid_sip_tls_handshake_failures_total").increment(1);
                }
                Err(_) => {
                    tracing::debug!(%remote, "tls handshake timed out");
                    metrics::counter!("ctid_sip_tls_handshake_failures_total").increment(1);
                }
            }
            drop(guard);
        });
    }
}

/// Dial `remote` over TLS for a request ctid sends, checking its certificate against the
/// name configured for the address (or the address itself), then serve the connection.
pub async fn connect(
    remote: SocketAddr,
    ctx: Arc<TlsContext>,
    settings: TcpSettings,
    inbound: mpsc::Sender<Inbound>,
    cancel: CancellationToken,
) {
    let c = ctx.now();
    let name = c
        .names
        .get(&remote)
        .cloned()
        .unwrap_or_else(|| ServerName::IpAddress(remote.ip().into()));
    let connector = TlsConnector::from(c.client.clone());
    let dial = async {
        let tcp = TcpStream::connect(remote).await?;
        let _ = tcp.set_nodelay(true);
        let local = tcp.local_addr()?;
        let tls = connector.connect(name, tcp).await?;
        Ok::<_, std::io::Error>((local, tls))
    };
    match tokio::time::timeout(Duration::from_secs(5), dial).await {
        Ok(Ok((local, tls))) => {
            let peer = Peer {
                local,
                remote,
                transport: Transport::Tls,
                trusted: false,
                proven: true,
            };
            serve(tls, peer, settings, inbound, cancel).await
        }
        Ok(Err(e)) => {
            tracing::warn!(%remote, error = %e, "tls connect failed");
            metrics::counter!("ctid_sip_tls_handshake_failures_total").increment(1);
            let _ = inbound.send(Inbound::ConnectFailed { remote }).await;
        }
        Err(_) => {
            tracing::warn!(%remote, "tls connect timed out");
            let _ = inbound.send(Inbound::ConnectFailed { remote }).await;
        }
    }
}

/// On every SIGHUP (a renewed certificate, `systemctl reload`), read the certificate, key and
/// CA files again from the same paths; until `cancel`.
pub async fn reload_on_hangup(ctx: Arc<TlsContext>, files: TlsConfig, cancel: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot watch SIGHUP: the TLS certificate is read at start only");
        return;
    };
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = hup.recv() => {
                let (ctx, files) = (ctx.clone(), files.clone());
                let done = tokio::task::spawn_blocking(move || ctx.reload(&files)).await;
                match done {
                    Ok(Ok(())) => tracing::info!("reload: TLS certificate and key read again"),
                    Ok(Err(e)) => tracing::error!(error = %e, "reload: TLS files refused; the running certificate stays"),
                    Err(e) => tracing::error!(error = %e, "reload: TLS reload failed"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_self_signed(dir: &std::path::Path, name: &str) -> TlsConfig {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let (c, k) = (
            dir.join(format!("{name}.crt")),
            dir.join(format!("{name}.key")),
        );
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        TlsConfig {
            cert_file: Some(c),
            key_file: Some(k),
            ..TlsConfig::default()
        }
    }

    #[test]
    fn loads_a_certificate_and_keeps_it_when_a_reload_fails() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = write_self_signed(dir.path(), "a");
        let ctx = TlsContext::load(&cfg).unwrap();
        assert!(ctx.now().server.is_some());
        let before = Arc::as_ptr(&ctx.now());
        // A renewed key that does not parse: refused, the running configuration stays.
        std::fs::write(cfg.key_file.as_ref().unwrap(), "not a key\n").unwrap();
        let e = ctx.reload(&cfg).unwrap_err();
        assert!(e.to_string().contains("a.key"), "{e}");
        assert_eq!(Arc::as_ptr(&ctx.now()), before);
        // A good renewal is taken.
        let fresh = write_self_signed(dir.path(), "a");
        ctx.reload(&fresh).unwrap();
        assert_ne!(Arc::as_ptr(&ctx.now()), before);
    }

    #[test]
    fn without_a_certificate_only_the_client_side_exists() {
        let ctx = TlsContext::load(&TlsConfig::default()).unwrap();
        assert!(ctx.now().server.is_none());
        let missing = TlsConfig {
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..TlsConfig::default()
        };
        let e = TlsContext::load(&missing)
            .err()
            .expect("a missing CA file is an error");
        assert!(e.to_string().contains("/nonexistent/ca.pem"), "{e}");
    }
}
