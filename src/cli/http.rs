//! The CLI's client of the admin API: blocking requests with JSON bodies and a bearer token,
//! over http or https (ctid's listener speaks http; https is for a TLS-terminating proxy in
//! front of it), on `ureq` (rustls with the ring provider, like ctid's SIP over TLS). What is
//! ctid's own here: the URL rules, the error kinds and their exit codes.

use std::path::PathBuf;
use std::time::Duration;

/// An answer of the API: status, headers, body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// `s` cut to at most `max` characters, with an ellipsis when cut.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// How long to wait for the TCP connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long to wait for the whole answer once connected.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Answers larger than this are refused (the API never sends anything near it).
const MAX_RESPONSE: usize = 64 * 1024 * 1024;

/// Exit code: success.
pub const EXIT_OK: u8 = 0;
/// Exit code: the server refused the request or answered with an error.
pub const EXIT_REFUSED: u8 = 1;
/// EX_USAGE from sysexits.h.
pub const EXIT_USAGE: u8 = 64;
/// EX_UNAVAILABLE from sysexits.h: the daemon cannot be reached.
pub const EXIT_UNAVAILABLE: u8 = 69;

/// Why a request failed; each kind maps to an exit code.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClientError {
    /// Bad command-line input (e.g. an unusable `--api`).
    #[error("{0}")]
    Usage(String),
    /// Nothing answered at the address.
    #[error("cannot reach ctid at {addr}: {reason} — is it running? (--api / CTID_API)")]
    Unreachable { addr: String, reason: String },
    /// 401/403.
    #[error("the token was refused: {message} (HTTP {status}){hint}")]
    Auth {
        status: u16,
        message: String,
        hint: String,
    },
    /// Any other HTTP error status.
    #[error("ctid answered HTTP {status}: {message}")]
    Http { status: u16, message: String },
    /// The answer was not HTTP or not the JSON expected.
    #[error("bad answer from ctid at {addr}: {reason}")]
    Protocol { addr: String, reason: String },
}

impl ClientError {
    pub fn exit_code(&self) -> u8 {
        match self {
            ClientError::Usage(_) => EXIT_USAGE,
            ClientError::Unreachable { .. } => EXIT_UNAVAILABLE,
            ClientError::Auth { .. } | ClientError::Http { .. } | ClientError::Protocol { .. } => {
                EXIT_REFUSED
            }
        }
    }
}

/// Where the API lives: `http[s]://host[:port][/prefix]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiUrl {
    /// `https://` (a TLS proxy in front of the admin listener).
    pub tls: bool,
    pub host: String,
    pub port: u16,
    /// Path prefix without a trailing slash ("" for none).
    pub prefix: String,
}

