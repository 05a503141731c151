use super::error::{line_of_offset, ConfigError};
use super::net::{Cidr, PortRange};
use crate::media::g711::Law;
use crate::speech::VadConfig;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// How a profile accepts digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DtmfMode {
    Rfc4733,
    Info,
    /// Tones in the caller's audio (carriers that pass DTMF in-band only).
    Inband,
    /// Every path; a digit seen on several counts once.
    Auto,
}

/// Who dials in on a profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Customers (trunks, softphones): they get the IVR.
    Callers,
    /// Agent phones: they REGISTER here (digest auth against the agent directory), are rung
    /// here for queued callers, and dial feature codes (*20 log in ... *23 log out).
    Agents,
}

/// Which header carries the caller's number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallerIdSource {
    /// P-Asserted-Identity when present, else From.
    Pai,
    From,
}

/// One SIP listener with its media and routing policy, validated.
#[derive(Clone, Debug)]
pub struct Profile {
    pub name: String,
    pub source: PathBuf,
    pub device: Option<String>,
    pub bind: IpAddr,
    pub port: u16,
    pub udp: bool,
    pub tcp: bool,
    pub codecs: Vec<Law>,
    pub dtmf: DtmfMode,
    pub ptime_ms: u32,
    pub rtp_ports: PortRange,
    pub rtp_timeout_s: u32,
    pub send_ringing: bool,
    /// Ring this long before answering (ringback for the caller; room for a CANCEL).
    pub answer_delay_ms: u32,
    pub allow: Vec<Cidr>,
    pub caller_id: CallerIdSource,
    pub agent_uri: Option<String>,
    /// Where a queued caller who asked to be called back is dialled: a SIP URI with
    /// `{number}`, e.g. "sip:{number}@192.0.2.1:5060" (the PSTN gateway). None: callbacks
    /// are not offered to this profile's callers.
    pub callback_uri: Option<String>,
    pub role: Role,
    /// The ACD queue a caller asking for an agent joins (queues.toml), unless the menu names one.
    pub queue: String,
    /// Agent phones: the digest algorithms REGISTER challenges offer, strongest first.
    pub digest: Vec<crate::sip::digest::Algo>,
    /// Called number → menu node; "*" matches every other number.
    pub routes: BTreeMap<String, String>,
    /// Listen for the caller's voice: talking stops prompts that allow it (menus.toml).
    pub voice_barge_in: bool,
    /// How speech is told from noise when `voice_barge_in` is on.
    pub vad: VadConfig,
    /// Calls in progress on this profile past which new INVITEs get 503 (0 = no limit).
    pub max_calls: u32,
    /// New calls per second admitted on this profile, a burst of one second allowed (0 = no limit).
    pub max_calls_per_s: u32,
    /// Per-source request budgets; sources in `allow` are exempt.
    pub flood: crate::sip::FloodLimits,
}

impl Profile {
    /// The menu node a called number reaches.
    pub fn route(&self, called: Option<&str>) -> &str {
        called
            .and_then(|c| self.routes.get(c))
            .or_else(|| self.routes.get("*"))
            .map(String::as_str)
            .unwrap_or("welcome")
    }

    pub fn allows(&self, ip: IpAddr) -> bool {
        self.allow.is_empty() || self.allow.iter().any(|c| c.contains(ip))
    }

