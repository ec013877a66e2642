//! ITU-T G.711 companding: µ-law (PCMU, RTP payload type 0) and A-law (PCMA, payload type 8).
//!
//! Owns: conversion between 16-bit linear PCM and the two 8-bit G.711 laws, and direct byte
//! transcoding between the laws (through 256-entry tables built at compile time).
//!
//! Must not know: RTP, SDP, sockets or calls. The SDP layer ([`super::sdp`]) carries codecs as
//! payload-type numbers; [`Codec::from_payload_type`] maps the two static ones onto this module.
//!
//! Linear samples are 16-bit two's complement. G.711 itself works on 14-bit (µ-law) and 13-bit
//! (A-law) values; the low bits of an `i16` are dropped on encoding and the decoded value is the
//! middle of the quantisation interval, scaled to 16 bits (µ-law decodes to ±32124 at most, A-law
//! to ±32256). Codes are the transmitted octets, i.e. with G.711's bit inversions already applied
//! (µ-law: all bits inverted; A-law: even bits inverted), so digital silence is 0xFF (µ-law) and
//! 0xD5 (A-law).
//!
//! µ-law has two zero codes: 0xFF (+0) and 0x7F (−0). Both decode to 0; the encoder produces 0xFF
//! for 0 and 0x7F only for the tiny negative inputs −1..=−4, as G.711 allows for the negative
//! zero interval. A-law has no zero code: its two smallest codes decode to ±8.

/// Bias added to the µ-law magnitude so that segment boundaries fall on powers of two.
const ULAW_BIAS: i32 = 0x84;

/// A G.711 law, as negotiated in SDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// µ-law, `PCMU/8000`, static payload type 0.
    Pcmu,
    /// A-law, `PCMA/8000`, static payload type 8.
    Pcma,
}

impl Codec {
    /// The static RTP payload type (RFC 3551): 0 for PCMU, 8 for PCMA.
    pub const fn payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }

    /// The codec with static payload type `pt` (0 or 8). A dynamic payload type that an offer
    /// mapped to `PCMU/8000` or `PCMA/8000` must be resolved through its rtpmap, not here.
    pub const fn from_payload_type(pt: u8) -> Option<Codec> {
        match pt {
            0 => Some(Codec::Pcmu),
            8 => Some(Codec::Pcma),
            _ => None,
        }
    }

    /// The encoding name used in `a=rtpmap` (`PCMU` / `PCMA`).
    pub const fn encoding_name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
        }
    }

    /// The code for digital silence: 0xFF (µ-law) or 0xD5 (A-law).
    pub const fn silence(self) -> u8 {
        match self {
            Codec::Pcmu => 0xFF,
            Codec::Pcma => 0xD5,
        }
    }

    /// Encode one linear sample.
    pub const fn encode(self, sample: i16) -> u8 {
        match self {
            Codec::Pcmu => ulaw_encode(sample),
            Codec::Pcma => alaw_encode(sample),
        }
    }

    /// Decode one code to a linear sample.
    pub const fn decode(self, code: u8) -> i16 {
        match self {
            Codec::Pcmu => ulaw_decode(code),
            Codec::Pcma => alaw_decode(code),
        }
    }
}

/// Index of the highest set bit of a positive `v` (0 for 1).
const fn top_bit(v: i32) -> i32 {
    31 - v.leading_zeros() as i32
}

/// Encode a linear sample as µ-law.
pub const fn ulaw_encode(sample: i16) -> u8 {
    let s = sample as i32;
    // Negative values use the one's complement magnitude (-1 -> 0), which keeps the code symmetric
    // around the two zero codes and makes -32768 representable without overflow.
    let (mask, biased) = if s < 0 {
        (0x7F, ULAW_BIAS - s - 1)
    } else {
        (0xFF, ULAW_BIAS + s)
    };
    // `biased` >= 0x84, so the segment is 0..=8; 8 means beyond the top segment: clip.
    let seg = top_bit(biased) - 7;
    let code = if seg >= 8 {
        0x7F
    } else {
        (seg << 4) | ((biased >> (seg + 3)) & 0x0F)
    };
    (code as u8) ^ mask
}

