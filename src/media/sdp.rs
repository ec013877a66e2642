//! SDP (RFC 4566) parsing and RFC 3264 offer/answer for ctid's audio relay.
//!
//! ctid anchors media: it answers callers and offers to agents with its own SDP, audio only, with
//! PCMU (PT 0) or PCMA (PT 8) plus telephone-event (RFC 4733, dynamic PT). Parsing and
//! negotiation are here; writing ctid's own SDP is in `sdp/build.rs`.
//!
//! [`parse`] never panics on any input: bytes that are not UTF-8 are an error, CRLF and bare LF line
//! ends are both accepted, unknown lines and attributes are ignored, and `a=`/`b=`/`c=` lines may
//! come in any order within their section. Malformed values of attributes ctid does not depend on
//! (a broken `a=rtpmap`, `a=ptime`, …) are ignored rather than failing the whole body.

use std::net::{IpAddr, SocketAddr};

mod build;
pub use build::{build, build_answer, build_offer};

/// Media direction attribute (RFC 3264 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    /// The direction the other side should use: sendonly <-> recvonly, the others unchanged.
    pub fn reverse(self) -> Direction {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            d => d,
        }
    }

    /// The attribute name (`sendrecv`, `sendonly`, `recvonly`, `inactive`).
    pub fn as_attr(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    fn from_attr(name: &str) -> Option<Direction> {
        [
            Direction::SendRecv,
            Direction::SendOnly,
            Direction::RecvOnly,
            Direction::Inactive,
        ]
        .into_iter()
        .find(|d| name.eq_ignore_ascii_case(d.as_attr()))
    }
}

/// One `m=` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDesc {
    /// `audio`, `video`, … as sent.
    pub kind: String,
    /// The port (a `port/count` suffix is dropped). 0 means the stream is rejected/disabled.
    pub port: u16,
    /// `RTP/AVP`, … as sent.
    pub proto: String,
    /// The formats (payload types for RTP) as sent, in the sender's preference order.
    pub formats: Vec<String>,
    /// Media-level `c=` address (a multicast `/ttl` suffix is dropped).
    pub connection: Option<IpAddr>,
    /// `a=rtpmap:<pt> <encoding>/<clock>[/<channels>]`, channels dropped, first mapping per PT kept.
    pub rtpmap: Vec<(u8, String, u32)>,
    /// `a=fmtp:<pt> <params>`.
    pub fmtp: Vec<(u8, String)>,
    /// Media-level direction attribute.
    pub direction: Option<Direction>,
    /// `a=ptime` in milliseconds (a fractional part is dropped).
    pub ptime: Option<u32>,
    /// `a=rtcp-mux` present.
    pub rtcp_mux: bool,
    /// `a=rtcp:<port>` (RFC 3605); an address given there is not kept.
    pub rtcp_port: Option<u16>,
}

impl MediaDesc {
    fn new(kind: String, port: u16, proto: String, formats: Vec<String>) -> MediaDesc {
        MediaDesc {
            kind,
            port,
            proto,
            formats,
            connection: None,
            rtpmap: Vec::new(),
            fmtp: Vec::new(),
            direction: None,
            ptime: None,
            rtcp_mux: false,
            rtcp_port: None,
        }
    }

    /// The rtpmap entry for `pt`, if any.
    fn rtpmap_for(&self, pt: u8) -> Option<(&str, u32)> {
        self.rtpmap
            .iter()
            .find(|(p, _, _)| *p == pt)
            .map(|(_, enc, clock)| (enc.as_str(), *clock))
    }

    /// The formats that are valid RTP payload types (0..=127), in order, without duplicates.
    fn payload_types(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for f in &self.formats {
            if let Ok(pt) = f.parse::<u8>() {
                if pt <= 127 && !out.contains(&pt) {
                    out.push(pt);
                }
            }
        }
        out
    }

    /// Which of ctid's codecs `pt` is in this m-line: `Some(0)` for PCMU, `Some(8)` for PCMA. The
    /// rtpmap wins when present; without one, the static assignments of RFC 3551 apply.
    fn codec_kind(&self, pt: u8) -> Option<u8> {
        match self.rtpmap_for(pt) {
            Some((enc, 8000)) if enc.eq_ignore_ascii_case("PCMU") => Some(0),
            Some((enc, 8000)) if enc.eq_ignore_ascii_case("PCMA") => Some(8),
            Some(_) => None,
            None if pt == 0 || pt == 8 => Some(pt),
            None => None,
        }
    }

    fn is_telephone_event(&self, pt: u8) -> bool {
        matches!(self.rtpmap_for(pt),
            Some((enc, 8000)) if enc.eq_ignore_ascii_case("telephone-event"))
    }

    fn is_audio(&self) -> bool {
        self.kind.eq_ignore_ascii_case("audio")
    }

    /// Plain RTP profiles ctid can answer (no SRTP).
    fn is_plain_rtp(&self) -> bool {
        self.proto.eq_ignore_ascii_case("RTP/AVP") || self.proto.eq_ignore_ascii_case("RTP/AVPF")
    }
}

/// A parsed session description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sdp {
    /// The `o=` line value.
    pub origin: String,
    /// Session-level `c=` address.
    pub connection: Option<IpAddr>,
    /// Session-level direction attribute.
    pub direction: Option<Direction>,
    pub media: Vec<MediaDesc>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SdpError {
    #[error("malformed SDP: {0}")]
    Malformed(String),
    #[error("no audio stream")]
    NoAudio,
    #[error("no common codec")]
    NoCommonCodec,
    #[error("unacceptable SDP answer: {0}")]
    BadAnswer(String),
}

