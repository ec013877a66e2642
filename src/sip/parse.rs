//! Parsing SIP messages from bytes: datagram framing, TCP stream framing, and validation.
//!
//! Owns: turning untrusted bytes into a [`Message`] or a [`ParseFailure`] that says whether and
//! how the sender can be answered (`400` with a reason naming the problem, `505`, …). Enforces the
//! configured limits (message size, header count, header line length). Never panics, never
//! allocates more than the input size allows.
//!
//! Framing (RFC 3261 §18.3): over a stream, `Content-Length` is mandatory and frames the body;
//! over UDP a missing `Content-Length` means the body runs to the end of the datagram, and octets
//! past a declared `Content-Length` are ignored.
//!
//! Must not know: sockets, transactions, what the message is for.

use super::header::{is_token, parse_bounded, CSeq, NameAddr, Via};
use super::message::{canonical_name, Headers, Message, Method, Request, Response};
use super::uri::Uri;

/// Bounds on what a peer may send. Defaults suit PBX and phone traffic with a wide margin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest message (headers + body) accepted, in bytes.
    pub max_message_size: usize,
    /// Most header lines (after unfolding) in one message.
    pub max_headers: usize,
    /// Longest header line (after unfolding), in bytes.
    pub max_header_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_size: 65_535,
            max_headers: 128,
            max_header_len: 8_192,
        }
    }
}

/// Why a message was not accepted, and the answer it should get if one is possible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseFailure {
    /// Human-readable reason; for an answerable request it is the reason phrase.
    pub reason: String,
    pub reply: Option<Reply>,
}

/// Enough of a broken request to answer it statelessly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    /// Via, From, To, Call-ID and CSeq as received (whatever of them was present).
    pub headers: Headers,
}

impl ParseFailure {
    fn drop(reason: impl Into<String>) -> Self {
        ParseFailure {
            reason: reason.into(),
            reply: None,
        }
    }
}

/// The result of a datagram with nothing in it but whitespace (RFC 5626 keepalive).
pub const KEEPALIVE: &str = "keepalive";

/// Parse one UDP datagram.
pub fn parse_datagram(buf: &[u8], limits: &Limits) -> Result<Message, ParseFailure> {
    if buf.len() > limits.max_message_size {
        return Err(ParseFailure::drop("message too large"));
    }
    let start = buf
        .iter()
        .position(|b| !matches!(b, b'\r' | b'\n' | b' ' | b'\t'))
        .ok_or_else(|| ParseFailure::drop(KEEPALIVE))?;
    let buf = &buf[start..];
    let (head_end, body_start) = match find_head_end(buf) {
        Some(x) => x,
        // No blank line: the datagram is all header (a truncated message); answer if we can.
        None => (buf.len(), buf.len()),
    };
    let head = Head::parse(&buf[..head_end], limits)?;
    let available = &buf[body_start..];
    let body = match head.content_length()? {
        Some(n) if n > available.len() => {
            return Err(head.fail(400, "Content-Length larger than message"));
        }
        Some(n) => available[..n].to_vec(),
        None => available.to_vec(),
    };
    if head_end == buf.len() && body_start == buf.len() && !head.lines_ended {
        return Err(head.fail(400, "Missing blank line after headers"));
    }
    head.finish(body)
}

/// What a stream framer found at the front of its buffer.
#[derive(Debug)]
pub enum Framed {
    /// Not a whole message yet; read more.
    Incomplete,
    /// A message occupying `consumed` bytes (parsed or failed). After a framing failure that
    /// cannot be resynchronised (`fatal`), the connection must be closed once answered.
    Message {
        consumed: usize,
        result: Box<Result<Message, ParseFailure>>,
        fatal: bool,
    },
}

/// Frame one message at the front of a TCP stream buffer.
pub fn frame_stream(buf: &[u8], limits: &Limits) -> Framed {
    frame_stream_sized(buf, limits).0
}

