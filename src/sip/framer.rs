//! Incremental framing of a SIP byte stream (TCP): bytes go in as they are read, whole messages
//! come out, and no byte is looked at twice while a message is still arriving.
//!
//! Owns: the connection's receive buffer, how far it has been searched for the end of the
//! header section, and — once the header section of the message at the front is complete — the
//! length the message will have, so that a large body arriving in many reads is not re-parsed
//! on each one (the one-shot [`frame_stream`] does the parsing when the message is whole).
//!
//! Sans-IO. Must not know: sockets, what the messages are for.

use super::message::Message;
use super::parse::{find_head_end, frame_stream_sized, Framed, Limits, ParseFailure};

/// One framed message (or failure) taken off the front of the stream.
#[derive(Debug)]
pub struct Frame {
    pub result: Box<Result<Message, ParseFailure>>,
    /// The stream cannot be resynchronised: answer, then close.
    pub fatal: bool,
}

#[derive(Debug, Default)]
pub struct StreamFramer {
    buf: Vec<u8>,
    /// The first `scanned` bytes hold no end of the header section.
    scanned: usize,
    /// The length of the message at the front, once known.
    need: Option<usize>,
}

impl StreamFramer {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes held that are not yet a whole message.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next whole message at the front, if there is one.
    pub fn next(&mut self, limits: &Limits) -> Option<Frame> {
        if self.buf.is_empty() || self.need.is_some_and(|n| self.buf.len() < n) {
            return None;
        }
        if self.need.is_none() {
            let start = self
                .buf
                .iter()
                .position(|b| !matches!(b, b'\r' | b'\n'))
                .unwrap_or(self.buf.len());
            let from = self.scanned.saturating_sub(3).max(start);
            let too_big = self.buf.len() - start > limits.max_message_size;
            if start < self.buf.len() && find_head_end(&self.buf[from..]).is_none() && !too_big {
                self.scanned = self.buf.len();
                return None;
            }
        }
        let (framed, need) = frame_stream_sized(&self.buf, limits);
        match framed {
            Framed::Incomplete => {
                self.need = need;
                None
            }
            Framed::Message {
                consumed,
                result,
                fatal,
            } => {
                self.buf.drain(..consumed.min(self.buf.len()));
                self.scanned = 0;
                self.need = None;
                Some(Frame { result, fatal })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::parse::{frame_stream, KEEPALIVE};

    fn options(body: &str) -> String {
        format!(
            "OPTIONS sip:ctid SIP/2.0\r\nVia: SIP/2.0/TCP 10.0.0.1:5060;branch=z9hG4bKf\r\n\
From: <sip:a@h>;tag=1\r\nTo: <sip:ctid>\r\nCall-ID: c1\r\nCSeq: 1 OPTIONS\r\n\
Max-Forwards: 70\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    }

    #[test]
    fn byte_by_byte_yields_the_same_messages_as_the_one_shot_framer() {
        let limits = Limits::default();
        let stream = format!("\r\n\r\n{}{}", options("hello"), options(""));
        let mut f = StreamFramer::new();
        let mut got = Vec::new();
        for b in stream.as_bytes() {
            f.push(std::slice::from_ref(b));
            while let Some(frame) = f.next(&limits) {
                got.push(frame);
            }
        }
        assert_eq!(f.buffered(), 0);
        let kinds: Vec<String> = got
            .iter()
            .map(|fr| match fr.result.as_ref() {
                Ok(Message::Request(r)) => format!("req:{}", r.body.len()),
                Ok(_) => "resp".into(),
                Err(e) => e.reason.to_string(),
            })
            .collect();
        // Each CRLF byte of the keep-alive is its own (dropped) keep-alive when fed one by one.
        assert_eq!(kinds[0], KEEPALIVE);
        let msgs: Vec<&String> = kinds.iter().filter(|k| *k != KEEPALIVE).collect();
        assert_eq!(msgs, vec!["req:5", "req:0"]);
        let Framed::Message { .. } = frame_stream(options("x").as_bytes(), &limits) else {
            panic!("one-shot framer disagrees");
        };
    }

    #[test]
    fn a_large_body_in_many_reads_is_sized_once_and_not_reparsed() {
        let limits = Limits::default();
        let body = "x".repeat(30_000);
        let msg = options(&body);
        let head_len = msg.len() - body.len();
        let mut f = StreamFramer::new();
        f.push(&msg.as_bytes()[..head_len + 10]);
        assert!(f.next(&limits).is_none());
        assert_eq!(f.need, Some(msg.len()));
        for chunk in msg.as_bytes()[head_len + 10..].chunks(1000) {
            // Until the last chunk, `next` returns at its first check.
            assert!(f.next(&limits).is_none());
            f.push(chunk);
        }
        let frame = f.next(&limits).expect("whole message");
        assert!(!frame.fatal);
        assert!(matches!(frame.result.as_ref(), Ok(Message::Request(r)) if r.body.len() == 30_000));
    }

    #[test]
    fn the_head_search_resumes_where_it_stopped() {
        let limits = Limits::default();
        let msg = options("");
        let mut f = StreamFramer::new();
        // Split right inside the blank line that ends the headers.
        let cut = msg.len() - 2;
        f.push(&msg.as_bytes()[..cut]);
        assert!(f.next(&limits).is_none());
        assert_eq!(f.scanned, cut);
        f.push(&msg.as_bytes()[cut..]);
        assert!(f.next(&limits).is_some());
    }

    #[test]
    fn endless_headers_are_fatal_past_the_size_limit() {
        let limits = Limits {
            max_message_size: 2048,
            ..Limits::default()
        };
        let mut f = StreamFramer::new();
        f.push(b"OPTIONS sip:ctid SIP/2.0\r\n");
        let mut fatal = false;
        for _ in 0..200 {
            f.push(b"X-Filler: aaaaaaaaaaaaaaaaaaaa\r\n");
            if let Some(frame) = f.next(&limits) {
                fatal = frame.fatal;
                break;
            }
        }
        assert!(fatal, "an endless header section must end the connection");
    }
}
