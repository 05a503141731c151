//! Two-channel call recording: left = caller, right = agent, 16-bit PCM, 8 kHz, WAV.
//!
//! Split in two because the media thread must never wait on a disk:
//! - [`Recorder`] (media side, sans-IO) interleaves each 20 ms step into fixed-size blocks
//!   (1 s by default) taken from a small pool allocated up front, and hands full blocks out
//!   through [`Recorder::poll_block`]. The integrator sends them to a writer thread.
//! - [`RecordingWriter`] (file side, plain `std::fs`) appends blocks to the WAV file.
//!
//! A [`Block`] goes back to its recorder's pool by itself when it is dropped (on the writer
//! thread, after writing), over a bounded channel that was sized for the whole pool: no
//! allocation and no lock per frame, and nothing for the integrator to send back.
//!
//! Time line: every `push` is 20 ms of the call, whatever arrived. Missing frames are
//! written as silence so the channels stay aligned, and if the writer falls so far behind
//! that the pool runs dry, the frames that had nowhere to go are counted (`lost_ms`) and
//! the writer fills the gap with silence: file position = call time, always, so masked
//! segment times can be used to seek in the file.
//!
//! Crash safety: the header is written first with RIFF and data sizes of 0, and patched
//! only by [`RecordingWriter::finish`]. A recording cut short by a crash therefore has its
//! audio on disk behind a header claiming no data; [`repair_header`] sets the sizes from
//! the file length (many players also just read such a file to its end).

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, SyncSender};

use super::frame_ring::{Frame, FRAME_SAMPLES};

/// 1 s blocks: a write per second on the file side, 32 KB per block.
pub const DEFAULT_BLOCK_FRAMES: usize = 50;
/// Blocks per recording: the writer may lag this many seconds before audio is lost.
pub const DEFAULT_POOL_BLOCKS: usize = 4;

const CHANNELS: usize = 2;
const SAMPLE_RATE: u32 = 8000;
const FRAME_MS: u64 = 20;
/// Stereo 16-bit at 8 kHz.
const BYTES_PER_MS: u64 = SAMPLE_RATE as u64 / 1000 * CHANNELS as u64 * 2;
const HEADER_LEN: u64 = 44;
/// Interleaved samples one frame adds to a block.
const FRAME_VALUES: usize = FRAME_SAMPLES * CHANNELS;

/// A stretch of the recording blanked because the caller was keying sensitive digits or
/// was back in self-service. Milliseconds from the start of the recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaskedSegment {
    pub start_ms: u64,
    pub end_ms: u64,
}

/// Interleaved caller/agent samples of consecutive frames; returns to its pool when dropped.
pub struct Block {
    buf: Box<[i16]>,
    len: usize,
    start_ms: u64,
    home: SyncSender<Box<[i16]>>,
}

impl Block {
    /// Interleaved L (caller), R (agent) samples.
    pub fn samples(&self) -> &[i16] {
        &self.buf[..self.len]
    }

    /// Where this block starts in the recording.
    pub fn start_ms(&self) -> u64 {
        self.start_ms
    }

    pub fn duration_ms(&self) -> u64 {
        (self.len / FRAME_VALUES) as u64 * FRAME_MS
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        // The channel holds the whole pool, so it is never full; if the recorder is gone
        // the send fails and the buffer is simply freed.
        let _ = self.home.try_send(std::mem::take(&mut self.buf));
    }
}

impl std::fmt::Debug for Block {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the audio: it may be a caller speaking personal data.
        f.debug_struct("Block")
            .field("start_ms", &self.start_ms)
            .field("duration_ms", &self.duration_ms())
            .finish()
    }
}

/// The media-thread half of a recording. No IO, no allocation per frame.
pub struct Recorder {
    block_frames: usize,
    pool_blocks: usize,
    free: Receiver<Box<[i16]>>,
    home: SyncSender<Box<[i16]>>,
    /// The block being filled: buffer, values used, start.
    current: Option<(Box<[i16]>, usize, u64)>,
    ready: VecDeque<Block>,
    frames: u64,
    masked_ms: u64,
    segments: Vec<MaskedSegment>,
    lost_ms: u64,
    handed_out: u64,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new(DEFAULT_BLOCK_FRAMES, DEFAULT_POOL_BLOCKS)
    }
}