/// [`frame_stream`], and when the header section is complete but the body is not, the length
/// the whole message (from the front of `buf`) will have: a stream reader need not look again
/// before it has that many bytes (see [`super::framer::StreamFramer`]).
pub fn frame_stream_sized(buf: &[u8], limits: &Limits) -> (Framed, Option<usize>) {
    // Skip CRLF keepalives between messages (RFC 5626 §3.5.1 double-CRLF ping).
    let start = buf
        .iter()
        .position(|b| !matches!(b, b'\r' | b'\n'))
        .unwrap_or(buf.len());
    if start == buf.len() {
        let framed = if start == 0 {
            Framed::Incomplete
        } else {
            Framed::Message {
                consumed: start,
                result: Box::new(Err(ParseFailure::drop(KEEPALIVE))),
                fatal: false,
            }
        };
        return (framed, None);
    }
    let data = &buf[start..];
    let Some((head_end, body_start)) = find_head_end(data) else {
        if data.len() > limits.max_message_size {
            return (
                fatal(buf.len(), ParseFailure::drop("header section too large")),
                None,
            );
        }
        return (Framed::Incomplete, None);
    };
    let head = match Head::parse(&data[..head_end], limits) {
        Ok(h) => h,
        Err(f) => return (fatal(buf.len(), f), None),
    };
    let len = match head.content_length() {
        Ok(Some(n)) => n,
        Ok(None) => {
            let f = head.fail(400, "Missing Content-Length on stream transport");
            return (fatal(buf.len(), f), None);
        }
        Err(f) => return (fatal(buf.len(), f), None),
    };
    if body_start.saturating_add(len) > limits.max_message_size {
        return (fatal(buf.len(), head.fail(513, "Message Too Large")), None);
    }
    if data.len() < body_start + len {
        return (Framed::Incomplete, Some(start + body_start + len));
    }
    let body = data[body_start..body_start + len].to_vec();
    let framed = Framed::Message {
        consumed: start + body_start + len,
        result: Box::new(head.finish(body)),
        fatal: false,
    };
    (framed, None)
}

fn fatal(consumed: usize, f: ParseFailure) -> Framed {
    Framed::Message {
        consumed,
        result: Box::new(Err(f)),
        fatal: true,
    }
}

/// Offset where headers end and where the body starts (accepts bare LF line ends too).
pub(crate) fn find_head_end(buf: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while i < buf.len() {
        if buf[i] == b'\n' {
            if buf.get(i + 1) == Some(&b'\n') {
                return Some((i + 1, i + 2));
            }
            if buf.get(i + 1) == Some(&b'\r') && buf.get(i + 2) == Some(&b'\n') {
                return Some((i + 1, i + 3));
            }
        }
        i += 1;
    }
    None
}

enum StartLine {
    Request {
        method: String,
        uri: String,
        version_error: Option<(u16, &'static str)>,
        line_error: Option<&'static str>,
    },
    Response {
        status: u16,
        reason: String,
    },
}

/// Start line and unfolded headers of a message, before validation.
struct Head {
    start: StartLine,
    headers: Headers,
    /// First problem found in the header section (reported after the start line is known, so
    /// the request can still be answered).
    problem: Option<String>,
    lines_ended: bool,
}

impl Head {
    fn parse(bytes: &[u8], limits: &Limits) -> Result<Head, ParseFailure> {
        let mut problem = None;
        let text = match std::str::from_utf8(bytes) {
            Ok(t) => std::borrow::Cow::Borrowed(t),
            Err(_) => {
                problem = Some("Invalid UTF-8 in header section".to_string());
                String::from_utf8_lossy(bytes)
            }
        };
        let lines_ended = text.ends_with('\n');
        let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
        let first = lines.next().unwrap_or("");
        let start = parse_start_line(first)?;
        let mut headers = Headers::new();
        let mut current: Option<(String, String)> = None;
        let mut count = 0usize;
        for line in lines {
            if line.is_empty() {
                continue;
            }
            if line.starts_with([' ', '\t']) {
                match current.as_mut() {
                    Some((_, v)) => {
                        // Folding is whitespace: one SP, and none at the start of a value.
                        let more = line.trim();
                        if !v.is_empty() && !more.is_empty() {
                            v.push(' ');
                        }
                        v.push_str(more);
                    }
                    None => {
                        problem.get_or_insert_with(|| "Folded line without header".into());
                    }
                }
                continue;
            }
            if let Some((n, v)) = current.take() {
                push_header(&mut headers, n, v, limits, &mut problem);
            }
            count += 1;
            if count > limits.max_headers {
                problem.get_or_insert_with(|| "Too many headers".into());
                break;
            }
            match line.find(':') {
                Some(colon) => {
                    let name = line[..colon].trim_end_matches([' ', '\t']);
                    if !is_token(name) {
                        problem.get_or_insert_with(|| "Malformed header name".into());
                        continue;
                    }
                    current = Some((name.to_string(), line[colon + 1..].trim().to_string()));
                }
                None => {
                    problem.get_or_insert_with(|| "Malformed header line (no colon)".into());
                }
            }
        }
        if let Some((n, v)) = current.take() {
            push_header(&mut headers, n, v, limits, &mut problem);
        }
        Ok(Head {
            start,
            headers,
            problem,
            lines_ended,
        })
    }

