//! Compound RTCP packets (RFC 3550 §6): building SR/RR + SDES CNAME (+ BYE) and parsing what a
//! peer sends ([`parse_compound`]). Pure; nothing here panics on any input bytes.

use super::{
    ntp_time, ReportBlock, MAX_BLOCKS, PT_BYE, PT_RR, PT_SDES, PT_SR, SDES_CNAME, SDES_END,
};
use std::time::SystemTime;

/// The sender information of an SR (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SenderInfo {
    /// 64-bit NTP timestamp ([`ntp_time`]).
    pub ntp: u64,
    /// The same instant in RTP timestamp units of the stream we send.
    pub rtp_ts: u32,
    /// RTP packets sent since the stream started (wraps).
    pub packets: u32,
    /// RTP payload octets sent (wraps).
    pub octets: u32,
}

impl SenderInfo {
    /// Sender information at wall-clock time `now`.
    pub fn new(now: SystemTime, rtp_ts: u32, packets: u32, octets: u32) -> SenderInfo {
        SenderInfo {
            ntp: ntp_time(now),
            rtp_ts,
            packets,
            octets,
        }
    }
}

/// Start a packet: V=2, no padding, `count`, `pt`; the length is patched by [`finish_packet`].
fn begin_packet(out: &mut Vec<u8>, count: usize, pt: u8) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0x80 | (count.min(MAX_BLOCKS) as u8), pt, 0, 0]);
    start
}

/// Pad the packet begun at `start` to a 32-bit boundary with zero bytes and write its length.
fn finish_packet(out: &mut Vec<u8>, start: usize) {
    while !(out.len() - start).is_multiple_of(4) {
        out.push(0);
    }
    let words = ((out.len() - start) / 4 - 1).min(usize::from(u16::MAX)) as u16;
    if let Some(len) = out.get_mut(start + 2..start + 4) {
        len.copy_from_slice(&words.to_be_bytes());
    }
}

/// A compound RTCP packet from `ssrc`: an SR if `sender` is given (we sent RTP since the last
/// report), else an RR, with `blocks` (at most 31 used), followed by an SDES with our CNAME
/// (truncated to 255 bytes at a character boundary).
pub fn build_compound(
    ssrc: u32,
    sender: Option<&SenderInfo>,
    blocks: &[ReportBlock],
    cname: &str,
) -> Vec<u8> {
    let blocks = &blocks[..blocks.len().min(MAX_BLOCKS)];
    let mut out = Vec::with_capacity(28 + 24 * blocks.len() + 12 + cname.len().min(255));
    let pt = if sender.is_some() { PT_SR } else { PT_RR };
    let start = begin_packet(&mut out, blocks.len(), pt);
    out.extend_from_slice(&ssrc.to_be_bytes());
    if let Some(s) = sender {
        out.extend_from_slice(&s.ntp.to_be_bytes());
        out.extend_from_slice(&s.rtp_ts.to_be_bytes());
        out.extend_from_slice(&s.packets.to_be_bytes());
        out.extend_from_slice(&s.octets.to_be_bytes());
    }
    for b in blocks {
        b.write(&mut out);
    }
    finish_packet(&mut out, start);

    let mut end = cname.len().min(255);
    while !cname.is_char_boundary(end) {
        end -= 1;
    }
    let cname = &cname.as_bytes()[..end];
    let start = begin_packet(&mut out, 1, PT_SDES);
    out.extend_from_slice(&ssrc.to_be_bytes());
    out.extend_from_slice(&[SDES_CNAME, cname.len() as u8]);
    out.extend_from_slice(cname);
    out.push(SDES_END); // the chunk ends with at least one null octet, then pads with more
    finish_packet(&mut out, start);
    out
}

/// Append a BYE for `ssrc` (with an optional reason, truncated to 255 bytes) to a compound packet
/// built by [`build_compound`].
pub fn append_bye(out: &mut Vec<u8>, ssrc: u32, reason: Option<&str>) {
    let start = begin_packet(out, 1, PT_BYE);
    out.extend_from_slice(&ssrc.to_be_bytes());
    if let Some(reason) = reason {
        let mut end = reason.len().min(255);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        out.push(end as u8);
        out.extend_from_slice(&reason.as_bytes()[..end]);
    }
    finish_packet(out, start);
}

/// Why an RTCP packet was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtcpError {
    #[error("RTCP packet truncated")]
    Truncated,
    #[error("RTCP version is not 2")]
    BadVersion,
    #[error("not an RTCP packet type: {0}")]
    BadType(u8),
    #[error("malformed RTCP {0}")]
    Malformed(&'static str),
}

/// What one compound RTCP packet told us.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RtcpInfo {
    /// SSRC of the first SR or RR (the sender of the compound).
    pub sender_ssrc: Option<u32>,
    /// The sender information of the first SR.
    pub sender_info: Option<SenderInfo>,
    /// Every report block of every SR/RR, in order.
    pub blocks: Vec<ReportBlock>,
    /// The first CNAME found (lossy UTF-8).
    pub cname: Option<String>,
    /// SSRCs that said BYE.
    pub bye: Vec<u32>,
}

