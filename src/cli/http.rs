//! A tiny blocking HTTP/1.1 client for the admin API: one request per connection
//! (`Connection: close`), JSON bodies, bearer token, `Content-Length` or chunked answers.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

mod response;
use response::truncate;
pub use response::{parse_response, Response};

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

/// Where the API lives: `http://host[:port][/prefix]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiUrl {
    pub host: String,
    pub port: u16,
    /// Path prefix without a trailing slash ("" for none).
    pub prefix: String,
}

impl ApiUrl {
    /// Parse `http://host:port[/prefix]`; a bare `host:port` is accepted too.
    pub fn parse(s: &str) -> Result<ApiUrl, ClientError> {
        let bad = |why: &str| ClientError::Usage(format!("invalid --api URL {s:?}: {why}"));
        let rest = if let Some(r) = s.strip_prefix("http://") {
            r
        } else if s.starts_with("https://") {
            return Err(bad(
                "https is not supported; the admin listener speaks plain http",
            ));
        } else if s.contains("://") {
            return Err(bad("only http:// URLs are supported"));
        } else {
            s
        };
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
                None if after.is_empty() => 80,
                None => return Err(bad("junk after ']'")),
            };
            (host.to_string(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (
                    h.to_string(),
                    p.parse::<u16>().map_err(|_| bad("bad port"))?,
                ),
                None => (authority.to_string(), 80),
            }
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let prefix = path.trim_end_matches('/').to_string();
        if prefix.contains(['?', '#']) {
            return Err(bad("no query or fragment allowed"));
        }
        Ok(ApiUrl { host, port, prefix })
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

/// Build the request bytes (a JSON body).
pub fn build_request(
    method: &str,
    url: &ApiUrl,
    path: &str,
    token: Option<&str>,
    body: Option<&[u8]>,
) -> Vec<u8> {
    build_typed_request(
        method,
        url,
        path,
        token,
        body.map(|b| ("application/json", b)),
    )
}

/// Build the request bytes with a body of any `Content-Type`.
pub fn build_typed_request(
    method: &str,
    url: &ApiUrl,
    path: &str,
    token: Option<&str>,
    body: Option<(&str, &[u8])>,
) -> Vec<u8> {
    let mut req = format!(
        "{method} {}{path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: ctid-cli/{}\r\nAccept: application/json\r\nConnection: close\r\n",
        url.prefix,
        url.authority(),
        env!("CARGO_PKG_VERSION"),
    );
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    if let Some((ct, b)) = body {
        req.push_str(&format!(
            "Content-Type: {ct}\r\nContent-Length: {}\r\n",
            b.len()
        ));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    if let Some((_, b)) = body {
        bytes.extend_from_slice(b);
    }
    bytes
}

/// The admin API client.
#[derive(Debug, Clone)]
pub struct Client {
    pub url: ApiUrl,
    pub token: Option<String>,
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
        Ok(Client {
            url: ApiUrl::parse(api)?,
            token: token.filter(|t| !t.is_empty()),
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
        let unreachable = |reason: String| ClientError::Unreachable {
            addr: addr.clone(),
            reason,
        };
        let addrs: Vec<SocketAddr> = (self.url.host.as_str(), self.url.port)
            .to_socket_addrs()
            .map_err(|e| unreachable(format!("cannot resolve {}: {e}", self.url.host)))?
            .collect();
        let mut last_err = None;
        let mut stream = None;
        for a in &addrs {
            match TcpStream::connect_timeout(a, CONNECT_TIMEOUT) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last_err = Some(e),
            }
        }
        let mut stream = match stream {
            Some(s) => s,
            None => {
                return Err(unreachable(match last_err {
                    Some(e) => io_reason(&e, CONNECT_TIMEOUT),
                    None => "the host name has no address".into(),
                }))
            }
        };
        let _ = stream.set_nodelay(true);
        let deadline = Instant::now() + read_timeout;
        let _ = stream.set_write_timeout(Some(read_timeout));
        let req = build_typed_request(method, &self.url, path, self.token.as_deref(), body);
        stream.write_all(&req).map_err(|e| {
            unreachable(format!(
                "sending the request failed: {}",
                io_reason(&e, read_timeout)
            ))
        })?;
        let protocol = |reason: String| ClientError::Protocol {
            addr: addr.clone(),
            reason,
        };
        let mut buf = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(unreachable(format!(
                    "no complete answer within {} s",
                    read_timeout.as_secs()
                )));
            }
            let _ = stream.set_read_timeout(Some(left));
            let n = match stream.read(&mut chunk) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(unreachable(format!(
                        "no complete answer within {} s",
                        read_timeout.as_secs()
                    )))
                }
                Err(e) => {
                    // A reset after a complete answer is harmless.
                    if let Ok(Some(r)) = parse_response(&buf, true) {
                        return Ok(r);
                    }
                    return Err(protocol(format!("reading the answer failed: {e}")));
                }
            };
            buf.extend_from_slice(&chunk[..n]);
            if buf.len() > MAX_RESPONSE {
                return Err(protocol("the answer is too large".into()));
            }
            match parse_response(&buf, n == 0) {
                Ok(Some(r)) => return Ok(r),
                Ok(None) => {}
                Err(e) => return Err(protocol(e)),
            }
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
    fn content_length_body() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n{\"a\":1}";
        let r = parse_response(raw, false).unwrap().unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"{\"a\":1}");
        assert_eq!(r.header("content-type"), Some("application/json"));
    }

