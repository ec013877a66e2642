//! Typed views of the SIP headers ctid acts on: Via, name-addr headers (From, To, Contact, Route),
//! CSeq, and generic `;name=value` parameter lists.
//!
//! Owns: the RFC 3261 §25 grammar for those headers, tolerant of every legal LWS placement
//! (`Via  : SIP / 2.0 / UDP`, `tag = x`) and strict about what is illegal (unterminated quotes,
//! empty parameters, unbracketed URIs with `;`/`?`/`,`). Every failure is a [`HeaderError`] naming
//! the problem; nothing here panics on any input.
//!
//! Must not know: transactions, transport, calls.

use super::uri::Uri;
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0}")]
pub struct HeaderError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, HeaderError> {
    Err(HeaderError(msg.into()))
}

/// RFC 3261 `token` characters.
pub fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-.!%*_+`'~".contains(c)
}

pub fn is_token(s: &str) -> bool {
    !s.is_empty() && s.chars().all(is_token_char)
}

fn is_lws(c: char) -> bool {
    c == ' ' || c == '\t' || c == '\r' || c == '\n'
}

/// Split a header value at commas that are outside quoted strings and `<…>`.
pub fn split_commas(value: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut in_quote = false;
    let mut escaped = false;
    let mut angle = 0u32;
    let mut start = 0;
    for (i, c) in value.char_indices() {
        if in_quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_quote = false;
            }
            continue;
        }
        match c {
            '"' => in_quote = true,
            '<' => angle += 1,
            '>' => angle = angle.saturating_sub(1),
            ',' if angle == 0 => {
                out.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&value[start..]);
    out
}

/// A `;name[=value]` parameter list. Names are compared case-insensitively; values kept as sent
/// (quoted values keep their quotes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(pub Vec<(String, Option<String>)>);

impl Params {
    pub fn get(&self, name: &str) -> Option<Option<&str>> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref())
    }

    /// Value of `name`, with surrounding quotes removed.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.get(name).flatten().map(|v| {
            v.strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(v)
        })
    }

    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    pub fn set(&mut self, name: &str, value: Option<String>) {
        match self
            .0
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            Some(p) => p.1 = value,
            None => self.0.push((name.to_string(), value)),
        }
    }

    pub fn write(&self, out: &mut String) {
        for (n, v) in &self.0 {
            out.push(';');
            out.push_str(n);
            if let Some(v) = v {
                out.push('=');
                out.push_str(v);
            }
        }
    }
}

/// Parse `*( SEMI generic-param )` where `s` starts at (or before, with LWS) the first `;`.
/// Used for header parameters, where LWS is allowed around `;` and `=`.
pub fn parse_params(s: &str) -> Result<Params, HeaderError> {
    let mut params = Params::default();
    let mut rest = s.trim_matches(is_lws);
    while !rest.is_empty() {
        let Some(after) = rest.strip_prefix(';') else {
            return err(format!(
                "unexpected text '{}' before parameter",
                preview(rest)
            ));
        };
        rest = after.trim_start_matches(is_lws);
        let name_end = rest.find(|c: char| !is_token_char(c)).unwrap_or(rest.len());
        let name = &rest[..name_end];
        if name.is_empty() {
            return err("empty parameter");
        }
        rest = rest[name_end..].trim_start_matches(is_lws);
        let mut value = None;
        if let Some(after_eq) = rest.strip_prefix('=') {
            rest = after_eq.trim_start_matches(is_lws);
            let (v, r) = take_param_value(rest)?;
            value = Some(v.to_string());
            rest = r.trim_start_matches(is_lws);
        }
        params.0.push((name.to_string(), value));
    }
    Ok(params)
}

/// A parameter value: quoted-string, `[IPv6]`, or token-ish run up to `;`, `,` or LWS.
fn take_param_value(s: &str) -> Result<(&str, &str), HeaderError> {
    if s.starts_with('"') {
        let end = quoted_end(s).ok_or_else(|| HeaderError("unterminated quoted string".into()))?;
        return Ok((&s[..end], &s[end..]));
    }
    if s.starts_with('[') {
        let end = s
            .find(']')
            .ok_or_else(|| HeaderError("unterminated IPv6 reference".into()))?;
        return Ok((&s[..=end], &s[end + 1..]));
    }
    let end = s
        .find(|c: char| c == ';' || c == ',' || is_lws(c))
        .unwrap_or(s.len());
    let v = &s[..end];
    if v.is_empty() {
        return err("empty parameter value");
    }
    if let Some(bad) = v.chars().find(|&c| !(is_token_char(c) || c == ':')) {
        return err(format!(
            "invalid character '{}' in parameter value",
            bad.escape_default()
        ));
    }
    Ok((v, &s[end..]))
}

/// Byte index just past the closing quote of the quoted string that `s` starts with.
fn quoted_end(s: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices().skip(1) {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '"' {
            return Some(i + 1);
        }
    }
    None
}

fn preview(s: &str) -> String {
    s.chars().take(20).flat_map(char::escape_default).collect()
}

/// One Via header value (RFC 3261 §20.42).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// Transport token, uppercased (`UDP`, `TCP`, `TLS`, or anything else seen).
    pub transport: String,
    pub host: String,
    pub port: Option<u16>,
    pub params: Params,
}

impl Via {
    pub fn parse(value: &str) -> Result<Via, HeaderError> {
        // sent-protocol: name SLASH version SLASH transport, SWS around each slash.
        let mut rest = value.trim_matches(is_lws);
        let mut parts = Vec::with_capacity(3);
        for i in 0..3 {
            let end = rest.find(|c: char| !is_token_char(c)).unwrap_or(rest.len());
            let part = &rest[..end];
            if part.is_empty() {
                return err("malformed Via sent-protocol");
            }
            parts.push(part);
            rest = rest[end..].trim_start_matches(is_lws);
            if i < 2 {
                rest = match rest.strip_prefix('/') {
                    Some(r) => r.trim_start_matches(is_lws),
                    None => return err("malformed Via sent-protocol"),
                };
            }
        }
        if !parts[0].eq_ignore_ascii_case("SIP") || parts[1] != "2.0" {
            return err("Via protocol is not SIP/2.0");
        }
        let transport = parts[2].to_ascii_uppercase();
        // sent-by
        let (host, port, rest) = parse_host_port(rest)?;
        let params = parse_params(rest)?;
        if let Some(b) = params.get("branch") {
            if b.is_none_or(str::is_empty) {
                return err("empty Via branch");
            }
        }
        Ok(Via {
            transport,
            host,
            port,
            params,
        })
    }

    pub fn branch(&self) -> Option<&str> {
        self.params.value("branch")
    }

    /// RFC 3261 branch (magic cookie present).
    pub fn has_rfc3261_branch(&self) -> bool {
        self.branch().is_some_and(|b| b.starts_with("z9hG4bK"))
    }

    /// `host[:port]` exactly as the sender wrote it (host lowercased).
    pub fn sent_by(&self) -> String {
        match self.port {
            Some(p) => format!("{}:{}", self.host, p),
            None => self.host.clone(),
        }
    }

    pub fn to_value(&self) -> String {
        let mut s = format!("SIP/2.0/{} {}", self.transport, self.sent_by());
        self.params.write(&mut s);
        s
    }
}

/// Parse `host [":" port]` at the start of `s` (LWS allowed around the colon); returns the rest.
pub fn parse_host_port(s: &str) -> Result<(String, Option<u16>, &str), HeaderError> {
    let s = s.trim_start_matches(is_lws);
    let (host, rest) = if s.starts_with('[') {
        let end = s
            .find(']')
            .ok_or_else(|| HeaderError("unterminated IPv6 reference".into()))?;
        let inner = &s[1..end];
        if inner.parse::<std::net::Ipv6Addr>().is_err() {
            return err("invalid IPv6 address");
        }
        (&s[..=end], &s[end + 1..])
    } else {
        let end = s
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_'))
            .unwrap_or(s.len());
        (&s[..end], &s[end..])
    };
    if host.is_empty() {
        return err("missing host");
    }
    let after = rest.trim_start_matches(is_lws);
    if let Some(p) = after.strip_prefix(':') {
        let p = p.trim_start_matches(is_lws);
        let end = p.find(|c: char| !c.is_ascii_digit()).unwrap_or(p.len());
        let port: u16 = p[..end]
            .parse()
            .map_err(|_| HeaderError("invalid port".into()))?;
        return Ok((host.to_ascii_lowercase(), Some(port), &p[end..]));
    }
    Ok((host.to_ascii_lowercase(), None, rest))
}

/// A `name-addr` or `addr-spec` header value with its header parameters: From, To, Contact,
/// Route, Record-Route, Refer-To.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// Display name as sent (quoted form keeps its quotes), if any.
    pub display: Option<String>,
    /// The URI text exactly as sent (escapes preserved).
    pub uri: String,
    /// Whether the URI was enclosed in `<>`.
    pub bracketed: bool,
    pub params: Params,
}

impl NameAddr {
    pub fn parse(value: &str) -> Result<NameAddr, HeaderError> {
        let v = value.trim_matches(is_lws);
        if v.is_empty() {
            return err("empty address");
        }
        // Display name, then <uri>.
        let (display, rest) = if v.starts_with('"') {
            let end = quoted_end(v)
                .ok_or_else(|| HeaderError("unterminated quoted display name".into()))?;
            (
                Some(v[..end].to_string()),
                v[end..].trim_start_matches(is_lws),
            )
        } else if let Some(lt) = v.find('<') {
            let d = v[..lt].trim_matches(is_lws);
            if !d
                .split(|c: char| is_lws(c))
                .filter(|w| !w.is_empty())
                .all(is_token)
            {
                return err("display name contains characters that must be quoted");
            }
            ((!d.is_empty()).then(|| d.to_string()), &v[lt..])
        } else {
            (None, v)
        };
        if let Some(inner) = rest.strip_prefix('<') {
            let end = inner
                .find('>')
                .ok_or_else(|| HeaderError("missing '>'".into()))?;
            let uri = &inner[..end];
            if uri.is_empty() || uri.starts_with(is_lws) || uri.ends_with(is_lws) {
                return err("whitespace inside <>");
            }
            Uri::parse(uri).map_err(|e| HeaderError(e.0))?;
            let params = parse_params(&inner[end + 1..])?;
            return Ok(NameAddr {
                display,
                uri: uri.to_string(),
                bracketed: true,
                params,
            });
        }
        if display.is_some() {
            return err("display name without <URI>");
        }
        // addr-spec: the URI runs to the first ';' (later ';' are header params) and may not
        // contain '?' or ',' (RFC 3261 §20.10).
        let end = rest
            .find(|c: char| c == ';' || is_lws(c))
            .unwrap_or(rest.len());
        let uri = &rest[..end];
        if uri.contains('?') || uri.contains(',') || uri.contains('<') || uri.contains('>') {
            return err("URI with '?' or ',' must be enclosed in <>");
        }
        Uri::parse(uri).map_err(|e| HeaderError(e.0))?;
        let params = parse_params(&rest[end..])?;
        Ok(NameAddr {
            display,
            uri: uri.to_string(),
            bracketed: false,
            params,
        })
    }

    pub fn tag(&self) -> Option<&str> {
        self.params.value("tag")
    }

    pub fn to_value(&self) -> String {
        let mut s = String::new();
        if let Some(d) = &self.display {
            s.push_str(d);
            s.push(' ');
        }
        s.push('<');
        s.push_str(&self.uri);
        s.push('>');
        self.params.write(&mut s);
        s
    }
}

/// CSeq: sequence number (≤ 2^32-1) and method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    pub seq: u32,
    pub method: String,
}

impl CSeq {
    pub fn parse(value: &str) -> Result<CSeq, HeaderError> {
        let v = value.trim_matches(is_lws);
        let end = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
        if end == 0 {
            return err("CSeq without sequence number");
        }
        let seq: u32 = v[..end]
            .parse()
            .map_err(|_| HeaderError("CSeq number out of range".into()))?;
        let method = v[end..].trim_matches(is_lws);
        if !is_token(method) {
            return err("CSeq without valid method");
        }
        Ok(CSeq {
            seq,
            method: method.to_string(),
        })
    }
}

/// A decimal header value bounded by `max` (Max-Forwards ≤ 255, Expires ≤ 2^32-1).
pub fn parse_bounded(value: &str, max: u64) -> Option<u64> {
    let v = value.trim_matches(is_lws);
    if v.is_empty() || v.len() > 20 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse::<u64>().ok().filter(|n| *n <= max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn via_with_lws_everywhere() {
        let v = Via::parse("SIP  /   2.0\r\n /UDP\r\n    192.0.2.2;branch=390skdjuw").unwrap();
        assert_eq!(v.transport, "UDP");
        assert_eq!(v.host, "192.0.2.2");
        assert_eq!(v.branch(), Some("390skdjuw"));
        let v = Via::parse(
            "SIP  / 2.0  / TCP     spindle.example.com   ;\r\n  branch  =   z9hG4bK9ikj8  ",
        )
        .unwrap();
        assert_eq!(v.transport, "TCP");
        assert_eq!(v.branch(), Some("z9hG4bK9ikj8"));
        let v = Via::parse("SIP/2.0/UDP [2001:db8::9:1]:5070;branch=z9hG4bKas;rport").unwrap();
        assert_eq!(v.port, Some(5070));
        assert_eq!(v.params.get("rport"), Some(None));
    }

    #[test]
    fn via_rejects_extraneous_separators() {
        assert!(Via::parse("SIP/2.0/UDP 192.0.2.15;;,;,,").is_err());
        assert!(Via::parse("SIP/2.0/UDP").is_err());
        assert!(Via::parse("SIP/3.0/UDP h;branch=z9hG4bK1").is_err());
    }

    #[test]
    fn name_addr_forms() {
        let n = NameAddr::parse(
            "\"J Rosenberg \\\\\\\"\"       <sip:jdrosen@example.com>\r\n  ;\r\n  tag = 98asjd8",
        )
        .unwrap();
        assert_eq!(n.tag(), Some("98asjd8"));
        assert_eq!(n.uri, "sip:jdrosen@example.com");
        let n = NameAddr::parse("caller<sip:caller@example.com>;tag=323").unwrap();
        assert_eq!(n.display.as_deref(), Some("caller"));
        let n =
            NameAddr::parse("sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n").unwrap();
        assert_eq!(n.tag(), Some("1918181833n"));
        assert!(!n.bracketed);
    }

    #[test]
    fn name_addr_rejects_invalid() {
        assert!(NameAddr::parse("\"Mr. J. User <sip:j.user@example.com>").is_err());
        assert!(NameAddr::parse("\"Watson, Thomas\" < sip:t.watson@example.org >").is_err());
        assert!(NameAddr::parse("Bell, Alexander <sip:a.g.bell@example.com>;tag=43").is_err());
        assert!(NameAddr::parse("sip:user@example.com?Route=%3Csip:sip.example.com%3E").is_err());
        assert!(NameAddr::parse("\"Joe\" <sip:joe@example.org>;;;;").is_err());
    }

    #[test]
    fn cseq_bounds() {
        assert_eq!(CSeq::parse("0009\r\n  INVITE").unwrap().seq, 9);
        assert!(CSeq::parse("36893749273 INVITE").is_err());
        assert!(CSeq::parse("4294967295 INVITE").is_ok());
        assert!(CSeq::parse("1").is_err());
    }

    #[test]
    fn comma_split_respects_quotes_and_brackets() {
        let parts = split_commas("\"a, b\" <sip:x@y;p=1,2>, <sip:z@w>");
        assert_eq!(parts.len(), 2);
    }
}