fn malformed(msg: impl Into<String>) -> SdpError {
    SdpError::Malformed(msg.into())
}

/// Parse a `c=` value: `IN IP4 <addr>[/ttl[/n]]` or `IN IP6 <addr>[/n]`.
fn parse_connection(value: &str) -> Result<IpAddr, SdpError> {
    let mut it = value.split_whitespace();
    let (net, ty, addr) = match (it.next(), it.next(), it.next()) {
        (Some(n), Some(t), Some(a)) => (n, t, a),
        _ => return Err(malformed("c= needs <nettype> <addrtype> <address>")),
    };
    if !net.eq_ignore_ascii_case("IN") {
        return Err(malformed("c= network type is not IN"));
    }
    let addr = addr.split('/').next().unwrap_or("");
    let ip: IpAddr = addr
        .parse()
        .map_err(|_| malformed("c= address is not an IP address"))?;
    match (ty.to_ascii_uppercase().as_str(), ip) {
        ("IP4", IpAddr::V4(_)) | ("IP6", IpAddr::V6(_)) => Ok(ip),
        ("IP4", _) | ("IP6", _) => Err(malformed("c= address does not match its type")),
        _ => Err(malformed("c= address type is not IP4 or IP6")),
    }
}

/// Parse an `m=` value: `<media> <port>[/<count>] <proto> <fmt> ...`.
fn parse_media_line(value: &str) -> Result<MediaDesc, SdpError> {
    let mut it = value.split_whitespace();
    let (kind, port, proto) = match (it.next(), it.next(), it.next()) {
        (Some(k), Some(p), Some(pr)) => (k, p, pr),
        _ => return Err(malformed("m= needs <media> <port> <proto> <fmt>...")),
    };
    let port: u16 = port
        .split('/')
        .next()
        .unwrap_or("")
        .parse()
        .map_err(|_| malformed("m= port is not a number 0-65535"))?;
    let formats = it.map(str::to_owned).collect();
    Ok(MediaDesc::new(
        kind.to_owned(),
        port,
        proto.to_owned(),
        formats,
    ))
}

fn parse_pt(s: &str) -> Option<u8> {
    s.parse::<u8>().ok().filter(|pt| *pt <= 127)
}

/// Apply one `a=` line to a media section. Malformed values are ignored.
fn apply_media_attr(m: &mut MediaDesc, name: &str, value: Option<&str>) {
    if let Some(d) = Direction::from_attr(name) {
        m.direction = Some(d);
        return;
    }
    let value = value.map(str::trim);
    match (name.to_ascii_lowercase().as_str(), value) {
        ("rtpmap", Some(v)) => {
            let mut it = v.split_whitespace();
            let (Some(pt), Some(enc)) = (it.next().and_then(parse_pt), it.next()) else {
                return;
            };
            let mut parts = enc.split('/');
            let name = parts.next().unwrap_or("");
            let Some(clock) = parts.next().and_then(|c| c.parse::<u32>().ok()) else {
                return;
            };
            if !name.is_empty() && m.rtpmap_for(pt).is_none() {
                m.rtpmap.push((pt, name.to_owned(), clock));
            }
        }
        ("fmtp", Some(v)) => {
            let (pt, params) = v.split_once(char::is_whitespace).unwrap_or((v, ""));
            if let Some(pt) = parse_pt(pt) {
                m.fmtp.push((pt, params.trim().to_owned()));
            }
        }
        ("ptime", Some(v)) => {
            if let Ok(p) = v.split('.').next().unwrap_or("").parse::<u32>() {
                m.ptime = Some(p);
            }
        }
        ("rtcp-mux", _) => m.rtcp_mux = true,
        ("rtcp", Some(v)) => {
            if let Some(Ok(p)) = v.split_whitespace().next().map(str::parse::<u16>) {
                m.rtcp_port = Some(p);
            }
        }
        _ => {}
    }
}

/// Parse an SDP body. Requires `v=0` as the first line, an `o=` line and at least one `m=` line,
/// and a `c=` line at session level or in every media section whose port is not 0.
pub fn parse(body: &[u8]) -> Result<Sdp, SdpError> {
    let text = std::str::from_utf8(body).map_err(|_| malformed("not UTF-8"))?;
    let mut lines = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .filter(|l| !l.trim().is_empty());

    match lines.next() {
        Some(first) if first.trim_end() == "v=0" => {}
        Some(_) => return Err(malformed("first line is not v=0")),
        None => return Err(malformed("empty body")),
    }

    let mut origin: Option<String> = None;
    let mut connection = None;
    let mut direction = None;
    let mut media: Vec<MediaDesc> = Vec::new();

    for line in lines {
        let bytes = line.as_bytes();
        // `<type>=<value>` with a single ASCII letter type; anything else is ignored.
        if bytes.len() < 2 || bytes[1] != b'=' || !bytes[0].is_ascii_alphabetic() {
            continue;
        }
        let ty = bytes[0];
        let value = line[2..].trim_end();
        match (ty, media.last_mut()) {
            (b'm', _) => media.push(parse_media_line(value)?),
            (b'o', None) => {
                origin.get_or_insert_with(|| value.to_owned());
            }
            (b'c', None) => {
                let ip = parse_connection(value)?;
                connection.get_or_insert(ip);
            }
            (b'c', Some(m)) => {
                let ip = parse_connection(value)?;
                m.connection.get_or_insert(ip);
            }
            (b'a', cur) => {
                let (name, val) = match value.split_once(':') {
                    Some((n, v)) => (n.trim(), Some(v)),
                    None => (value.trim(), None),
                };
                match cur {
                    Some(m) => apply_media_attr(m, name, val),
                    None => {
                        if let Some(d) = Direction::from_attr(name) {
                            direction = Some(d);
                        }
                    }
                }
            }
            _ => {}
        }
    }

    let origin = origin.ok_or_else(|| malformed("no o= line"))?;
    if media.is_empty() {
        return Err(malformed("no m= line"));
    }
    if connection.is_none() {
        if let Some(i) = media
            .iter()
            .position(|m| m.port != 0 && m.connection.is_none())
        {
            return Err(malformed(format!("no c= for m-line {i}")));
        }
    }
    Ok(Sdp {
        origin,
        connection,
        direction,
        media,
    })
}

