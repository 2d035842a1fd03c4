//! Secrets at rest: account SecretKeys (and later DKIM keys) are sealed with AES-256-GCM under a key
//! derived from the operator's master key, so a copy of the database alone does not reveal them.

use crate::{CoreError, Settings};
use aws_lc_rs::aead::{AES_256_GCM, Aad, Nonce, RandomizedNonceKey};
use aws_lc_rs::digest;
use std::path::Path;

/// Format byte of sealed blobs, so the scheme can change without guessing.
const SEALED_V1: u8 = 1;
const NONCE_LEN: usize = 12;

/// Why a secret could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The master key is too short to be a key.
    #[error("the master key must be at least 16 characters")]
    WeakMasterKey,
    /// The blob was sealed under another master key, or damaged.
    #[error("a stored secret cannot be decrypted: wrong master key or damaged data")]
    CannotOpen,
    /// The crypto library failed.
    #[error("encryption failed")]
    Crypto,
}

/// The key that seals secrets at rest; only [`Secrets`] holds one.
struct MasterKey {
    key: RandomizedNonceKey,
    /// Seed of [`MasterKey::subkey`] (a separate hash of the master key text, never used to seal).
    subkey_seed: [u8; 32],
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(…)")
    }
}

impl MasterKey {
    /// Derives the sealing key from the configured master key text.
    pub fn from_text(text: &str) -> Result<Self, SecretError> {
        if text.trim().len() < 16 {
            return Err(SecretError::WeakMasterKey);
        }
        // Domain-separated hash: the same operator string used elsewhere yields a different key here.
        let mut input = b"mailpush master key v1\0".to_vec();
        input.extend_from_slice(text.trim().as_bytes());
        let d = digest::digest(&digest::SHA256, &input);
        let key = RandomizedNonceKey::new(&AES_256_GCM, d.as_ref()).map_err(|_| SecretError::Crypto)?;
        let mut seed_input = b"mailpush subkeys v1\0".to_vec();
        seed_input.extend_from_slice(text.trim().as_bytes());
        let mut subkey_seed = [0u8; 32];
        subkey_seed.copy_from_slice(digest::digest(&digest::SHA256, &seed_input).as_ref());
        Ok(MasterKey { key, subkey_seed })
    }

    /// Encrypts `plain`; `context` (e.g. "account-secret") binds the blob to its use.
    pub fn seal(&self, context: &str, plain: &[u8]) -> Result<Vec<u8>, SecretError> {
        let mut buf = plain.to_vec();
        let nonce = self
            .key
            .seal_in_place_append_tag(Aad::from(context.as_bytes()), &mut buf)
            .map_err(|_| SecretError::Crypto)?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + buf.len());
        out.push(SEALED_V1);
        out.extend_from_slice(nonce.as_ref());
        out.extend_from_slice(&buf);
        Ok(out)
    }

    /// A 256-bit key for `context` (e.g. "tracking-token"), derived from the master key with HMAC-SHA256:
    /// stable across processes sharing the master key, independent between contexts.
    pub fn subkey(&self, context: &str) -> [u8; 32] {
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &self.subkey_seed);
        let tag = aws_lc_rs::hmac::sign(&key, context.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// Decrypts a blob made by [`MasterKey::seal`] with the same context.
    pub fn open(&self, context: &str, sealed: &[u8]) -> Result<Vec<u8>, SecretError> {
        if sealed.len() < 1 + NONCE_LEN || sealed[0] != SEALED_V1 {
            return Err(SecretError::CannotOpen);
        }
        let nonce = Nonce::try_assume_unique_for_key(&sealed[1..1 + NONCE_LEN]).map_err(|_| SecretError::CannotOpen)?;
        let mut buf = sealed[1 + NONCE_LEN..].to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut buf)
            .map_err(|_| SecretError::CannotOpen)?;
        Ok(plain.to_vec())
    }
}

/// The secrets service: the one holder of the master key. Other services seal and open through it and never
/// see the key.
#[derive(Debug)]
pub struct Secrets {
    master: MasterKey,
}

impl Secrets {
    /// From the master key text (at least 16 characters).
    pub fn from_text(text: &str) -> Result<Secrets, SecretError> {
        Ok(Secrets {
            master: MasterKey::from_text(text)?,
        })
    }

    /// The configured master key (`master_key`); with SQLite and none configured, the key in
    /// `data_dir/master.key`, generated on first start. PostgreSQL requires it configured: a key generated on
    /// one machine would be unknown to the others sharing the database.
    pub fn load(settings: &Settings, database_url: &str) -> Result<Secrets, CoreError> {
        if let Some(text) = &settings.master_key {
            return Ok(Secrets::from_text(text)?);
        }
        if !database_url.starts_with("sqlite:") {
            return Err(CoreError::Config(
                "MAILPUSH_MASTER_KEY (master_key) is required with PostgreSQL".into(),
            ));
        }
        let path = settings.data_dir.join("master.key");
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let t = random_string(48, ALPHANUMERIC);
                write_private(&path, &t)
                    .map_err(|e| CoreError::Config(format!("cannot write {}: {e}", path.display())))?;
                tracing::warn!(path = %path.display(), "no master key configured: generated one; back it up with the database");
                t
            }
            Err(e) => return Err(CoreError::Config(format!("cannot read {}: {e}", path.display()))),
        };
        Ok(Secrets::from_text(&text)?)
    }

    /// Encrypts `plain` for `context` (see [`MasterKey::seal`]).
    pub fn seal(&self, context: &str, plain: &[u8]) -> Result<Vec<u8>, SecretError> {
        self.master.seal(context, plain)
    }

    /// Decrypts a blob sealed for `context`.
    pub fn open(&self, context: &str, sealed: &[u8]) -> Result<Vec<u8>, SecretError> {
        self.master.open(context, sealed)
    }

    /// A 256-bit key for `context`, derived from the master key.
    pub fn subkey(&self, context: &str) -> [u8; 32] {
        self.master.subkey(context)
    }
}

/// Writes a new file readable by its owner only.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

/// A random string of `len` characters from `alphabet` (uniform: rejection sampling avoids modulo bias).
pub fn random_string(len: usize, alphabet: &[u8]) -> String {
    let limit = 256 - (256 % alphabet.len());
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        if aws_lc_rs::rand::fill(&mut buf).is_err() {
            continue;
        }
        for b in buf {
            if (b as usize) < limit && out.len() < len {
                out.push(alphabet[b as usize % alphabet.len()] as char);
            }
        }
    }
    out
}

/// Letters and digits.
pub const ALPHANUMERIC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_binding() {
        let k = MasterKey::from_text("correct horse battery staple").unwrap();
        let sealed = k.seal("account-secret", b"s3cret").unwrap();
        assert_ne!(&sealed[13..], b"s3cret");
        assert_eq!(k.open("account-secret", &sealed).unwrap(), b"s3cret");
        assert!(k.open("dkim", &sealed).is_err());
        let other = MasterKey::from_text("another master key entirely").unwrap();
        assert!(other.open("account-secret", &sealed).is_err());
        assert!(MasterKey::from_text("short").is_err());
        assert!(k.open("account-secret", b"\x01short").is_err());
    }

    #[test]
    fn random_strings() {
        let a = random_string(32, ALPHANUMERIC);
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(a, random_string(32, ALPHANUMERIC));
    }
}