    #[test]
    fn content_length_incomplete_then_cut() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{\"a\"";
        assert_eq!(parse_response(raw, false).unwrap(), None);
        assert!(parse_response(raw, true).unwrap_err().contains("cut short"));
        assert_eq!(
            parse_response(b"HTTP/1.1 200 OK\r\nCont", false).unwrap(),
            None
        );
    }

    #[test]
    fn content_length_ignores_extra_bytes() {
        let raw = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}garbage";
        assert_eq!(parse_response(raw, false).unwrap().unwrap().body, b"{}");
    }

    #[test]
    fn chunked_body() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n3;ext=1\r\n:1}\r\n0\r\n\r\n";
        let r = parse_response(raw, false).unwrap().unwrap();
        assert_eq!(r.body, b"{\"a\":1}");
    }

    #[test]
    fn chunked_with_trailers_and_hex_sizes() {
        let body = "x".repeat(0x1a);
        let raw = format!(
            "HTTP/1.1 200 OK\r\ntransfer-encoding: Chunked\r\n\r\n1A\r\n{body}\r\n0\r\nX-T: 1\r\n\r\n"
        );
        let r = parse_response(raw.as_bytes(), false).unwrap().unwrap();
        assert_eq!(r.body, body.as_bytes());
    }

    #[test]
    fn chunked_incomplete() {
        let full = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\n\r\n";
        for cut in 0..full.len() {
            assert_eq!(
                parse_response(&full[..cut], false).unwrap(),
                None,
                "cut {cut}"
            );
        }
        assert!(parse_response(&full[..full.len() - 3], true).is_err());
    }

    #[test]
    fn chunked_bad_size() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
        assert!(parse_response(raw, false).is_err());
    }

    #[test]
    fn body_until_eof_without_framing() {
        let raw = b"HTTP/1.0 200 OK\r\n\r\nhello";
        assert_eq!(parse_response(raw, false).unwrap(), None);
        assert_eq!(parse_response(raw, true).unwrap().unwrap().body, b"hello");
    }

    #[test]
    fn skips_100_continue() {
        let raw =
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}";
        let r = parse_response(raw, false).unwrap().unwrap();
        assert_eq!(r.status, 201);
        assert_eq!(r.body, b"{}");
    }

    #[test]
    fn rejects_non_http() {
        assert!(parse_response(b"SSH-2.0-OpenSSH\r\n\r\n", false).is_err());
        assert!(parse_response(b"HTTP/1.1 abc\r\n\r\n", false).is_err());
        assert!(parse_response(b"", true).is_err());
    }

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
        assert_eq!(
            ApiUrl::parse("https://x").unwrap_err().exit_code(),
            EXIT_USAGE
        );
        assert!(ApiUrl::parse("http://:80").is_err());
        assert!(ApiUrl::parse("http://h:99999").is_err());
        assert!(ApiUrl::parse("http://u:p@h:1").is_err());
    }

    #[test]
    fn request_bytes() {
        let u = ApiUrl::parse("http://127.0.0.1:9060").unwrap();
        let r = build_request("POST", &u, "/api/v1/x", Some("tok"), Some(b"{}"));
        let s = String::from_utf8(r).unwrap();
        assert!(s.starts_with("POST /api/v1/x HTTP/1.1\r\nHost: 127.0.0.1:9060\r\n"));
        assert!(s.contains("Authorization: Bearer tok\r\n"));
        assert!(s.contains("Connection: close\r\n"));
        assert!(s.ends_with("Content-Length: 2\r\n\r\n{}"));
    }

    #[test]
    fn percent_encoding() {
        assert_eq!(encode("a b/c?d"), "a%20b%2Fc%3Fd");
        assert_eq!(encode("+4930-12_3.~"), "%2B4930-12_3.~");
    }
}
