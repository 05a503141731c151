//! loadgen: places many concurrent IVR calls from one process (one thread, one epoll loop)
//! to find where answerline's limit is, without the generator becoming the limit first.
//!
//! Independent of the answerline library on purpose: its own SIP, RTP and G.711 (see
//! `src/bin/loadgen/`), so a shared bug cannot hide on both sides.
//!
//! Default call profile (the realistic short IVR call): the caller talks for 3 s over
//! the greeting, presses 1 at 3.5 s (RFC 4733), listens, and hangs up at 5.5 s.

// A crate root in src/bin/ looks for modules beside itself; these live in loadgen/.
#[path = "loadgen/audio.rs"]
mod audio;
#[path = "loadgen/engine.rs"]
mod engine;
#[path = "loadgen/rtp.rs"]
mod rtp;
#[path = "loadgen/sip.rs"]
mod sip;
#[path = "loadgen/stats.rs"]
mod stats;
#[path = "loadgen/sys.rs"]
mod sys;

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

#[derive(Parser, Debug)]
#[command(name = "loadgen", about = "SIP/RTP load generator for answerline")]
struct Args {
    /// Server SIP address, host:port (loopback only unless --allow-remote).
    target: String,
    /// Calls to place in all (ignored with --duration).
    #[arg(long, default_value_t = 100)]
    calls: u64,
    /// Place calls for this many seconds instead of a fixed number.
    #[arg(long)]
    duration: Option<f64>,
    /// New calls per second.
    #[arg(long, default_value_t = 10.0)]
    rate: f64,
    /// Most calls up at once (default: no limit beyond --calls and --rate).
    #[arg(long)]
    concurrent: Option<usize>,
    /// Caller hangs up this long after the answer.
    #[arg(long, default_value_t = 5500)]
    hold_ms: u64,
    /// Caller talks for this long after the answer, then sends silence.
    #[arg(long, default_value_t = 3000)]
    talk_ms: u64,
    /// RFC 4733 digits and when after the answer: "1@3500,#@4200"; "" for none.
    #[arg(long, default_value = "1@3500")]
    digits: String,
    /// Caller audio: 8 kHz mono 16-bit WAV, looped (default: a generated speech-like signal).
    #[arg(long)]
    audio: Option<PathBuf>,
    /// Fail calls in which this prompt (8 kHz mono 16-bit WAV, e.g. prompts/zh/bill_balance.wav)
    /// was not heard.
    #[arg(long)]
    expect_prompt: Option<PathBuf>,
    /// How much of the prompt's start must be heard.
    #[arg(long, default_value_t = 1000)]
    prompt_ms: u32,
    /// Correlation of loudness contours from which the prompt counts as heard.
    #[arg(long, default_value_t = 0.85)]
    prompt_threshold: f32,
    /// Wait for the server's BYE instead of hanging up; a call it has not ended this long after
    /// the answer fails as "bye_late" (and is hung up then).
    #[arg(long)]
    expect_bye_within_ms: Option<u64>,
    /// Source addresses, comma-separated; calls take them in turn (spreads per-source limits).
    #[arg(long, default_value = "127.0.0.1")]
    bind: String,
    /// Local RTP ports (even ones used), per source address; keep clear of the server's range.
    #[arg(long, default_value = "10000-19999")]
    rtp_ports: String,
    /// Calling number (From user part): the bill is looked up by it.
    #[arg(long, default_value = "13800138000")]
    caller: String,
    /// Called number (Request-URI user part).
    #[arg(long, default_value = "10010")]
    service: String,
    /// G.711 payload types offered, in order of preference (8 = PCMA, 0 = PCMU).
    #[arg(long, default_value = "8,0")]
    codecs: String,
    /// An INVITE without final response this long fails as "timeout".
    #[arg(long, default_value_t = 32000)]
    setup_timeout_ms: u64,
    /// Hard limit on the whole run, seconds (default: ramp + hold + 40 s).
    #[arg(long)]
    deadline_s: Option<u64>,
    /// Allow a non-loopback target. Load tests run on a shared machine: off by default.
    #[arg(long)]
    allow_remote: bool,
    /// Also write the report as JSON to this file ("-": JSON on stdout instead of text).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write what the first 5 calls heard into this directory (WAV, named by outcome).
    #[arg(long)]
    dump_audio: Option<PathBuf>,
    /// Run at nice -10 (needs the permission): the generator uses little CPU but is the clock
    /// of every call's RTP, and on a shared machine a normal-priority thread can wait tens of
    /// ms for a core. Not real-time: it must not preempt the server it measures.
    #[arg(long)]
    raise_priority: bool,
    /// No progress lines on stderr.
    #[arg(long)]
    quiet: bool,
}

fn parse_range(s: &str) -> Result<(u16, u16), String> {
    let (a, b) = s.split_once('-').ok_or("expected LOW-HIGH")?;
    let (a, b): (u16, u16) = (
        a.trim().parse().map_err(|_| "bad port")?,
        b.trim().parse().map_err(|_| "bad port")?,
    );
    if a < 1024 || b < a + 1 {
        return Err(format!("bad port range {s}: need 1024 <= LOW < HIGH"));
    }
    Ok((a, b))
}

