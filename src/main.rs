use answerline::api::directory::{self, AgentFields};
use answerline::billing::{self, CardAttempt, CardSecret, Redemption, Topups};
use answerline::config::PortRange;
use answerline::server::{self, ServeOptions};
use answerline::store::Db;
use clap::{Parser, Subcommand};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
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
        /// Serve the HTTP API here instead of api.toml's bind (port 0: any free port; the
        /// address is printed as `answerline api=...`).
        #[arg(long, env = "ANSWERLINE_API_BIND")]
        api_bind: Option<std::net::SocketAddr>,
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
    /// The hotline's numbers (KPIs) for a period as one HTML page, CSV or JSON; see README
    /// "The hotline's numbers". Reads the database read-only, beside a running server.
    Report {
        /// Start: RFC 3339 (2026-11-24T08:00:00+08:00) or a date (2026-11-24, China time).
        #[arg(long)]
        from: String,
        /// End (exclusive), written the same way.
        #[arg(long)]
        to: String,
        /// html, csv or json.
        #[arg(long, default_value = "html")]
        format: String,
        /// 15m, 1h or 1d (default: 1h, or 1d for periods over 3 days).
        #[arg(long)]
        interval: Option<String>,
        #[arg(long, env = "ANSWERLINE_DATA", default_value = "data")]
        data: PathBuf,
        /// Folder holding queues.toml (each queue's service_level_s).
        #[arg(long, env = "ANSWERLINE_PROFILES", default_value = "sip-profiles")]
        profiles: PathBuf,
        /// Write here instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Check that the money adds up (balances against the ledger, each card credited at most
    /// once, redemptions against the ledger, top-ups left pending); exit 1 on any finding.
    Audit {
        #[command(flatten)]
        billing: BillingPaths,
        /// Pending top-ups older than this many seconds are reported as unresolved.
        #[arg(long, default_value_t = 300)]
        grace_s: i64,
        /// Also ask the backend about every settled top-up in the journal (one lookup each):
        /// with the HTTP backend, holds the journal against the BSS's own books.
        #[arg(long)]
        against_backend: bool,
    },
    /// Redeem one recharge card through the top-up service and print the outcome
    /// (operator tooling and fault tests; the IVR does the same through the same code).
    Topup {
        #[command(flatten)]
        billing: BillingPaths,
        /// The number to credit.
        #[arg(long)]
        msisdn: String,
        /// The card password; `-` reads it from standard input (keeps it out of `ps`).
        #[arg(long)]
        card: String,
        /// Idempotency key: the same key never credits twice.
        #[arg(long)]
        key: String,
        /// The number keying the card, for the wrong-card lock-out (default: --msisdn).
        #[arg(long)]
        caller: Option<String>,
        /// Where the attempt comes from, for the per-source lock-out.
        #[arg(long, default_value = "cli")]
        source: String,
        #[arg(long, default_value = "cli")]
        call_id: String,
    },
    /// Settle pending top-ups once (the server does this by itself every
    /// reconcile_interval_s); exit 1 if any are still pending.
    Reconcile {
        #[command(flatten)]
        billing: BillingPaths,
    },
    /// Outbound campaigns (surveys, return visits): create, import numbers, do-not-call
    /// list, status. The calls themselves are not placed yet.
    Campaign {
        /// Where the SQLite database lives.
        #[arg(long, env = "ANSWERLINE_DATA", default_value = "data", global = true)]
        data: PathBuf,
        #[command(subcommand)]
        cmd: answerline::campaign::cli::CampaignCmd,
    },
    /// Manage the agent directory in the database (first filled from agents.toml).
    Agents {
        /// Where the SQLite database lives.
        #[arg(long, env = "ANSWERLINE_DATA", default_value = "data", global = true)]
        data: PathBuf,
        /// Folder holding queues.toml and agents.toml (queues are checked against it).
        #[arg(
            long,
            env = "ANSWERLINE_PROFILES",
            default_value = "sip-profiles",
            global = true
        )]
        profiles: PathBuf,
        /// The running server's API (host:port), told of every change so it applies at once;
        /// default: api.toml's bind.
        #[arg(long, env = "ANSWERLINE_API", global = true)]
        api: Option<std::net::SocketAddr>,
        #[command(subcommand)]
        cmd: AgentsCmd,
    },
    /// The headset agent station (and lab softphone): registers as an agent's phone on the
    /// workstations profile, rings, answers, talks through the sound card.
    #[cfg(feature = "station")]
    Station(StationArgs),
}

