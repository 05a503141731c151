//! Call contexts: the JSON record of one call that agent screens show
//! (`crate::context::CallContext`), kept by id with its version so that a screen opened
//! late, or after a transfer, fetches what the caller already told the IVR.

use std::time::SystemTime;

use rusqlite::{params, Connection, OptionalExtension};

use super::{rfc3339_utc, StoreError};

/// Longest context id: it travels in SIP headers and URLs.
const MAX_ID: usize = 128;

pub(super) fn check_id(id: &str) -> Result<(), StoreError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "context id must be 1-{MAX_ID} URL-safe characters (letters, digits, - _ . ~)"
        )))
    }
}

/// Creates or updates; an older version arriving late (a slow writer) never replaces a
/// newer one.
pub(super) fn put(
    conn: &Connection,
    id: &str,
    version: u32,
    call_id: &str,
    json: &str,
) -> Result<(), StoreError> {
    check_id(id)?;
    conn.execute(
        "INSERT INTO contexts (id, version, call_id, json, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (id) DO UPDATE SET version = excluded.version, call_id = excluded.call_id,
             json = excluded.json, updated_at = excluded.updated_at
         WHERE excluded.version >= contexts.version",
        params![id, version, call_id, json, rfc3339_utc(SystemTime::now())],
    )?;
    Ok(())
}

pub(super) fn get(conn: &Connection, id: &str) -> Result<Option<(u32, String)>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT version, json FROM contexts WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?)
}
