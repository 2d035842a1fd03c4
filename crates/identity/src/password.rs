//! SMTP passwords of sender addresses: Tencent's policy, stored as argon2id PHC strings.

use crate::IdentityError;
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng};

/// Why a password is refused by the policy.
pub const POLICY: &str =
    "the SMTP password must be 10-20 characters and contain upper-case letters, lower-case letters and digits";

/// Tencent's policy: 10–20 characters, with at least one upper-case letter, one lower-case letter and one
/// digit (ASCII printable only, no spaces).
pub fn acceptable(password: &str) -> bool {
    let len = password.chars().count();
    (10..=20).contains(&len)
        && password.chars().all(|c| c.is_ascii_graphic())
        && password.chars().any(|c| c.is_ascii_uppercase())
        && password.chars().any(|c| c.is_ascii_lowercase())
        && password.chars().any(|c| c.is_ascii_digit())
}

/// Hashes with argon2id and a random salt (PHC string).
pub fn hash(password: &str) -> Result<String, IdentityError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| IdentityError::Password(e.to_string()))
}

/// Checks a password against a stored hash (constant-time comparison inside argon2). An unreadable hash is
/// an error, a wrong password `Ok(false)`.
pub fn verify(password: &str, stored: &str) -> Result<bool, IdentityError> {
    let parsed = PasswordHash::new(stored).map_err(|e| IdentityError::Password(e.to_string()))?;
    Ok(Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy() {
        assert!(acceptable("Abcdefgh12"));
        assert!(acceptable("Abcdefgh12Abcdefgh12"));
        assert!(!acceptable("Abcdefg12"));
        assert!(!acceptable("Abcdefgh12Abcdefgh123"));
        assert!(!acceptable("abcdefgh12"));
        assert!(!acceptable("ABCDEFGH12"));
        assert!(!acceptable("Abcdefghij"));
        assert!(!acceptable("Abcd efg12"));
    }

    #[test]
    fn hash_and_verify() {
        let h = hash("Abcdefgh12").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("Abcdefgh12", &h).unwrap());
        assert!(!verify("Abcdefgh13", &h).unwrap());
        assert!(verify("x", "not a hash").is_err());
    }
}
