//! A raw seat and a raw PBX for end-to-end tests that must script both legs' SIP themselves
//! (races, exact orderings): requests as received, responses built from them, a digest
//! registration from a bare UDP socket.

use super::*;

/// How long any single SIP step may take.
pub const STEP: Duration = Duration::from_secs(5);

/// A SIP request received by one of the test's sockets (ctid → seat).
#[derive(Clone, Debug)]
pub struct InRequest {
    pub method: String,
    pub uri: String,
    /// (name as sent, value) in order.
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub raw: String,
}

impl InRequest {
    pub fn parse(bytes: &[u8]) -> Option<InRequest> {
        let raw = String::from_utf8_lossy(bytes).into_owned();
        let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((raw.as_str(), ""));
        let mut lines = head.split("\r\n");
        let mut first = lines.next()?.split(' ');
        let method = first.next()?.to_string();
        let uri = first.next()?.to_string();
        if first.next()? != "SIP/2.0" || method.starts_with("SIP/") {
            return None;
        }
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        Some(InRequest {
            method,
            uri,
            headers,
            body: body.to_string(),
            raw: raw.clone(),
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.all(name).into_iter().next()
    }

    pub fn all(&self, name: &str) -> Vec<&str> {
        let want = long_name(name);
        self.headers
            .iter()
            .filter(|(k, _)| long_name(k) == want)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// A response echoing Via (all), From, To (with `to_tag` added if it has none), Call-ID and
    /// CSeq, plus `extra` header lines and an optional SDP body.
    pub fn response(
        &self,
        status: &str,
        to_tag: &str,
        extra: &[String],
        sdp: Option<&str>,
    ) -> String {
        let mut s = format!("SIP/2.0 {status}\r\n");
        for v in self.all("Via") {
            s.push_str(&format!("Via: {v}\r\n"));
        }
        let to = self.header("To").unwrap_or_default();
        let to = if to.contains(";tag=") {
            to.to_string()
        } else {
            format!("{to};tag={to_tag}")
        };
        s.push_str(&format!(
            "From: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {}\r\n",
            self.header("From").unwrap_or_default(),
            self.header("Call-ID").unwrap_or_default(),
            self.header("CSeq").unwrap_or_default(),
        ));
        for h in extra {
            s.push_str(h);
            s.push_str("\r\n");
        }
        let body = sdp.unwrap_or("");
        if sdp.is_some() {
            s.push_str("Content-Type: application/sdp\r\n");
        }
        s.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        s
    }
}

/// Wait on `c` for a request `method` (of Call-ID `call_id`, if given). Meanwhile other requests
/// (OPTIONS and the like) are answered 200, a retransmitted INVITE gets `resend` again, and
/// responses are ignored.
pub fn await_request(
    c: &UdpClient,
    method: &str,
    call_id: Option<&str>,
    resend: Option<&str>,
    d: &Daemon,
    what: &str,
) -> InRequest {
    let deadline = Instant::now() + STEP;
    let mut seen = String::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Some((bytes, from)) = c.recv_raw(left) else {
            panic!(
                "{what}: no {method} within {STEP:?} on {} (other messages: {seen})\n--- ctid log ---\n{}",
                c.local(),
                d.log_tail(6_000)
            );
        };
        let Some(req) = InRequest::parse(&bytes) else {
            continue;
        };
        let ours = call_id.is_none_or(|id| req.header("Call-ID") == Some(id));
        if req.method == method && ours {
            return req;
        }
        seen.push_str(&format!("\n{}", req.raw.lines().next().unwrap_or_default()));
        match (req.method.as_str(), resend) {
            ("INVITE", Some(r)) if ours => {
                c.sock.send_to(r.as_bytes(), from).unwrap();
            }
            ("ACK", _) | ("INVITE", _) => {}
            _ => {
                let resp = req.response("200 OK", &unique("t"), &[], None);
                c.sock.send_to(resp.as_bytes(), from).unwrap();
            }
        }
    }
}

/// An SDP offer/answer for PCMU on 127.0.0.1:`port` with `direction` (sendrecv, sendonly…).
pub fn offer_sdp(user: &str, version: u32, port: u16, direction: &str) -> String {
    format!(
        "v=0\r\no={user} 42 {version} IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na={direction}\r\n"
    )
}

/// Register agent `user` from a fresh UDP socket (401, then digest MD5 → 200): the raw seat.
pub fn register_raw_seat(d: &Daemon, user: &str, password: &str) -> UdpClient {
    let c = UdpClient::new(d.addr);
    let req = register_request(d.addr, c.local(), "UDP", user)
        .header(format!("Contact: <sip:{user}@{}>", c.local()))
        .header("Expires: 3600");
    let r = c
        .transaction(&req, STEP)
        .unwrap_or_else(|| panic!("no answer to REGISTER\n{}", d.log_tail(4_000)));
    let ch = assert_challenge(&r, Alg::Md5, "ctid");
    let cnonce = unique("cn").replace('-', "");
    let auth = req.next().header(authorization_header(
        &ch,
        Alg::Md5,
        user,
        password,
        "REGISTER",
        &req.uri,
        1,
        &cnonce,
    ));
    let r = c
        .transaction(&auth, STEP)
        .unwrap_or_else(|| panic!("no answer to the authenticated REGISTER"));
    assert_eq!(
        r.status,
        200,
        "authenticated REGISTER of {user}:\n{}\n--- ctid log ---\n{}",
        r.raw,
        d.log_tail(4_000)
    );
    c
}
