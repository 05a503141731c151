//! Editing the agent directory, shared by the HTTP API and `answerline agents`: what a
//! client may set, how an edit applies to a stored row, the JSON a client sees (never an
//! HA1), and the check that named queues exist in queues.toml.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{json, Value};

use crate::acd::AgentRole;
use crate::store::{AgentRow, StoreError};

/// An agent as clients see it: no HA1, only whether a password is set.
pub fn agent_json(row: &AgentRow) -> Value {
    json!({
        "id": row.id,
        "name": row.name,
        "extension": row.extension,
        "skills": row.skills,
        "queues": row.queues,
        "role": row.role.name(),
        "password_set": row.has_password(),
    })
}

/// Fields a client sends. Creating needs id, name, extension and queues; updating changes
/// only what is given (skills and queues are replaced whole). `Debug` hides the password.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentFields {
    pub id: Option<u32>,
    pub name: Option<String>,
    pub extension: Option<String>,
    pub skills: Option<BTreeMap<String, u8>>,
    pub queues: Option<Vec<String>>,
    pub password: Option<String>,
    /// "agent" or "supervisor".
    pub role: Option<String>,
}

impl std::fmt::Debug for AgentFields {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentFields")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("extension", &self.extension)
            .field("skills", &self.skills)
            .field("queues", &self.queues)
            .field("role", &self.role)
            .field("password", &self.password.as_ref().map(|_| "******"))
            .finish()
    }
}

/// An edited row and whether the edit dropped the phone password (a new extension: the
/// stored HA1s covered the old one).
#[derive(Debug)]
pub struct Edited {
    pub row: AgentRow,
    pub password_cleared: bool,
}

fn invalid(m: impl Into<String>) -> StoreError {
    StoreError::Invalid(m.into())
}

/// A role as a client names it.
pub fn parse_role(s: &str) -> Result<AgentRole, StoreError> {
    AgentRole::parse(s.trim()).ok_or_else(|| {
        invalid(format!(
            "role {s:?}: use \"agent\" or \"supervisor\" (who may see every agent and call)"
        ))
    })
}

/// A new row from `fields`, checked (queues against `known_queues`).
pub fn create(fields: AgentFields, known_queues: &[String]) -> Result<AgentRow, StoreError> {
    let missing = |k: &str| invalid(format!("{k} is required to add an agent"));
    let mut row = AgentRow {
        id: fields.id.ok_or_else(|| missing("id (the work number)"))?,
        name: fields.name.ok_or_else(|| missing("name"))?,
        extension: fields.extension.ok_or_else(|| missing("extension"))?,
        skills: fields.skills.unwrap_or_default(),
        queues: fields.queues.ok_or_else(|| missing("queues"))?,
        ha1_md5: None,
        ha1_sha256: None,
        role: fields
            .role
            .as_deref()
            .map(parse_role)
            .transpose()?
            .unwrap_or_default(),
    };
    row.name = row.name.trim().to_string();
    if let Some(pw) = &fields.password {
        row.set_password(pw)?;
    }
    row.validate()?;
    check_queues(&row, known_queues)?;
    Ok(row)
}

/// Applies `fields` to a stored row, checked.
pub fn update(
    mut row: AgentRow,
    fields: AgentFields,
    known_queues: &[String],
) -> Result<Edited, StoreError> {
    if fields.id.is_some_and(|id| id != row.id) {
        return Err(invalid(format!(
            "the work number is {} and cannot change; add a new agent and remove this one instead",
            row.id
        )));
    }
    if let Some(n) = fields.name {
        row.name = n.trim().to_string();
    }
    let mut password_cleared = false;
    if let Some(ext) = fields.extension {
        if ext != row.extension {
            password_cleared = row.has_password() && fields.password.is_none();
            row.extension = ext;
            row.ha1_md5 = None;
            row.ha1_sha256 = None;
        }
    }
    if let Some(s) = fields.skills {
        row.skills = s;
    }
    if let Some(q) = fields.queues {
        row.queues = q;
    }
    if let Some(r) = &fields.role {
        row.role = parse_role(r)?;
    }
    if let Some(pw) = &fields.password {
        row.set_password(pw)?;
    }
    row.validate()?;
    check_queues(&row, known_queues)?;
    Ok(Edited {
        row,
        password_cleared,
    })
}

