//! SIP, SIPS and tel URIs (RFC 3261 §19.1, RFC 3966), and opaque URIs of other schemes.
//!
//! Owns: splitting a URI into its parts while keeping the text exactly as sent, so a B2BUA can
//! forward it byte-for-byte (`%`-escapes are never decoded or re-encoded on output). Comparison
//! helpers decode escapes where RFC 3261 §19.1.4 says to.
//!
//! Must not know: headers, transactions, transport.

use super::header::{parse_host_port, Params};
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0}")]
pub struct UriError(pub String);

/// A parsed URI. `raw` is always the text as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Uri {
    Sip(SipUri),
    Tel { number: String, raw: String },
    Other { scheme: String, raw: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipUri {
    pub secure: bool,
    /// User part as sent (still escaped); may contain `;` (RFC 4475 §3.1.1.9).
    pub user: Option<String>,
    pub password: Option<String>,
    /// Host, lowercased; IPv6 keeps its brackets.
    pub host: String,
    pub port: Option<u16>,
    pub params: Params,
    /// The `?headers` part, as sent, without the `?`.
    pub headers: Option<String>,
    pub raw: String,
}

fn is_scheme(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
}

/// Characters never allowed unescaped anywhere in a URI.
fn has_forbidden(s: &str) -> Option<char> {
    s.chars().find(|&c| {
        c.is_ascii_control() || c == ' ' || c == '<' || c == '>' || c == '"' || !c.is_ascii()
    })
}

impl Uri {
    pub fn parse(s: &str) -> Result<Uri, UriError> {
        if let Some(c) = has_forbidden(s) {
            return Err(UriError(format!(
                "invalid character '{}' in URI",
                c.escape_default()
            )));
        }
        let colon = s
            .find(':')
            .ok_or_else(|| UriError("URI without scheme".into()))?;
        let scheme = &s[..colon];
        if !is_scheme(scheme) {
            return Err(UriError("invalid URI scheme".into()));
        }
        let rest = &s[colon + 1..];
        if scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips") {
            return SipUri::parse_parts(scheme.eq_ignore_ascii_case("sips"), rest, s).map(Uri::Sip);
        }
        if scheme.eq_ignore_ascii_case("tel") {
            let number = rest.split(';').next().unwrap_or("");
            if number.is_empty()
                || !number
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() || "+-.()*#pw".contains(c))
            {
                return Err(UriError("invalid tel URI number".into()));
            }
            return Ok(Uri::Tel {
                number: number.to_string(),
                raw: s.to_string(),
            });
        }
        Ok(Uri::Other {
            scheme: scheme.to_ascii_lowercase(),
            raw: s.to_string(),
        })
    }

    pub fn raw(&self) -> &str {
        match self {
            Uri::Sip(u) => &u.raw,
            Uri::Tel { raw, .. } | Uri::Other { raw, .. } => raw,
        }
    }

    pub fn as_sip(&self) -> Option<&SipUri> {
        match self {
            Uri::Sip(u) => Some(u),
            _ => None,
        }
    }

    /// The dialed number / user of a request URI (`sip:4000@host` → `4000`, `tel:+4930123` →
    /// `+4930123`), with `%`-escapes decoded.
    pub fn user_or_number(&self) -> Option<String> {
        match self {
            Uri::Sip(u) => u.user.as_deref().map(unescape),
            Uri::Tel { number, .. } => Some(number.clone()),
            Uri::Other { .. } => None,
        }
    }
}