/// What was agreed for the (first) audio stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// Index of the audio m-line.
    pub index: usize,
    /// The payload type of the voice codec: 0 (PCMU), 8 (PCMA), or a dynamic PT the peer mapped to
    /// PCMU/PCMA at 8000 Hz (kept as the peer numbered it).
    pub codec: u8,
    /// Which G.711 law `codec` is: 0 (PCMU) or 8 (PCMA), whatever PT the peer numbered it with.
    pub law: u8,
    /// The telephone-event/8000 PT, if both sides have it.
    pub dtmf: Option<u8>,
    /// Where to send RTP; None when c=0.0.0.0 / `::` (RFC 2543 hold) or port 0.
    pub remote: Option<SocketAddr>,
    /// Where to send RTCP: the `a=rtcp` port, else RTP port + 1 (same address as `remote`).
    pub remote_rtcp: Option<SocketAddr>,
    /// The direction WE should use: the mirror of theirs (they sendonly -> we recvonly).
    pub direction: Direction,
    /// Their ptime, or 20.
    pub ptime: u32,
}

/// Fill in everything but codec/dtmf from the chosen m-line.
fn negotiated_from(sdp: &Sdp, index: usize, codec: u8, dtmf: Option<u8>) -> Negotiated {
    let m = &sdp.media[index];
    let ip = m
        .connection
        .or(sdp.connection)
        .filter(|ip| !ip.is_unspecified());
    let (remote, remote_rtcp) = match ip {
        Some(ip) if m.port != 0 => {
            let rtcp = m.rtcp_port.filter(|p| *p != 0).or(m.port.checked_add(1));
            (
                Some(SocketAddr::new(ip, m.port)),
                rtcp.map(|p| SocketAddr::new(ip, p)),
            )
        }
        _ => (None, None),
    };
    let theirs = m.direction.or(sdp.direction).unwrap_or(Direction::SendRecv);
    Negotiated {
        index,
        codec,
        law: m.codec_kind(codec).unwrap_or(codec),
        dtmf,
        remote,
        remote_rtcp,
        direction: theirs.reverse(),
        ptime: m.ptime.filter(|p| *p != 0).unwrap_or(20),
    }
}

/// Answer an offer: the first audio m-line with a non-zero port and a plain RTP profile
/// (`RTP/AVP` or `RTP/AVPF`; SRTP profiles are skipped, ctid cannot answer them).
///
/// The codec is the first of the offer's formats that is PCMU or PCMA (by static PT 0/8, or by an
/// rtpmap `PCMU/8000` / `PCMA/8000` — a dynamic PT keeps its number). `prefer` lists the codecs
/// ctid accepts as static PTs (0 = PCMU, 8 = PCMA) in ctid's order; an empty list means both.
/// The offer's order wins unless `prefer_ours` is true. dtmf is the offer's telephone-event/8000 PT.
pub fn negotiate_offer(
    offer: &Sdp,
    prefer: &[u8],
    prefer_ours: bool,
) -> Result<Negotiated, SdpError> {
    let index = offer
        .media
        .iter()
        .position(|m| m.is_audio() && m.port != 0 && m.is_plain_rtp())
        .ok_or(SdpError::NoAudio)?;
    let m = &offer.media[index];
    let accepted: Vec<u8> = if prefer.iter().any(|p| *p == 0 || *p == 8) {
        prefer
            .iter()
            .copied()
            .filter(|p| *p == 0 || *p == 8)
            .collect()
    } else {
        vec![0, 8]
    };
    let pts = m.payload_types();
    // (pt, which codec it is) for every usable format, in the offer's order.
    let usable: Vec<(u8, u8)> = pts
        .iter()
        .filter_map(|pt| m.codec_kind(*pt).map(|k| (*pt, k)))
        .filter(|(_, k)| accepted.contains(k))
        .collect();
    let codec = if prefer_ours {
        accepted
            .iter()
            .find_map(|want| usable.iter().find(|(_, k)| k == want).map(|(pt, _)| *pt))
    } else {
        usable.first().map(|(pt, _)| *pt)
    }
    .ok_or(SdpError::NoCommonCodec)?;
    let dtmf = pts
        .iter()
        .copied()
        .find(|pt| *pt != codec && m.is_telephone_event(*pt));
    Ok(negotiated_from(offer, index, codec, dtmf))
}

