//! A browser that has logged in to an account before: the log-in throttle's per-account
//! ceiling does not slow it (see [`super::throttle`]), so guessers elsewhere cannot keep the
//! owner out. The mark names the account and a digest of its current password hash: a new
//! password (changed or reset) forgets every device that knew the old one. The web layer
//! keeps it in a signed cookie, so it cannot be made up.

use sha2::{Digest, Sha256};

use crate::ids::UserId;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownDevice {
    user_id: UserId,
    /// The first 128 bits of SHA-256 of the password hash, in hex.
    password_mark: String,
}

impl KnownDevice {
    /// The mark for a browser that just proved it knows this account's password.
    pub fn of(user_id: UserId, password_hash: &str) -> KnownDevice {
        let digest = hex::encode(Sha256::digest(password_hash.as_bytes()));
        KnownDevice {
            user_id,
            password_mark: digest[..32].to_owned(),
        }
    }

    /// Whether this mark was made for this account and its current password.
    pub fn vouches_for(&self, user_id: UserId, password_hash: &str) -> bool {
        *self == KnownDevice::of(user_id, password_hash)
    }

    pub fn to_text(&self) -> String {
        format!("{}.{}", self.user_id, self.password_mark)
    }

    pub fn parse(text: &str) -> Option<KnownDevice> {
        let (user_id, mark) = text.split_once('.')?;
        if mark.len() != 32 || !mark.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        Some(KnownDevice {
            user_id: user_id.parse().ok()?,
            password_mark: mark.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mark_is_for_one_account_and_one_password() {
        let mark = KnownDevice::of(UserId(7), "$argon2id$old");
        assert_eq!(KnownDevice::parse(&mark.to_text()), Some(mark.clone()));
        assert!(mark.vouches_for(UserId(7), "$argon2id$old"));
        assert!(!mark.vouches_for(UserId(8), "$argon2id$old"));
        assert!(!mark.vouches_for(UserId(7), "$argon2id$new"));
        assert_eq!(KnownDevice::parse("7.nothex"), None);
        assert_eq!(KnownDevice::parse("x"), None);
    }
}