impl RtcpInfo {
    /// The peer's report about our stream `ssrc`: fraction lost, cumulative lost, jitter.
    pub fn report_about(&self, ssrc: u32) -> Option<&ReportBlock> {
        self.blocks.iter().find(|b| b.ssrc == ssrc)
    }
}

fn be32(b: &[u8], at: usize) -> Result<u32, RtcpError> {
    let w = b.get(at..at + 4).ok_or(RtcpError::Truncated)?;
    Ok(u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
}

/// Parse a compound RTCP packet (RFC 3550 §6.1; appendix A.2 validity checks: version 2, lengths
/// adding up to the datagram, padding only in the last packet). SR, RR, SDES and BYE are read; APP
/// and other types (feedback, XR…) are skipped. Lenient where RFC 5506 (reduced-size RTCP) is: the
/// first packet need not be an SR or RR.
pub fn parse_compound(buf: &[u8]) -> Result<RtcpInfo, RtcpError> {
    if buf.len() < 4 {
        return Err(RtcpError::Truncated);
    }
    let mut info = RtcpInfo::default();
    let mut rest = buf;
    while !rest.is_empty() {
        let [b0, pt, l0, l1, ..] = *rest else {
            return Err(RtcpError::Truncated);
        };
        if b0 >> 6 != 2 {
            return Err(RtcpError::BadVersion);
        }
        if !(192..=223).contains(&pt) {
            return Err(RtcpError::BadType(pt));
        }
        let len = (usize::from(u16::from_be_bytes([l0, l1])) + 1) * 4;
        let packet = rest.get(..len).ok_or(RtcpError::Truncated)?;
        rest = &rest[len..];
        let mut body_end = len;
        if b0 & 0x20 != 0 {
            let pad = usize::from(packet[len - 1]);
            if !rest.is_empty() || pad == 0 || pad > len - 4 {
                return Err(RtcpError::Malformed("padding"));
            }
            body_end -= pad;
        }
        let packet = &packet[..body_end];
        let count = usize::from(b0 & 0x1f);
        match pt {
            PT_SR | PT_RR => parse_report(packet, pt, count, &mut info)?,
            PT_SDES => parse_sdes(packet, count, &mut info)?,
            PT_BYE => {
                for i in 0..count {
                    let ssrc = be32(packet, 4 + 4 * i).map_err(|_| RtcpError::Malformed("BYE"))?;
                    info.bye.push(ssrc);
                }
            }
            _ => {} // APP, RTPFB/PSFB, XR, …
        }
    }
    Ok(info)
}

fn parse_report(p: &[u8], pt: u8, count: usize, info: &mut RtcpInfo) -> Result<(), RtcpError> {
    let what = if pt == PT_SR { "SR" } else { "RR" };
    let ssrc = be32(p, 4).map_err(|_| RtcpError::Malformed(what))?;
    let mut at = 8;
    if pt == PT_SR {
        let hi = be32(p, 8).map_err(|_| RtcpError::Malformed(what))?;
        let lo = be32(p, 12).map_err(|_| RtcpError::Malformed(what))?;
        let sender = SenderInfo {
            ntp: (u64::from(hi) << 32) | u64::from(lo),
            rtp_ts: be32(p, 16).map_err(|_| RtcpError::Malformed(what))?,
            packets: be32(p, 20).map_err(|_| RtcpError::Malformed(what))?,
            octets: be32(p, 24).map_err(|_| RtcpError::Malformed(what))?,
        };
        if info.sender_ssrc.is_none() {
            info.sender_info = Some(sender);
        }
        at = 28;
    }
    if p.len() < at + 24 * count {
        return Err(RtcpError::Malformed(what));
    }
    info.sender_ssrc.get_or_insert(ssrc);
    for i in 0..count {
        let block = p
            .get(at + 24 * i..)
            .and_then(ReportBlock::read)
            .ok_or(RtcpError::Malformed(what))?;
        info.blocks.push(block);
    }
    Ok(())
}

fn parse_sdes(p: &[u8], count: usize, info: &mut RtcpInfo) -> Result<(), RtcpError> {
    let bad = RtcpError::Malformed("SDES");
    let mut at = 4;
    for _ in 0..count {
        be32(p, at).map_err(|_| bad)?;
        at += 4;
        loop {
            let item = *p.get(at).ok_or(bad)?;
            if item == SDES_END {
                at += 1;
                at = at.div_ceil(4) * 4; // chunks end on a 32-bit boundary
                break;
            }
            let len = usize::from(*p.get(at + 1).ok_or(bad)?);
            let text = p.get(at + 2..at + 2 + len).ok_or(bad)?;
            if item == SDES_CNAME && info.cname.is_none() {
                info.cname = Some(String::from_utf8_lossy(text).into_owned());
            }
            at += 2 + len;
        }
    }
    if at > p.len() {
        return Err(bad);
    }
    Ok(())
}
