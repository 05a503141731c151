//! Writing 8 kHz mono 16-bit WAV files (kept utterances).

use std::io::Write;
use std::path::Path;

pub fn write_wav_8k(path: &Path, pcm: &[i16]) -> std::io::Result<()> {
    let data_len = (pcm.len() * 2) as u32;
    let mut out = Vec::with_capacity(44 + pcm.len() * 2);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&8000u32.to_le_bytes());
    out.extend_from_slice(&16000u32.to_le_bytes()); // bytes per second
    out.extend_from_slice(&2u16.to_le_bytes()); // block align
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for s in pcm {
        out.extend_from_slice(&s.to_le_bytes());
    }
    let mut f = std::fs::File::create(path)?;
    f.write_all(&out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_utterance_is_a_standard_8k_wav_with_the_samples() {
        let dir = std::env::temp_dir().join(format!("answerline-wav-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("u.wav");
        let pcm: Vec<i16> = (0..800).map(|i| ((i % 40) as i16 - 20) * 500).collect();
        write_wav_8k(&path, &pcm).unwrap();
        let b = std::fs::read(&path).unwrap();
        assert_eq!(&b[..4], b"RIFF");
        assert_eq!(&b[8..16], b"WAVEfmt ");
        assert_eq!(u32::from_le_bytes(b[24..28].try_into().unwrap()), 8000);
        assert_eq!(u32::from_le_bytes(b[40..44].try_into().unwrap()), 1600);
        let back: Vec<i16> = b[44..]
            .chunks(2)
            .map(|c| i16::from_le_bytes([c[0], c[1]]))
            .collect();
        assert_eq!(back, pcm);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Reads an 8 kHz mono 16-bit PCM WAV (what `write_wav_8k` and the speech-set generator
/// write); anything else is an error saying what the file is.
pub fn read_wav_8k(path: &Path) -> std::io::Result<Vec<i16>> {
    let bytes = std::fs::read(path)?;
    let bad = |why: String| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{}: {why}", path.display()),
        )
    };
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err(bad("not a RIFF/WAVE file".into()));
    }
    let mut at = 12;
    let mut format_ok = false;
    while at + 8 <= bytes.len() {
        let id = &bytes[at..at + 4];
        let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        let body = &bytes[at + 8..(at + 8 + len).min(bytes.len())];
        if id == b"fmt " && body.len() >= 16 {
            let tag = u16::from_le_bytes([body[0], body[1]]);
            let ch = u16::from_le_bytes([body[2], body[3]]);
            let rate = u32::from_le_bytes(body[4..8].try_into().unwrap());
            let bits = u16::from_le_bytes([body[14], body[15]]);
            if (tag, ch, rate, bits) != (1, 1, 8000, 16) {
                return Err(bad(format!(
                    "format {tag}, {ch} channel(s), {rate} Hz, {bits} bits: want PCM mono 8000 Hz 16 bits"
                )));
            }
            format_ok = true;
        } else if id == b"data" {
            if !format_ok {
                return Err(bad("data before fmt".into()));
            }
            return Ok(body
                .chunks_exact(2)
                .map(|b| i16::from_le_bytes([b[0], b[1]]))
                .collect());
        }
        at += 8 + len + (len & 1);
    }
    Err(bad("no data chunk".into()))
}

#[cfg(test)]
mod read_tests {
    use super::*;

    #[test]
    fn what_is_written_reads_back() {
        let dir = std::env::temp_dir().join(format!("answerline-wav-read-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.wav");
        let pcm: Vec<i16> = (0..800).map(|i| ((i * 37) % 2000 - 1000) as i16).collect();
        write_wav_8k(&path, &pcm).unwrap();
        assert_eq!(read_wav_8k(&path).unwrap(), pcm);
        std::fs::write(&path, b"RIFF\0\0\0\0WAVEjunk").unwrap();
        assert!(read_wav_8k(&path).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
