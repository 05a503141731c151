//! What a login session may reach, decided by the request's method and path shape alone,
//! in one place: routes added later are covered by the shape they have (anything under an
//! agent's own path, anything on a call) and everything unknown needs the admin token.
//! Whether a call or a context is the agent's own needs the live calls and the CDRs: that
//! is left to the edge ([`Scope::OwnCall`], [`Scope::OwnContext`]).

use axum::http::Method;
use serde_json::Value;

use crate::acd::AgentRole;

/// The answer for one request of one session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    Allowed,
    /// Allowed if this call (number or SIP Call-ID from the URL) is offered to or bridged
    /// with the session's agent.
    OwnCall(String),
    /// Allowed if this context belongs to such a call or to a call the agent served.
    OwnContext(String),
    /// Refused: the role that would be needed.
    Needs(Needed),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Needed {
    Supervisor,
    /// The admin token from api.toml (directory changes, anything not listed).
    Admin,
}

impl Needed {
    pub fn name(self) -> &'static str {
        match self {
            Needed::Supervisor => "supervisor",
            Needed::Admin => "admin",
        }
    }
}

/// Routes that need no credentials at all (they check their own).
pub fn is_public(method: &Method, path: &str) -> bool {
    (*method == Method::POST && matches!(path, "/api/v1/login" | "/api/v1/logout"))
        || (matches!(*method, Method::GET | Method::HEAD) && path == "/metrics")
}

/// What the session of `agent` in `role` may do with `method path`.
pub fn decide(role: AgentRole, agent: u32, method: &Method, path: &str) -> Scope {
    let sup = role == AgentRole::Supervisor;
    let get = *method == Method::GET || *method == Method::HEAD;
    // The reports page lives outside /api/v1/ (a supervisor opens it in a browser).
    if path == "/reports" && get {
        return if sup {
            Scope::Allowed
        } else {
            Scope::Needs(Needed::Supervisor)
        };
    }
    let parts: Vec<&str> = match path.strip_prefix("/api/v1/") {
        Some(rest) => rest.split('/').collect(),
        None => return Scope::Needs(Needed::Admin),
    };
    // An empty segment ("//", a trailing "/") is no route's shape: refuse rather than guess.
    if parts.iter().any(|p| p.is_empty()) {
        return Scope::Needs(Needed::Admin);
    }
    let supervisor_only = || {
        if sup {
            Scope::Allowed
        } else {
            Scope::Needs(Needed::Supervisor)
        }
    };
    match parts.as_slice() {
        ["me" | "health" | "queues" | "desk-config"] if get => Scope::Allowed,
        // The directory: reading all of it is for supervisors; changing it for the admin.
        ["agents"] if get => supervisor_only(),
        ["agents", id, rest @ ..] => {
            let own = id.parse::<u32>().ok() == Some(agent);
            match rest {
                [] if get => {
                    if own {
                        Scope::Allowed
                    } else {
                        supervisor_only()
                    }
                }
                [] | ["password" | "reload", ..] => Scope::Needs(Needed::Admin),
                ["state"] if !own => supervisor_only(),
                _ if own => Scope::Allowed,
                _ => Scope::Needs(Needed::Admin),
            }
        }
        ["calls"] if get => supervisor_only(),
        ["calls", _, "supervise", ..] => supervisor_only(),
        ["calls", call, _, ..] => {
            if sup && get {
                Scope::Allowed
            } else {
                Scope::OwnCall(call.to_string())
            }
        }
        ["contexts", id] if get => {
            if sup {
                Scope::Allowed
            } else {
                Scope::OwnContext(id.to_string())
            }
        }
        ["supervisor", "ws"] | ["supervision"] | ["surveys"] if get => supervisor_only(),
        ["kpi", "today"] if get => supervisor_only(),
        ["campaigns", _] if get => supervisor_only(),
        ["recordings", ..] if get => supervisor_only(),
        ["recordings", _, "scores"] => supervisor_only(),
        ["quality", ..] if get => supervisor_only(),
        _ => Scope::Needs(Needed::Admin),
    }
}

