//! Parsing and quoting of digest header values: the token / quoted-string lexer and the
//! `name=value` list shared by challenges and credentials.
//!
//! Must not know: the digest math, nonces, which header carries the value.

use super::AuthError;

pub(super) fn malformed(reason: impl Into<String>) -> AuthError {
    AuthError::Malformed(reason.into())
}

/// RFC 7230 `tchar` (same set as the RFC 3261 `token` minus nothing relevant).
pub(super) fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// Char-boundary-safe cursor over a header value.
pub(super) struct Lexer<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    pub(super) fn new(s: &'a str) -> Self {
        Lexer { s, pos: 0 }
    }

    pub(super) fn rest(&self) -> &'a str {
        self.s.get(self.pos..).unwrap_or("")
    }

    pub(super) fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    pub(super) fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    /// Skip linear white space; returns whether anything was skipped.
    pub(super) fn skip_lws(&mut self) -> bool {
        let start = self.pos;
        while matches!(self.peek(), Some(' ' | '\t' | '\r' | '\n')) {
            self.bump();
        }
        self.pos != start
    }

    pub(super) fn token(&mut self) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(is_tchar) {
            self.bump();
        }
        self.s.get(start..self.pos).unwrap_or("")
    }

    /// Body of a quoted-string; the opening quote has been consumed.
    pub(super) fn quoted_string(&mut self) -> Result<String, AuthError> {
        let mut out = String::new();
        loop {
            match self.bump() {
                None => return Err(malformed("unterminated quoted string")),
                Some('"') => return Ok(out),
                Some('\\') => match self.bump() {
                    Some(c) => out.push(c),
                    None => return Err(malformed("unterminated quoted string")),
                },
                Some(c) => out.push(c),
            }
        }
    }
}

/// The auth-params of a `Digest` header value; names are stored lowercase.
#[derive(Debug, Default)]
pub(super) struct Params(Vec<(String, String)>);

impl Params {
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub(super) fn require(&self, name: &str) -> Result<&str, AuthError> {
        self.get(name)
            .ok_or_else(|| malformed(format!("missing mandatory parameter {name}")))
    }
}

/// Parse `Digest name=value, name="quoted", ...`.
pub(super) fn parse_digest_params(value: &str) -> Result<Params, AuthError> {
    let mut lx = Lexer::new(value);
    lx.skip_lws();
    let scheme = lx.token();
    if scheme.is_empty() {
        return Err(malformed("missing authentication scheme"));
    }
    if !scheme.eq_ignore_ascii_case("Digest") {
        return Err(AuthError::NotDigest);
    }
    if !lx.skip_lws() && lx.peek().is_some() {
        return Err(malformed("expected whitespace after scheme"));
    }

    let mut params = Params::default();
    loop {
        // `#rule` lists tolerate empty elements: skip stray commas.
        loop {
            lx.skip_lws();
            if lx.peek() == Some(',') {
                lx.bump();
            } else {
                break;
            }
        }
        let Some(c) = lx.peek() else { break };
        let name = lx.token().to_ascii_lowercase();
        if name.is_empty() {
            return Err(malformed(format!(
                "unexpected {c:?} where a parameter name was expected"
            )));
        }
        lx.skip_lws();
        if lx.bump() != Some('=') {
            return Err(malformed(format!("expected '=' after {name}")));
        }
        lx.skip_lws();
        let val = if lx.peek() == Some('"') {
            lx.bump();
            lx.quoted_string()?
        } else {
            let tok = lx.token();
            if tok.is_empty() {
                return Err(malformed(format!("missing value for {name}")));
            }
            tok.to_owned()
        };
        if params.get(&name).is_some() {
            return Err(malformed(format!("duplicate parameter {name}")));
        }
        params.0.push((name, val));
        lx.skip_lws();
        match lx.peek() {
            None | Some(',') => {}
            Some(c) => return Err(malformed(format!("expected ',' but found {c:?}"))),
        }
    }
    Ok(params)
}

/// Quote a value for output. Backslash and double quote are escaped; CR and LF
/// cannot be represented in a quoted-string and are dropped (no header
/// injection through realms, usernames or echoed nonces).
pub(super) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\r' | '\n' => {}
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out.push('"');
    out
}
