//! Fuzz the SIP parser: datagram parsing, stream framing, and the typed header views the endpoint
//! uses. A message that parses must print and parse again to the same message.
#![no_main]

use ctid::sip::header::{CSeq, NameAddr, Via};
use ctid::sip::message::Message;
use ctid::sip::parse::{frame_stream, parse_datagram, Framed, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    if let Ok(msg) = parse_datagram(data, &limits) {
        let headers = msg.headers();
        for v in headers.get_all("Via") {
            let _ = Via::parse(v);
        }
        for name in ["From", "To", "Contact", "Route"] {
            for v in headers.get_all(name) {
                let _ = NameAddr::parse(v);
            }
        }
        let _ = headers.get("CSeq").map(CSeq::parse);
        let bytes = match &msg {
            Message::Request(r) => r.to_bytes(),
            Message::Response(r) => r.to_bytes(),
        };
        // Printing rewrites Content-Length (from the real body, at the end); all else must survive.
        let strip = |m: &Message| {
            let mut m = m.clone();
            match &mut m {
                Message::Request(r) => r.headers.remove("Content-Length"),
                Message::Response(r) => r.headers.remove("Content-Length"),
            }
            m
        };
        let again = parse_datagram(&bytes, &limits).map(|m| strip(&m));
        assert_eq!(again.ok(), Some(strip(&msg)), "round trip changed the message");
    }
    let mut rest = data;
    while let Framed::Message { consumed, .. } = frame_stream(rest, &limits) {
        if consumed == 0 || consumed > rest.len() {
            panic!("framer made no progress or overran");
        }
        rest = &rest[consumed..];
    }
    let _ = ctid::sip::auth::parse_credentials(&String::from_utf8_lossy(data));
});