/// The engine's snapshot (`Command::Snapshot`) entry of a call by its number or SIP
/// Call-ID, if it is offered to (`agents[].call`: reserved or ringing) or bridged with
/// (`calls[].agent`) `agent`.
fn own_call<'a>(snapshot: &'a Value, agent: u32, call: &str) -> Option<&'a Value> {
    let calls = snapshot.get("calls")?.as_array()?;
    let offered = snapshot
        .get("agents")?
        .as_array()?
        .iter()
        .find(|a| a.get("id").and_then(Value::as_u64) == Some(u64::from(agent)))
        .and_then(|a| a.get("call"))
        .and_then(Value::as_u64);
    calls.iter().find(|c| {
        let number = c.get("call").and_then(Value::as_u64);
        let named = number.is_some_and(|n| n.to_string() == call)
            || c.get("call_id").and_then(Value::as_str) == Some(call);
        let bridged = c.get("agent").and_then(Value::as_u64) == Some(u64::from(agent));
        named && (bridged || (number.is_some() && number == offered))
    })
}

/// Whether `call` (number or SIP Call-ID) is offered to or bridged with `agent` now.
pub fn owns_call(snapshot: &Value, agent: u32, call: &str) -> bool {
    own_call(snapshot, agent, call).is_some()
}

/// Whether `context` is that of a call offered to or bridged with `agent` now.
pub fn owns_context(snapshot: &Value, agent: u32, context: &str) -> bool {
    let Some(calls) = snapshot.get("calls").and_then(Value::as_array) else {
        return false;
    };
    calls
        .iter()
        .filter(|c| c.get("context_id").and_then(Value::as_str) == Some(context))
        .filter_map(|c| c.get("call").and_then(Value::as_u64))
        .any(|n| owns_call(snapshot, agent, &n.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_is_an_agents_while_offered_or_bridged() {
        // As `Engine::snapshot` shapes it: 8001 is ringing for call 5, 8002 talks on 6.
        let snap = serde_json::json!({
            "agents": [
                {"id": 8001, "state": "ringing", "call": 5},
                {"id": 8002, "state": "on-call", "call": 6},
                {"id": 8003, "state": "ready", "call": null},
            ],
            "calls": [
                {"call": 5, "call_id": "a@x", "agent": null, "context_id": "ctx-5"},
                {"call": 6, "call_id": "b@x", "agent": 8002, "context_id": "ctx-6"},
                {"call": 7, "call_id": "c@x", "agent": null, "context_id": "ctx-7"},
            ],
        });
        assert!(owns_call(&snap, 8001, "5"));
        assert!(owns_call(&snap, 8001, "a@x"));
        assert!(!owns_call(&snap, 8001, "6"));
        assert!(owns_call(&snap, 8002, "b@x"));
        assert!(!owns_call(&snap, 8002, "5"));
        assert!(!owns_call(&snap, 8003, "7"));
        assert!(!owns_call(&snap, 8001, "no-such"));
        assert!(owns_context(&snap, 8001, "ctx-5"));
        assert!(!owns_context(&snap, 8001, "ctx-6"));
        assert!(owns_context(&snap, 8002, "ctx-6"));
        assert!(!owns_context(&snap, 8003, "ctx-7"));
        assert!(!owns_call(&serde_json::json!({}), 8001, "5"));
    }

    const ME: u32 = 8001;

    fn agent(m: Method, p: &str) -> Scope {
        decide(AgentRole::Agent, ME, &m, p)
    }

    fn sup(m: Method, p: &str) -> Scope {
        decide(AgentRole::Supervisor, 9001, &m, p)
    }

    const SUP: Scope = Scope::Needs(Needed::Supervisor);
    const ADMIN: Scope = Scope::Needs(Needed::Admin);

    #[test]
    fn an_agent_reaches_their_own_paths_and_the_shared_views() {
        use Method as M;
        for (m, p) in [
            (M::GET, "/api/v1/me"),
            (M::GET, "/api/v1/queues"),
            (M::GET, "/api/v1/desk-config"),
            (M::GET, "/api/v1/agents/8001"),
            (M::POST, "/api/v1/agents/8001/state"),
            (M::GET, "/api/v1/agents/8001/ws"),
            // After-call work (another branch) is under the agent's own path.
            (M::POST, "/api/v1/agents/8001/wrap-up"),
            (M::GET, "/api/v1/agents/8001/calls"),
            (M::GET, "/api/v1/agents/8001/callbacks"),
        ] {
            assert_eq!(agent(m.clone(), p), Scope::Allowed, "{m} {p}");
        }
    }

    #[test]
    fn an_agent_is_refused_other_agents_and_supervisor_views() {
        use Method as M;
        for (m, p) in [
            (M::POST, "/api/v1/agents/8002/state"),
            (M::GET, "/api/v1/agents/8002"),
            (M::GET, "/api/v1/agents"),
            (M::GET, "/api/v1/calls"),
            (M::POST, "/api/v1/calls/7/supervise"),
            (M::GET, "/api/v1/supervisor/ws"),
            (M::GET, "/api/v1/supervision"),
            (M::GET, "/api/v1/recordings"),
            (M::GET, "/api/v1/recordings/3/audio"),
            (M::GET, "/api/v1/surveys"),
        ] {
            assert_eq!(agent(m.clone(), p), SUP, "{m} {p}");
        }
        for (m, p) in [
            (M::GET, "/api/v1/agents/8002/calls"),
            (M::GET, "/api/v1/agents/8002/ws"),
            (M::POST, "/api/v1/agents/8002/wrap-up"),
            (M::POST, "/api/v1/agents"),
            (M::PUT, "/api/v1/agents/8001"),
            (M::DELETE, "/api/v1/agents/8001"),
            (M::PUT, "/api/v1/agents/8001/password"),
            (M::POST, "/api/v1/agents/8001/reload"),
            (M::GET, "/api/v1/agents//8001"),
            (M::GET, "/api/v1/agents/8001/"),
            (M::GET, "/api/v1/no-such-thing"),
            (M::GET, "/elsewhere"),
        ] {
            assert_eq!(agent(m.clone(), p), ADMIN, "{m} {p}");
        }
    }

    #[test]
    fn calls_and_contexts_are_left_to_ownership() {
        use Method as M;
        for p in ["transfer", "self-service", "hold"] {
            assert_eq!(
                agent(M::POST, &format!("/api/v1/calls/17/{p}")),
                Scope::OwnCall("17".into())
            );
            assert_eq!(
                sup(M::POST, &format!("/api/v1/calls/17/{p}")),
                Scope::OwnCall("17".into())
            );
        }
        assert_eq!(
            agent(M::GET, "/api/v1/contexts/ctx-1"),
            Scope::OwnContext("ctx-1".into())
        );
        assert_eq!(sup(M::GET, "/api/v1/contexts/ctx-1"), Scope::Allowed);
    }

    #[test]
    fn a_supervisor_also_sees_everything_live_but_cannot_change_the_directory() {
        use Method as M;
        for (m, p) in [
            (M::GET, "/api/v1/agents"),
            (M::GET, "/api/v1/agents/8002"),
            (M::POST, "/api/v1/agents/8002/state"),
            (M::GET, "/api/v1/calls"),
            (M::POST, "/api/v1/calls/7/supervise"),
            (M::GET, "/api/v1/supervisor/ws"),
            (M::GET, "/api/v1/supervision"),
            (M::GET, "/api/v1/recordings/3"),
            (M::GET, "/api/v1/surveys"),
            (M::POST, "/api/v1/agents/9001/wrap-up"),
        ] {
            assert_eq!(sup(m.clone(), p), Scope::Allowed, "{m} {p}");
        }
        for (m, p) in [
            (M::POST, "/api/v1/agents"),
            (M::PUT, "/api/v1/agents/8002"),
            (M::DELETE, "/api/v1/agents/8002"),
            (M::PUT, "/api/v1/agents/8002/password"),
            (M::PUT, "/api/v1/agents/9001/password"),
            (M::POST, "/api/v1/agents/8002/reload"),
            (M::GET, "/api/v1/agents/8002/ws"),
        ] {
            assert_eq!(sup(m.clone(), p), ADMIN, "{m} {p}");
        }
    }

    #[test]
    fn only_login_logout_and_the_metrics_scrape_are_public() {
        assert!(is_public(&Method::POST, "/api/v1/login"));
        assert!(is_public(&Method::POST, "/api/v1/logout"));
        assert!(!is_public(&Method::GET, "/api/v1/me"));
        assert!(!is_public(&Method::GET, "/api/v1/login"));
        // /metrics checks its own metrics_token (api::metrics).
        assert!(is_public(&Method::GET, "/metrics"));
        assert!(!is_public(&Method::POST, "/metrics"));
        assert!(!is_public(&Method::GET, "/metrics/x"));
    }
}
