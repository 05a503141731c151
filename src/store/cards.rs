//! Recharge cards at rest. The password is what the money is: only
//! SHA-256(domain ‖ per-database salt ‖ password) is stored, plus the last four digits the
//! IVR and the ledger may show. An 18-digit password has 10^18 values, so a keyed hash is
//! enough to make a leaked table useless without a guessing run on that database's salt.

use rusqlite::{params, Connection, OptionalExtension};
use sha2::{Digest, Sha256};

use super::StoreError;

/// The per-database salt made by migration 2.
pub fn card_salt(conn: &Connection) -> Result<Vec<u8>, StoreError> {
    Ok(conn.query_row(
        "SELECT value FROM billing_settings WHERE name = 'card_salt'",
        [],
        |r| r.get(0),
    )?)
}

/// The lookup key of a card password under `salt`.
pub fn card_hash(salt: &[u8], secret: &str) -> String {
    Sha256::new()
        .chain_update(b"answerline-card-v1\0")
        .chain_update(salt)
        .chain_update(secret.as_bytes())
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn last4(secret: &str) -> &str {
    &secret[secret.len().saturating_sub(4)..]
}

/// A new unused card; returns its id. Fails on a password already on file.
pub fn add_card(
    conn: &Connection,
    secret: &str,
    face_fen: i64,
    expires_at: i64,
    now_unix: i64,
) -> Result<i64, StoreError> {
    let salt = card_salt(conn)?;
    conn.execute(
        "INSERT INTO cards (secret_hash, last4, face_fen, expires_at, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            card_hash(&salt, secret),
            last4(secret),
            face_fen,
            expires_at,
            now_unix
        ],
    )?;
    Ok(conn.last_insert_rowid())
}

/// The id of a card password, if on file.
pub fn find_card(conn: &Connection, secret: &str) -> Result<Option<i64>, StoreError> {
    let salt = card_salt(conn)?;
    Ok(conn
        .query_row(
            "SELECT id FROM cards WHERE secret_hash = ?1",
            [card_hash(&salt, secret)],
            |r| r.get(0),
        )
        .optional()?)
}