/// Every queue of the row exists in queues.toml. An empty `known_queues` (no queues.toml
/// read) checks nothing.
pub fn check_queues(row: &AgentRow, known_queues: &[String]) -> Result<(), StoreError> {
    if known_queues.is_empty() {
        return Ok(());
    }
    match row.queues.iter().find(|q| !known_queues.contains(q)) {
        None => Ok(()),
        Some(q) => Err(invalid(format!(
            "no queue '{q}' in queues.toml; use some of: {}",
            known_queues.join(", ")
        ))),
    }
}

/// `billing=7` → ("billing", 7).
pub fn parse_skill(s: &str) -> Result<(String, u8), String> {
    let (name, level) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: write a skill as name=level, e.g. billing=7"))?;
    let level: u8 = level
        .trim()
        .parse()
        .map_err(|_| format!("{s:?}: the level is a number from 1 to 10"))?;
    Ok((name.trim().to_string(), level))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> Vec<String> {
        vec!["billing".into(), "mobile".into()]
    }

    fn fields() -> AgentFields {
        AgentFields {
            id: Some(8009),
            name: Some(" 李雷 ".into()),
            extension: Some("8009".into()),
            skills: Some([("billing".to_string(), 7)].into_iter().collect()),
            queues: Some(vec!["billing".into()]),
            password: Some("pw-8009".into()),
            role: None,
        }
    }

    #[test]
    fn creating_checks_queues_and_never_shows_the_password() {
        let row = create(fields(), &known()).unwrap();
        assert_eq!(row.name, "李雷");
        assert!(row.has_password());
        let shown = agent_json(&row).to_string();
        assert!(!shown.contains(row.ha1_md5.as_deref().unwrap()));
        assert!(shown.contains("\"password_set\":true"));
        assert!(!format!("{:?}", fields()).contains("pw-8009"));

        let mut f = fields();
        f.queues = Some(vec!["nope".into()]);
        let e = create(f, &known()).unwrap_err().to_string();
        assert!(
            e.contains("no queue 'nope'") && e.contains("billing, mobile"),
            "{e}"
        );
        let mut f = fields();
        f.extension = None;
        assert!(create(f, &known())
            .unwrap_err()
            .to_string()
            .contains("extension"));
    }

    #[test]
    fn a_new_extension_drops_the_old_password_unless_one_comes_with_it() {
        let row = create(fields(), &known()).unwrap();
        let e = update(
            row.clone(),
            AgentFields {
                extension: Some("8019".into()),
                ..AgentFields::default()
            },
            &known(),
        )
        .unwrap();
        assert!(e.password_cleared && !e.row.has_password());
        let e = update(
            row.clone(),
            AgentFields {
                extension: Some("8019".into()),
                password: Some("pw-8019".into()),
                ..AgentFields::default()
            },
            &known(),
        )
        .unwrap();
        assert!(!e.password_cleared && e.row.has_password());
        let e = update(row.clone(), AgentFields::default(), &known()).unwrap();
        assert_eq!(e.row, row);
        let moved = AgentFields {
            id: Some(1),
            ..AgentFields::default()
        };
        assert!(update(row, moved, &known()).is_err());
    }

    #[test]
    fn the_role_defaults_to_agent_and_only_two_names_are_taken() {
        let row = create(fields(), &known()).unwrap();
        assert_eq!(row.role, AgentRole::Agent);
        assert!(agent_json(&row).to_string().contains("\"role\":\"agent\""));
        let up = |r: &str| {
            let f = AgentFields {
                role: Some(r.into()),
                ..AgentFields::default()
            };
            update(row.clone(), f, &known())
        };
        assert_eq!(up("supervisor").unwrap().row.role, AgentRole::Supervisor);
        let e = up("admin").unwrap_err().to_string();
        assert!(e.contains("\"supervisor\""), "{e}");
    }

    #[test]
    fn skills_parse_as_name_equals_level() {
        assert_eq!(parse_skill("billing=7"), Ok(("billing".into(), 7)));
        assert!(parse_skill("billing").is_err());
        assert!(parse_skill("billing=x").is_err());
    }
}