impl Recorder {
    /// `block_frames` 20 ms frames per block, `pool_blocks` blocks allocated now, never more.
    pub fn new(block_frames: usize, pool_blocks: usize) -> Self {
        let block_frames = block_frames.max(1);
        let pool_blocks = pool_blocks.max(1);
        let (home, free) = mpsc::sync_channel(pool_blocks);
        for _ in 0..pool_blocks {
            let buf = vec![0i16; block_frames * FRAME_VALUES].into_boxed_slice();
            home.try_send(buf).expect("channel sized for the pool");
        }
        Recorder {
            block_frames,
            pool_blocks,
            free,
            home,
            current: None,
            ready: VecDeque::with_capacity(pool_blocks),
            frames: 0,
            masked_ms: 0,
            // Masking starts a segment only a few times per call.
            segments: Vec::with_capacity(16),
            lost_ms: 0,
            handed_out: 0,
        }
    }

    /// One 20 ms step of the call. `None` = nothing arrived from that leg (silence). While
    /// `masked`, both channels are silence: the agent's side would repeat or confirm what
    /// the caller keyed.
    pub fn push(&mut self, caller: Option<&Frame>, agent: Option<&Frame>, masked: bool) {
        let t0 = self.frames * FRAME_MS;
        self.frames += 1;
        if masked {
            self.masked_ms += FRAME_MS;
            match self.segments.last_mut() {
                Some(seg) if seg.end_ms == t0 => seg.end_ms = t0 + FRAME_MS,
                _ => self.segments.push(MaskedSegment {
                    start_ms: t0,
                    end_ms: t0 + FRAME_MS,
                }),
            }
        }
        if self.current.is_none() {
            match self.free.try_recv() {
                Ok(buf) => self.current = Some((buf, 0, t0)),
                Err(_) => {
                    // Every block is still queued or being written: the disk is behind.
                    // Drop this frame rather than grow; the writer pads the gap.
                    self.lost_ms += FRAME_MS;
                    return;
                }
            }
        }
        let Some((buf, len, _)) = self.current.as_mut() else {
            return;
        };
        let dst = &mut buf[*len..*len + FRAME_VALUES];
        let (caller, agent) = if masked {
            (None, None)
        } else {
            (caller, agent)
        };
        for (i, lr) in dst.chunks_exact_mut(CHANNELS).enumerate() {
            lr[0] = caller.map_or(0, |f| f[i]);
            lr[1] = agent.map_or(0, |f| f[i]);
        }
        *len += FRAME_VALUES;
        if *len == self.block_frames * FRAME_VALUES {
            self.seal();
        }
    }

    /// A full block for the writer, oldest first.
    pub fn poll_block(&mut self) -> Option<Block> {
        let b = self.ready.pop_front()?;
        self.handed_out += 1;
        Some(b)
    }

    /// End of recording: the partly filled block becomes available from `poll_block`.
    pub fn flush(&mut self) {
        if self.current.as_ref().is_some_and(|(_, len, _)| *len > 0) {
            self.seal();
        }
    }

    /// Length of the recording so far (call time, including lost frames).
    pub fn duration_ms(&self) -> u64 {
        self.frames * FRAME_MS
    }

    pub fn masked_ms(&self) -> u64 {
        self.masked_ms
    }

    /// Blanked stretches, in order; the last one grows while masking goes on.
    pub fn masked_segments(&self) -> &[MaskedSegment] {
        &self.segments
    }

    /// Audio dropped because no block was free (the writer fell behind the pool's depth).
    pub fn lost_ms(&self) -> u64 {
        self.lost_ms
    }

    /// Blocks allocated: fixed at construction.
    pub fn blocks_allocated(&self) -> usize {
        self.pool_blocks
    }

    /// Blocks handed out by `poll_block` so far; above `blocks_allocated` means reuse.
    pub fn blocks_handed_out(&self) -> u64 {
        self.handed_out
    }

    fn seal(&mut self) {
        if let Some((buf, len, start_ms)) = self.current.take() {
            self.ready.push_back(Block {
                buf,
                len,
                start_ms,
                home: self.home.clone(),
            });
        }
    }
}

/// The file half of a recording, for a thread that may block on the disk.
pub struct RecordingWriter {
    file: File,
    path: PathBuf,
    data_bytes: u64,
    bytes: Vec<u8>,
}

