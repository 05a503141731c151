//! G.711 A-law and mu-law, written from the ITU-T G.711 segment rules.
//!
//! Decoding uses 256-entry tables built at compile time; encoding works on the
//! 13/14-bit magnitude directly (a handful of instructions, no 64K table to
//! pollute the cache on the media path).

/// The two G.711 companding laws, by their RTP static payload types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Law {
    /// PCMU, payload type 0.
    Ulaw,
    /// PCMA, payload type 8.
    Alaw,
}

impl Law {
    pub fn payload_type(self) -> u8 {
        match self {
            Law::Ulaw => 0,
            Law::Alaw => 8,
        }
    }
    pub fn encode(self, sample: i16) -> u8 {
        match self {
            Law::Ulaw => linear_to_ulaw(sample),
            Law::Alaw => linear_to_alaw(sample),
        }
    }
    pub fn decode(self, code: u8) -> i16 {
        match self {
            Law::Ulaw => ulaw_to_linear(code),
            Law::Alaw => alaw_to_linear(code),
        }
    }
    /// The code for digital silence, used for comfort padding between prompts.
    pub fn silence(self) -> u8 {
        self.encode(0)
    }
}

const ULAW_BIAS: i32 = 0x84;
const ULAW_CLIP: i32 = 32635;

pub fn linear_to_ulaw(sample: i16) -> u8 {
    let mut s = sample as i32;
    // One's complement for negatives, as in ITU-T G.191: the quantiser is then
    // symmetric about -0.5 and bit-exact with the ITU reference (plain -s moves
    // 127 negative decision points by one code).
    let sign = if s < 0 {
        s = -s - 1;
        0x80
    } else {
        0
    };
    if s > ULAW_CLIP {
        s = ULAW_CLIP;
    }
    s += ULAW_BIAS;
    // Segment = position of the highest set bit above bit 7.
    let exponent = (31 - (s as u32).leading_zeros()) as i32 - 7;
    let mantissa = (s >> (exponent + 3)) & 0x0F;
    !(sign | (exponent << 4) | mantissa) as u8
}

pub fn linear_to_alaw(sample: i16) -> u8 {
    let mut s = sample as i32;
    let sign = if s >= 0 {
        0xD5 // sign bit set for positive, then even bits inverted (0x55)
    } else {
        s = -s - 1;
        0x55
    };
    if s > 32767 {
        s = 32767;
    }
    let code = if s < 256 {
        s >> 4
    } else {
        let exponent = (31 - (s as u32).leading_zeros()) as i32 - 7;
        (exponent << 4) | ((s >> (exponent + 3)) & 0x0F)
    };
    (code as u8) ^ sign
}

const fn ulaw_decode(code: u8) -> i16 {
    let c = !code;
    let sign = c & 0x80;
    let exponent = ((c >> 4) & 0x07) as i32;
    let mantissa = (c & 0x0F) as i32;
    let magnitude = (((mantissa << 3) + ULAW_BIAS) << exponent) - ULAW_BIAS;
    if sign != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

const fn alaw_decode(code: u8) -> i16 {
    let c = code ^ 0x55;
    let sign = c & 0x80;
    let exponent = ((c >> 4) & 0x07) as i32;
    let mantissa = (c & 0x0F) as i32;
    let magnitude = if exponent == 0 {
        (mantissa << 4) + 8
    } else {
        ((mantissa << 4) + 0x108) << (exponent - 1)
    };
    if sign != 0 {
        magnitude as i16
    } else {
        -magnitude as i16
    }
}

const fn build_table(alaw: bool) -> [i16; 256] {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = if alaw {
            alaw_decode(i as u8)
        } else {
            ulaw_decode(i as u8)
        };
        i += 1;
    }
    t
}

static ULAW_TABLE: [i16; 256] = build_table(false);
static ALAW_TABLE: [i16; 256] = build_table(true);

#[inline]
pub fn ulaw_to_linear(code: u8) -> i16 {
    ULAW_TABLE[code as usize]
}

#[inline]
pub fn alaw_to_linear(code: u8) -> i16 {
    ALAW_TABLE[code as usize]
}

/// Encodes a whole buffer (prompt pre-encoding, not the per-packet path).
pub fn encode_all(law: Law, pcm: &[i16]) -> Vec<u8> {
    pcm.iter().map(|&s| law.encode(s)).collect()
}

/// Decodes into a caller-provided buffer so the receive path allocates nothing.
pub fn decode_into(law: Law, codes: &[u8], out: &mut [i16]) {
    let table = match law {
        Law::Ulaw => &ULAW_TABLE,
        Law::Alaw => &ALAW_TABLE,
    };
    for (o, &c) in out.iter_mut().zip(codes) {
        *o = table[c as usize];
    }
}

