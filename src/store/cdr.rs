//! Call detail records, one row per call in the `cdr` table.

use rusqlite::{params, Connection, Row};

use super::StoreError;

/// One call. Timestamps are RFC 3339 UTC ([`super::rfc3339_utc`]); `ivr_path` is menu node
/// ids joined by `>`; `inputs` is a JSON array built with [`inputs_json`], so that
/// sensitive values are already masked when the record exists at all.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cdr {
    /// Row id; ignored by `insert_cdr`, filled by `recent_cdrs`.
    pub id: i64,
    pub call_id: String,
    pub profile: String,
    pub caller: String,
    pub called: String,
    pub started_at: String,
    pub answered_at: Option<String>,
    pub ended_at: String,
    pub duration_ms: i64,
    pub hangup_cause: String,
    pub sip_code: u16,
    pub lang: String,
    pub ivr_path: String,
    pub inputs: String,
    pub outcome: String,
    /// The caller's own words on why they called (long digit runs masked), if asked.
    pub reason: Option<String>,
    /// The queue that served the caller (or that they left), the agent who answered, how
    /// long they waited in line, and the context the agent's screen showed.
    pub queue: Option<String>,
    pub agent: Option<u32>,
    pub wait_ms: Option<i64>,
    pub context_id: Option<String>,
    /// Time the caller spent on hold with the agent (None: the call reached no agent).
    pub hold_ms: Option<i64>,
    /// Time talking with agents, hold excluded (None: no agent).
    pub talk_ms: Option<i64>,
    /// The answering agent's wrap-up (after_call_work), joined in when read; ignored by
    /// `insert_cdr` (it arrives after the call, in its own table).
    pub wrap_up: Option<super::wrapup::WrapUpRow>,
    /// Where the caller was when the call ended: "setup" (never answered), "ivr", "queue"
    /// (waiting, no phone ringing), "ringing" (an agent's phone rang), "agent" (with an
    /// agent, or in a self-service step an agent sent them to), "after_agent" (survey, or
    /// back in the menus after the agent). None: written before migration 12.
    pub ended_in: Option<String>,
    /// When the last agent left the call (RFC 3339 UTC; None: no agent).
    pub agent_ended_at: Option<String>,
    /// Transfers by agents to another queue, or out of answerline by REFER.
    pub transfers: Option<u32>,
}

/// One caller input at a menu node. `sensitive` (PINs, card numbers) is written as `******`.
#[derive(Clone, Copy)]
pub struct CdrInput<'a> {
    pub node: &'a str,
    pub value: &'a str,
    pub sensitive: bool,
}

impl std::fmt::Debug for CdrInput<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let value = if self.sensitive { "******" } else { self.value };
        f.debug_struct("CdrInput")
            .field("node", &self.node)
            .field("value", &value)
            .finish()
    }
}

fn json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `[{"node":"pin","value":"******"},{"node":"main","value":"1"}]`
pub fn inputs_json<'a>(inputs: impl IntoIterator<Item = CdrInput<'a>>) -> String {
    let mut out = String::from("[");
    for (i, input) in inputs.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"node\":");
        json_str(&mut out, input.node);
        out.push_str(",\"value\":");
        json_str(
            &mut out,
            if input.sensitive {
                "******"
            } else {
                input.value
            },
        );
        out.push('}');
    }
    out.push(']');
    out
}

pub(super) fn insert(conn: &Connection, c: &Cdr) -> Result<i64, StoreError> {
    conn.execute(
        "INSERT INTO cdr (call_id, profile, caller, called, started_at, answered_at, ended_at,
           duration_ms, hangup_cause, sip_code, lang, ivr_path, inputs, outcome, reason,
           queue, agent, wait_ms, context_id, hold_ms, talk_ms, ended_in,
           agent_ended_at, transfers)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
           ?18, ?19, ?20, ?21, ?22, ?23, ?24)",
        params![
            c.call_id,
            c.profile,
            c.caller,
            c.called,
            c.started_at,
            c.answered_at,
            c.ended_at,
            c.duration_ms,
            c.hangup_cause,
            c.sip_code,
            c.lang,
            c.ivr_path,
            c.inputs,
            c.outcome,
            c.reason,
            c.queue,
            c.agent,
            c.wait_ms,
            c.context_id,
            c.hold_ms,
            c.talk_ms,
            c.ended_in,
            c.agent_ended_at,
            c.transfers
        ],
    )?;
    Ok(conn.last_insert_rowid())
}

