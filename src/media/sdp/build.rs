//! Writing SDP (RFC 4566/3264): ctid's offers and answers for one audio stream.

use super::*;

fn ip_type(ip: IpAddr) -> &'static str {
    match ip {
        IpAddr::V4(_) => "IP4",
        IpAddr::V6(_) => "IP6",
    }
}

fn static_name(pt: u8) -> Option<&'static str> {
    match pt {
        0 => Some("PCMU"),
        8 => Some("PCMA"),
        _ => None,
    }
}

fn push_line(out: &mut String, line: &str) {
    out.push_str(line);
    out.push_str("\r\n");
}

fn session_header(out: &mut String, ip: IpAddr, session_id: u64, version: u64) {
    let t = ip_type(ip);
    push_line(out, "v=0");
    push_line(out, &format!("o=ctid {session_id} {version} IN {t} {ip}"));
    push_line(out, "s=ctid");
    push_line(out, &format!("c=IN {t} {ip}"));
    push_line(out, "t=0 0");
}

fn audio_section(
    out: &mut String,
    port: u16,
    proto: &str,
    codec: (u8, Option<&str>),
    dtmf: Option<u8>,
    direction: Direction,
    ptime: u32,
) {
    let dtmf = dtmf.filter(|d| *d != codec.0);
    let mut m = format!("m=audio {port} {proto} {}", codec.0);
    if let Some(d) = dtmf {
        m.push_str(&format!(" {d}"));
    }
    push_line(out, &m);
    if let Some(name) = codec.1 {
        push_line(out, &format!("a=rtpmap:{} {name}/8000", codec.0));
    }
    if let Some(d) = dtmf {
        push_line(out, &format!("a=rtpmap:{d} telephone-event/8000"));
        push_line(out, &format!("a=fmtp:{d} 0-16"));
    }
    push_line(out, &format!("a=ptime:{ptime}"));
    push_line(out, &format!("a={}", direction.as_attr()));
}

/// Build ctid's SDP (media anchored at `local`), CRLF line ends. `codec` 0 or 8 gets its rtpmap
/// (PCMU/PCMA); for any other PT no rtpmap can be derived and none is written — ctid's own offers
/// use the static PTs. Use [`build_answer`] to answer an offer that numbered PCMU/PCMA dynamically.
pub fn build(
    local: SocketAddr,
    codec: u8,
    dtmf: Option<u8>,
    direction: Direction,
    ptime: u32,
    session_id: u64,
    version: u64,
) -> String {
    let mut out = String::with_capacity(256);
    session_header(&mut out, local.ip(), session_id, version);
    audio_section(
        &mut out,
        local.port(),
        "RTP/AVP",
        (codec, static_name(codec)),
        dtmf,
        direction,
        ptime,
    );
    out
}

/// ctid's offer to a seat: the G.711 laws in `laws` (static PTs 0/8, in ctid's order of
/// preference) plus telephone-event as `dtmf`, so a seat that only does the other law still
/// connects (ctid transcodes).
pub fn build_offer(
    local: SocketAddr,
    laws: &[u8],
    dtmf: Option<u8>,
    ptime: u32,
    session_id: u64,
    version: u64,
) -> String {
    let mut out = String::with_capacity(320);
    session_header(&mut out, local.ip(), session_id, version);
    let laws: Vec<u8> = laws
        .iter()
        .copied()
        .filter(|l| *l == 0 || *l == 8)
        .collect();
    let dtmf = dtmf.filter(|d| !laws.contains(d));
    let mut m = format!("m=audio {} RTP/AVP", local.port());
    for pt in laws.iter().copied().chain(dtmf) {
        m.push_str(&format!(" {pt}"));
    }
    push_line(&mut out, &m);
    for pt in &laws {
        if let Some(name) = static_name(*pt) {
            push_line(&mut out, &format!("a=rtpmap:{pt} {name}/8000"));
        }
    }
    if let Some(d) = dtmf {
        push_line(&mut out, &format!("a=rtpmap:{d} telephone-event/8000"));
        push_line(&mut out, &format!("a=fmtp:{d} 0-16"));
    }
    push_line(&mut out, &format!("a=ptime:{ptime}"));
    push_line(&mut out, "a=sendrecv");
    out
}

/// Build the answer to `offer` (RFC 3264 §6): the same number of m-lines in the same order; the
/// negotiated audio line (`n.index`) answered as in [`build`] (with the offer's profile and the
/// offer's rtpmap name for a dynamic codec PT), every other m-line rejected with port 0 (same
/// kind/proto, first format).
pub fn build_answer(
    offer: &Sdp,
    local: SocketAddr,
    n: &Negotiated,
    session_id: u64,
    version: u64,
) -> String {
    let mut out = String::with_capacity(256 + 32 * offer.media.len());
    session_header(&mut out, local.ip(), session_id, version);
    for (i, m) in offer.media.iter().enumerate() {
        if i == n.index {
            let name = static_name(n.codec).or_else(|| match m.codec_kind(n.codec) {
                Some(k) => static_name(k),
                None => None,
            });
            let proto = if m.is_plain_rtp() {
                m.proto.as_str()
            } else {
                "RTP/AVP"
            };
            audio_section(
                &mut out,
                local.port(),
                proto,
                (n.codec, name),
                n.dtmf,
                n.direction,
                n.ptime,
            );
        } else {
            let fmt = m.formats.first().map(String::as_str).unwrap_or("0");
            push_line(&mut out, &format!("m={} 0 {} {fmt}", m.kind, m.proto));
        }
    }
    out
}