#[cfg(test)]
mod tests {
    //! The references below are written independently of the code above, from the
    //! G.711 segment end points and the ITU-T G.191 (STL) rules for mapping 16-bit
    //! two's complement samples: negative samples use the one's complement
    //! magnitude, so the quantiser is symmetric about -0.5 and bit-exact with the
    //! ITU reference software.
    use super::*;

    /// mu-law on the 14-bit magnitude scale: segment e spans
    /// [2^(e+5) - 33, 2^(e+6) - 33) with 16 intervals of 2^(e+1).
    fn ref_ulaw_encode(x: i16) -> u8 {
        let v = if x < 0 {
            (!x as i32) >> 2
        } else {
            (x as i32) >> 2
        };
        let v = v.min(8158);
        let ends = [31, 95, 223, 479, 991, 2015, 4063, 8159];
        let seg = ends.iter().position(|&end| v < end).unwrap() as i32;
        let start = (32 << seg) - 33;
        let step = 2 << seg;
        let mant = (v - start) / step;
        assert!((0..16).contains(&mant));
        // Segment and mantissa are transmitted inverted; sign bit 1 = positive.
        let code = !((seg << 4) | mant) as u8 & 0x7F;
        if x >= 0 {
            code | 0x80
        } else {
            code
        }
    }

    /// A-law on the 16-bit scale: segments end at 256 << e; the first two share a step of 16.
    fn ref_alaw_encode(x: i16) -> u8 {
        let v = if x < 0 { !x as i32 } else { x as i32 };
        let seg = (0..8).find(|&e| v < (256 << e)).unwrap();
        let start = if seg == 0 { 0 } else { 128 << seg };
        let step = if seg == 0 { 16 } else { 8 << seg };
        let mant = (v - start) / step;
        assert!((0..16).contains(&mant));
        let code = ((seg << 4) | mant) as u8;
        let signed = if x >= 0 { code | 0x80 } else { code };
        signed ^ 0x55
    }

    /// Decoder output = middle of the code's quantisation interval (G.711 tables 1 and 2).
    fn ref_ulaw_decode(code: u8) -> i32 {
        let c = !code;
        let seg = ((c >> 4) & 7) as i32;
        let mant = (c & 15) as i32;
        // 14-bit scale, times 4 for the 16-bit left-justified value.
        let start = (32 << seg) - 33;
        let step = 2 << seg;
        let mag14x2 = 2 * start + step * (2 * mant + 1); // twice the midpoint, stays integral
        let mag = mag14x2 * 2;
        if c & 0x80 != 0 {
            -mag
        } else {
            mag
        }
    }

    fn ref_alaw_decode(code: u8) -> i32 {
        let c = code ^ 0x55;
        let seg = ((c >> 4) & 7) as i32;
        let mant = (c & 15) as i32;
        let start = if seg == 0 { 0 } else { 128 << seg };
        let step = if seg == 0 { 16 } else { 8 << seg };
        let mag = start + step * mant + step / 2;
        if c & 0x80 != 0 {
            mag
        } else {
            -mag
        }
    }

    fn ulaw_step(code: u8) -> i32 {
        8 << ((!code >> 4) & 7)
    }

    fn alaw_step(code: u8) -> i32 {
        let seg = ((code ^ 0x55) >> 4) & 7;
        if seg == 0 {
            16
        } else {
            8 << seg
        }
    }

    #[test]
    fn ulaw_encoder_matches_reference_for_every_sample() {
        let mut bad = Vec::new();
        for x in i16::MIN..=i16::MAX {
            if linear_to_ulaw(x) != ref_ulaw_encode(x) {
                bad.push(x);
            }
        }
        assert!(
            bad.is_empty(),
            "{} inputs differ, first {:?}",
            bad.len(),
            &bad[..bad.len().min(8)]
        );
    }

    #[test]
    fn alaw_encoder_matches_reference_for_every_sample() {
        let mut bad = Vec::new();
        for x in i16::MIN..=i16::MAX {
            if linear_to_alaw(x) != ref_alaw_encode(x) {
                bad.push(x);
            }
        }
        assert!(
            bad.is_empty(),
            "{} inputs differ, first {:?}",
            bad.len(),
            &bad[..bad.len().min(8)]
        );
    }