    /// A source named in the allow-list (a trunk's gateway), as opposed to anyone at all.
    pub fn trusted(&self, ip: IpAddr) -> bool {
        self.allow.iter().any(|c| c.contains(ip))
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    name: Option<String>,
    device: Option<String>,
    bind: Option<String>,
    port: Option<u16>,
    transports: Option<Vec<String>>,
    codecs: Option<Vec<String>>,
    dtmf: Option<String>,
    ptime_ms: Option<u32>,
    rtp_ports: Option<String>,
    rtp_timeout_s: Option<u32>,
    send_ringing: Option<bool>,
    answer_delay_ms: Option<u32>,
    allow: Option<Vec<String>>,
    caller_id: Option<String>,
    agent_uri: Option<String>,
    callback_uri: Option<String>,
    role: Option<String>,
    queue: Option<String>,
    digest: Option<Vec<String>>,
    routes: Option<BTreeMap<String, String>>,
    voice_barge_in: Option<bool>,
    voice_onset_ms: Option<u32>,
    voice_hangover_ms: Option<u32>,
    voice_threshold: Option<f32>,
    max_calls: Option<u32>,
    max_calls_per_s: Option<u32>,
    flood: Option<RawFlood>,
}

/// `[flood]`: requests per second one source may send, by kind.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawFlood {
    invite_per_s: Option<u32>,
    register_per_s: Option<u32>,
    options_per_s: Option<u32>,
    other_per_s: Option<u32>,
    burst_s: Option<u32>,
    block_s: Option<u32>,
}

/// The keys a `hardware/<device>.toml` may set; the profile's own keys win.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDevice {
    #[allow(dead_code)]
    description: Option<String>,
    codecs: Option<Vec<String>>,
    dtmf: Option<String>,
    ptime_ms: Option<u32>,
    caller_id: Option<String>,
    send_ringing: Option<bool>,
}

fn parse_toml<T: for<'de> Deserialize<'de>>(path: &Path, text: &str) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| line_of_offset(text, s.start));
        let msg = e.message().to_string();
        // serde names the offending field in "unknown field `x`, expected one of ..."
        let key = msg
            .split('`')
            .nth(1)
            .filter(|_| msg.starts_with("unknown field"))
            .unwrap_or("(syntax)")
            .to_string();
        ConfigError::Key {
            path: path.to_path_buf(),
            line,
            key,
            reason: format!("{msg}; see the comments in sip-profiles/lab.toml for every key"),
        }
    })
}

