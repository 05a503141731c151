//! Card passwords of top-up attempts whose outcome is unknown. The reconciler must be able to
//! re-send such a redemption with its card, so the password cannot be reduced to a hash;
//! it is sealed instead (HMAC-SHA-256 in counter mode, encrypt-then-MAC) under a key kept in
//! a file beside the database, not in it. Deleted SQLite rows linger in free pages, the WAL
//! and backups; a sealed password there is useless without the key file.

use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub(crate) const KEY_FILE: &str = "card-vault.key";

pub(crate) struct CardVault {
    enc: [u8; 32],
    mac: [u8; 32],
}

use crate::hex::{decode as unhex, encode as hex};

/// HMAC-SHA-256 (RFC 2104) over the concatenation of `parts`.
fn hmac(key: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
    let mut ipad = [0x36u8; 64];
    let mut opad = [0x5cu8; 64];
    for (i, k) in key.iter().enumerate() {
        ipad[i] ^= k;
        opad[i] ^= k;
    }
    let mut inner = Sha256::new().chain_update(ipad);
    for p in parts {
        inner.update(p);
    }
    let inner: [u8; 32] = inner.finalize().into();
    Sha256::new()
        .chain_update(opad)
        .chain_update(inner)
        .finalize()
        .into()
}

fn random<const N: usize>() -> std::io::Result<[u8; N]> {
    let mut b = [0u8; N];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut b)?;
    Ok(b)
}

impl CardVault {
    pub(crate) fn from_master(master: &[u8; 32]) -> CardVault {
        CardVault {
            enc: hmac(master, &[b"answerline card vault enc"]),
            mac: hmac(master, &[b"answerline card vault mac"]),
        }
    }

    /// The vault of a data folder, creating its key file (mode 0600) on first use. Several
    /// processes may race to create it: the key is written to a private temporary file and
    /// hard-linked into place, so every process ends up reading the same complete key.
    pub(crate) fn open(dir: &Path) -> std::io::Result<CardVault> {
        let path = dir.join(KEY_FILE);
        if !path.exists() {
            let tmp: PathBuf = dir.join(format!(
                ".{KEY_FILE}.{}.{}",
                std::process::id(),
                hex(&random::<8>()?)
            ));
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(hex(&random::<32>()?).as_bytes())?;
            f.sync_all()?;
            drop(f);
            let linked = std::fs::hard_link(&tmp, &path);
            let _ = std::fs::remove_file(&tmp);
            match linked {
                Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(e),
                _ => {}
            }
        }
        let text = std::fs::read_to_string(&path)?;
        let master: [u8; 32] = unhex(text.trim())
            .and_then(|k| k.try_into().ok())
            .ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{} is not a 64-hex-digit key", path.display()),
                )
            })?;
        Ok(CardVault::from_master(&master))
    }

    fn keystream_xor(&self, nonce: &[u8], data: &mut [u8]) {
        for (i, chunk) in data.chunks_mut(32).enumerate() {
            let block = hmac(&self.enc, &[nonce, &(i as u64).to_le_bytes()]);
            for (d, k) in chunk.iter_mut().zip(block) {
                *d ^= k;
            }
        }
    }

    /// `v1$<nonce>$<ciphertext>$<tag>`, all hex.
    pub(crate) fn seal(&self, secret: &str) -> std::io::Result<String> {
        let nonce = random::<16>()?;
        let mut ct = secret.as_bytes().to_vec();
        self.keystream_xor(&nonce, &mut ct);
        let tag = hmac(&self.mac, &[&nonce, &ct]);
        Ok(format!(
            "v1${}${}${}",
            hex(&nonce),
            hex(&ct),
            hex(&tag[..16])
        ))
    }

    /// The password back, or None when the text was not sealed under this key.
    pub(crate) fn unseal(&self, sealed: &str) -> Option<String> {
        let mut parts = sealed.split('$');
        let (Some("v1"), Some(nonce), Some(ct), Some(tag), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return None;
        };
        let (nonce, mut ct, tag) = (unhex(nonce)?, unhex(ct)?, unhex(tag)?);
        let want = hmac(&self.mac, &[&nonce, &ct]);
        if tag.len() != 16 || want[..16].iter().zip(&tag).fold(0, |a, (x, y)| a | (x ^ y)) != 0 {
            return None;
        }
        self.keystream_xor(&nonce, &mut ct);
        String::from_utf8(ct).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_case_2_shape() {
        // RFC 4231 test case 2 uses a 4-byte key; ours are 32 bytes, zero-padded the same way.
        let mut key = [0u8; 32];
        key[..4].copy_from_slice(b"Jefe");
        let got = hex(&hmac(&key, &[b"what do ya want ", b"for nothing?"]));
        assert_eq!(
            got,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn sealed_cards_round_trip_and_hide_the_digits() {
        let v = CardVault::from_master(&[7; 32]);
        let s = v.seal("500000000000000001").unwrap();
        assert!(
            !s.contains("500000000000000001") && !s.contains("0001"),
            "{s}"
        );
        assert_eq!(v.unseal(&s).as_deref(), Some("500000000000000001"));
        assert_ne!(
            s,
            v.seal("500000000000000001").unwrap(),
            "fresh nonce each time"
        );
        // Another key, or a flipped bit, opens nothing.
        assert_eq!(CardVault::from_master(&[8; 32]).unseal(&s), None);
        let mut tampered = s.clone().into_bytes();
        let i = tampered.len() - 40;
        tampered[i] = if tampered[i] == b'0' { b'1' } else { b'0' };
        assert_eq!(v.unseal(&String::from_utf8(tampered).unwrap()), None);
        assert_eq!(v.unseal("garbage"), None);
    }

    #[test]
    fn racing_processes_share_one_key_file() {
        let dir = std::env::temp_dir().join(format!("answerline-vault-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let sealed: Vec<String> = (0..8)
            .map(|_| {
                let dir = dir.clone();
                std::thread::spawn(move || CardVault::open(&dir).unwrap().seal("123").unwrap())
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect();
        let v = CardVault::open(&dir).unwrap();
        assert!(sealed.iter().all(|s| v.unseal(s).as_deref() == Some("123")));
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(dir.join(KEY_FILE)).unwrap().permissions(),
        );
        assert_eq!(mode & 0o077, 0, "key file readable by others: {mode:o}");
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            1,
            "temp files left"
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
