//! Prompt audio for assertions: a tiny WAV reader and a matcher that tells which prompts a
//! caller heard, in order.
//!
//! The server sends each prompt's pre-encoded G.711 bytes unchanged, so the decoded stream
//! contains the prompt's companded samples verbatim: exact matching is tried first. Audio that
//! went through a softphone (pjsua2's conference bridge, jitter buffer, resampler) is not
//! bit-exact, so a normalised cross-correlation of 10 ms energy envelopes is the fallback.

use super::g711::Law;
use std::path::Path;

/// Reads a RIFF/WAVE file with 16-bit PCM samples; returns (sample rate, mono samples).
/// Stereo is averaged to mono.
pub fn read_wav(path: &Path) -> Result<(u32, Vec<i16>), String> {
    let data = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse_wav(&data).map_err(|e| format!("{}: {e}", path.display()))
}

pub fn parse_wav(data: &[u8]) -> Result<(u32, Vec<i16>), String> {
    if data.len() < 12 || &data[0..4] != b"RIFF" || &data[8..12] != b"WAVE" {
        return Err("not a RIFF/WAVE file".into());
    }
    let (mut rate, mut channels, mut bits, mut format) = (0u32, 0u16, 0u16, 0u16);
    let mut pos = 12;
    while pos + 8 <= data.len() {
        let id = &data[pos..pos + 4];
        let mut len = u32::from_le_bytes(data[pos + 4..pos + 8].try_into().unwrap()) as usize;
        // A recorder still writing (pjsua2's) leaves the data size 0 until it closes.
        if id == b"data" && len == 0 {
            len = data.len() - (pos + 8);
        }
        let body = &data[pos + 8..(pos + 8 + len).min(data.len())];
        if id == b"fmt " && body.len() >= 16 {
            format = u16::from_le_bytes([body[0], body[1]]);
            channels = u16::from_le_bytes([body[2], body[3]]);
            rate = u32::from_le_bytes(body[4..8].try_into().unwrap());
            bits = u16::from_le_bytes([body[14], body[15]]);
            // WAVE_FORMAT_EXTENSIBLE carries the real format in its sub-format GUID.
            if format == 0xFFFE && body.len() >= 26 {
                format = u16::from_le_bytes([body[24], body[25]]);
            }
        } else if id == b"data" {
            if format != 1 || bits != 16 || channels == 0 {
                return Err(format!(
                    "unsupported WAV: format {format}, {bits} bits, {channels} channels"
                ));
            }
            let frames = body.chunks_exact(2 * channels as usize);
            let pcm = frames
                .map(|f| {
                    let sum: i32 = f
                        .chunks_exact(2)
                        .map(|s| i16::from_le_bytes([s[0], s[1]]) as i32)
                        .sum();
                    (sum / channels as i32) as i16
                })
                .collect();
            return Ok((rate, pcm));
        }
        pos += 8 + len + (len & 1);
    }
    Err("no data chunk".into())
}

/// Linear-interpolation resampler: good enough for envelope matching, never for exact matching.
pub fn resample(pcm: &[i16], from: u32, to: u32) -> Vec<i16> {
    if from == to || pcm.is_empty() {
        return pcm.to_vec();
    }
    let n = (pcm.len() as u64 * to as u64 / from as u64) as usize;
    (0..n)
        .map(|i| {
            let x = i as f64 * from as f64 / to as f64;
            let i0 = x.floor() as usize;
            let f = x - i0 as f64;
            let a = pcm[i0.min(pcm.len() - 1)] as f64;
            let b = pcm[(i0 + 1).min(pcm.len() - 1)] as f64;
            (a + (b - a) * f).round() as i16
        })
        .collect()
}

/// Reads a WAV file as 8 kHz mono.
pub fn read_wav_8k(path: &Path) -> Result<Vec<i16>, String> {
    let (rate, pcm) = read_wav(path)?;
    Ok(resample(&pcm, rate, 8000))
}