impl RecordingWriter {
    /// Creates the file (and its directory) with a header claiming no data yet. Refuses to
    /// overwrite an existing recording.
    pub fn create(path: &Path) -> io::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let mut file = OpenOptions::new().write(true).create_new(true).open(path)?;
        file.write_all(&wav_header(0))?;
        Ok(RecordingWriter {
            file,
            path: path.to_path_buf(),
            data_bytes: 0,
            bytes: Vec::with_capacity(DEFAULT_BLOCK_FRAMES * FRAME_VALUES * 2),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Audio written so far.
    pub fn duration_ms(&self) -> u64 {
        self.data_bytes / BYTES_PER_MS
    }

    /// Appends a block, first padding with silence any audio the recorder had to drop, so
    /// the block lands at its place in the call.
    pub fn write_block(&mut self, block: &Block) -> io::Result<()> {
        let gap_ms = block.start_ms().saturating_sub(self.duration_ms());
        if gap_ms > 0 {
            self.bytes.clear();
            self.bytes.resize((gap_ms * BYTES_PER_MS) as usize, 0);
            self.file.write_all(&self.bytes)?;
            self.data_bytes += self.bytes.len() as u64;
        }
        self.bytes.clear();
        for s in block.samples() {
            self.bytes.extend_from_slice(&s.to_le_bytes());
        }
        self.file.write_all(&self.bytes)?;
        self.data_bytes += self.bytes.len() as u64;
        Ok(())
    }

    /// Writes the real sizes into the header, syncs, and returns the duration in ms.
    pub fn finish(mut self) -> io::Result<u64> {
        patch_sizes(&mut self.file, self.data_bytes)?;
        self.file.sync_all()?;
        Ok(self.duration_ms())
    }
}

/// Fixes the header of a recording whose writer never finished (crash, kill): the sizes
/// are set from the file's length. Returns the duration in ms.
pub fn repair_header(path: &Path) -> io::Result<u64> {
    let mut file = OpenOptions::new().read(true).write(true).open(path)?;
    let mut header = [0u8; HEADER_LEN as usize];
    file.read_exact(&mut header)?;
    // Only the sizes may differ from what `create` wrote: the format must be ours.
    let ours = wav_header(0);
    if header[..4] != ours[..4] || header[8..40] != ours[8..40] {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a recording written by answerline",
        ));
    }
    // A crash may cut the last sample frame in half: only whole stereo samples count.
    let data = (file.metadata()?.len() - HEADER_LEN) / 4 * 4;
    patch_sizes(&mut file, data)?;
    file.sync_all()?;
    Ok(data / BYTES_PER_MS)
}

fn patch_sizes(file: &mut File, data_bytes: u64) -> io::Result<()> {
    // WAV sizes are 32-bit: 4 GiB is over 37 hours of this format, far beyond any call.
    let data = u32::try_from(data_bytes).unwrap_or(u32::MAX - 36);
    file.seek(SeekFrom::Start(4))?;
    file.write_all(&(data + 36).to_le_bytes())?;
    file.seek(SeekFrom::Start(40))?;
    file.write_all(&data.to_le_bytes())?;
    file.seek(SeekFrom::End(0))?;
    Ok(())
}