/// Decode a µ-law code. Both zero codes (0xFF and 0x7F) give 0.
pub const fn ulaw_decode(code: u8) -> i16 {
    let c = !code;
    let mantissa = (c & 0x0F) as i32;
    let seg = ((c & 0x70) >> 4) as i32;
    let t = ((mantissa << 3) + ULAW_BIAS) << seg;
    let v = if c & 0x80 != 0 {
        ULAW_BIAS - t
    } else {
        t - ULAW_BIAS
    };
    v as i16
}

/// Encode a linear sample as A-law.
pub const fn alaw_encode(sample: i16) -> u8 {
    let s = sample as i32;
    // Positive codes carry the sign bit set after the even-bit inversion (0x55).
    let (mask, mag) = if s >= 0 { (0xD5, s) } else { (0x55, -s - 1) };
    // Segment 0 and 1 share the step size; `| 0xFF` folds magnitudes below 256 into segment 0.
    let seg = top_bit(mag | 0xFF) - 7;
    let code = if seg >= 8 {
        0x7F
    } else {
        let shift = if seg == 0 { 4 } else { seg + 3 };
        (seg << 4) | ((mag >> shift) & 0x0F)
    };
    (code as u8) ^ mask
}

/// Decode an A-law code.
pub const fn alaw_decode(code: u8) -> i16 {
    let c = code ^ 0x55;
    let mantissa = ((c & 0x0F) as i32) << 4;
    let seg = ((c & 0x70) >> 4) as i32;
    let t = if seg == 0 {
        mantissa + 8
    } else {
        (mantissa + 0x108) << (seg - 1)
    };
    let v = if c & 0x80 != 0 { t } else { -t };
    v as i16
}

/// Encode `pcm` into `out` with `codec`. Converts `min(pcm.len(), out.len())` samples and returns
/// that count; the rest of `out` is left unchanged.
pub fn encode_into(codec: Codec, pcm: &[i16], out: &mut [u8]) -> usize {
    let n = pcm.len().min(out.len());
    for (o, s) in out.iter_mut().zip(pcm) {
        *o = codec.encode(*s);
    }
    n
}

/// Decode `codes` into `out` with `codec`. Converts `min(codes.len(), out.len())` samples and
/// returns that count; the rest of `out` is left unchanged.
pub fn decode_into(codec: Codec, codes: &[u8], out: &mut [i16]) -> usize {
    let n = codes.len().min(out.len());
    for (o, c) in out.iter_mut().zip(codes) {
        *o = codec.decode(*c);
    }
    n
}

const fn build_ulaw_to_alaw() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = alaw_encode(ulaw_decode(i as u8));
        i += 1;
    }
    t
}

const fn build_alaw_to_ulaw() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = ulaw_encode(alaw_decode(i as u8));
        i += 1;
    }
    t
}

static ULAW_TO_ALAW: [u8; 256] = build_ulaw_to_alaw();
static ALAW_TO_ULAW: [u8; 256] = build_alaw_to_ulaw();

/// The A-law code nearest to what the µ-law `code` decodes to.
pub fn ulaw_to_alaw(code: u8) -> u8 {
    ULAW_TO_ALAW[usize::from(code)]
}

/// The µ-law code nearest to what the A-law `code` decodes to.
pub fn alaw_to_ulaw(code: u8) -> u8 {
    ALAW_TO_ULAW[usize::from(code)]
}

