//! Reading an HTTP/1.1 answer from bytes: status line, headers, a `Content-Length` or chunked
//! body (or one that ends with the connection), with a bound on its size. No I/O: the client
//! feeds what it has read and asks again when more is needed.

use super::MAX_RESPONSE;

/// A parsed HTTP answer.
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

/// Parse an HTTP/1.x answer from the bytes read so far. `eof` says the peer closed the
/// connection (a body without framing then ends there). `Ok(None)`: more bytes are needed.
pub fn parse_response(buf: &[u8], eof: bool) -> Result<Option<Response>, String> {
    let mut start = 0;
    loop {
        let rest = &buf[start..];
        let Some(head_len) = find(rest, b"\r\n\r\n") else {
            if eof {
                return Err(if buf.is_empty() {
                    "the connection was closed without an answer".into()
                } else {
                    "the connection was closed in the middle of the headers".into()
                });
            }
            return Ok(None);
        };
        let head = std::str::from_utf8(&rest[..head_len])
            .map_err(|_| "the headers are not valid UTF-8".to_string())?;
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status = parse_status_line(status_line)?;
        let mut headers = Vec::new();
        for line in lines {
            let (k, v) = line
                .split_once(':')
                .ok_or_else(|| format!("malformed header line {line:?}"))?;
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
        let body_start = start + head_len + 4;
        // Interim answers (100 Continue, ...) carry no body: skip them.
        if (100..200).contains(&status) && status != 101 {
            start = body_start;
            continue;
        }
        let mut resp = Response {
            status,
            headers,
            body: Vec::new(),
        };
        let body = &buf[body_start..];
        if status == 204 || status == 304 {
            return Ok(Some(resp));
        }
        let chunked = resp
            .header("transfer-encoding")
            .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
        if chunked {
            return match decode_chunked(body)? {
                Some(b) => {
                    resp.body = b;
                    Ok(Some(resp))
                }
                None if eof => Err("the connection was closed in the middle of a chunk".into()),
                None => Ok(None),
            };
        }
        if let Some(len) = resp.header("content-length") {
            let len: usize = len
                .parse()
                .map_err(|_| format!("bad Content-Length {len:?}"))?;
            if len > MAX_RESPONSE {
                return Err(format!("the answer is too large ({len} bytes)"));
            }
            if body.len() >= len {
                resp.body = body[..len].to_vec();
                return Ok(Some(resp));
            }
            if eof {
                return Err(format!(
                    "the answer was cut short: {} of {len} bytes",
                    body.len()
                ));
            }
            return Ok(None);
        }
        if eof {
            resp.body = body.to_vec();
            return Ok(Some(resp));
        }
        return Ok(None);
    }
}

fn parse_status_line(line: &str) -> Result<u16, String> {
    let mut parts = line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(format!("not an HTTP/1.x answer: {:?}", truncate(line, 80)));
    }
    parts
        .next()
        .and_then(|c| c.parse::<u16>().ok())
        .filter(|c| (100..600).contains(c))
        .ok_or_else(|| format!("bad status line {:?}", truncate(line, 80)))
}

/// Decode a chunked body; `Ok(None)` when incomplete.
fn decode_chunked(mut buf: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let mut out = Vec::new();
    loop {
        let Some(line_end) = find(buf, b"\r\n") else {
            return Ok(None);
        };
        let line =
            std::str::from_utf8(&buf[..line_end]).map_err(|_| "bad chunk size line".to_string())?;
        let size_hex = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_hex, 16)
            .map_err(|_| format!("bad chunk size {size_hex:?}"))?;
        buf = &buf[line_end + 2..];
        if size == 0 {
            // Trailers, then an empty line.
            loop {
                let Some(end) = find(buf, b"\r\n") else {
                    return Ok(None);
                };
                if end == 0 {
                    return Ok(Some(out));
                }
                buf = &buf[end + 2..];
            }
        }
        if out.len().saturating_add(size) > MAX_RESPONSE {
            return Err("the answer is too large".into());
        }
        if buf.len() < size + 2 {
            return Ok(None);
        }
        if &buf[size..size + 2] != b"\r\n" {
            return Err("a chunk is not followed by CRLF".into());
        }
        out.extend_from_slice(&buf[..size]);
        buf = &buf[size + 2..];
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

pub(super) fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max).collect();
        t.push('…');
        t
    }
}