    #[test]
    fn every_code_decodes_to_the_itu_value() {
        for code in 0..=255u8 {
            assert_eq!(
                ulaw_to_linear(code) as i32,
                ref_ulaw_decode(code),
                "ulaw {code:#04x}"
            );
            assert_eq!(
                alaw_to_linear(code) as i32,
                ref_alaw_decode(code),
                "alaw {code:#04x}"
            );
        }
        // Published end points, G.711 tables 1a and 2a.
        assert_eq!(ulaw_to_linear(0x00), -32124);
        assert_eq!(ulaw_to_linear(0x80), 32124);
        assert_eq!(ulaw_to_linear(0x7F), 0);
        assert_eq!(ulaw_to_linear(0xFF), 0);
        assert_eq!(ulaw_to_linear(0xFE), 8);
        assert_eq!(alaw_to_linear(0xD5), 8);
        assert_eq!(alaw_to_linear(0x55), -8);
        assert_eq!(alaw_to_linear(0xAA), 32256);
        assert_eq!(alaw_to_linear(0x2A), -32256);
        assert_eq!(alaw_to_linear(0x80), 5504);
    }

    #[test]
    fn decode_tables_are_monotonic_per_sign() {
        // Larger magnitude code (after inversion) must never decode smaller.
        for law in [Law::Ulaw, Law::Alaw] {
            let mut prev = i32::MIN;
            let mut xs: Vec<i16> = (0..=255u8).map(|c| law.decode(c)).collect();
            xs.sort();
            xs.dedup();
            // ulaw has +0 and -0, alaw has none: 255 or 256 distinct levels.
            assert!(xs.len() >= 255, "{law:?} has {} levels", xs.len());
            for x in xs {
                assert!(x as i32 > prev);
                prev = x as i32;
            }
        }
    }

    #[test]
    fn round_trip_error_is_at_most_half_a_step() {
        for x in i16::MIN..=i16::MAX {
            let u = linear_to_ulaw(x);
            let err = (ulaw_to_linear(u) as i32 - x as i32).abs();
            // Above the last decision level (8159 on the 14-bit scale) mu-law clips.
            let clip = (x as i32).abs() > 32636;
            if clip {
                assert_eq!(ulaw_to_linear(u).unsigned_abs(), 32124);
            } else {
                assert!(err <= ulaw_step(u) / 2, "ulaw x={x} code={u:#x} err={err}");
            }
            let a = linear_to_alaw(x);
            let err = (alaw_to_linear(a) as i32 - x as i32).abs();
            assert!(err <= alaw_step(a) / 2, "alaw x={x} code={a:#x} err={err}");
        }
    }

    #[test]
    fn decoded_values_re_encode_to_the_same_code() {
        for code in 0..=255u8 {
            let u = ulaw_to_linear(code);
            // 0x7F (-0) decodes to 0, which encodes as +0.
            let expect = if code == 0x7F { 0xFF } else { code };
            assert_eq!(linear_to_ulaw(u), expect, "ulaw {code:#x}");
            assert_eq!(linear_to_alaw(alaw_to_linear(code)), code, "alaw {code:#x}");
        }
    }

    #[test]
    fn silence_codes() {
        assert_eq!(Law::Ulaw.silence(), 0xFF);
        assert_eq!(Law::Alaw.silence(), 0xD5);
        // Low-level noise around zero must stay on the quietest codes.
        for x in -3..=3i16 {
            assert!(matches!(linear_to_ulaw(x), 0xFF | 0x7F), "ulaw {x}");
        }
        for x in -16..=15i16 {
            assert!(matches!(linear_to_alaw(x), 0xD5 | 0x55), "alaw {x}");
        }
    }

    #[test]
    fn sign_symmetry_under_ones_complement() {
        // G.191 maps x and !x (= -x-1) to the same magnitude with opposite sign.
        for x in 0..=i16::MAX {
            assert_eq!(linear_to_ulaw(!x), linear_to_ulaw(x) & 0x7F, "ulaw {x}");
            assert_eq!(linear_to_alaw(!x), linear_to_alaw(x) & 0x7F, "alaw {x}");
        }
    }

    #[test]
    fn buffer_helpers_agree_with_per_sample_calls() {
        let pcm: Vec<i16> = (0..2000)
            .map(|i| ((i * 7919) % 65536 - 32768) as i16)
            .collect();
        for law in [Law::Ulaw, Law::Alaw] {
            let enc = encode_all(law, &pcm);
            assert_eq!(enc.len(), pcm.len());
            let mut dec = vec![0i16; enc.len()];
            decode_into(law, &enc, &mut dec);
            for ((&x, &c), &d) in pcm.iter().zip(&enc).zip(&dec) {
                assert_eq!(c, law.encode(x));
                assert_eq!(d, law.decode(c));
            }
        }
        assert_eq!(Law::Ulaw.payload_type(), 0);
        assert_eq!(Law::Alaw.payload_type(), 8);
    }
}