    /// A failure answered with `status` if this is a request carrying a Via, dropped otherwise.
    fn fail(&self, status: u16, reason: &str) -> ParseFailure {
        let answerable = matches!(self.start, StartLine::Request { ref method, .. } if method != "ACK")
            && self.headers.count("Via") > 0;
        if !answerable {
            return ParseFailure::drop(reason);
        }
        let mut headers = Headers::new();
        for h in self.headers.iter() {
            if h.name == "Via" {
                headers.push("Via", h.value.clone());
            }
        }
        for name in ["From", "To", "Call-ID", "CSeq"] {
            if let Some(v) = self.headers.get(name) {
                headers.push(name, v.to_string());
            }
        }
        ParseFailure {
            reason: reason.to_string(),
            reply: Some(Reply { status, headers }),
        }
    }

    /// `Content-Length`, if present. More than one, or a value that is not a plain decimal
    /// number, is an error.
    fn content_length(&self) -> Result<Option<usize>, ParseFailure> {
        match self.headers.count("Content-Length") {
            0 => Ok(None),
            1 => {
                let v = self.headers.get("Content-Length").unwrap_or("");
                parse_bounded(v, u32::MAX as u64)
                    .map(|n| Some(n as usize))
                    .ok_or_else(|| self.fail(400, "Invalid Content-Length"))
            }
            _ => Err(self.fail(400, "Multiple Content-Length headers")),
        }
    }

    /// Validate and build the message.
    fn finish(self, body: Vec<u8>) -> Result<Message, ParseFailure> {
        match &self.start {
            StartLine::Response { status, reason } => {
                if self.problem.is_some() {
                    return Err(ParseFailure::drop("malformed response"));
                }
                for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
                    if self.headers.count(name) == 0 {
                        return Err(ParseFailure::drop(format!("response without {name}")));
                    }
                }
                let via = self.headers.get("Via").unwrap_or("");
                if Via::parse(via).is_err() || self.cseq().is_err() {
                    return Err(ParseFailure::drop("response with malformed Via or CSeq"));
                }
                Ok(Message::Response(Response {
                    status: *status,
                    reason: reason.clone(),
                    headers: self.headers,
                    body,
                }))
            }
            StartLine::Request {
                method,
                uri,
                version_error,
                line_error,
            } => {
                if let Some(p) = &self.problem {
                    return Err(self.fail(400, p));
                }
                if let Some(e) = line_error {
                    return Err(self.fail(400, e));
                }
                if let Some((status, reason)) = version_error {
                    return Err(self.fail(*status, reason));
                }
                self.validate_request(method, uri)?;
                Ok(Message::Request(Request {
                    method: Method::from_token(method),
                    uri: uri.clone(),
                    headers: self.headers,
                    body,
                }))
            }
        }
    }

    fn cseq(&self) -> Result<CSeq, String> {
        CSeq::parse(self.headers.get("CSeq").unwrap_or("")).map_err(|e| e.0)
    }