/// Check the answer to an offer ctid made with `offered` formats (e.g. `[0, 101]`): the answer's
/// first audio m-line that is not rejected (port 0) must use a voice codec ctid offered. All audio
/// lines rejected is [`SdpError::BadAnswer`]; no audio line at all is [`SdpError::NoAudio`].
pub fn read_answer(answer: &Sdp, offered: &[u8]) -> Result<Negotiated, SdpError> {
    if !answer.media.iter().any(MediaDesc::is_audio) {
        return Err(SdpError::NoAudio);
    }
    let index = answer
        .media
        .iter()
        .position(|m| m.is_audio() && m.port != 0)
        .ok_or_else(|| SdpError::BadAnswer("audio stream rejected (port 0)".into()))?;
    let m = &answer.media[index];
    let pts: Vec<u8> = m
        .payload_types()
        .into_iter()
        .filter(|pt| offered.contains(pt))
        .collect();
    let codec = pts
        .iter()
        .copied()
        .find(|pt| m.codec_kind(*pt).is_some())
        .ok_or_else(|| SdpError::BadAnswer("answer uses no codec ctid offered".into()))?;
    let dtmf = pts
        .iter()
        .copied()
        .find(|pt| *pt != codec && m.is_telephone_event(*pt));
    Ok(negotiated_from(answer, index, codec, dtmf))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn crlf(s: &str) -> String {
        s.lines().map(|l| format!("{l}\r\n")).collect()
    }

    fn p(s: &str) -> Result<Sdp, SdpError> {
        parse(crlf(s).as_bytes())
    }

    const ASTERISK: &str = "v=0
o=- 1234 1234 IN IP4 192.168.1.10
s=Asterisk
c=IN IP4 192.168.1.10
t=0 0
m=audio 10000 RTP/AVP 0 8 3 101
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:3 GSM/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=ptime:20
a=maxptime:150
a=sendrecv";

    const FREESWITCH: &str = "v=0
o=FreeSWITCH 1700000000 1700000001 IN IP4 10.0.0.5
s=FreeSWITCH
c=IN IP4 10.0.0.5
t=0 0
m=audio 16384 RTP/AVP 8 0 101 13
a=rtpmap:8 PCMA/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=rtpmap:13 CN/8000
a=ptime:20
a=sendrecv
a=rtcp:16385 IN IP4 10.0.0.5";

    const CISCO: &str = "v=0
o=Cisco-SIPUA 12345 0 IN IP4 10.1.1.20
s=SIP Call
t=0 0
m=audio 28000 RTP/AVP 0 8 18 9 101
c=IN IP4 10.1.1.20
b=TIAS:64000
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:18 G729/8000
a=fmtp:18 annexb=no
a=rtpmap:9 G722/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=sendrecv";

    const SIPP: &str = "v=0
o=user1 53655765 2353687637 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio 6000 RTP/AVP 0
a=rtpmap:0 PCMU/8000";

    const LINPHONE: &str = "v=0
o=alice 3303 2188 IN IP4 192.168.0.50
s=Talk
c=IN IP4 192.168.0.50
t=0 0
a=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics
m=audio 7078 RTP/AVP 96 0 8 101 97
a=rtpmap:96 opus/48000/2
a=fmtp:96 useinbandfec=1
a=rtpmap:101 telephone-event/48000
a=rtpmap:97 telephone-event/8000
a=rtcp-fb:* trr-int 1000";

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn asterisk_offer() {
        let sdp = p(ASTERISK).unwrap();
        assert_eq!(sdp.origin, "- 1234 1234 IN IP4 192.168.1.10");
        assert_eq!(sdp.media.len(), 1);
        let m = &sdp.media[0];
        assert_eq!(m.formats, ["0", "8", "3", "101"]);
        assert_eq!(m.fmtp, vec![(101, "0-16".to_string())]);
        assert_eq!(m.direction, Some(Direction::SendRecv));
        let n = negotiate_offer(&sdp, &[0, 8], false).unwrap();
        assert_eq!(n.index, 0);
        assert_eq!(n.codec, 0);
        assert_eq!(n.dtmf, Some(101));
        assert_eq!(n.remote, Some(sa("192.168.1.10:10000")));
        assert_eq!(n.remote_rtcp, Some(sa("192.168.1.10:10001")));
        assert_eq!(n.direction, Direction::SendRecv);
        assert_eq!(n.ptime, 20);
        // ctid prefers PCMA and insists.
        assert_eq!(negotiate_offer(&sdp, &[8, 0], true).unwrap().codec, 8);
        assert_eq!(negotiate_offer(&sdp, &[8, 0], false).unwrap().codec, 0);
        // ctid accepts only PCMA.
        assert_eq!(negotiate_offer(&sdp, &[8], false).unwrap().codec, 8);
    }

    #[test]
    fn freeswitch_offer_with_rtcp_attr() {
        let sdp = p(FREESWITCH).unwrap();
        assert_eq!(sdp.media[0].rtcp_port, Some(16385));
        let n = negotiate_offer(&sdp, &[0, 8], false).unwrap();
        assert_eq!(n.codec, 8);
        assert_eq!(n.dtmf, Some(101));
        assert_eq!(n.remote_rtcp, Some(sa("10.0.0.5:16385")));
        assert_eq!(negotiate_offer(&sdp, &[0, 8], true).unwrap().codec, 0);
    }

    #[test]
    fn explicit_rtcp_port_not_adjacent() {
        let s = SIPP.replace("a=rtpmap:0 PCMU/8000", "a=rtcp:7777\na=rtpmap:0 PCMU/8000");
        let n = negotiate_offer(&p(&s).unwrap(), &[0], false).unwrap();
        assert_eq!(n.remote, Some(sa("127.0.0.1:6000")));
        assert_eq!(n.remote_rtcp, Some(sa("127.0.0.1:7777")));
    }

    #[test]
    fn cisco_media_level_connection() {
        let sdp = p(CISCO).unwrap();
        assert_eq!(sdp.connection, None);
        assert_eq!(sdp.media[0].connection, Some("10.1.1.20".parse().unwrap()));
        let n = negotiate_offer(&sdp, &[], false).unwrap();
        assert_eq!((n.codec, n.dtmf), (0, Some(101)));
        assert_eq!(n.remote, Some(sa("10.1.1.20:28000")));
    }

    #[test]
    fn sipp_default_offer() {
        let sdp = p(SIPP).unwrap();
        let n = negotiate_offer(&sdp, &[0, 8], false).unwrap();
        assert_eq!((n.codec, n.dtmf, n.ptime), (0, None, 20));
        assert_eq!(n.remote, Some(sa("127.0.0.1:6000")));
        let ans = build_answer(&sdp, sa("10.9.9.9:20000"), &n, 1, 1);
        assert!(!ans.contains("telephone-event"));
        assert!(ans.contains("m=audio 20000 RTP/AVP 0\r\n"));
    }

    #[test]
    fn linphone_opus_first() {
        let sdp = p(LINPHONE).unwrap();
        assert_eq!(sdp.media[0].rtpmap[0], (96, "opus".to_string(), 48000));
        let n = negotiate_offer(&sdp, &[0, 8], false).unwrap();
        assert_eq!(n.codec, 0);
        assert_eq!(n.dtmf, Some(97), "only the 8000 Hz telephone-event counts");
    }

    #[test]
    fn hold_sendonly_answered_recvonly() {
        let sdp = p(&ASTERISK.replace("a=sendrecv", "a=sendonly")).unwrap();
        let n = negotiate_offer(&sdp, &[0, 8], false).unwrap();
        assert_eq!(n.direction, Direction::RecvOnly);
        let ans = build_answer(&sdp, sa("10.0.0.1:30000"), &n, 5, 6);
        assert!(ans.contains("a=recvonly\r\n"));
        assert_eq!(
            parse(ans.as_bytes()).unwrap().media[0].direction,
            Some(Direction::RecvOnly)
        );
    }

    #[test]
    fn hold_inactive_and_session_level_direction() {
        let sdp = p(&ASTERISK.replace("a=sendrecv", "a=inactive")).unwrap();
        assert_eq!(
            negotiate_offer(&sdp, &[0], false).unwrap().direction,
            Direction::Inactive
        );
        let s = SIPP.replace("t=0 0", "t=0 0\na=recvonly");
        let sdp = p(&s).unwrap();
        assert_eq!(sdp.direction, Some(Direction::RecvOnly));
        assert_eq!(sdp.media[0].direction, None);
        assert_eq!(
            negotiate_offer(&sdp, &[0], false).unwrap().direction,
            Direction::SendOnly
        );
    }

    #[test]
    fn hold_zero_address() {
        let sdp = p(&ASTERISK.replace("c=IN IP4 192.168.1.10", "c=IN IP4 0.0.0.0")).unwrap();
        let n = negotiate_offer(&sdp, &[0, 8], false).unwrap();
        assert_eq!(n.remote, None);
        assert_eq!(n.remote_rtcp, None);
        assert_eq!(n.codec, 0);
    }

    #[test]
    fn video_and_audio_offer() {
        let s = "v=0
o=- 1 1 IN IP4 10.0.0.7
s=-
c=IN IP4 10.0.0.7
t=0 0
m=video 9000 RTP/AVP 96 97
a=rtpmap:96 H264/90000
a=rtpmap:97 VP8/90000
m=audio 9002 RTP/AVP 8 101
a=rtpmap:101 telephone-event/8000
m=application 9004 UDP/BFCP *";
        let sdp = p(s).unwrap();
        assert_eq!(sdp.media.len(), 3);
        let n = negotiate_offer(&sdp, &[0, 8], false).unwrap();
        assert_eq!((n.index, n.codec, n.dtmf), (1, 8, Some(101)));
        let ans = build_answer(&sdp, sa("10.0.0.1:40000"), &n, 77, 78);
        let parsed = parse(ans.as_bytes()).unwrap();
        assert_eq!(parsed.media.len(), 3);
        assert_eq!(
            (parsed.media[0].kind.as_str(), parsed.media[0].port),
            ("video", 0)
        );
        assert_eq!(parsed.media[0].formats, ["96"]);
        assert_eq!(parsed.media[1].port, 40000);
        assert_eq!(parsed.media[1].formats, ["8", "101"]);
        assert_eq!(
            (parsed.media[2].port, parsed.media[2].proto.as_str()),
            (0, "UDP/BFCP")
        );
        assert_eq!(parsed.media[2].formats, ["*"]);
        // ctid can read its own answer as an answer to what the caller offered.
        let back = read_answer(&parsed, &[8, 101]).unwrap();
        assert_eq!((back.index, back.codec, back.dtmf), (1, 8, Some(101)));
        assert_eq!(back.remote, Some(sa("10.0.0.1:40000")));
    }

    #[test]
    fn rejected_audio_skipped_and_no_audio() {
        let s = SIPP.replace("m=audio 6000", "m=audio 0 RTP/AVP 0\nm=audio 6002");
        let sdp = p(&s).unwrap();
        assert_eq!(negotiate_offer(&sdp, &[0], false).unwrap().index, 1);
        let s = SIPP.replace("m=audio 6000 RTP/AVP 0", "m=video 6000 RTP/AVP 96");
        assert_eq!(
            negotiate_offer(&p(&s).unwrap(), &[0], false),
            Err(SdpError::NoAudio)
        );
        let s = SIPP.replace("RTP/AVP", "RTP/SAVP");
        assert_eq!(
            negotiate_offer(&p(&s).unwrap(), &[0], false),
            Err(SdpError::NoAudio)
        );
    }

    #[test]
    fn only_g729_no_common_codec() {
        let s = "v=0
o=- 1 1 IN IP4 10.0.0.7
s=-
c=IN IP4 10.0.0.7
t=0 0
m=audio 9002 RTP/AVP 18 101
a=rtpmap:18 G729/8000
a=rtpmap:101 telephone-event/8000";
        assert_eq!(
            negotiate_offer(&p(s).unwrap(), &[0, 8], false),
            Err(SdpError::NoCommonCodec)
        );
        // PCMA offered but ctid only accepts PCMU.
        let s = ASTERISK.replace("RTP/AVP 0 8 3 101", "RTP/AVP 8 3 101");
        assert_eq!(
            negotiate_offer(&p(&s).unwrap(), &[0], true),
            Err(SdpError::NoCommonCodec)
        );
    }

    #[test]
    fn dynamic_pt_mapped_to_pcmu() {
        let s = "v=0
o=- 1 1 IN IP4 10.0.0.7
s=-
c=IN IP4 10.0.0.7
t=0 0
m=audio 9002 RTP/AVP 18 112 100
a=rtpmap:18 G729/8000
a=rtpmap:112 pcmu/8000
a=rtpmap:100 telephone-event/8000
a=fmtp:100 0-15";
        let sdp = p(s).unwrap();
        let n = negotiate_offer(&sdp, &[0, 8], false).unwrap();
        assert_eq!((n.codec, n.dtmf), (112, Some(100)));
        let ans = build_answer(&sdp, sa("10.0.0.1:40000"), &n, 1, 2);
        assert!(ans.contains("m=audio 40000 RTP/AVP 112 100\r\n"));
        assert!(ans.contains("a=rtpmap:112 PCMU/8000\r\n"));
        assert!(ans.contains("a=rtpmap:100 telephone-event/8000\r\n"));
        // An rtpmap overriding a static PT is trusted.
        let s = SIPP.replace("a=rtpmap:0 PCMU/8000", "a=rtpmap:0 G729/8000");
        assert_eq!(
            negotiate_offer(&p(&s).unwrap(), &[0, 8], false),
            Err(SdpError::NoCommonCodec)
        );
    }

    #[test]
    fn ipv6_connection() {
        let s = "v=0
o=- 1 1 IN IP6 2001:db8::1
s=-
c=IN IP6 2001:db8::1
t=0 0
m=audio 5004 RTP/AVP 0";
        let sdp = p(s).unwrap();
        let n = negotiate_offer(&sdp, &[0], false).unwrap();
        assert_eq!(n.remote, Some(sa("[2001:db8::1]:5004")));
        let ans = build_answer(&sdp, sa("[2001:db8::2]:6000"), &n, 1, 1);
        assert!(ans.contains("c=IN IP6 2001:db8::2\r\n"));
        assert!(ans.contains("o=ctid 1 1 IN IP6 2001:db8::2\r\n"));
        // Mismatched address type, hostnames and garbage are rejected.
        for bad in [
            "c=IN IP4 2001:db8::1",
            "c=IN IP6 10.0.0.1",
            "c=IN IP4 pbx.example.com",
            "c=IN",
        ] {
            let s = SIPP.replace("c=IN IP4 127.0.0.1", bad);
            assert!(matches!(p(&s), Err(SdpError::Malformed(_))), "{bad}");
        }
        // Multicast TTL suffix is dropped.
        let s = SIPP.replace("c=IN IP4 127.0.0.1", "c=IN IP4 224.2.1.1/127");
        assert_eq!(
            p(&s).unwrap().connection,
            Some("224.2.1.1".parse().unwrap())
        );
    }

    #[test]
    fn missing_connection_is_malformed() {
        let s = SIPP.replace("c=IN IP4 127.0.0.1\n", "");
        assert!(matches!(p(&s), Err(SdpError::Malformed(_))));
        // ...unless the only stream is disabled.
        let s = s.replace("m=audio 6000", "m=audio 0");
        assert!(p(&s).is_ok());
    }

    #[test]
    fn structural_errors() {
        assert!(matches!(parse(b""), Err(SdpError::Malformed(_))));
        assert!(matches!(parse(b"\xff\xfe"), Err(SdpError::Malformed(_))));
        assert!(matches!(
            p(&SIPP.replace("v=0", "v=1")),
            Err(SdpError::Malformed(_))
        ));
        assert!(matches!(
            p(&SIPP.replace("o=user1 53655765 2353687637 IN IP4 127.0.0.1\n", "")),
            Err(SdpError::Malformed(_))
        ));
        assert!(matches!(
            p(&SIPP.replace("m=audio 6000 RTP/AVP 0\n", "")),
            Err(SdpError::Malformed(_))
        ));
        assert!(matches!(
            p(&SIPP.replace("6000", "70000")),
            Err(SdpError::Malformed(_))
        ));
        assert!(matches!(
            p(&SIPP.replace("m=audio 6000 RTP/AVP 0", "m=audio 6000")),
            Err(SdpError::Malformed(_))
        ));
    }

    #[test]
    fn lf_only_and_lenient_lines() {
        let sdp = parse(ASTERISK.as_bytes()).unwrap();
        assert_eq!(sdp, p(ASTERISK).unwrap());
        // Unknown lines, junk lines, broken attributes and a port/count are tolerated.
        let s = "v=0
o=- 1 1 IN IP4 10.0.0.7
garbage line
s=-
z=whatever
t=0 0
m=audio 9002/2 RTP/AVP 0 8
a=ptime:30.0
a=rtpmap:nonsense
a=rtpmap:8 PCMA
a=fmtp:
a=rtcp:notaport
a=rtcp-mux
b=AS:64
c=IN IP4 10.0.0.7
";
        let sdp = parse(s.as_bytes()).unwrap();
        let m = &sdp.media[0];
        assert_eq!(m.port, 9002);
        assert_eq!(m.ptime, Some(30));
        assert!(m.rtpmap.is_empty());
        assert!(m.rtcp_mux);
        assert_eq!(m.rtcp_port, None);
        let n = negotiate_offer(&sdp, &[0, 8], false).unwrap();
        assert_eq!((n.codec, n.ptime), (0, 30));
        assert_eq!(n.remote, Some(sa("10.0.0.7:9002")));
    }

    #[test]
    fn build_round_trip() {
        let s = build(
            sa("10.0.0.1:20000"),
            0,
            Some(101),
            Direction::SendRecv,
            20,
            42,
            43,
        );
        assert_eq!(
            s,
            "v=0\r\no=ctid 42 43 IN IP4 10.0.0.1\r\ns=ctid\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
             m=audio 20000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
             a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
        );
        let sdp = parse(s.as_bytes()).unwrap();
        assert_eq!(sdp.origin, "ctid 42 43 IN IP4 10.0.0.1");
        let n = negotiate_offer(&sdp, &[0, 8], false).unwrap();
        assert_eq!((n.codec, n.dtmf, n.ptime), (0, Some(101), 20));
        assert_eq!(n.remote, Some(sa("10.0.0.1:20000")));

        let s = build(sa("10.0.0.1:20000"), 8, None, Direction::SendOnly, 30, 1, 2);
        let sdp = parse(s.as_bytes()).unwrap();
        assert_eq!(sdp.media[0].rtpmap, vec![(8, "PCMA".to_string(), 8000)]);
        let n = negotiate_offer(&sdp, &[0, 8], false).unwrap();
        assert_eq!((n.codec, n.dtmf, n.ptime), (8, None, 30));
        assert_eq!(n.direction, Direction::RecvOnly);
    }

    #[test]
    fn read_answer_accepts_and_rejects() {
        let offered = [0, 101];
        // The agent's phone answers with PCMU and DTMF.
        let ans = "v=0
o=agent 1 1 IN IP4 10.2.0.9
s=-
c=IN IP4 10.2.0.9
t=0 0
m=audio 30000 RTP/AVP 0 101
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=sendonly";
        let n = read_answer(&p(ans).unwrap(), &offered).unwrap();
        assert_eq!((n.codec, n.dtmf), (0, Some(101)));
        assert_eq!(n.remote, Some(sa("10.2.0.9:30000")));
        assert_eq!(n.direction, Direction::RecvOnly);
        // Without DTMF.
        let a2 = ans.replace("RTP/AVP 0 101", "RTP/AVP 0");
        assert_eq!(read_answer(&p(&a2).unwrap(), &offered).unwrap().dtmf, None);
        // A codec ctid did not offer.
        let a3 = ans.replace("RTP/AVP 0 101", "RTP/AVP 8 101");
        assert!(matches!(
            read_answer(&p(&a3).unwrap(), &offered),
            Err(SdpError::BadAnswer(_))
        ));
        // Only DTMF is not a codec.
        let a4 = ans.replace("RTP/AVP 0 101", "RTP/AVP 101");
        assert!(matches!(
            read_answer(&p(&a4).unwrap(), &offered),
            Err(SdpError::BadAnswer(_))
        ));
        // Rejected audio.
        let a5 = ans.replace("m=audio 30000", "m=audio 0");
        assert!(matches!(
            read_answer(&p(&a5).unwrap(), &offered),
            Err(SdpError::BadAnswer(_))
        ));
        // A rejected audio line before the accepted one is skipped.
        let a7 = ans.replace("m=audio 30000", "m=audio 0 RTP/AVP 0\nm=audio 30000");
        assert_eq!(read_answer(&p(&a7).unwrap(), &offered).unwrap().index, 1);
        // No audio at all.
        let a6 = ans.replace("m=audio 30000 RTP/AVP 0 101", "m=video 30000 RTP/AVP 96");
        assert_eq!(
            read_answer(&p(&a6).unwrap(), &offered),
            Err(SdpError::NoAudio)
        );
        // Our own built offer answered by ourselves.
        let own = build(
            sa("10.0.0.1:20000"),
            0,
            Some(101),
            Direction::SendRecv,
            20,
            1,
            1,
        );
        let own = parse(own.as_bytes()).unwrap();
        let n = negotiate_offer(&own, &[0, 8], false).unwrap();
        let reply = build_answer(&own, sa("10.0.0.2:20002"), &n, 2, 2);
        let back = read_answer(&parse(reply.as_bytes()).unwrap(), &offered).unwrap();
        assert_eq!((back.codec, back.dtmf), (0, Some(101)));
        assert_eq!(back.remote, Some(sa("10.0.0.2:20002")));
        assert_eq!(back.remote_rtcp, Some(sa("10.0.0.2:20003")));
    }

    #[test]
    fn direction_helpers() {
        assert_eq!(Direction::SendOnly.reverse(), Direction::RecvOnly);
        assert_eq!(Direction::RecvOnly.reverse(), Direction::SendOnly);
        assert_eq!(Direction::SendRecv.reverse(), Direction::SendRecv);
        assert_eq!(Direction::Inactive.reverse(), Direction::Inactive);
        assert_eq!(Direction::Inactive.as_attr(), "inactive");
    }

    /// Whatever parses and negotiates must yield an answer that parses with the same m-line count.
    fn check_pipeline(bytes: &[u8]) {
        if let Ok(sdp) = parse(bytes) {
            let _ = read_answer(&sdp, &[0, 8, 101]);
            for ours in [false, true] {
                if let Ok(n) = negotiate_offer(&sdp, &[0, 8], ours) {
                    let ans = build_answer(&sdp, "192.0.2.1:4000".parse().unwrap(), &n, 1, 1);
                    let parsed = parse(ans.as_bytes()).expect("own answer parses");
                    assert_eq!(parsed.media.len(), sdp.media.len());
                    let back = read_answer(&parsed, &[n.codec, n.dtmf.unwrap_or(n.codec)])
                        .expect("own answer is acceptable");
                    assert_eq!(back.codec, n.codec);
                }
            }
        }
    }

    #[derive(Debug, Clone)]
    enum Mutation {
        Set(usize, u8),
        Insert(usize, u8),
        Remove(usize),
        Truncate(usize),
        InsertText(usize, &'static str),
    }

    fn mutation() -> impl Strategy<Value = Mutation> {
        let snippet = prop::sample::select(vec![
            "\r\n",
            "\n",
            "m=audio 0 RTP/AVP 0\n",
            "c=IN IP4 0.0.0.0\n",
            "a=rtpmap:0 PCMA/8000\n",
            "a=rtcp:65535\n",
            " 65535",
            "/",
            ":",
            "=",
            "\u{feff}",
        ]);
        prop_oneof![
            (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
            (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
            any::<usize>().prop_map(Mutation::Remove),
            any::<usize>().prop_map(Mutation::Truncate),
            (any::<usize>(), snippet).prop_map(|(i, s)| Mutation::InsertText(i, s)),
        ]
    }

    proptest! {
        #[test]
        fn parse_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            check_pipeline(&bytes);
        }

        #[test]
        fn parse_never_panics_on_sdp_like_text(
            lines in prop::collection::vec("[vocmatb]=[ -~]{0,40}", 0..20)
        ) {
            let text = format!("v=0\r\n{}", lines.join("\r\n"));
            check_pipeline(text.as_bytes());
        }

        #[test]
        fn parse_never_panics_on_mutated_offers(
            which in 0usize..5,
            lf in any::<bool>(),
            muts in prop::collection::vec(mutation(), 1..8),
        ) {
            let base = [ASTERISK, FREESWITCH, CISCO, SIPP, LINPHONE][which];
            let mut b = if lf { base.as_bytes().to_vec() } else { crlf(base).into_bytes() };
            for m in muts {
                let len = b.len().max(1);
                match m {
                    Mutation::Set(i, v) => { if !b.is_empty() { let i = i % b.len(); b[i] = v; } }
                    Mutation::Insert(i, v) => b.insert(i % (b.len() + 1), v),
                    Mutation::Remove(i) => { if !b.is_empty() { b.remove(i % len); } }
                    Mutation::Truncate(i) => b.truncate(i % len),
                    Mutation::InsertText(i, s) => {
                        let at = i % (b.len() + 1);
                        b.splice(at..at, s.bytes());
                    }
                }
            }
            check_pipeline(&b);
        }

        #[test]
        fn build_parse_round_trip(
            ip in any::<std::net::IpAddr>(),
            port in 1u16..,
            codec in prop::sample::select(vec![0u8, 8]),
            dtmf in prop::option::of(96u8..=127),
            dir in prop::sample::select(vec![
                Direction::SendRecv, Direction::SendOnly, Direction::RecvOnly, Direction::Inactive,
            ]),
            ptime in 1u32..200,
            sid in any::<u64>(),
            ver in any::<u64>(),
        ) {
            let s = build(SocketAddr::new(ip, port), codec, dtmf, dir, ptime, sid, ver);
            let sdp = parse(s.as_bytes()).unwrap();
            prop_assert_eq!(sdp.connection, Some(ip));
            let m = &sdp.media[0];
            prop_assert_eq!(m.port, port);
            prop_assert_eq!(m.direction, Some(dir));
            prop_assert_eq!(m.ptime, Some(ptime));
            let mut offered = vec![codec];
            offered.extend(dtmf);
            let n = read_answer(&sdp, &offered).unwrap();
            prop_assert_eq!(n.codec, codec);
            prop_assert_eq!(n.dtmf, dtmf);
            prop_assert_eq!(n.direction, dir.reverse());
            let expect = (!ip.is_unspecified()).then(|| SocketAddr::new(ip, port));
            prop_assert_eq!(n.remote, expect);
        }
    }
}