#[cfg(feature = "station")]
#[derive(clap::Args)]
struct StationArgs {
    /// The server: HOST or HOST:PORT (port 5070, the workstations profile, by default).
    #[arg(long, required_unless_present = "list_devices")]
    server: Option<String>,
    /// The agent's extension (e.g. 8001).
    #[arg(long, required_unless_present = "list_devices")]
    agent: Option<String>,
    /// A file holding the SIP password (else ANSWERLINE_STATION_PASSWORD, else a prompt).
    #[arg(long)]
    password_file: Option<PathBuf>,
    /// List the sound devices and exit.
    #[arg(long)]
    list_devices: bool,
    /// Microphone by name (exact, or the first containing it); default device otherwise.
    #[arg(long)]
    input: Option<String>,
    /// Earpiece by name.
    #[arg(long)]
    output: Option<String>,
    /// A separate device that rings (the PC speaker); the earpiece otherwise.
    #[arg(long)]
    ring_device: Option<String>,
    /// Answer offered calls at once, with a short beep.
    #[arg(long)]
    auto_answer: bool,
    /// No screen: events as lines on stdout, commands from stdin (ready, answer, hangup...).
    #[arg(long)]
    headless: bool,
    /// No sound devices (signalling only; silence is sent).
    #[arg(long)]
    no_audio: bool,
    /// Noise gate threshold, 0.0-1.0 of full scale (e.g. 0.02); off by default.
    #[arg(long)]
    noise_gate: Option<f32>,
    /// Registration lifetime to ask for, seconds.
    #[arg(long, default_value_t = 300)]
    expires: u32,
    /// Go ready (*21) once registered.
    #[arg(long)]
    ready: bool,
    /// The server's HTTP API for the screen pop, states, transfer and wrap-up
    /// (default http://SERVER-HOST:8088). The screen works without it, from the INVITE's
    /// headers and feature codes.
    #[arg(long)]
    api: Option<String>,
    /// The codecs a dialled call offers, in order (opus, pcmu, pcma); G.711 first by default,
    /// so the hotline never transcodes. Offered calls are answered in the offerer's order.
    #[arg(long, env = "ANSWERLINE_STATION_CODECS")]
    codecs: Option<String>,
}