pub(super) fn load(path: &Path, hardware_dir: &Path) -> Result<Profile, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Io {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let raw: RawProfile = parse_toml(path, &text)?;
    let kerr = |key: &str, reason: String| ConfigError::key(path, Some(&text), key, reason);

    let device = match &raw.device {
        Some(d) => {
            let dpath = hardware_dir.join(format!("{d}.toml"));
            let dtext = std::fs::read_to_string(&dpath).map_err(|_| {
                kerr(
                    "device",
                    format!(
                        "no device file {}; use one of the files in {} (without .toml)",
                        dpath.display(),
                        hardware_dir.display()
                    ),
                )
            })?;
            let dev: RawDevice = parse_toml(&dpath, &dtext)?;
            Some((dpath, dtext, dev))
        }
        None => None,
    };
    let dev = device.as_ref().map(|(_, _, d)| d);
    // A value from the device file is reported against the device file when it is invalid.
    let src_path = |key_in_profile: bool| -> (&Path, &str) {
        match (&device, key_in_profile) {
            (Some((p, t, _)), false) => (p.as_path(), t.as_str()),
            _ => (path, text.as_str()),
        }
    };

    let name = raw.name.clone().unwrap_or_else(|| {
        path.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "default".into())
    });
    let bind: IpAddr = raw
        .bind
        .as_deref()
        .unwrap_or("0.0.0.0")
        .parse()
        .map_err(|_| {
            kerr(
                "bind",
                format!(
                    "\"{}\" is not an IP address; write e.g. \"0.0.0.0\" or \"192.0.2.10\"",
                    raw.bind.as_deref().unwrap_or("")
                ),
            )
        })?;
    let port = raw.port.unwrap_or(5060);
    if port == 0 {
        return Err(kerr(
            "port",
            "0 is not a port to listen on; write e.g. 5060".into(),
        ));
    }

    let transports = raw
        .transports
        .clone()
        .unwrap_or_else(|| vec!["udp".into(), "tcp".into()]);
    let mut udp = false;
    let mut tcp = false;
    for t in &transports {
        match t.to_ascii_lowercase().as_str() {
            "udp" => udp = true,
            "tcp" => tcp = true,
            other => {
                return Err(kerr(
                    "transports",
                    format!("\"{other}\" is not supported; use [\"udp\", \"tcp\"] or one of them"),
                ))
            }
        }
    }
    if !udp && !tcp {
        return Err(kerr(
            "transports",
            "is empty; use [\"udp\", \"tcp\"]".into(),
        ));
    }

    let (codec_list, codec_from_profile) = match (&raw.codecs, dev.and_then(|d| d.codecs.clone())) {
        (Some(c), _) => (c.clone(), true),
        (None, Some(c)) => (c, false),
        (None, None) => (vec!["PCMA".into(), "PCMU".into()], true),
    };
    let mut codecs = Vec::new();
    for c in &codec_list {
        let law = match c.to_ascii_uppercase().as_str() {
            "PCMA" | "G711A" => Law::Alaw,
            "PCMU" | "G711U" => Law::Ulaw,
            other => {
                let (p, t) = src_path(codec_from_profile);
                return Err(ConfigError::key(
                    p,
                    Some(t),
                    "codecs",
                    format!("\"{other}\" is not a supported codec; use \"PCMA\" and/or \"PCMU\""),
                ));
            }
        };
        if !codecs.contains(&law) {
            codecs.push(law);
        }
    }
    if codecs.is_empty() {
        return Err(kerr("codecs", "is empty; use [\"PCMA\", \"PCMU\"]".into()));
    }

    let (dtmf_s, dtmf_from_profile) = pick(&raw.dtmf, dev.and_then(|d| d.dtmf.clone()), "auto");
    let dtmf = match dtmf_s.as_str() {
        "rfc4733" | "rfc2833" => DtmfMode::Rfc4733,
        "info" => DtmfMode::Info,
        "inband" => DtmfMode::Inband,
        "auto" => DtmfMode::Auto,
        other => {
            let (p, t) = src_path(dtmf_from_profile);
            return Err(ConfigError::key(
                p,
                Some(t),
                "dtmf",
                format!("\"{other}\" is not a DTMF mode; use \"rfc4733\", \"info\", \"inband\" or \"auto\""),
            ));
        }
    };

    let (ptime_ms, ptime_from_profile) = match (raw.ptime_ms, dev.and_then(|d| d.ptime_ms)) {
        (Some(p), _) => (p, true),
        (None, Some(p)) => (p, false),
        (None, None) => (20, true),
    };
    if ptime_ms != 20 && ptime_ms != 30 {
        let (p, t) = src_path(ptime_from_profile);
        return Err(ConfigError::key(
            p,
            Some(t),
            "ptime_ms",
            format!("{ptime_ms} is not supported; use 20 or 30"),
        ));
    }

    let rtp_ports: PortRange = raw
        .rtp_ports
        .as_deref()
        .unwrap_or("20000-29999")
        .parse()
        .map_err(|e| kerr("rtp_ports", e))?;

    let answer_delay_ms = raw.answer_delay_ms.unwrap_or(0);
    if answer_delay_ms > 10_000 {
        return Err(kerr(
            "answer_delay_ms",
            format!("{answer_delay_ms} ms would leave callers ringing; use 0 to 10000"),
        ));
    }
    let mut allow = Vec::new();
    for a in raw.allow.iter().flatten() {
        allow.push(a.parse::<Cidr>().map_err(|e| kerr("allow", e))?);
    }

    let (cid, cid_from_profile) =
        pick(&raw.caller_id, dev.and_then(|d| d.caller_id.clone()), "pai");
    let caller_id = match cid.as_str() {
        "pai" => CallerIdSource::Pai,
        "from" => CallerIdSource::From,
        other => {
            let (p, t) = src_path(cid_from_profile);
            return Err(ConfigError::key(
                p,
                Some(t),
                "caller_id",
                format!("\"{other}\" is not a caller-ID source; use \"pai\" or \"from\""),
            ));
        }
    };

    let agent_uri = raw.agent_uri.clone().filter(|s| !s.trim().is_empty());
    if let Some(u) = &agent_uri {
        if !(u.starts_with("sip:") || u.starts_with("sips:")) || !u.contains('@') && u.len() < 5 {
            return Err(kerr("agent_uri", format!("\"{u}\" is not a SIP URI; write e.g. \"sip:agents@192.0.2.20:5060\" or \"\" for none")));
        }
    }

    let callback_uri = raw.callback_uri.clone().filter(|s| !s.trim().is_empty());
    if let Some(u) = &callback_uri {
        if crate::call::callback_target(u, &"10010".into()).is_none() {
            return Err(kerr(
                "callback_uri",
                format!("\"{u}\" is not a SIP URI with {{number}} and an IP:port, e.g. \"sip:{{number}}@192.0.2.1:5060\"; \"\" for no callbacks"),
            ));
        }
    }
    let role = match raw.role.as_deref().unwrap_or("callers") {
        "callers" => Role::Callers,
        "agents" => Role::Agents,
        other => {
            return Err(kerr(
                "role",
                format!("\"{other}\" is not a role; use \"callers\" (customers, the IVR) or \"agents\" (agent phones register here)"),
            ))
        }
    };
    let queue = raw.queue.clone().unwrap_or_else(|| "billing".into());
    let mut digest = Vec::new();
    for name in raw
        .digest
        .clone()
        .unwrap_or_else(|| vec!["SHA-256".into(), "MD5".into()])
    {
        match crate::sip::digest::Algo::parse(&name) {
            Some(a) if !digest.contains(&a) => digest.push(a),
            Some(_) => {}
            None => {
                return Err(kerr(
                    "digest",
                    format!("\"{name}\" is not a digest algorithm; use [\"SHA-256\", \"MD5\"] or one of them"),
                ))
            }
        }
    }
    if digest.is_empty() {
        return Err(kerr(
            "digest",
            "is empty; use [\"SHA-256\", \"MD5\"]".into(),
        ));
    }

    let d = VadConfig::default();
    let vad = VadConfig {
        onset_ms: raw.voice_onset_ms.unwrap_or(d.onset_ms),
        hangover_ms: raw.voice_hangover_ms.unwrap_or(d.hangover_ms),
        threshold: raw.voice_threshold.unwrap_or(d.threshold),
    };
    if let Err(e) = vad.validate() {
        // The message starts with the field it is about.
        let key = ["threshold", "onset_ms", "hangover_ms"]
            .into_iter()
            .find(|f| e.starts_with(f))
            .map_or("voice_barge_in".to_string(), |f| format!("voice_{f}"));
        return Err(kerr(&key, e));
    }

    let flood = flood_limits(raw.flood.as_ref().unwrap_or(&RawFlood::default()))
        .map_err(|(key, reason)| kerr(&format!("flood.{key}"), reason))?;
    let max_calls = raw.max_calls.unwrap_or(4000);
    let max_calls_per_s = raw.max_calls_per_s.unwrap_or(200);
    if max_calls_per_s > 100_000 {
        return Err(kerr(
            "max_calls_per_s",
            format!("{max_calls_per_s} is more than any server takes; use 0 (no limit) to 100000"),
        ));
    }

    let mut routes = raw.routes.clone().unwrap_or_default();
    if routes.is_empty() {
        routes.insert("*".into(), "welcome".into());
    }

    Ok(Profile {
        name,
        source: path.to_path_buf(),
        device: raw.device.clone(),
        bind,
        port,
        udp,
        tcp,
        codecs,
        dtmf,
        ptime_ms,
        rtp_ports,
        rtp_timeout_s: raw.rtp_timeout_s.unwrap_or(60),
        send_ringing: raw
            .send_ringing
            .or(dev.and_then(|d| d.send_ringing))
            .unwrap_or(true),
        answer_delay_ms,
        allow,
        caller_id,
        agent_uri,
        callback_uri,
        role,
        queue,
        digest,
        routes,
        voice_barge_in: raw.voice_barge_in.unwrap_or(true),
        vad,
        max_calls,
        max_calls_per_s,
        flood,
    })
}