fn wav_header(data_bytes: u32) -> [u8; HEADER_LEN as usize] {
    let mut h = [0u8; HEADER_LEN as usize];
    let block_align = (CHANNELS * 2) as u16;
    let fields: [&[u8]; 13] = [
        b"RIFF",
        &(data_bytes.saturating_add(36)).to_le_bytes(),
        b"WAVE",
        b"fmt ",
        &16u32.to_le_bytes(),
        &1u16.to_le_bytes(), // PCM
        &(CHANNELS as u16).to_le_bytes(),
        &SAMPLE_RATE.to_le_bytes(),
        &(SAMPLE_RATE * block_align as u32).to_le_bytes(),
        &block_align.to_le_bytes(),
        &16u16.to_le_bytes(),
        b"data",
        &data_bytes.to_le_bytes(),
    ];
    let mut at = 0;
    for f in fields {
        h[at..at + f.len()].copy_from_slice(f);
        at += f.len();
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "answerline-rec-{tag}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn tone(hz: f64, amp: f64, frame: usize) -> Frame {
        let mut f = [0; FRAME_SAMPLES];
        for (i, s) in f.iter_mut().enumerate() {
            let t = (frame * FRAME_SAMPLES + i) as f64 / 8000.0;
            *s = (amp * (2.0 * std::f64::consts::PI * hz * t).sin()) as i16;
        }
        f
    }

    struct Wav {
        channels: u16,
        rate: u32,
        bits: u16,
        riff_size: u32,
        data_size: u32,
        left: Vec<i16>,
        right: Vec<i16>,
    }

    /// Reads the file back by hand (not with our own header code) as a player would.
    fn read_wav(path: &Path) -> Wav {
        let b = std::fs::read(path).unwrap();
        let u16_at = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        assert_eq!(&b[0..4], b"RIFF");
        assert_eq!(&b[8..16], b"WAVEfmt ");
        assert_eq!(u32_at(16), 16);
        assert_eq!(u16_at(20), 1, "PCM");
        assert_eq!(&b[36..40], b"data");
        let samples: Vec<i16> = b[44..]
            .chunks_exact(2)
            .map(|c| i16::from_le_bytes([c[0], c[1]]))
            .collect();
        Wav {
            channels: u16_at(22),
            rate: u32_at(24),
            bits: u16_at(34),
            riff_size: u32_at(4),
            data_size: u32_at(40),
            left: samples.iter().step_by(2).copied().collect(),
            right: samples.iter().skip(1).step_by(2).copied().collect(),
        }
    }

    fn drain(rec: &mut Recorder, w: &mut RecordingWriter) {
        while let Some(b) = rec.poll_block() {
            w.write_block(&b).unwrap();
        }
    }

    #[test]
    fn stereo_file_has_caller_left_agent_right_and_masked_silence() {
        let dir = temp_dir("stereo");
        let path = dir.join("call.wav");
        let mut w = RecordingWriter::create(&path).unwrap();
        let mut rec = Recorder::default();
        // 3 s: masked 1.00-1.50 s (PIN entry), agent's packets lost at 2.00-2.20 s.
        for k in 0..150 {
            let c = tone(400.0, 8000.0, k);
            let a = tone(1000.0, 5000.0, k);
            let agent = (!(100..110).contains(&k)).then_some(&a);
            rec.push(Some(&c), agent, (50..75).contains(&k));
            drain(&mut rec, &mut w);
        }
        rec.flush();
        drain(&mut rec, &mut w);
        assert_eq!(rec.masked_ms(), 500);
        assert_eq!(
            rec.masked_segments(),
            &[MaskedSegment {
                start_ms: 1000,
                end_ms: 1500
            }]
        );
        assert_eq!(rec.lost_ms(), 0);
        assert_eq!(w.finish().unwrap(), 3000);

        let wav = read_wav(&path);
        assert_eq!((wav.channels, wav.rate, wav.bits), (2, 8000, 16));
        assert_eq!(wav.data_size, 3000 * 32);
        assert_eq!(wav.riff_size, wav.data_size + 36);
        assert_eq!(wav.left.len(), 24_000);
        for k in 0..150 {
            let at = k * FRAME_SAMPLES..(k + 1) * FRAME_SAMPLES;
            let (l, r) = (&wav.left[at.clone()], &wav.right[at]);
            if (50..75).contains(&k) {
                assert!(l.iter().chain(r).all(|&s| s == 0), "frame {k} not blank");
            } else {
                assert_eq!(l, &tone(400.0, 8000.0, k)[..], "caller frame {k}");
                let agent = if (100..110).contains(&k) {
                    [0; FRAME_SAMPLES]
                } else {
                    tone(1000.0, 5000.0, k)
                };
                assert_eq!(r, &agent[..], "agent frame {k}");
            }
        }
        // The masked segment's times point at the blank stretch in the file.
        let seg = rec.masked_segments()[0];
        let s = (seg.start_ms * 8) as usize;
        assert_ne!(wav.left[s - 1], 0);
        assert_ne!(wav.left[(seg.end_ms * 8) as usize + 1], 0);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn separate_maskings_are_separate_segments_and_an_open_one_is_listed() {
        let mut rec = Recorder::new(5, 2);
        let f = tone(400.0, 1000.0, 0);
        for k in 0..30 {
            let masked = (2..4).contains(&k) || (10..12).contains(&k) || k >= 25;
            rec.push(Some(&f), Some(&f), masked);
            while rec.poll_block().is_some() {}
        }
        let seg = |start_ms, end_ms| MaskedSegment { start_ms, end_ms };
        assert_eq!(
            rec.masked_segments(),
            &[seg(40, 80), seg(200, 240), seg(500, 600)]
        );
        assert_eq!(rec.masked_ms(), 40 + 40 + 100);
        assert_eq!(rec.duration_ms(), 600);
    }

    #[test]
    fn blocks_come_from_the_pool_and_go_back_to_it() {
        let mut rec = Recorder::new(DEFAULT_BLOCK_FRAMES, 2);
        let f = tone(400.0, 1000.0, 0);
        let mut buffers = Vec::new();
        // 60 s of call, each block written and dropped as a writer thread would.
        for _ in 0..60 * 50 {
            rec.push(Some(&f), Some(&f), false);
            if let Some(b) = rec.poll_block() {
                assert_eq!(b.duration_ms(), 1000);
                let p = b.samples().as_ptr();
                if !buffers.contains(&p) {
                    buffers.push(p);
                }
            }
        }
        assert_eq!(rec.blocks_handed_out(), 60);
        assert_eq!(rec.blocks_allocated(), 2);
        assert_eq!(
            buffers.len(),
            2,
            "only the pool's two buffers were ever used"
        );
        assert_eq!(rec.lost_ms(), 0);
    }

    #[test]
    fn a_writer_behind_the_pool_loses_audio_but_not_alignment() {
        let dir = temp_dir("behind");
        let path = dir.join("call.wav");
        let mut rec = Recorder::new(5, 1);
        let push = |rec: &mut Recorder, k: usize| {
            let c = tone(400.0, 8000.0, k);
            rec.push(Some(&c), None, false)
        };
        for k in 0..5 {
            push(&mut rec, k);
        }
        let first = rec.poll_block().unwrap();
        // The writer still holds the only block: 100 ms has nowhere to go.
        for k in 5..10 {
            push(&mut rec, k);
        }
        assert!(rec.poll_block().is_none());
        assert_eq!(rec.lost_ms(), 100);
        let mut w = RecordingWriter::create(&path).unwrap();
        w.write_block(&first).unwrap();
        drop(first);
        for k in 10..15 {
            push(&mut rec, k);
        }
        let third = rec.poll_block().unwrap();
        assert_eq!(third.start_ms(), 200);
        w.write_block(&third).unwrap();
        assert_eq!(w.finish().unwrap(), 300);
        let wav = read_wav(&path);
        assert!(wav.left[800..1600].iter().all(|&s| s == 0), "gap padded");
        assert_eq!(&wav.left[1600..1760], &tone(400.0, 8000.0, 10)[..]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn unfinished_file_has_its_audio_and_can_be_repaired() {
        let dir = temp_dir("crash");
        let path = dir.join("call.wav");
        let mut w = RecordingWriter::create(&path).unwrap();
        let mut rec = Recorder::new(10, 2);
        for k in 0..30 {
            rec.push(Some(&tone(400.0, 8000.0, k)), None, false);
            drain(&mut rec, &mut w);
        }
        // The process dies here: no finish().
        drop(w);
        let wav = read_wav(&path);
        assert_eq!(wav.data_size, 0, "header never patched");
        assert_eq!(wav.left.len(), 30 * FRAME_SAMPLES, "but the audio is there");
        assert_eq!(repair_header(&path).unwrap(), 600);
        let wav = read_wav(&path);
        assert_eq!(wav.data_size, 600 * 32);
        assert_eq!(wav.riff_size, 600 * 32 + 36);
        // Only our own files are touched.
        std::fs::write(dir.join("other.wav"), [7u8; 100]).unwrap();
        assert!(repair_header(&dir.join("other.wav")).is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn an_existing_recording_is_never_overwritten() {
        let dir = temp_dir("exists");
        let path = dir.join("call.wav");
        RecordingWriter::create(&path).unwrap().finish().unwrap();
        let err = RecordingWriter::create(&path).err().unwrap();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn block_debug_shows_no_audio() {
        let mut rec = Recorder::new(1, 1);
        rec.push(Some(&[1234; FRAME_SAMPLES]), None, false);
        let s = format!("{:?}", rec.poll_block().unwrap());
        assert!(!s.contains("1234"), "{s}");
    }
}