    fn validate_request(&self, method: &str, uri: &str) -> Result<(), ParseFailure> {
        for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
            if self.headers.count(name) == 0 {
                return Err(self.fail(400, &format!("Missing {name} header")));
            }
        }
        for name in [
            "From",
            "To",
            "Call-ID",
            "CSeq",
            "Max-Forwards",
            "Content-Type",
            "Expires",
        ] {
            if self.headers.count(name) > 1 {
                return Err(self.fail(400, &format!("Multiple {name} headers")));
            }
        }
        let cseq = self
            .cseq()
            .map_err(|e| self.fail(400, &format!("Invalid CSeq: {e}")))?;
        if cseq.method != method {
            return Err(self.fail(400, "CSeq method does not match request method"));
        }
        for v in self.headers.get_all("Via") {
            Via::parse(v).map_err(|e| self.fail(400, &format!("Invalid Via: {e}")))?;
        }
        for name in ["From", "To"] {
            let v = self.headers.get(name).unwrap_or("");
            NameAddr::parse(v).map_err(|e| self.fail(400, &format!("Invalid {name}: {e}")))?;
        }
        for name in ["Contact", "Route", "Record-Route"] {
            for v in self.headers.get_all(name) {
                if name == "Contact" && v.trim() == "*" {
                    continue;
                }
                let na = NameAddr::parse(v)
                    .map_err(|e| self.fail(400, &format!("Invalid {name}: {e}")))?;
                if let Some(exp) = na.params.value("expires") {
                    if parse_bounded(exp, u32::MAX as u64).is_none() {
                        return Err(self.fail(400, "Invalid Contact expires"));
                    }
                }
            }
        }
        if self.headers.get("Call-ID").unwrap_or("").is_empty() {
            return Err(self.fail(400, "Empty Call-ID"));
        }
        if let Some(mf) = self.headers.get("Max-Forwards") {
            if parse_bounded(mf, 255).is_none() {
                return Err(self.fail(400, "Invalid Max-Forwards"));
            }
        }
        if let Some(e) = self.headers.get("Expires") {
            if parse_bounded(e, u32::MAX as u64).is_none() {
                return Err(self.fail(400, "Invalid Expires"));
            }
        }
        match Uri::parse(uri) {
            Ok(Uri::Sip(s)) if s.headers.is_some() => {
                Err(self.fail(400, "Headers not allowed in Request-URI"))
            }
            Ok(_) => Ok(()),
            Err(e) => Err(self.fail(400, &format!("Invalid Request-URI: {e}"))),
        }
    }
}

/// List headers whose comma-separated values are split into separate entries, so the topmost
/// Via (or first Route) can be read and changed on its own.
const SPLIT_LISTS: &[&str] = &["Via", "Route", "Record-Route", "Contact"];

fn push_header(
    headers: &mut Headers,
    name: String,
    value: String,
    limits: &Limits,
    problem: &mut Option<String>,
) {
    if name.len() + value.len() + 2 > limits.max_header_len {
        problem.get_or_insert_with(|| "Header line too long".into());
        return;
    }
    let name = canonical_name(&name);
    if SPLIT_LISTS.iter().any(|n| *n == name) && !(name == "Contact" && value == "*") {
        for part in super::header::split_commas(&value) {
            let part = part.trim();
            if part.is_empty() {
                problem.get_or_insert_with(|| format!("Empty element in {name} list"));
                continue;
            }
            headers.push(name.clone(), part.to_string());
        }
    } else {
        headers.push(name, value);
    }
}