fn config(a: &Args) -> Result<engine::Config, String> {
    let target: SocketAddr = a
        .target
        .to_socket_addrs()
        .map_err(|e| format!("target {}: {e}", a.target))?
        .next()
        .ok_or_else(|| format!("target {}: no address", a.target))?;
    if !target.ip().is_loopback() && !a.allow_remote {
        return Err(format!(
            "target {target} is not loopback; pass --allow-remote to load a remote server"
        ));
    }
    let binds: Vec<IpAddr> = a
        .bind
        .split(',')
        .map(|s| {
            s.trim()
                .parse()
                .map_err(|_| format!("bad --bind address {s}"))
        })
        .collect::<Result<_, _>>()?;
    if binds.iter().any(|b| b.is_ipv4() != target.is_ipv4()) {
        return Err("--bind addresses must be of the target's family".into());
    }
    let codecs: Vec<u8> = a
        .codecs
        .split(',')
        .map(|c| match c.trim() {
            "8" | "PCMA" | "pcma" => Ok(8),
            "0" | "PCMU" | "pcmu" => Ok(0),
            o => Err(format!("codec {o}: only 8 (PCMA) and 0 (PCMU)")),
        })
        .collect::<Result<_, _>>()?;
    if a.rate <= 0.0 {
        return Err("--rate must be positive".into());
    }
    let audio = match &a.audio {
        Some(p) => audio::read_wav(p)?,
        None => audio::speech_like(20.0, 0x5eed),
    };
    let prompt = match &a.expect_prompt {
        Some(p) => Some(audio::PromptRef::new(&audio::read_wav(p)?, a.prompt_ms)?),
        None => None,
    };
    let hold = Duration::from_millis(a.expect_bye_within_ms.unwrap_or(a.hold_ms));
    let (calls, duration) = match a.duration {
        Some(d) => (None, Some(Duration::from_secs_f64(d))),
        None => (Some(a.calls), None),
    };
    let ramp = duration.map_or(a.calls as f64 / a.rate, |d| d.as_secs_f64());
    let deadline = Duration::from_secs(
        a.deadline_s
            .unwrap_or((ramp + hold.as_secs_f64()) as u64 + 40),
    );
    Ok(engine::Config {
        target,
        binds,
        rtp_ports: parse_range(&a.rtp_ports)?,
        calls,
        duration,
        rate: a.rate,
        concurrent: a.concurrent.unwrap_or(usize::MAX),
        hold,
        talk: Duration::from_millis(a.talk_ms),
        digits: rtp::parse_digits(&a.digits)?,
        audio,
        prompt,
        prompt_threshold: a.prompt_threshold,
        expect_bye_within: a.expect_bye_within_ms.map(Duration::from_millis),
        caller: a.caller.clone(),
        service: a.service.clone(),
        codecs,
        setup_timeout: Duration::from_millis(a.setup_timeout_ms),
        deadline,
        progress: !a.quiet,
        dump_audio: a.dump_audio.clone(),
    })
}

fn main() -> ExitCode {
    let args = Args::parse();
    let cfg = match config(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("loadgen: {e}");
            return ExitCode::from(2);
        }
    };
    if args.raise_priority && !sys::raise_priority() {
        eprintln!("loadgen: warning: no permission to raise priority; running at normal priority");
    }
    let nofile = sys::raise_nofile();
    let want = cfg.concurrent.min(cfg.calls.unwrap_or(u64::MAX) as usize);
    if (want as u64).saturating_add(64) > nofile {
        eprintln!(
            "loadgen: warning: {want} calls may need more than the {nofile} descriptors allowed"
        );
    }
    let header = format!(
        "loadgen: {} to {} from {}, rate {}/s, concurrent {}, hold {} ms, talk {} ms, digits {:?}, deadline {} s",
        match (cfg.calls, cfg.duration) {
            (Some(n), _) => format!("{n} calls"),
            (None, d) => format!("calls for {:.0} s", d.unwrap_or_default().as_secs_f64()),
        },
        cfg.target,
        args.bind,
        cfg.rate,
        args.concurrent.map_or("unlimited".into(), |c| c.to_string()),
        cfg.hold.as_millis(),
        cfg.talk.as_millis(),
        args.digits,
        cfg.deadline.as_secs()
    );
    let mut eng = match engine::Engine::new(cfg) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("loadgen: setup: {e}");
            return ExitCode::from(1);
        }
    };
    if let Err(e) = eng.run() {
        eprintln!("loadgen: {e}");
        return ExitCode::from(1);
    }
    let s = &eng.stats;
    let json = s.to_json();
    match args.json.as_deref() {
        Some(p) if p.as_os_str() == "-" => println!("{json:#}"),
        other => {
            println!("{header}\n{}", s.to_text().trim_end());
            if let Some(p) = other {
                if let Err(e) = std::fs::write(p, format!("{json:#}\n")) {
                    eprintln!("loadgen: {}: {e}", p.display());
                    return ExitCode::from(1);
                }
            }
        }
    }
    if s.failed_total() == 0 && s.ok > 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