fn flood_limits(raw: &RawFlood) -> Result<crate::sip::FloodLimits, (&'static str, String)> {
    let d = crate::sip::FloodLimits::default();
    let rate = |key: &'static str, v: Option<u32>, def: u32| match v {
        Some(r) if r > 100_000 => Err((
            key,
            format!("{r} per second is no limit at all; use 0 (off) to 100000"),
        )),
        v => Ok(v.unwrap_or(def)),
    };
    let burst_s = raw.burst_s.unwrap_or(d.burst_s);
    if !(1..=60).contains(&burst_s) {
        return Err(("burst_s", format!("{burst_s} s; use 1 to 60")));
    }
    let block_s = raw.block_s.unwrap_or(d.block.as_secs() as u32);
    if !(1..=86_400).contains(&block_s) {
        return Err(("block_s", format!("{block_s} s; use 1 to 86400")));
    }
    Ok(crate::sip::FloodLimits {
        per_s: [
            rate("invite_per_s", raw.invite_per_s, d.per_s[0])?,
            rate("register_per_s", raw.register_per_s, d.per_s[1])?,
            rate("options_per_s", raw.options_per_s, d.per_s[2])?,
            rate("other_per_s", raw.other_per_s, d.per_s[3])?,
        ],
        burst_s,
        block: std::time::Duration::from_secs(block_s as u64),
        max_sources: d.max_sources,
    })
}

