//! Independent G.711 reference (ITU-T G.711 / Sun g711.c) so the tests do not check the
//! server's codec against itself.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Law {
    Ulaw,
    Alaw,
}

impl Law {
    pub fn payload_type(self) -> u8 {
        match self {
            Law::Ulaw => 0,
            Law::Alaw => 8,
        }
    }
    pub fn from_pt(pt: u8) -> Option<Law> {
        match pt {
            0 => Some(Law::Ulaw),
            8 => Some(Law::Alaw),
            _ => None,
        }
    }
    pub fn encode(self, s: i16) -> u8 {
        match self {
            Law::Ulaw => ulaw_encode(s),
            Law::Alaw => alaw_encode(s),
        }
    }
    pub fn decode(self, b: u8) -> i16 {
        match self {
            Law::Ulaw => ulaw_decode(b),
            Law::Alaw => alaw_decode(b),
        }
    }
    pub fn encode_all(self, pcm: &[i16]) -> Vec<u8> {
        pcm.iter().map(|&s| self.encode(s)).collect()
    }
    pub fn decode_all(self, bytes: &[u8]) -> Vec<i16> {
        bytes.iter().map(|&b| self.decode(b)).collect()
    }
}

const A_END: [i32; 8] = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF];
const U_END: [i32; 8] = [0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF];

fn segment(v: i32, table: &[i32; 8]) -> usize {
    table.iter().position(|&e| v <= e).unwrap_or(8)
}

pub fn alaw_encode(pcm: i16) -> u8 {
    let mut v = (pcm as i32) >> 3;
    let mask = if v >= 0 {
        0xD5
    } else {
        v = -v - 1;
        0x55
    };
    let s = segment(v, &A_END);
    if s >= 8 {
        return (0x7F ^ mask) as u8;
    }
    let low = if s < 2 {
        (v >> 1) & 0xF
    } else {
        (v >> s) & 0xF
    };
    ((((s as i32) << 4) | low) ^ mask) as u8
}

pub fn alaw_decode(a: u8) -> i16 {
    let a = (a ^ 0x55) as i32;
    let mut t = (a & 0xF) << 4;
    let s = (a & 0x70) >> 4;
    match s {
        0 => t += 8,
        1 => t += 0x108,
        _ => {
            t += 0x108;
            t <<= s - 1;
        }
    }
    (if a & 0x80 != 0 { t } else { -t }) as i16
}

pub fn ulaw_encode(pcm: i16) -> u8 {
    let mut v = (pcm as i32) >> 2;
    let mask = if v < 0 {
        v = -v;
        0x7F
    } else {
        0xFF
    };
    v = v.min(8159) + (0x84 >> 2);
    let s = segment(v, &U_END);
    if s >= 8 {
        return (0x7F ^ mask) as u8;
    }
    ((((s as i32) << 4) | ((v >> (s + 1)) & 0xF)) ^ mask) as u8
}

pub fn ulaw_decode(u: u8) -> i16 {
    let u = !u as i32;
    let mut t = ((u & 0xF) << 3) + 0x84;
    t <<= (u & 0x70) >> 4;
    (if u & 0x80 != 0 { 0x84 - t } else { t - 0x84 }) as i16
}
