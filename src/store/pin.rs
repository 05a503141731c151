//! Service PINs at rest: `sha256$<rounds>$<salt hex>$<hash hex>`, the hash being SHA-256
//! iterated `rounds` times over salt and PIN. A 6-digit PIN has only a million values, so
//! no hash makes a stolen database safe on its own; the per-account salt and the rounds
//! stop precomputed tables and slow bulk guessing, the lock-out stops guessing by phone.

use sha2::{Digest, Sha256};

pub const PIN_HASH_ROUNDS: u32 = 4096;

use crate::hex::{decode as unhex, encode as hex};

fn digest(rounds: u32, salt: &[u8], pin: &str) -> [u8; 32] {
    let mut h: [u8; 32] = Sha256::new()
        .chain_update(salt)
        .chain_update(pin.as_bytes())
        .finalize()
        .into();
    for _ in 1..rounds {
        h = Sha256::new()
            .chain_update(h)
            .chain_update(salt)
            .finalize()
            .into();
    }
    h
}

/// Hashes `pin` with `salt` (use 16 random bytes per account).
pub fn hash_pin(pin: &str, salt: &[u8]) -> String {
    format!(
        "sha256${PIN_HASH_ROUNDS}${}${}",
        hex(salt),
        hex(&digest(PIN_HASH_ROUNDS, salt, pin))
    )
}

/// Checks `pin` against a stored hash in constant time; a malformed hash never matches.
pub fn verify_pin_hash(stored: &str, pin: &str) -> bool {
    let mut parts = stored.split('$');
    let (Some("sha256"), Some(rounds), Some(salt), Some(hash), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return false;
    };
    let (Ok(rounds), Some(salt), Some(hash)) = (rounds.parse::<u32>(), unhex(salt), unhex(hash))
    else {
        return false;
    };
    if rounds == 0 || hash.len() != 32 {
        return false;
    }
    let got = digest(rounds, &salt, pin);
    got.iter().zip(&hash).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn right_pin_matches_and_wrong_or_tampered_do_not() {
        let h = hash_pin("123456", b"0123456789abcdef");
        assert!(!h.contains("123456$") && !h.ends_with("123456"));
        assert!(verify_pin_hash(&h, "123456"));
        assert!(!verify_pin_hash(&h, "123457"));
        assert!(!verify_pin_hash(&h, ""));
        assert!(!verify_pin_hash("123456", "123456"));
        assert!(!verify_pin_hash(
            &h.replace("sha256$4096", "sha256$4095"),
            "123456"
        ));
        // Same PIN, different salt: different stored value.
        assert_ne!(h, hash_pin("123456", b"fedcba9876543210"));
    }
}