impl SipUri {
    fn parse_parts(secure: bool, rest: &str, raw: &str) -> Result<SipUri, UriError> {
        let (userinfo, hostpart) = match rest.find('@') {
            Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
            None => (None, rest),
        };
        let (user, password) = match userinfo {
            Some(ui) => {
                // The password follows the first ':' that is not inside the user part's
                // parameters; users rarely carry ':' so the first one is taken.
                let (u, p) = match ui.find(':') {
                    Some(c) => (&ui[..c], Some(ui[c + 1..].to_string())),
                    None => (ui, None),
                };
                if u.is_empty() {
                    return Err(UriError("empty user part in SIP URI".into()));
                }
                check_escapes(u)?;
                (Some(u.to_string()), p)
            }
            None => (None, None),
        };
        let (host, port, after) =
            parse_host_port(hostpart).map_err(|e| UriError(format!("SIP URI: {e}")))?;
        let (param_part, headers) = match after.find('?') {
            Some(q) => (&after[..q], Some(after[q + 1..].to_string())),
            None => (after, None),
        };
        if !param_part.is_empty() && !param_part.starts_with(';') {
            return Err(UriError(
                "unexpected characters after host in SIP URI".into(),
            ));
        }
        check_escapes(param_part)?;
        let params = parse_uri_params(param_part)?;
        Ok(SipUri {
            secure,
            user,
            password,
            host,
            port,
            params,
            headers,
            raw: raw.to_string(),
        })
    }

    /// `host[:port]` for display and Via/Contact building.
    pub fn host_port(&self) -> String {
        match self.port {
            Some(p) => format!("{}:{}", self.host, p),
            None => self.host.clone(),
        }
    }
}

/// URI parameters: no LWS allowed, `;name[=value]`.
fn parse_uri_params(s: &str) -> Result<Params, UriError> {
    let mut params = Params::default();
    for part in s.split(';').skip(1) {
        let (n, v) = match part.find('=') {
            Some(eq) => (&part[..eq], Some(part[eq + 1..].to_string())),
            None => (part, None),
        };
        if n.is_empty() {
            return Err(UriError("empty URI parameter".into()));
        }
        params.0.push((n.to_string(), v));
    }
    Ok(params)
}

/// Every `%` must start a two-hex-digit escape.
fn check_escapes(s: &str) -> Result<(), UriError> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let ok = b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
            if !ok {
                return Err(UriError("bad %-escape in URI".into()));
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    Ok(())
}

/// Decode `%HH` escapes (for comparison and lookup only; never for forwarding). Invalid escapes
/// and non-UTF-8 results are kept as they were.
pub fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sip_uri_parts() {
        let u = Uri::parse("sip:vivekg@chair-dnrc.example.com;unknownparam").unwrap();
        let s = u.as_sip().unwrap();
        assert_eq!(s.user.as_deref(), Some("vivekg"));
        assert!(s.params.has("unknownparam"));
        let u = Uri::parse("sip:user;par=u%40example.net@example.com").unwrap();
        assert_eq!(
            u.user_or_number().as_deref(),
            Some("user;par=u@example.net")
        );
        let u = Uri::parse("sips:[2001:db8::10]:5061;transport=tcp").unwrap();
        assert_eq!(u.as_sip().unwrap().port, Some(5061));
    }

    #[test]
    fn escapes_are_preserved_raw_and_decoded_for_lookup() {
        let raw = "sip:sips%3Auser%40example.com@example.net";
        let u = Uri::parse(raw).unwrap();
        assert_eq!(u.raw(), raw);
        assert_eq!(u.user_or_number().as_deref(), Some("sips:user@example.com"));
        assert_eq!(unescape("null-%00-null"), "null-\u{0}-null");
    }

    #[test]
    fn other_schemes_and_tel() {
        assert!(matches!(
            Uri::parse("nobodyKnowsThisScheme:totallyopaquecontent"),
            Ok(Uri::Other { .. })
        ));
        assert!(matches!(
            Uri::parse("soap.beep://192.0.2.103:3002"),
            Ok(Uri::Other { .. })
        ));
        assert!(matches!(
            Uri::parse("tel:+1-201-555-0123;phone-context=x"),
            Ok(Uri::Tel { .. })
        ));
        assert!(Uri::parse("sip:user@example.com; lr").is_err());
        assert!(Uri::parse("<sip:user@example.com>").is_err());
        assert!(Uri::parse("sip:a@").is_err());
        assert!(Uri::parse("sip:%zz@host").is_err());
    }

    #[test]
    fn unescape_never_panics_on_truncated_escapes() {
        for s in ["%", "%4", "a%", "a%4", "%%%"] {
            let _ = unescape(s);
        }
    }
}
