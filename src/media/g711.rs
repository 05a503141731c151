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
    let sign = if s < 0 {
        s = -s;
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