#[derive(Subcommand)]
enum AgentsCmd {
    /// Print every agent (never their passwords).
    List,
    /// Add an agent.
    Add {
        /// Work number (工号).
        #[arg(long)]
        id: u32,
        #[arg(long)]
        name: String,
        /// The SIP user the agent's phone registers as (digits).
        #[arg(long)]
        extension: String,
        /// Skill and level 1-10, e.g. --skill billing=7; repeat for more.
        #[arg(long = "skill", value_parser = directory::parse_skill)]
        skills: Vec<(String, u8)>,
        /// A queue the agent answers (an id from queues.toml); repeat for more.
        #[arg(long = "queue", required = true)]
        queues: Vec<String>,
        /// "agent" (default) or "supervisor": what their API login (desk, wallboard) reaches.
        #[arg(long)]
        role: Option<String>,
        /// Read the phone password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Change an agent: only what is given changes; --skill and --queue replace the lists.
    Set {
        id: u32,
        #[arg(long)]
        name: Option<String>,
        /// A new extension drops the phone password (it was tied to the old one) unless
        /// --password-stdin gives a new one.
        #[arg(long)]
        extension: Option<String>,
        #[arg(long = "skill", value_parser = directory::parse_skill)]
        skills: Vec<(String, u8)>,
        #[arg(long = "queue")]
        queues: Vec<String>,
        /// "agent" or "supervisor".
        #[arg(long)]
        role: Option<String>,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Remove an agent.
    Remove { id: u32 },
    /// Set an agent's phone password (stored only as digest HA1s). Prompts on a terminal.
    Passwd {
        id: u32,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(clap::Args, Clone)]
struct BillingPaths {
    /// Where the SQLite database lives.
    #[arg(long, env = "ANSWERLINE_DATA", default_value = "data")]
    data: PathBuf,
    /// Folder holding billing.toml (the backend choice); none there means embedded.
    #[arg(long, env = "ANSWERLINE_PROFILES", default_value = "sip-profiles")]
    profiles: PathBuf,
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
        api_bind: None,
    }
}

fn main() -> ExitCode {
    // Flushed when dropped at the end of main: keep it alive across `exit`.
    let (log_writer, _log_flush) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(true)
        .finish(std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ANSWERLINE_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(log_writer)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    answerline::server::panics::install();
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Serve {
            paths,
            bind,
            sip_port,
            rtp_ports,
            rtp_timeout_ms,
            no_realtime,
            api_bind,
        } => {
            let mut o = options(paths);
            o.api_bind = api_bind;
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
        Cmd::Report {
            from,
            to,
            format,
            interval,
            data,
            profiles,
            out,
        } => answerline::report::cli::run(&answerline::report::cli::Args {
            from,
            to,
            format,
            interval,
            data,
            profiles,
            out,
        }),
        Cmd::Audit {
            billing,
            grace_s,
            against_backend,
        } => return exit(audit(&billing, grace_s, against_backend)),
        Cmd::Topup {
            billing,
            msisdn,
            card,
            key,
            caller,
            source,
            call_id,
        } => topup(&billing, msisdn, card, key, caller, source, call_id),
        Cmd::Reconcile { billing } => return exit(reconcile(&billing)),
        Cmd::Campaign { data, cmd } => answerline::campaign::cli::run(&data, cmd),
        Cmd::Agents {
            data,
            profiles,
            cmd,
            api,
        } => agents(&data, &profiles, api, cmd),
        #[cfg(feature = "station")]
        Cmd::Station(a) => station(a),
    };
    exit(result.map(|()| ExitCode::SUCCESS))
}

fn exit(result: anyhow::Result<ExitCode>) -> ExitCode {
    match result {
        Ok(code) => code,
        // systemd's Restart=on-failure (or any supervisor) restarts a server whose media
        // worker is gone; 70 (EX_SOFTWARE) tells that apart from a bad start.
        Err(e) if e.is::<server::WorkerStopped>() => {
            tracing::error!("{e}");
            ExitCode::from(70)
        }
        Err(e) => {
            eprintln!("answerline: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn open_billing(
    p: &BillingPaths,
    must_exist: bool,
) -> anyhow::Result<(Arc<Db>, answerline::billing::BillingConfig)> {
    let cfg = billing::load_billing_config(&p.profiles)?;
    if must_exist {
        require_db(p)?;
    }
    let db = Arc::new(Db::open(&p.data.join("answerline.db"))?);
    Ok((db, cfg))
}

/// Audit and reconcile inspect books that exist: a mistyped --data must not quietly create
/// (and pass) a fresh demo database.
fn require_db(p: &BillingPaths) -> anyhow::Result<()> {
    let path = p.data.join("answerline.db");
    if !path.exists() {
        anyhow::bail!(
            "no database at {}; point --data (or ANSWERLINE_DATA) at the server's data folder",
            path.display()
        );
    }
    Ok(())
}

fn topups(p: &BillingPaths, must_exist: bool) -> anyhow::Result<Topups> {
    let (db, cfg) = open_billing(p, must_exist)?;
    let backend = cfg.build_backend(db.clone());
    Ok(Topups::new(backend, db, cfg.topup)?)
}

fn audit(p: &BillingPaths, grace_s: i64, against_backend: bool) -> anyhow::Result<ExitCode> {
    let (db, cfg) = open_billing(p, true)?;
    let mut report = billing::audit::audit(
        &db,
        &billing::audit::AuditOptions {
            grace_secs: grace_s,
            embedded: cfg.is_embedded(),
            now_unix: answerline::store::unix_now(),
        },
    )?;
    if against_backend {
        let backend = cfg.build_backend(db.clone());
        report
            .problems
            .extend(billing::audit::against_backend(&db, backend.as_ref())?);
    }
    for line in &report.problems {
        println!("{line}");
    }
    println!("{}", report.summary());
    Ok(if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn topup(
    p: &BillingPaths,
    msisdn: String,
    card: String,
    key: String,
    caller: Option<String>,
    source: String,
    call_id: String,
) -> anyhow::Result<()> {
    let card = if card == "-" {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        line.trim().to_string()
    } else {
        card
    };
    let topups = topups(p, false)?;
    let caller = caller.or_else(|| Some(msisdn.clone()));
    let r = Redemption {
        key,
        attempt: CardAttempt {
            card: CardSecret(card),
            caller: caller.as_deref().and_then(billing::normalize_msisdn),
            source,
        },
        msisdn: billing::normalize_msisdn(&msisdn).unwrap_or(msisdn),
        call_id,
    };
    let outcome = topups.redeem(&r)?;
    println!("{outcome}");
    Ok(())
}

fn reconcile(p: &BillingPaths) -> anyhow::Result<ExitCode> {
    let report = topups(p, true)?.reconcile();
    println!("reconcile: {report}");
    Ok(if report.still_pending == 0 && report.unreadable == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
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
        let mut agent = String::new();
        if let Some(a) = c.agent {
            agent = format!(
                "  agent={a} queue={} talk={}s hold={}s",
                c.queue.as_deref().unwrap_or("-"),
                c.talk_ms.unwrap_or(0) / 1000,
                c.hold_ms.unwrap_or(0) / 1000
            );
        }
        if let Some(w) = &c.wrap_up {
            // {:?} escapes the note: it is the agent's free text.
            agent.push_str(&format!(
                "  wrap_up={} demand={} note={:?}",
                w.code,
                if w.demand { "yes" } else { "no" },
                w.note
            ));
        }
        println!(
            "{}  {}  {} -> {}  {}  {}ms  path={}  inputs={}  outcome={}{agent}",
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

/// The directory, filled from agents.toml first if empty (as the server does at start), and
/// the queue ids agents may answer.
fn open_directory(data: &Path, profiles: &Path) -> anyhow::Result<(Db, Vec<String>)> {
    let (acd, records) = answerline::acd::AcdConfig::load(profiles)?;
    let db = Db::open(&data.join("answerline.db"))?;
    db.seed_agents(&records, &acd.lab_passwords)?;
    Ok((db, acd.queues.iter().map(|q| q.id.0.clone()).collect()))
}

/// One line of standard input, or a prompt without echo on a terminal. Never printed.
fn read_password(from_stdin: bool) -> anyhow::Result<String> {
    use std::io::{BufRead, IsTerminal, Write};
    let stdin = std::io::stdin();
    let tty = !from_stdin && stdin.is_terminal();
    if !from_stdin && !tty {
        anyhow::bail!("give the password on standard input with --password-stdin");
    }
    let echo = tty.then(no_echo);
    if tty {
        eprint!("phone password: ");
        std::io::stderr().flush().ok();
    }
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if let Some(Some(saved)) = echo {
        // SAFETY: restores the terminal settings read from the same descriptor.
        unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &saved) };
        eprintln!();
    }
    read?;
    let pw = line.trim_end_matches(['\r', '\n']).to_string();
    if pw.is_empty() {
        anyhow::bail!("no password on standard input");
    }
    Ok(pw)
}

/// Turns terminal echo off; returns the settings to restore.
fn no_echo() -> Option<libc::termios> {
    // SAFETY: termios is plain data; tcgetattr fills it or fails without touching the terminal.
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(libc::STDIN_FILENO, &mut t) != 0 {
            return None;
        }
        let saved = t;
        t.c_lflag &= !libc::ECHO;
        (libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &t) == 0).then_some(saved)
    }
}

fn agents(
    data: &Path,
    profiles: &Path,
    api: Option<std::net::SocketAddr>,
    cmd: AgentsCmd,
) -> anyhow::Result<()> {
    let (db, known) = open_directory(data, profiles)?;
    let changed = match &cmd {
        AgentsCmd::List => None,
        AgentsCmd::Add { id, .. }
        | AgentsCmd::Set { id, .. }
        | AgentsCmd::Remove { id }
        | AgentsCmd::Passwd { id, .. } => Some(*id),
    };
    match cmd {
        AgentsCmd::List => {
            println!(
                "{:<8} {:<12} {:<10} {:<32} {:<32} {:<10} PASSWORD",
                "ID", "NAME", "EXTENSION", "QUEUES", "SKILLS", "ROLE"
            );
            for a in db.agents()? {
                let skills: Vec<String> =
                    a.skills.iter().map(|(s, l)| format!("{s}={l}")).collect();
                println!(
                    "{:<8} {:<12} {:<10} {:<32} {:<32} {:<10} {}",
                    a.id,
                    a.name,
                    a.extension,
                    a.queues.join(","),
                    skills.join(","),
                    a.role.name(),
                    if a.has_password() { "set" } else { "none" }
                );
            }
        }
        AgentsCmd::Add {
            id,
            name,
            extension,
            skills,
            queues,
            role,
            password_stdin,
        } => {
            let password = password_stdin.then(|| read_password(true)).transpose()?;
            let has_password = password.is_some();
            let row = directory::create(
                AgentFields {
                    id: Some(id),
                    name: Some(name),
                    extension: Some(extension),
                    skills: Some(skills.into_iter().collect()),
                    queues: Some(queues),
                    password,
                    role,
                },
                &known,
            )?;
            db.insert_agent(&row)?;
            println!("added agent {id} (extension {})", row.extension);
            if !has_password {
                println!("its phone cannot register until you run: answerline agents passwd {id}");
            }
        }
        AgentsCmd::Set {
            id,
            name,
            extension,
            skills,
            queues,
            role,
            password_stdin,
        } => {
            let row = db
                .agent(id)?
                .ok_or_else(|| anyhow::anyhow!("no agent {id}; see `answerline agents list`"))?;
            let fields = AgentFields {
                id: None,
                name,
                extension,
                skills: (!skills.is_empty()).then(|| skills.into_iter().collect()),
                queues: (!queues.is_empty()).then_some(queues),
                password: password_stdin.then(|| read_password(true)).transpose()?,
                role,
            };
            let edited = directory::update(row, fields, &known)?;
            db.upsert_agent(&edited.row)?;
            println!("changed agent {id}");
            if edited.password_cleared {
                println!(
                    "the new extension needs a new phone password: answerline agents passwd {id}"
                );
            }
        }
        AgentsCmd::Remove { id } => {
            if !db.remove_agent(id)? {
                anyhow::bail!("no agent {id}; see `answerline agents list`");
            }
            println!("removed agent {id}");
        }
        AgentsCmd::Passwd { id, password_stdin } => {
            if db.agent(id)?.is_none() {
                anyhow::bail!("no agent {id}; see `answerline agents list`");
            }
            let pw = read_password(password_stdin)?;
            db.set_agent_password(id, &pw)?;
            println!("phone password of agent {id} set");
        }
    }
    if let Some(id) = changed {
        tell_running_server(profiles, api, id)?;
    }
    Ok(())
}

/// A running server takes the change at once; without one it applies at the next start.
fn tell_running_server(
    profiles: &Path,
    api: Option<std::net::SocketAddr>,
    id: u32,
) -> anyhow::Result<()> {
    use answerline::api::{client, ApiConfig};
    let cfg = ApiConfig::load(profiles)?;
    let Some((addr, token)) = client::api_of(cfg.as_ref(), api) else {
        println!("no api.toml: a running server takes the change at its next start");
        return Ok(());
    };
    match client::reload_agent(addr, token.as_deref(), id) {
        Ok(()) => println!("the running server took the change"),
        Err(why) => println!("{why}; the change applies when the server starts"),
    }
    Ok(())
}

#[cfg(feature = "station")]
fn station(a: StationArgs) -> anyhow::Result<()> {
    use answerline::station::run;
    if a.list_devices {
        return run::list_devices();
    }
    run::run(run::Options {
        server: a.server.unwrap_or_default(),
        agent: a.agent.unwrap_or_default(),
        password_file: a.password_file,
        input: a.input,
        output: a.output,
        ring: a.ring_device,
        auto_answer: a.auto_answer,
        headless: a.headless,
        no_audio: a.no_audio,
        noise_gate: a.noise_gate,
        expires: a.expires,
        ready: a.ready,
        api: a.api,
        codecs: a.codecs,
    })
}
