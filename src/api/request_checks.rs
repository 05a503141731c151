//! Every request type a client can send, deserialised and checked the way its handler does
//! before touching the database or the worker. Only `crate::fuzzing` calls this: the JSON
//! body types are private to their routes, so the fuzz entry point has to live here.

use axum::extract::Query;
use axum::http::Uri;

use super::directory::{self, AgentFields};
use super::routes_agents::{PasswordBody, StateBody};
use super::routes_calls::{check_id, SelfServiceBody, SuperviseBody, TransferBody};
use super::routes_login::{work_number, LoginBody};
use super::routes_records::{SupervisionQuery, SurveyQuery};
use super::server::agent_id;
use crate::store::{check_password, AgentRow};

/// Feeds `data` to each body type's deserialiser and checks; also as a path id and a
/// query string. Results are ignored: only a panic matters.
pub(crate) fn exercise(data: &[u8]) {
    let known = ["billing".to_string(), "mobile".to_string()];
    if let Ok(f) = serde_json::from_slice::<AgentFields>(data) {
        let _ = directory::create(f.clone(), &known);
        let row = AgentRow {
            id: 8001,
            name: "李雷".into(),
            extension: "8001".into(),
            skills: Default::default(),
            queues: vec!["billing".into()],
            ha1_md5: None,
            ha1_sha256: None,
            role: Default::default(),
        };
        let _ = directory::update(row, f, &known);
    }
    if let Ok(b) = serde_json::from_slice::<PasswordBody>(data) {
        let _ = check_password(&b.password);
    }
    if let Ok(b) = serde_json::from_slice::<StateBody>(data) {
        let _ = b.action();
    }
    if let Ok(b) = serde_json::from_slice::<TransferBody>(data) {
        let _ = b.queue();
    }
    if let Ok(b) = serde_json::from_slice::<SelfServiceBody>(data) {
        let _ = b.step();
    }
    if let Ok(b) = serde_json::from_slice::<SuperviseBody>(data) {
        let _ = b.checked();
    }
    if let Ok(b) = serde_json::from_slice::<LoginBody>(data) {
        let _ = work_number(&b.agent);
    }
    let _ = serde_json::from_slice::<serde_json::Value>(data);

    let text = String::from_utf8_lossy(data);
    let _ = agent_id(&text);
    let _ = check_id("call", &text);
    let _ = directory::parse_skill(&text);
    let _ = directory::parse_role(&text);
    // What a session may reach is decided from the path alone.
    for role in [
        crate::acd::AgentRole::Agent,
        crate::acd::AgentRole::Supervisor,
    ] {
        for m in [axum::http::Method::GET, axum::http::Method::POST] {
            let _ = super::scope::decide(role, 8001, &m, &text);
            let _ = super::scope::decide(role, 8001, &m, &format!("/api/v1/{text}"));
        }
    }
    // Query strings reach the handlers through axum's extractor, which only sees a valid URI.
    if let Ok(uri) = format!("/api/v1/surveys?{text}").parse::<Uri>() {
        let _ = Query::<SurveyQuery>::try_from_uri(&uri);
        let _ = Query::<SupervisionQuery>::try_from_uri(&uri);
    }
}