/// Transcode a G.711 payload from `from` to `to` in place (a no-op when they are the same).
pub fn transcode_in_place(from: Codec, to: Codec, payload: &mut [u8]) {
    let table = match (from, to) {
        (Codec::Pcmu, Codec::Pcma) => &ULAW_TO_ALAW,
        (Codec::Pcma, Codec::Pcmu) => &ALAW_TO_ULAW,
        _ => return,
    };
    for b in payload {
        *b = table[usize::from(*b)];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Width of the quantisation interval a µ-law code belongs to (16-bit units).
    fn ulaw_step(code: u8) -> i32 {
        8 << ((!code & 0x70) >> 4)
    }

    /// Width of the quantisation interval an A-law code belongs to (16-bit units).
    fn alaw_step(code: u8) -> i32 {
        let seg = ((code ^ 0x55) & 0x70) >> 4;
        16 << seg.saturating_sub(1)
    }

    #[test]
    fn payload_types() {
        assert_eq!(Codec::Pcmu.payload_type(), 0);
        assert_eq!(Codec::Pcma.payload_type(), 8);
        for c in [Codec::Pcmu, Codec::Pcma] {
            assert_eq!(Codec::from_payload_type(c.payload_type()), Some(c));
        }
        assert_eq!(Codec::from_payload_type(18), None);
        assert_eq!(Codec::from_payload_type(101), None);
        assert_eq!(Codec::Pcmu.encoding_name(), "PCMU");
        assert_eq!(Codec::Pcma.encoding_name(), "PCMA");
    }

    #[test]
    fn ulaw_reference_values() {
        assert_eq!(ulaw_encode(0), 0xFF);
        assert_eq!(Codec::Pcmu.silence(), 0xFF);
        assert_eq!(ulaw_decode(0xFF), 0);
        assert_eq!(ulaw_decode(0x7F), 0);
        // The negative-zero code covers -4..=-1, positive zero 0..=3.
        assert_eq!(ulaw_encode(-1), 0x7F);
        assert_eq!(ulaw_encode(-4), 0x7F);
        assert_eq!(ulaw_encode(-5), 0x7E);
        assert_eq!(ulaw_encode(3), 0xFF);
        assert_eq!(ulaw_encode(4), 0xFE);
        assert_eq!(ulaw_encode(i16::MAX), 0x80);
        assert_eq!(ulaw_encode(i16::MIN), 0x00);
        assert_eq!(ulaw_decode(0x80), 32124);
        assert_eq!(ulaw_decode(0x00), -32124);
        assert_eq!(ulaw_decode(0xFE), 8);
        assert_eq!(ulaw_decode(0x7E), -8);
        // Segment boundaries of the 14-bit law (×4 for 16 bits): 31, 95, 223, … in G.711 Table 2a.
        assert_eq!(ulaw_encode(1000), 0xCE);
        assert_eq!(ulaw_decode(0xCE), 988);
        assert_eq!(ulaw_encode(-1000), 0x4E);
    }

    #[test]
    fn alaw_reference_values() {
        assert_eq!(alaw_encode(0), 0xD5);
        assert_eq!(Codec::Pcma.silence(), 0xD5);
        assert_eq!(alaw_decode(0xD5), 8);
        assert_eq!(alaw_decode(0x55), -8);
        assert_eq!(alaw_encode(-1), 0x55);
        assert_eq!(alaw_encode(i16::MAX), 0xAA);
        assert_eq!(alaw_encode(i16::MIN), 0x2A);
        assert_eq!(alaw_decode(0xAA), 32256);
        assert_eq!(alaw_decode(0x2A), -32256);
        assert_eq!(alaw_encode(1000), 0xFA);
        assert_eq!(alaw_decode(0xFA), 1008);
        assert_eq!(alaw_encode(-1000), 0x7A);
    }

    #[test]
    fn ulaw_round_trip_every_code() {
        for code in 0..=255u8 {
            let back = ulaw_encode(ulaw_decode(code));
            if code == 0x7F {
                // Negative zero decodes to 0, which G.711 encodes as positive zero.
                assert_eq!(back, 0xFF);
            } else {
                assert_eq!(back, code, "code {code:#04x}");
            }
        }
    }

    #[test]
    fn alaw_round_trip_every_code() {
        for code in 0..=255u8 {
            assert_eq!(alaw_encode(alaw_decode(code)), code, "code {code:#04x}");
        }
    }

    #[test]
    fn encoding_is_monotonic_and_close() {
        for codec in [Codec::Pcmu, Codec::Pcma] {
            let mut prev = i32::MIN;
            for s in i16::MIN..=i16::MAX {
                let code = codec.encode(s);
                let d = i32::from(codec.decode(code));
                assert!(d >= prev, "{codec:?}: {s} decodes to {d} < {prev}");
                prev = d;
                // Inside the range the decoded value is within one step of the input.
                let step = match codec {
                    Codec::Pcmu => ulaw_step(code),
                    Codec::Pcma => alaw_step(code),
                };
                let limit = match codec {
                    Codec::Pcmu => 32124,
                    Codec::Pcma => 32256,
                };
                if i32::from(s).abs() <= limit {
                    assert!(
                        (d - i32::from(s)).abs() <= step,
                        "{codec:?}: {s} -> {code:#04x} -> {d}"
                    );
                }
            }
        }
    }

    #[test]
    fn decoding_is_odd_symmetric() {
        for code in 0..=0x7Fu8 {
            assert_eq!(ulaw_decode(code), -ulaw_decode(code | 0x80));
            assert_eq!(alaw_decode(code), -alaw_decode(code | 0x80));
        }
    }

    #[test]
    fn transcoding_tables_match_linear_path() {
        for code in 0..=255u8 {
            assert_eq!(ulaw_to_alaw(code), alaw_encode(ulaw_decode(code)));
            assert_eq!(alaw_to_ulaw(code), ulaw_encode(alaw_decode(code)));
        }
    }

    #[test]
    fn ulaw_alaw_ulaw_within_one_step() {
        for code in 0..=255u8 {
            let back = alaw_to_ulaw(ulaw_to_alaw(code));
            let (a, b) = (i32::from(ulaw_decode(code)), i32::from(ulaw_decode(back)));
            assert!(
                (a - b).abs() <= ulaw_step(code),
                "µ {code:#04x} ({a}) -> µ {back:#04x} ({b})"
            );
        }
    }

    #[test]
    fn alaw_ulaw_alaw_within_one_step() {
        // Just above a µ-law segment boundary µ-law is coarser than A-law (e.g. A-law -8064 sits in
        // a 256-wide A-law interval but a 512-wide µ-law one), so the bound is the coarser step of
        // the two codes the value passed through.
        for code in 0..=255u8 {
            let mid = alaw_to_ulaw(code);
            let back = ulaw_to_alaw(mid);
            let (a, b) = (i32::from(alaw_decode(code)), i32::from(alaw_decode(back)));
            let step = alaw_step(code).max(ulaw_step(mid));
            assert!(
                (a - b).abs() <= step,
                "A {code:#04x} ({a}) -> µ {mid:#04x} -> A {back:#04x} ({b})"
            );
        }
    }

    #[test]
    fn slice_helpers() {
        let pcm = [0i16, 1000, -1000, i16::MAX, i16::MIN];
        let mut codes = [0u8; 5];
        assert_eq!(encode_into(Codec::Pcmu, &pcm, &mut codes), 5);
        assert_eq!(codes, [0xFF, 0xCE, 0x4E, 0x80, 0x00]);
        let mut back = [0i16; 5];
        assert_eq!(decode_into(Codec::Pcmu, &codes, &mut back), 5);
        assert_eq!(back, [0, 988, -988, 32124, -32124]);

        assert_eq!(encode_into(Codec::Pcma, &pcm, &mut codes), 5);
        assert_eq!(codes, [0xD5, 0xFA, 0x7A, 0xAA, 0x2A]);

        // Mismatched lengths: the shorter one wins, the rest is untouched.
        let mut short = [0x11u8; 3];
        assert_eq!(encode_into(Codec::Pcma, &pcm, &mut short), 3);
        assert_eq!(short, [0xD5, 0xFA, 0x7A]);
        let mut long = [7i16; 4];
        assert_eq!(decode_into(Codec::Pcma, &[0xD5, 0x55], &mut long), 2);
        assert_eq!(long, [8, -8, 7, 7]);
    }

    #[test]
    fn transcode_in_place_both_ways() {
        let pcm: Vec<i16> = (-40..40).map(|i| i * 800).collect();
        let mut ulaw = vec![0u8; pcm.len()];
        encode_into(Codec::Pcmu, &pcm, &mut ulaw);
        let mut buf = ulaw.clone();
        transcode_in_place(Codec::Pcmu, Codec::Pcmu, &mut buf);
        assert_eq!(buf, ulaw);
        transcode_in_place(Codec::Pcmu, Codec::Pcma, &mut buf);
        let expect: Vec<u8> = ulaw.iter().map(|c| ulaw_to_alaw(*c)).collect();
        assert_eq!(buf, expect);
        transcode_in_place(Codec::Pcma, Codec::Pcmu, &mut buf);
        for ((orig, back), s) in ulaw.iter().zip(&buf).zip(&pcm) {
            let d = i32::from(ulaw_decode(*back)) - i32::from(ulaw_decode(*orig));
            assert!(d.abs() <= ulaw_step(*orig), "{s}");
        }
    }
}