impl ApiUrl {
    /// Parse `http[s]://host:port[/prefix]`; a bare `host:port` is accepted too (http).
    pub fn parse(s: &str) -> Result<ApiUrl, ClientError> {
        let bad = |why: &str| ClientError::Usage(format!("invalid --api URL {s:?}: {why}"));
        let (tls, rest) = if let Some(r) = s.strip_prefix("http://") {
            (false, r)
        } else if let Some(r) = s.strip_prefix("https://") {
            (true, r)
        } else if s.contains("://") {
            return Err(bad("only http:// and https:// URLs are supported"));
        } else {
            (false, s)
        };
        let default_port = if tls { 443 } else { 80 };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.is_empty() {
            return Err(bad("no host"));
        }
        if authority.contains('@') {
            return Err(bad("credentials in the URL are not supported; use --token"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let end = v6.find(']').ok_or_else(|| bad("unclosed '['"))?;
            let host = &v6[..end];
            let after = &v6[end + 1..];
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse::<u16>().map_err(|_| bad("bad port"))?,
                None if after.is_empty() => default_port,
                None => return Err(bad("junk after ']'")),
            };
            (host.to_string(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (
                    h.to_string(),
                    p.parse::<u16>().map_err(|_| bad("bad port"))?,
                ),
                None => (authority.to_string(), default_port),
            }
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let prefix = path.trim_end_matches('/').to_string();
        if prefix.contains(['?', '#']) {
            return Err(bad("no query or fragment allowed"));
        }
        Ok(ApiUrl {
            tls,
            host,
            port,
            prefix,
        })
    }

    /// `host:port` as shown in messages and sent in `Host:`.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Percent-encode one path segment or query value.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// How long an upload (an import) may take once connected: the server checks every row.
pub const UPLOAD_TIMEOUT: Duration = Duration::from_secs(300);

/// The admin API client.
#[derive(Debug, Clone)]
pub struct Client {
    pub url: ApiUrl,
    pub token: Option<String>,
    /// The HTTP agent: connect timeout, no redirects, statuses as answers, and for https the
    /// authorities of `CTID_CA_FILE` (read once here) or the Mozilla roots built into ctid.
    agent: ureq::Agent,
}

/// The authorities of the PEM file `f` (`CTID_CA_FILE`).
fn ca_roots(f: &std::path::Path) -> Result<ureq::tls::RootCerts, ClientError> {
    let pem = std::fs::read(f)
        .map_err(|e| ClientError::Usage(format!("CTID_CA_FILE {}: {e}", f.display())))?;
    let certs = ureq::tls::parse_pem(&pem)
        .filter_map(|item| match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
            _ => None,
        })
        .collect::<Vec<_>>();
    if certs.is_empty() {
        return Err(ClientError::Usage(format!(
            "CTID_CA_FILE {}: no certificate in the file",
            f.display()
        )));
    }
    Ok(ureq::tls::RootCerts::new_with_certs(&certs))
}

impl Client {
    pub fn new(api: &str, token: Option<String>) -> Result<Client, ClientError> {
        if let Some(t) = &token {
            if t.contains(['\r', '\n']) {
                return Err(ClientError::Usage(
                    "the token must not contain line breaks".into(),
                ));
            }
        }
        let url = ApiUrl::parse(api)?;
        let mut tls = ureq::tls::TlsConfig::builder().provider(ureq::tls::TlsProvider::Rustls);
        let ca_file = std::env::var_os("CTID_CA_FILE")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        if let (true, Some(f)) = (url.tls, &ca_file) {
            tls = tls.root_certs(ca_roots(f)?);
        }
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .user_agent(concat!("ctid-cli/", env!("CARGO_PKG_VERSION")))
            .tls_config(tls.build())
            .build()
            .into();
        Ok(Client {
            url,
            token: token.filter(|t| !t.is_empty()),
            agent,
        })
    }

    /// GET `path` (with query), returning the body of a 2xx answer.
    pub fn get(&self, path: &str) -> Result<Vec<u8>, ClientError> {
        self.request("GET", path, None)
    }

    /// POST a JSON body to `path`, returning the body of a 2xx answer.
    pub fn post(&self, path: &str, body: &serde_json::Value) -> Result<Vec<u8>, ClientError> {
        let bytes = body.to_string().into_bytes();
        self.request("POST", path, Some(&bytes))
    }

    /// DELETE `path` and parse the JSON answer of a 2xx.
    pub fn delete_json(&self, path: &str) -> Result<(Vec<u8>, serde_json::Value), ClientError> {
        let raw = self.request("DELETE", path, None)?;
        let v = self.json(&raw)?;
        Ok((raw, v))
    }

    /// Send `body` as `content_type` and return the answer whatever its status (the caller
    /// reads error bodies itself: an import's bad rows), waiting up to [`UPLOAD_TIMEOUT`].
    pub fn upload(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> Result<Response, ClientError> {
        self.exchange_with(method, path, Some((content_type, body)), UPLOAD_TIMEOUT)
    }

    /// The error of a non-2xx answer (as [`check_status`] makes it).
    pub fn refusal(&self, resp: Response) -> ClientError {
        match check_status(resp, self.token.is_some()) {
            Err(e) => e,
            Ok(_) => ClientError::Protocol {
                addr: self.url.authority(),
                reason: "unexpected success".into(),
            },
        }
    }

    /// GET and parse JSON.
    pub fn get_json(&self, path: &str) -> Result<(Vec<u8>, serde_json::Value), ClientError> {
        let raw = self.get(path)?;
        let v = self.json(&raw)?;
        Ok((raw, v))
    }

    /// POST and parse JSON.
    pub fn post_json(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<(Vec<u8>, serde_json::Value), ClientError> {
        let raw = self.post(path, body)?;
        let v = self.json(&raw)?;
        Ok((raw, v))
    }

    fn json(&self, raw: &[u8]) -> Result<serde_json::Value, ClientError> {
        serde_json::from_slice(raw).map_err(|e| ClientError::Protocol {
            addr: self.url.authority(),
            reason: format!("the body is not JSON: {e}"),
        })
    }

    fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<Vec<u8>, ClientError> {
        let resp = self.exchange(method, path, body)?;
        check_status(resp, self.token.is_some())
    }

    fn exchange(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<Response, ClientError> {
        let body = body.map(|b| ("application/json", b));
        self.exchange_with(method, path, body, READ_TIMEOUT)
    }

    fn exchange_with(
        &self,
        method: &str,
        path: &str,
        body: Option<(&str, &[u8])>,
        read_timeout: Duration,
    ) -> Result<Response, ClientError> {
        let addr = self.url.authority();
        let scheme = if self.url.tls { "https" } else { "http" };
        let uri = format!("{scheme}://{addr}{}{path}", self.url.prefix);
        let mut req = ureq::http::Request::builder()
            .method(method)
            .uri(&uri)
            .header("Accept", "application/json")
            // One request per connection: each command is one short exchange.
            .header("Connection", "close");
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        if let Some((ct, _)) = body {
            req = req.header("Content-Type", ct);
        }
        let req = req
            .body(body.map(|(_, b)| b.to_vec()).unwrap_or_default())
            .map_err(|e| ClientError::Usage(format!("invalid request to {uri}: {e}")))?;
        let req = self
            .agent
            .configure_request(req)
            .timeout_global(Some(CONNECT_TIMEOUT + read_timeout))
            .build();
        let answer = self.agent.run(req);
        let mut resp = answer.map_err(|e| self.transport_error(e, read_timeout))?;
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = resp
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE as u64)
            .read_to_vec()
            .map_err(|e| self.transport_error(e, read_timeout))?;
        Ok(Response {
            status,
            headers,
            body,
        })
    }

    /// A failed exchange as the CLI reports it: nothing reachable, or a bad answer.
    fn transport_error(&self, e: ureq::Error, timeout: Duration) -> ClientError {
        let addr = self.url.authority();
        let unreachable = |reason: String| ClientError::Unreachable {
            addr: addr.clone(),
            reason,
        };
        match e {
            ureq::Error::Io(io) => unreachable(io_reason(&io, timeout)),
            ureq::Error::Timeout(_) => {
                unreachable(format!("no complete answer within {} s", timeout.as_secs()))
            }
            ureq::Error::HostNotFound => unreachable(format!("cannot resolve {}", self.url.host)),
            ureq::Error::ConnectionFailed => unreachable("connection refused".into()),
            ureq::Error::BodyExceedsLimit(_) => ClientError::Protocol {
                addr,
                reason: "the answer is too large".into(),
            },
            other => ClientError::Protocol {
                addr,
                reason: other.to_string(),
            },
        }
    }
}

fn io_reason(e: &std::io::Error, timeout: Duration) -> String {
    use std::io::ErrorKind::*;
    match e.kind() {
        ConnectionRefused => "connection refused".into(),
        TimedOut | WouldBlock => format!("timed out after {} s", timeout.as_secs()),
        ConnectionReset => "connection reset".into(),
        HostUnreachable => "host unreachable".into(),
        NetworkUnreachable => "network unreachable".into(),
        AddrNotAvailable => "address not available".into(),
        _ => e.to_string(),
    }
}

/// The error message the server put in `{"error": {"message": ...}}`, or the body as text.
pub fn server_message(body: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        let err = &v["error"];
        let msg = err["message"].as_str().or_else(|| err.as_str());
        let code = err["code"].as_str();
        match (msg, code) {
            (Some(m), Some(c)) => return format!("{m} ({c})"),
            (Some(m), None) => return m.to_string(),
            (None, Some(c)) => return c.to_string(),
            (None, None) => {}
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        "(no message)".into()
    } else {
        truncate(text, 200)
    }
}

/// Turn a non-2xx answer into the matching error; return the body of a 2xx one.
pub fn check_status(resp: Response, had_token: bool) -> Result<Vec<u8>, ClientError> {
    match resp.status {
        200..=299 => Ok(resp.body),
        401 | 403 => Err(ClientError::Auth {
            status: resp.status,
            message: server_message(&resp.body),
            hint: if had_token {
                String::new()
            } else {
                " — no token was given (--token / CTID_TOKEN)".into()
            },
        }),
        s => Err(ClientError::Http {
            status: s,
            message: server_message(&resp.body),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_mapping() {
        let resp = |status, body: &str| Response {
            status,
            headers: vec![],
            body: body.as_bytes().to_vec(),
        };
        let e = check_status(
            resp(
                401,
                r#"{"error":{"code":"unauthorized","message":"unknown token"}}"#,
            ),
            true,
        )
        .unwrap_err();
        assert_eq!(e.exit_code(), EXIT_REFUSED);
        assert_eq!(
            e.to_string(),
            "the token was refused: unknown token (unauthorized) (HTTP 401)"
        );
        let e = check_status(resp(403, "{}"), false).unwrap_err();
        assert!(e.to_string().contains("no token was given"), "{e}");
        let e = check_status(
            resp(
                409,
                r#"{"error":{"code":"conflict","message":"agent is on a call"}}"#,
            ),
            true,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "ctid answered HTTP 409: agent is on a call (conflict)"
        );
        assert_eq!(e.exit_code(), 1);
        assert_eq!(check_status(resp(200, "[]"), true).unwrap(), b"[]");
        let e = check_status(resp(502, "  bad gateway \n"), true).unwrap_err();
        assert_eq!(e.to_string(), "ctid answered HTTP 502: bad gateway");
    }

    #[test]
    fn unreachable_message() {
        let e = ClientError::Unreachable {
            addr: "127.0.0.1:9060".into(),
            reason: "connection refused".into(),
        };
        assert_eq!(
            e.to_string(),
            "cannot reach ctid at 127.0.0.1:9060: connection refused — is it running? (--api / CTID_API)"
        );
        assert_eq!(e.exit_code(), 69);
    }

    #[test]
    fn api_urls() {
        let u = ApiUrl::parse("http://127.0.0.1:9060").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.prefix.as_str()),
            ("127.0.0.1", 9060, "")
        );
        let u = ApiUrl::parse("http://ctid.example/admin/").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.prefix.as_str()),
            ("ctid.example", 80, "/admin")
        );
        let u = ApiUrl::parse("[::1]:9060").unwrap();
        assert_eq!(u.authority(), "[::1]:9060");
        let u = ApiUrl::parse("https://ctid.example/admin").unwrap();
        assert!(u.tls);
        assert_eq!((u.port, u.prefix.as_str()), (443, "/admin"));
        assert!(!ApiUrl::parse("127.0.0.1:9060").unwrap().tls);
        assert_eq!(
            ApiUrl::parse("ftp://x").unwrap_err().exit_code(),
            EXIT_USAGE
        );
        assert!(ApiUrl::parse("http://:80").is_err());
        assert!(ApiUrl::parse("http://h:99999").is_err());
        assert!(ApiUrl::parse("http://u:p@h:1").is_err());
    }

    #[test]
    fn nothing_listening_is_unreachable_and_a_truncated_message_says_so() {
        // A port that was free a moment ago: connection refused, exit 69.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let c = Client::new(&format!("http://127.0.0.1:{port}"), None).unwrap();
        let e = c.get("/api/v1/stats").unwrap_err();
        assert_eq!(e.exit_code(), EXIT_UNAVAILABLE, "{e}");
        assert_eq!(truncate("abcdef", 3), "abc…");
        assert_eq!(truncate("ab", 3), "ab");
    }

    #[test]
    fn percent_encoding() {
        assert_eq!(encode("a b/c?d"), "a%20b%2Fc%3Fd");
        assert_eq!(encode("+4930-12_3.~"), "%2B4930-12_3.~");
    }
}
