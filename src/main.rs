use answerline::config::PortRange;
use answerline::server::{self, ServeOptions};
use clap::{Parser, Subcommand};
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "answerline",
    version,
    about = "Voice IVR and speech front-end for SIP"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Args, Clone)]
struct Paths {
    /// Folder of SIP profiles (*.toml).
    #[arg(long, env = "ANSWERLINE_PROFILES", default_value = "sip-profiles")]
    profiles: PathBuf,
    /// Folder of equipment quirk files referenced by profiles' `device` key.
    #[arg(long, env = "ANSWERLINE_HARDWARE", default_value = "hardware")]
    hardware: PathBuf,
    /// Folder with menus.toml and the prompt sets (zh/, en/).
    #[arg(long, env = "ANSWERLINE_PROMPTS", default_value = "prompts")]
    prompts: PathBuf,
    /// Where the SQLite database (billing, CDRs) lives; created on first start.
    #[arg(long, env = "ANSWERLINE_DATA", default_value = "data")]
    data: PathBuf,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the server.
    Serve {
        #[command(flatten)]
        paths: Paths,
        /// Bind every profile to this address instead of the profile's own.
        #[arg(long, env = "ANSWERLINE_BIND")]
        bind: Option<IpAddr>,
        /// Move the lab profile to this SIP port; other profiles keep their offset from 5060.
        #[arg(long, env = "ANSWERLINE_SIP_PORT")]
        sip_port: Option<u16>,
        /// RTP port range shared out between the profiles, e.g. 40000-40999.
        #[arg(long, env = "ANSWERLINE_RTP_PORTS")]
        rtp_ports: Option<PortRange>,
        /// End calls whose caller sent no RTP for this many milliseconds (overrides the profiles).
        #[arg(long, env = "ANSWERLINE_RTP_TIMEOUT_MS")]
        rtp_timeout_ms: Option<u64>,
        /// Do not try to give the media worker real-time priority.
        #[arg(long, env = "ANSWERLINE_NO_REALTIME")]
        no_realtime: bool,
    },
    /// Validate profiles, menus and prompts, then exit.
    CheckConfig {
        #[command(flatten)]
        paths: Paths,
    },
    /// Print the most recent call detail records.
    Cdr {
        #[arg(long, env = "ANSWERLINE_DATA", default_value = "data")]
        data: PathBuf,
        #[arg(long, default_value_t = 20)]
        last: usize,
    },
}

fn options(paths: Paths) -> ServeOptions {
    ServeOptions {
        profiles: paths.profiles,
        hardware: paths.hardware,
        prompts: paths.prompts,
        data: paths.data,
        bind: None,
        sip_port: None,
        rtp_ports: None,
        rtp_timeout: None,
        realtime: false,
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ANSWERLINE_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Serve {
            paths,
            bind,
            sip_port,
            rtp_ports,
            rtp_timeout_ms,
            no_realtime,
        } => {
            let mut o = options(paths);
            o.bind = bind;
            o.sip_port = sip_port;
            o.rtp_ports = rtp_ports;
            o.rtp_timeout = rtp_timeout_ms.map(Duration::from_millis);
            o.realtime = !no_realtime;
            serve(o)
        }
        Cmd::CheckConfig { paths } => server::check_config(&options(paths)).map(|(p, _, _)| {
            println!("ok: {} profile(s), menus and prompts valid", p.len());
        }),
        Cmd::Cdr { data, last } => print_cdrs(&data, last),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("answerline: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(o: ServeOptions) -> anyhow::Result<()> {
    let prepared = server::prepare(&o)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(server::run(prepared))
}

fn print_cdrs(data: &std::path::Path, last: usize) -> anyhow::Result<()> {
    let db = answerline::store::Db::open(&data.join("answerline.db"))?;
    for c in db.recent_cdrs(last)? {
        println!(
            "{}  {}  {} -> {}  {}  {}ms  path={}  inputs={}  outcome={}",
            c.started_at,
            c.call_id,
            c.caller,
            c.called,
            c.hangup_cause,
            c.duration_ms,
            c.ivr_path,
            c.inputs,
            c.outcome
        );
    }
    Ok(())
}