/// Every `*.wav` in a prompt directory (e.g. `prompts/zh`) as (name without extension, 8 kHz PCM),
/// sorted by name.
pub fn load_prompt_dir(dir: &Path) -> Vec<(String, Vec<i16>)> {
    let mut out = Vec::new();
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for e in entries.flatten() {
        let p = e.path();
        if p.extension().and_then(|x| x.to_str()) == Some("wav") {
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            match read_wav_8k(&p) {
                Ok(pcm) => out.push((name, pcm)),
                Err(err) => panic!("prompt {err}"),
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[derive(Clone, Debug, PartialEq)]
pub struct PromptHit {
    pub name: String,
    /// Sample index (8 kHz) in the received audio where the prompt starts.
    pub offset: usize,
    /// Samples of the prompt that were heard (shorter than the prompt when it was cut off).
    pub heard: usize,
    /// 1.0 for an exact match, else the envelope correlation.
    pub score: f32,
}

/// Which prompts occur in `received` (8 kHz PCM decoded from the G.711 the caller got), in order
/// of their start offset.
pub fn find_prompt_sequence(
    received: &[i16],
    prompts: &[(&str, Vec<i16>)],
) -> Vec<(String, usize)> {
    find_prompts(received, prompts)
        .into_iter()
        .map(|h| (h.name, h.offset))
        .collect()
}

/// Like `find_prompt_sequence`, with how much of each prompt was heard and how well it matched.
pub fn find_prompts(received: &[i16], prompts: &[(&str, Vec<i16>)]) -> Vec<PromptHit> {
    let exact = find_exact(received, prompts);
    if !exact.is_empty() {
        return exact;
    }
    find_by_envelope(received, prompts, 0.85)
}

const SPEECH_LEVEL: i16 = 200;
/// Minimum heard length for a hit (200 ms): a barged-in prompt still counts, a click does not.
const MIN_HEARD: usize = 1600;

fn first_loud(x: &[i16]) -> Option<usize> {
    x.iter()
        .position(|s| s.unsigned_abs() > SPEECH_LEVEL as u16)
}

pub fn find_exact(received: &[i16], prompts: &[(&str, Vec<i16>)]) -> Vec<PromptHit> {
    let mut hits = Vec::new();
    for (name, pcm) in prompts {
        for law in [Law::Alaw, Law::Ulaw] {
            let q: Vec<i16> = pcm.iter().map(|&s| law.decode(law.encode(s))).collect();
            let Some(start) = first_loud(&q) else {
                continue;
            };
            let rest = &q[start..];
            let need = rest.len().min(MIN_HEARD);
            if need < 160 {
                continue;
            }
            let anchor = &rest[..need.min(800)];
            let mut j = 0;
            while j + anchor.len() <= received.len() {
                if received[j] == anchor[0] && received[j..j + anchor.len()] == *anchor {
                    let heard = rest
                        .iter()
                        .zip(&received[j..])
                        .take_while(|(a, b)| a == b)
                        .count();
                    if heard >= need {
                        hits.push(PromptHit {
                            name: name.to_string(),
                            offset: j.saturating_sub(start),
                            heard: heard + start,
                            score: 1.0,
                        });
                        j += heard;
                        continue;
                    }
                }
                j += 1;
            }
        }
    }
    dedupe(hits)
}

const ENV_FRAME: usize = 80; // 10 ms

fn envelope(x: &[i16]) -> Vec<f32> {
    x.chunks(ENV_FRAME)
        .map(|c| {
            let e: f64 = c.iter().map(|&s| (s as f64) * (s as f64)).sum::<f64>() / c.len() as f64;
            (1.0 + e.sqrt()).ln() as f32
        })
        .collect()
}

/// Envelope cross-correlation: robust to resampling, phase and gain; 10 ms resolution.
pub fn find_by_envelope(
    received: &[i16],
    prompts: &[(&str, Vec<i16>)],
    threshold: f32,
) -> Vec<PromptHit> {
    let env_r = envelope(received);
    let mut hits = Vec::new();
    for (name, pcm) in prompts {
        let Some(start) = first_loud(pcm) else {
            continue;
        };
        let start_f = start / ENV_FRAME;
        let env_p = envelope(&pcm[start_f * ENV_FRAME..]);
        let w = env_p.len().min(150);
        if w < 20 || env_r.len() < w {
            continue;
        }
        let p = &env_p[..w];
        let pm = p.iter().sum::<f32>() / w as f32;
        let pv: Vec<f32> = p.iter().map(|v| v - pm).collect();
        let pn = pv.iter().map(|v| v * v).sum::<f32>().sqrt();
        if pn < 1e-3 {
            continue;
        }
        let scores: Vec<f32> = (0..=env_r.len() - w)
            .map(|l| {
                let r = &env_r[l..l + w];
                let rm = r.iter().sum::<f32>() / w as f32;
                let (mut dot, mut rn) = (0f32, 0f32);
                for (a, b) in pv.iter().zip(r) {
                    let b = b - rm;
                    dot += a * b;
                    rn += b * b;
                }
                if rn < 1e-6 {
                    0.0
                } else {
                    dot / (pn * rn.sqrt())
                }
            })
            .collect();
        let mut l = 0;
        while l < scores.len() {
            if scores[l] >= threshold {
                // take the best lag within this above-threshold run
                let mut best = l;
                while l < scores.len() && scores[l] >= threshold {
                    if scores[l] > scores[best] {
                        best = l;
                    }
                    l += 1;
                }
                hits.push(PromptHit {
                    name: name.to_string(),
                    offset: (best * ENV_FRAME).saturating_sub(start_f * ENV_FRAME),
                    heard: pcm
                        .len()
                        .min(received.len() - best * ENV_FRAME + start_f * ENV_FRAME),
                    score: scores[best],
                });
                l = best + w / 2;
            } else {
                l += 1;
            }
        }
    }
    dedupe(hits)
}

/// Sorts by offset; where two hits overlap by more than half the shorter one, keeps the better
/// (exact and longer first, then higher score).
fn dedupe(mut hits: Vec<PromptHit>) -> Vec<PromptHit> {
    hits.sort_by(|a, b| {
        b.score
            .partial_cmp(&a.score)
            .unwrap()
            .then(b.heard.cmp(&a.heard))
    });
    let mut kept: Vec<PromptHit> = Vec::new();
    for h in hits {
        let overlaps = kept.iter().any(|k| {
            let lo = h.offset.max(k.offset);
            let hi = (h.offset + h.heard).min(k.offset + k.heard);
            hi > lo && (hi - lo) * 2 > h.heard.min(k.heard)
        });
        if !overlaps {
            kept.push(h);
        }
    }
    kept.sort_by_key(|h| h.offset);
    kept
}
