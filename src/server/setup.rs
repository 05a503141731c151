//! Start-up: load and check everything before a single socket is opened, so that a bad
//! profile, menu or prompt stops the server with a message naming the file.

use crate::acd::{Acd, AcdConfig, QueueId};
use crate::api::ApiConfig;
use crate::auth::LockoutConfig;
use crate::billing::{load_billing_config, reconciler, BillingBackend, TopupDesk, Topups};
use crate::call::{BillingSide, Directory, EngineOptions, RecognizerHearing, SpeechSide};
use crate::config::{load_profiles, ConfigError, PortRange, Profile, Retention, Role, Security};
use crate::ivr::MenuSet;
use crate::media::prompts::PromptSet;
use crate::speech::{load_recognizer, AsrConfig, IntentMatcher};
use crate::store::Db;
use anyhow::{bail, Context};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub const LANGS: [&str; 2] = ["zh", "en"];

#[derive(Clone, Debug)]
pub struct ServeOptions {
    pub profiles: PathBuf,
    pub hardware: PathBuf,
    pub prompts: PathBuf,
    pub data: PathBuf,
    pub bind: Option<IpAddr>,
    pub sip_port: Option<u16>,
    pub rtp_ports: Option<PortRange>,
    pub rtp_timeout: Option<Duration>,
    /// Try to run the media worker at real-time priority.
    pub realtime: bool,
    /// Overrides api.toml's bind (tests: port 0).
    pub api_bind: Option<std::net::SocketAddr>,
}

pub struct Prepared {
    pub profiles: Vec<Profile>,
    pub prompts: Arc<PromptSet>,
    pub menus: Arc<MenuSet>,
    pub db: Arc<Db>,
    pub billing: BillingSide,
    /// The recogniser and intent matcher; None: speech steps are keys only.
    pub speech: Option<SpeechSide>,
    pub options: EngineOptions,
    pub realtime: bool,
    /// Queues, agent settings and the agent directory, when a profile has `role = "agents"`.
    pub acd: Option<(Acd, Directory)>,
    /// The HTTP API (api.toml) and the queue ids it checks transfers and agents against.
    pub api: Option<(ApiConfig, Vec<String>)>,
    /// Lock-out of agent phones' REGISTER guessers (security.toml; the API has its copy).
    pub lockout: LockoutConfig,
}

/// Loads profiles, menus and prompts and opens the store (creating and seeding it on first start).
pub fn prepare(o: &ServeOptions) -> anyhow::Result<Prepared> {
    let (profiles, menus, prompts) = check_config(o)?;
    std::fs::create_dir_all(&o.data)
        .with_context(|| format!("cannot create the data folder {}", o.data.display()))?;
    let db = Arc::new(Db::open(&o.data.join("answerline.db"))?);
    let (backend, topups) = start_billing(o, db.clone())?;
    let speech = start_speech(o)?;
    let acd = load_acd(o, &profiles, &db)?;
    let security = Security::load(&o.profiles)?;
    let api = load_api(o, acd.as_ref(), &security)?;
    super::retention::spawn(db.clone(), Retention::load(&o.profiles)?)
        .context("cannot start the retention pass")?;
    super::webhooks::spawn(db.clone(), crate::webhook::Webhooks::load(&o.profiles)?)
        .context("cannot start the webhook sender")?;
    let billing = BillingSide {
        backend,
        topups: topups as Arc<dyn TopupDesk>,
        boot_id: boot_id(),
    };
    Ok(Prepared {
        profiles,
        prompts: Arc::new(prompts),
        menus,
        db,
        billing,
        options: EngineOptions {
            rtp_timeout: o.rtp_timeout,
            speech: speech.is_some(),
            ..EngineOptions::default()
        },
        speech,
        realtime: o.realtime,
        acd,
        api,
        lockout: security.lockout,
    })
}

fn load_api(
    o: &ServeOptions,
    acd: Option<&(Acd, Directory)>,
    security: &Security,
) -> anyhow::Result<Option<(ApiConfig, Vec<String>)>> {
    let Some(mut cfg) = ApiConfig::load(&o.profiles)? else {
        return Ok(None);
    };
    cfg.lockout = security.lockout.clone();
    cfg.quality = Arc::new(crate::quality::Form::load(&o.profiles)?);
    if let Some(b) = o.api_bind {
        if cfg.token.is_none() && !b.ip().is_loopback() {
            bail!("--api-bind {b}: api.toml has no token, so the API may only listen on loopback; set token in {}", o.profiles.join(crate::api::API_FILE).display());
        }
        cfg.bind = b;
    }
    let queues = acd
        .map(|(a, _)| a.config().queues.iter().map(|q| q.id.0.clone()).collect())
        .unwrap_or_default();
    Ok(Some((cfg, queues)))
}

/// The ACD, when agent phones have a profile: queues.toml, agents.toml and the directory.
fn load_acd(
    o: &ServeOptions,
    profiles: &[Profile],
    db: &Arc<Db>,
) -> anyhow::Result<Option<(Acd, Directory)>> {
    let Some(cfg) = check_acd(o, profiles)? else {
        return Ok(None);
    };
    // The directory lives in the database; agents.toml only fills an empty one.
    let (_, records) = AcdConfig::load(&o.profiles)?;
    db.seed_agents(&records, &cfg.lab_passwords)?;
    let directory = db
        .agents()?
        .into_iter()
        .map(|row| (row.record(), row.credentials()))
        .collect();
    Ok(Some((Acd::new(cfg), directory)))
}