/// The columns `from_row` reads, the wrap-up joined in (`w`: after_call_work of the
/// answering agent).
pub(super) const CDR_COLUMNS: &str = "cdr.id, cdr.call_id, profile, caller, called, started_at,
    answered_at, ended_at, duration_ms, hangup_cause, sip_code, lang, ivr_path, inputs, outcome,
    reason, queue, agent, wait_ms, context_id, hold_ms, talk_ms, w.agent_id, w.code, w.note,
    w.demand, w.at, ended_in, agent_ended_at, transfers";

/// Joins the answering agent's wrap-up to each CDR.
pub(super) const CDR_FROM: &str =
    "cdr LEFT JOIN after_call_work w ON w.call_id = cdr.call_id AND w.agent_id = cdr.agent";

pub(super) fn from_row(r: &Row<'_>) -> rusqlite::Result<Cdr> {
    let text = |i: usize| -> rusqlite::Result<String> {
        Ok(r.get::<_, Option<String>>(i)?.unwrap_or_default())
    };
    Ok(Cdr {
        id: r.get(0)?,
        call_id: text(1)?,
        profile: text(2)?,
        caller: text(3)?,
        called: text(4)?,
        started_at: text(5)?,
        answered_at: r.get(6)?,
        ended_at: text(7)?,
        duration_ms: r.get::<_, Option<i64>>(8)?.unwrap_or(0),
        hangup_cause: text(9)?,
        sip_code: r.get::<_, Option<u16>>(10)?.unwrap_or(0),
        lang: text(11)?,
        ivr_path: text(12)?,
        inputs: text(13)?,
        outcome: text(14)?,
        reason: r.get(15)?,
        queue: r.get(16)?,
        agent: r.get(17)?,
        wait_ms: r.get(18)?,
        context_id: r.get(19)?,
        hold_ms: r.get(20)?,
        talk_ms: r.get(21)?,
        wrap_up: match r.get::<_, Option<String>>(23)? {
            Some(code) => Some(super::wrapup::WrapUpRow {
                call_id: text(1)?,
                agent: r.get(22)?,
                code,
                note: r.get::<_, Option<String>>(24)?.unwrap_or_default(),
                demand: r.get::<_, Option<bool>>(25)?.unwrap_or(false),
                at: r.get::<_, Option<String>>(26)?.unwrap_or_default(),
            }),
            None => None,
        },
        ended_in: r.get(27)?,
        agent_ended_at: r.get(28)?,
        transfers: r.get(29)?,
    })
}

pub(super) fn recent(conn: &Connection, limit: usize) -> Result<Vec<Cdr>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {CDR_COLUMNS} FROM {CDR_FROM} ORDER BY cdr.id DESC LIMIT ?1"
    ))?;
    let rows = stmt.query_map([limit.min(i64::MAX as usize) as i64], from_row)?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// Calls from `caller` that started today (China time), for the agent's screen.
pub(super) fn calls_today(conn: &Connection, caller: &str) -> Result<u32, StoreError> {
    let now = super::unix_now();
    let local = now + super::CHINA_UTC_OFFSET_SECS;
    let midnight_utc = local - local.rem_euclid(86_400) - super::CHINA_UTC_OFFSET_SECS;
    let since = super::rfc3339_utc(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(midnight_utc.max(0) as u64),
    );
    let n: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM cdr WHERE caller = ?1 AND started_at >= ?2")?
        .query_row(params![caller, since], |r| r.get(0))?;
    Ok(n as u32)
}