fn parse_start_line(line: &str) -> Result<StartLine, ParseFailure> {
    if let Some(rest) = line.strip_prefix("SIP/") {
        // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase
        let mut parts = rest.splitn(3, ' ');
        let version = parts.next().unwrap_or("");
        let code = parts.next().unwrap_or("");
        let reason = parts.next();
        if version != "2.0" {
            return Err(ParseFailure::drop("response with unsupported SIP version"));
        }
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParseFailure::drop("response with invalid status code"));
        }
        let status: u16 = code.parse().unwrap_or(0);
        if !(100..=699).contains(&status) {
            return Err(ParseFailure::drop("response status out of range"));
        }
        let Some(reason) = reason else {
            return Err(ParseFailure::drop(
                "status line without reason phrase separator",
            ));
        };
        return Ok(StartLine::Response {
            status,
            reason: reason.to_string(),
        });
    }
    // Request-Line = Method SP Request-URI SP SIP-Version (exactly single spaces).
    let parts: Vec<&str> = line.split(' ').collect();
    let method = parts.first().copied().unwrap_or("");
    if !is_token(method) {
        return Err(ParseFailure::drop("not a SIP message"));
    }
    let mut line_error = None;
    let mut version_error = None;
    let (uri, version) = if parts.len() == 3 && !parts[1].is_empty() {
        (parts[1], parts[2])
    } else {
        line_error = Some(if parts.len() > 3 {
            "Malformed Request-Line (extra whitespace)"
        } else {
            "Malformed Request-Line"
        });
        (
            parts.get(1).copied().unwrap_or(""),
            parts.last().copied().unwrap_or(""),
        )
    };
    if line_error.is_none() {
        let v = version.as_bytes();
        let is_sip_version = v.len() > 4
            && v[..4].eq_ignore_ascii_case(b"SIP/")
            && version[4..].split_once('.').is_some_and(|(a, b)| {
                !a.is_empty()
                    && !b.is_empty()
                    && a.bytes().all(|c| c.is_ascii_digit())
                    && b.bytes().all(|c| c.is_ascii_digit())
            });
        if !is_sip_version {
            line_error = Some("Malformed SIP version");
        } else if &version[4..] != "2.0" {
            version_error = Some((505, "Version Not Supported"));
        }
        if uri.starts_with('<') {
            line_error = Some("Request-URI must not be enclosed in <>");
        }
    }
    Ok(StartLine::Request {
        method: method.to_string(),
        uri: uri.to_string(),
        version_error,
        line_error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTIONS: &str = "OPTIONS sip:ctid@127.0.0.1 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1\r\n\
From: <sip:a@127.0.0.1>;tag=1\r\n\
To: <sip:ctid@127.0.0.1>\r\n\
Call-ID: abc\r\n\
CSeq: 1 OPTIONS\r\n\
Max-Forwards: 70\r\n\
Content-Length: 0\r\n\r\n";

    fn parse(s: &str) -> Result<Message, ParseFailure> {
        parse_datagram(s.as_bytes(), &Limits::default())
    }

    #[test]
    fn parses_plain_options() {
        let Ok(Message::Request(r)) = parse(OPTIONS) else {
            panic!("parse failed")
        };
        assert_eq!(r.method, Method::Options);
        assert_eq!(r.headers.get("call-id"), Some("abc"));
    }

    #[test]
    fn udp_body_without_content_length_runs_to_end() {
        let msg = OPTIONS.replace("Content-Length: 0\r\n", "") + "hello";
        let Ok(Message::Request(r)) = parse(&msg) else {
            panic!()
        };
        assert_eq!(r.body, b"hello");
    }

    #[test]
    fn udp_trailing_octets_after_content_length_are_ignored() {
        let msg = OPTIONS.to_string() + "INVITE sip:x SIP/2.0\r\n";
        let Ok(Message::Request(r)) = parse(&msg) else {
            panic!()
        };
        assert!(r.body.is_empty());
    }

    #[test]
    fn errors_answerable_with_reason() {
        let f = parse(&OPTIONS.replace("Content-Length: 0", "Content-Length: 99")).unwrap_err();
        assert_eq!(f.reply.as_ref().map(|r| r.status), Some(400));
        assert_eq!(f.reason, "Content-Length larger than message");
        let f = parse(&OPTIONS.replace("SIP/2.0\r\nVia", "SIP/7.0\r\nVia")).unwrap_err();
        assert_eq!(f.reply.map(|r| r.status), Some(505));
        let f = parse(&OPTIONS.replace("CSeq: 1 OPTIONS", "CSeq: 1 INVITE")).unwrap_err();
        assert_eq!(f.reply.map(|r| r.status), Some(400));
        let f = parse(&OPTIONS.replace("Call-ID: abc\r\n", "")).unwrap_err();
        assert_eq!(f.reason, "Missing Call-ID header");
    }

    #[test]
    fn unanswerable_is_dropped() {
        assert!(parse("garbage\r\n\r\n").unwrap_err().reply.is_none());
        assert_eq!(parse("\r\n\r\n").unwrap_err().reason, KEEPALIVE);
        assert!(parse("SIP/2.0 4294967301 Big\r\n\r\n")
            .unwrap_err()
            .reply
            .is_none());
    }

    #[test]
    fn stream_framing_by_content_length() {
        let two = format!("{OPTIONS}{OPTIONS}");
        let l = Limits::default();
        let Framed::Message {
            consumed,
            result,
            fatal,
        } = frame_stream(two.as_bytes(), &l)
        else {
            panic!()
        };
        assert_eq!(consumed, OPTIONS.len());
        assert!(result.is_ok() && !fatal);
        assert!(matches!(
            frame_stream(&two.as_bytes()[..40], &l),
            Framed::Incomplete
        ));
        let huge = OPTIONS.replace("Content-Length: 0", "Content-Length: 18446744073709551615");
        let Framed::Message { fatal, .. } = frame_stream(huge.as_bytes(), &l) else {
            panic!()
        };
        assert!(fatal);
    }

    #[test]
    fn never_panics_on_truncations_and_mutations() {
        let base = OPTIONS.as_bytes();
        let l = Limits::default();
        for i in 0..base.len() {
            let _ = parse_datagram(&base[..i], &l);
            let _ = frame_stream(&base[..i], &l);
            let mut m = base.to_vec();
            for b in [0u8, b'\n', b':', b';', b'"', 0xff, b'<', b',', b'%'] {
                m[i] = b;
                let _ = parse_datagram(&m, &l);
                let _ = frame_stream(&m, &l);
            }
        }
    }
}

#[cfg(test)]
mod rfc4475 {
    use super::*;

    fn load(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/tests/conformance/rfc4475/{name}.dat",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// Messages whose defect the parser itself must catch, with the answer they get.
    #[test]
    fn invalid_messages_are_refused_at_parse_time() {
        let expect: &[(&str, Option<u16>)] = &[
            ("badinv01", Some(400)),
            ("clerr", Some(400)),
            ("ncl", Some(400)),
            ("scalar02", Some(400)),
            ("quotbal", Some(400)),
            ("ltgtruri", Some(400)),
            ("lwsruri", Some(400)),
            ("lwsstart", Some(400)),
            ("trws", Some(400)),
            ("escruri", Some(400)),
            ("regbadct", Some(400)),
            ("badaspec", Some(400)),
            ("baddn", Some(400)),
            ("badvers", Some(505)),
            ("mismatch01", Some(400)),
            ("mismatch02", Some(400)),
            ("insuf", Some(400)),
            ("multi01", Some(400)),
            ("mcl01", Some(400)),
            ("bigcode", None),
            ("scalarlg", None),
        ];
        for (name, status) in expect {
            let f = parse_datagram(&load(name), &Limits::default())
                .expect_err(&format!("{name} must not parse"));
            assert_eq!(f.reply.map(|r| r.status), *status, "{name}: {}", f.reason);
        }
    }

    #[test]
    fn valid_messages_parse() {
        for name in [
            "wsinv",
            "intmeth",
            "esc01",
            "escnull",
            "esc02",
            "lwsdisp",
            "longreq",
            "dblreq",
            "semiuri",
            "transports",
            "mpart01",
            "unreason",
            "noreason",
            "badbranch",
            "unkscm",
            "novelsc",
            "unksm2",
            "bext01",
            "invut",
            "regaut01",
            "bcast",
            "zeromf",
            "cparam01",
            "cparam02",
            "regescrt",
            "sdp01",
            "inv2543",
            "baddate",
        ] {
            let r = parse_datagram(&load(name), &Limits::default());
            assert!(r.is_ok(), "{name}: {:?}", r.err());
        }
        // mpart01's binary body (with NUL bytes) is framed exactly by Content-Length.
        let Ok(Message::Request(m)) = parse_datagram(&load("mpart01"), &Limits::default()) else {
            panic!()
        };
        assert_eq!(m.body.len(), 553);
        assert!(m.body.contains(&0));
    }

    /// Found by the fuzzer: `To :` with its value on the folded next line.
    #[test]
    fn folding_after_an_empty_first_line_adds_no_space() {
        let Ok(Message::Request(m)) = parse_datagram(&load("wsinv"), &Limits::default()) else {
            panic!()
        };
        let to = m.headers.get("To").unwrap_or_default();
        assert!(to.starts_with("sip:vivekg@"), "{to:?}");
        let printed = m.to_bytes();
        let Ok(Message::Request(again)) = parse_datagram(&printed, &Limits::default()) else {
            panic!()
        };
        assert_eq!(again.headers.get("To"), m.headers.get("To"));
    }

    #[test]
    fn escapes_survive_a_round_trip_byte_for_byte() {
        let Ok(Message::Request(m)) = parse_datagram(&load("esc01"), &Limits::default()) else {
            panic!()
        };
        let printed = m.to_bytes();
        let text = String::from_utf8_lossy(&printed);
        assert!(text.starts_with("INVITE sip:sips%3Auser%40example.com@example.net SIP/2.0\r\n"));
        assert!(text.contains("<sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31>"));
        let Ok(Message::Request(again)) = parse_datagram(&printed, &Limits::default()) else {
            panic!()
        };
        assert_eq!(again.uri, m.uri);
        assert_eq!(again.headers.get("Contact"), m.headers.get("Contact"));
    }
}