/// queues.toml and agents.toml, and every caller profile's `queue` among the queues.
fn check_acd(o: &ServeOptions, profiles: &[Profile]) -> anyhow::Result<Option<AcdConfig>> {
    if !profiles.iter().any(|p| p.role == Role::Agents) {
        return Ok(None);
    }
    let (cfg, _) = AcdConfig::load(&o.profiles)?;
    for p in profiles.iter().filter(|p| p.role == Role::Callers) {
        if cfg.queue(&QueueId::from(p.queue.as_str())).is_none() {
            let text = std::fs::read_to_string(&p.source).unwrap_or_default();
            let names: Vec<&str> = cfg.queues.iter().map(|q| q.id.as_str()).collect();
            return Err(ConfigError::key(
                &p.source,
                Some(&text),
                "queue",
                format!(
                    "no queue '{}' in queues.toml; use one of: {}",
                    p.queue,
                    names.join(", ")
                ),
            )
            .into());
        }
    }
    for p in profiles {
        for (number, to) in &p.routes {
            let Some(q) = to.strip_prefix("queue:") else {
                continue;
            };
            let ok = cfg.queue(&QueueId::from(q)).is_some_and(|q| q.front_line);
            if !ok {
                let text = std::fs::read_to_string(&p.source).unwrap_or_default();
                return Err(ConfigError::key(
                    &p.source,
                    Some(&text),
                    "routes",
                    format!("\"{number}\" = \"{to}\": no queue '{q}' with front_line = true in queues.toml; name an answer-line queue or a menu node"),
                )
                .into());
            }
        }
    }
    Ok(Some(cfg))
}

/// The configured billing backend (`billing.toml` beside the profiles) and the top-up
/// service over it, with its reconciler running in the background for the life of the
/// process (first pass at once: top-ups left pending by the last run are settled).
pub fn start_billing(
    o: &ServeOptions,
    db: Arc<Db>,
) -> anyhow::Result<(Arc<dyn BillingBackend>, Arc<Topups>)> {
    let cfg = load_billing_config(&o.profiles)?;
    let backend = cfg.build_backend(db.clone());
    let topups = Arc::new(Topups::new(backend.clone(), db, cfg.topup.clone())?);
    let every = Duration::from_secs(cfg.topup.reconcile_interval_s);
    reconciler::spawn(topups.clone(), every)
        .context("cannot start the top-up reconciler")?
        .detach();
    Ok((backend, topups))
}

/// The recogniser (Whisper with `<data>/models/`, or a network engine, per `ANSWERLINE_ASR*`)
/// with the intent phrases of `prompts/intents.toml`; None when there is no recogniser, and
/// then speech steps are keys only (logged once, with the reason).
fn start_speech(o: &ServeOptions) -> anyhow::Result<Option<SpeechSide>> {
    let matcher = IntentMatcher::load(&o.prompts.join("intents.toml"))?;
    let cfg = AsrConfig::for_data_dir(&o.data)
        .with_env()
        .map_err(|e| anyhow::anyhow!(e))?;
    Ok(load_recognizer(&cfg).map(|recognizer| {
        Arc::new(RecognizerHearing {
            recognizer,
            matcher,
        }) as SpeechSide
    }))
}

/// Everything that can be wrong in the configuration, checked without touching the store.
pub fn check_config(o: &ServeOptions) -> anyhow::Result<(Vec<Profile>, Arc<MenuSet>, PromptSet)> {
    let mut profiles = load_profiles(&o.profiles, &o.hardware)?;
    load_billing_config(&o.profiles)?;
    Retention::load(&o.profiles)?;
    Security::load(&o.profiles)?;
    crate::webhook::Webhooks::load(&o.profiles)?;
    crate::quality::Form::load(&o.profiles)?;
    let acd_on = check_acd(o, &profiles)?.is_some();
    apply_overrides(&mut profiles, o)?;
    let menus = Arc::new(MenuSet::load(&o.prompts.join("menus.toml"))?);
    let prompts = PromptSet::load(&o.prompts, &LANGS)?;
    for lang in LANGS {
        // Menus and number/money units alike: a missing one would be silence mid-sentence.
        let names = crate::ivr::all_prompt_names(&menus, lang);
        prompts.require(lang, names.iter().map(String::as_str))?;
        if acd_on {
            prompts.require(lang, crate::call::QUEUE_PROMPTS.iter().copied())?;
        }
    }
    Ok((profiles, menus, prompts))
}

fn apply_overrides(profiles: &mut [Profile], o: &ServeOptions) -> anyhow::Result<()> {
    if let Some(ip) = o.bind {
        for p in profiles.iter_mut() {
            p.bind = ip;
        }
    }
    if let Some(base) = o.sip_port {
        // Shift every profile by one offset so their relative layout (lab 5060, trunk 5080) holds.
        for p in profiles.iter_mut() {
            let shifted = base as i32 + (p.port as i32 - 5060);
            if !(1..=65535).contains(&shifted) {
                bail!("--sip-port {base} would put profile '{}' on port {shifted}; choose a port between 1024 and 60000", p.name);
            }
            p.port = shifted as u16;
        }
    }
    if let Some(r) = o.rtp_ports {
        // Split the range evenly between the profiles.
        let n = profiles.len();
        let share = r.len() / n;
        if share < 2 {
            bail!(
                "--rtp-ports {r} is too small for {n} profiles; give at least {} ports",
                2 * n
            );
        }
        for (i, p) in profiles.iter_mut().enumerate() {
            let lo = r.lo as usize + i * share;
            p.rtp_ports = PortRange {
                lo: lo as u16,
                hi: (lo + share - 1) as u16,
            };
        }
    }
    Ok(())
}

/// This run of the server, for idempotency keys: start time (ms) and process id.
fn boot_id() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    format!("{ms:x}.{:x}", std::process::id())
}