/// A value from the profile, else the device file, else the default; and whether the profile set it.
fn pick(own: &Option<String>, dev: Option<String>, default: &str) -> (String, bool) {
    match (own, dev) {
        (Some(v), _) => (v.to_ascii_lowercase(), true),
        (None, Some(v)) => (v.to_ascii_lowercase(), false),
        (None, None) => (default.to_string(), true),
    }
}

#[cfg(test)]
mod voice_tests {
    use super::*;

    fn load_text(tag: &str, text: &str) -> Result<Profile, ConfigError> {
        let d = std::env::temp_dir().join(format!("answerline-voice-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("gw.toml"), text).unwrap();
        let r = load(&d.join("gw.toml"), &d);
        let _ = std::fs::remove_dir_all(&d);
        r
    }

    #[test]
    fn voice_barge_in_is_on_by_default_and_can_be_turned_off() {
        let p = load_text("default", "port = 5070\n").unwrap();
        assert!(p.voice_barge_in);
        assert_eq!(p.vad, VadConfig::default());
        let p = load_text("off", "voice_barge_in = false\nvoice_onset_ms = 200\n").unwrap();
        assert!(!p.voice_barge_in);
        assert_eq!(p.vad.onset_ms, 200);
    }

    #[test]
    fn admission_limits_have_defaults_and_bad_values_name_key_and_line() {
        let p = load_text("adm-default", "port = 5070\n").unwrap();
        assert_eq!((p.max_calls, p.max_calls_per_s), (4000, 200));
        assert_eq!(p.flood, crate::sip::FloodLimits::default());
        let p = load_text(
            "adm-set",
            "max_calls = 10\nmax_calls_per_s = 0\n[flood]\ninvite_per_s = 5\nblock_s = 2\n",
        )
        .unwrap();
        assert_eq!((p.max_calls, p.max_calls_per_s), (10, 0));
        assert_eq!(p.flood.per_s[0], 5);
        assert_eq!(p.flood.block, std::time::Duration::from_secs(2));
        let e = load_text("adm-bad", "port = 5070\n[flood]\nblock_s = 0\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("gw.toml:3") && e.contains("flood.block_s"),
            "{e}"
        );
        let e = load_text("adm-bad2", "[flood]\ninvite_per_sec = 5\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("gw.toml:2") && e.contains("invite_per_sec"),
            "{e}"
        );
    }

    #[test]
    fn a_bad_detector_setting_names_its_key_and_line() {
        let e = load_text("bad", "port = 5070\nvoice_threshold = 3.0\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("gw.toml:2") && e.contains("voice_threshold"),
            "{e}"
        );
        let e = load_text("bad2", "voice_hangover_ms = 0\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("voice_hangover_ms") && e.contains("16"), "{e}");
    }
}
