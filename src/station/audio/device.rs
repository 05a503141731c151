//! cpal devices: the headset's microphone and earpiece, and an optional ring device.
//!
//! The callbacks only move samples between the device and lock-free single-producer rings
//! (rtrb): no lock, no allocation, no system call. Format conversion to mono i16 happens
//! in the callback (arithmetic only); resampling and codecs run on the network thread.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use anyhow::{anyhow, Context as _};
use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{SampleFormat, Stream, StreamConfig};
use rtrb::{Consumer, Producer, RingBuffer};

/// Ring capacity: half a second at 48 kHz, far more than a callback period.
pub const RING: usize = 24_000;

/// The microphone's side for the network thread.
pub struct CaptureEnd {
    pub rate: u32,
    pub rx: Consumer<i16>,
    pub level: Arc<AtomicU32>,
}

/// An output's side for the network thread.
pub struct PlaybackEnd {
    pub rate: u32,
    pub tx: Producer<i16>,
    pub level: Arc<AtomicU32>,
}

/// Owns the cpal streams (not `Send` on every platform): kept on the thread that made them.
pub struct Streams(#[allow(dead_code)] Vec<Stream>);

pub fn level(l: &AtomicU32) -> f32 {
    f32::from_bits(l.load(Ordering::Relaxed))
}

/// Names of the devices cpal sees, for `--list-devices`.
pub fn list() -> anyhow::Result<Vec<String>> {
    let host = cpal::default_host();
    let mut out = vec![format!("host: {}", host.id().name())];
    let din = host.default_input_device().and_then(|d| d.name().ok());
    let dout = host.default_output_device().and_then(|d| d.name().ok());
    for d in host.input_devices().context("listing input devices")? {
        let name = d.name().unwrap_or_else(|_| "?".into());
        let mark = if Some(&name) == din.as_ref() {
            " (default)"
        } else {
            ""
        };
        out.push(format!("input:  {name}{mark}"));
    }
    for d in host.output_devices().context("listing output devices")? {
        let name = d.name().unwrap_or_else(|_| "?".into());
        let mark = if Some(&name) == dout.as_ref() {
            " (default)"
        } else {
            ""
        };
        out.push(format!("output: {name}{mark}"));
    }
    Ok(out)
}

fn find(input: bool, name: Option<&str>) -> anyhow::Result<cpal::Device> {
    let host = cpal::default_host();
    let Some(name) = name else {
        let d = if input {
            host.default_input_device()
        } else {
            host.default_output_device()
        };
        return d.ok_or_else(|| {
            anyhow!(
                "no default {} device (see --list-devices)",
                if input { "input" } else { "output" }
            )
        });
    };
    let devices: Vec<cpal::Device> = if input {
        host.input_devices()?.collect()
    } else {
        host.output_devices()?.collect()
    };
    // An exact name first, then the first one whose name contains it.
    let names: Vec<String> = devices
        .iter()
        .map(|d| d.name().unwrap_or_default())
        .collect();
    let i = names
        .iter()
        .position(|n| n == name)
        .or_else(|| names.iter().position(|n| n.contains(name)))
        .ok_or_else(|| {
            anyhow!(
                "no {} device named {name:?} (see --list-devices)",
                if input { "input" } else { "output" }
            )
        })?;
    Ok(devices.into_iter().nth(i).unwrap())
}

/// Opens the microphone `name` (default device if None) at its own rate.
pub fn open_capture(name: Option<&str>, streams: &mut Vec<Stream>) -> anyhow::Result<CaptureEnd> {
    let dev = find(true, name)?;
    let sup = dev.default_input_config().context("input device config")?;
    let format = sup.sample_format();
    let config: StreamConfig = sup.config();
    let channels = config.channels as usize;
    let (mut tx, rx) = RingBuffer::<i16>::new(RING);
    let level = Arc::new(AtomicU32::new(0));
    let lv = level.clone();
    let err = |e| tracing::warn!(error = %e, "station: capture stream error");
    let stream = match format {
        SampleFormat::F32 => dev.build_input_stream(
            &config,
            move |data: &[f32], _: &cpal::InputCallbackInfo| {
                let mut peak = 0f32;
                for f in data.chunks(channels) {
                    let s = (f.iter().sum::<f32>() / channels as f32).clamp(-1.0, 1.0);
                    peak = peak.max(s.abs());
                    let _ = tx.push((s * 32767.0) as i16);
                }
                lv.store(peak.to_bits(), Ordering::Relaxed);
            },
            err,
            None,
        )?,
        SampleFormat::I16 => dev.build_input_stream(
            &config,
            move |data: &[i16], _: &cpal::InputCallbackInfo| {
                let mut peak = 0i32;
                for f in data.chunks(channels) {
                    let s = f.iter().map(|&v| v as i32).sum::<i32>() / channels as i32;
                    peak = peak.max(s.abs());
                    let _ = tx.push(s as i16);
                }
                lv.store((peak as f32 / 32768.0).to_bits(), Ordering::Relaxed);
            },
            err,
            None,
        )?,
        other => return Err(anyhow!("input sample format {other:?} not supported")),
    };
    stream.play().context("starting capture")?;
    streams.push(stream);
    Ok(CaptureEnd {
        rate: config.sample_rate.0,
        rx,
        level,
    })
}

/// Opens the output `name` (default device if None) at its own rate; silence when the ring
/// runs dry.
pub fn open_playback(name: Option<&str>, streams: &mut Vec<Stream>) -> anyhow::Result<PlaybackEnd> {
    let dev = find(false, name)?;
    let sup = dev
        .default_output_config()
        .context("output device config")?;
    let format = sup.sample_format();
    let config: StreamConfig = sup.config();
    let channels = config.channels as usize;
    let (tx, mut rx) = RingBuffer::<i16>::new(RING);
    let level = Arc::new(AtomicU32::new(0));
    let lv = level.clone();
    let err = |e| tracing::warn!(error = %e, "station: playback stream error");
    let stream = match format {
        SampleFormat::F32 => dev.build_output_stream(
            &config,
            move |data: &mut [f32], _: &cpal::OutputCallbackInfo| {
                let mut peak = 0f32;
                for f in data.chunks_mut(channels) {
                    let s = rx.pop().unwrap_or(0) as f32 / 32768.0;
                    peak = peak.max(s.abs());
                    f.fill(s);
                }
                lv.store(peak.to_bits(), Ordering::Relaxed);
            },
            err,
            None,
        )?,
        SampleFormat::I16 => dev.build_output_stream(
            &config,
            move |data: &mut [i16], _: &cpal::OutputCallbackInfo| {
                let mut peak = 0i32;
                for f in data.chunks_mut(channels) {
                    let s = rx.pop().unwrap_or(0);
                    peak = peak.max((s as i32).abs());
                    f.fill(s);
                }
                lv.store((peak as f32 / 32768.0).to_bits(), Ordering::Relaxed);
            },
            err,
            None,
        )?,
        other => return Err(anyhow!("output sample format {other:?} not supported")),
    };
    stream.play().context("starting playback")?;
    streams.push(stream);
    Ok(PlaybackEnd {
        rate: config.sample_rate.0,
        tx,
        level,
    })
}

impl Streams {
    pub fn new(v: Vec<Stream>) -> Streams {
        Streams(v)
    }
}
