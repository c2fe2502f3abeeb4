//! Keyed fingerprints of the secrets Dhan rejected: enough to tell "the same values as
//! then" from "changed since", useless for finding the values again.
//!
//! A plain hash of a client id, a mobile number and a 6-digit PIN is searched in well
//! under a second, so the hash is an HMAC-SHA256 under a key that is not stored with the
//! lockouts: a random key in `fingerprint.key` beside the state files, or, with the
//! PostgreSQL backend, one derived from `store.key` (which the database never sees).
//! Every fingerprint names the key it was made with; one made with another key (or by an
//! older version, unkeyed) cannot be compared, so its lockout holds whatever the values
//! are now, until `dhan-login unlock`.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use aws_lc_rs::hmac;
use base64::Engine;
use secrecy::ExposeSecret;

use super::atomic::create_private_dir;
use crate::config::Profile;
use crate::secret::Secret;

/// The prefix of a keyed fingerprint: `hmac1:<key id>:<32 hex digits>`.
const SCHEME: &str = "hmac1:";

/// What a lockout names when Dhan rejected the SMS/e-mail code that `otp_command`
/// printed. The code served one login; the command is what would print a wrong one again
/// (an old message, another account's), so the command is what is locked, by a
/// fingerprint of its text: a changed command lifts it. A code typed by a person locks
/// nothing.
pub(crate) const OTP_COMMAND: &str = "otp_command";

/// The file beside the state that holds the file backend's key.
pub(crate) const KEY_FILE: &str = "fingerprint.key";

/// The key fingerprints are made with.
#[derive(Clone)]
pub struct FingerprintKey {
    key: hmac::Key,
    /// A short public name of the key, so a fingerprint made with another one is known.
    id: String,
}

impl std::fmt::Debug for FingerprintKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FingerprintKey({})", self.id)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl FingerprintKey {
    /// A key from secret bytes (at least 32 of them).
    pub(crate) fn from_bytes(bytes: &[u8]) -> FingerprintKey {
        let key = hmac::Key::new(hmac::HMAC_SHA256, bytes);
        let id = hex(&hmac::sign(&key, b"dhan-login fingerprint key id").as_ref()[..4]);
        FingerprintKey { key, id }
    }

    /// A key derived from another secret (the database's `store.key`), for one use only.
    #[cfg(any(feature = "postgres", test))]
    pub(crate) fn derived_from(secret: &[u8]) -> FingerprintKey {
        let parent = hmac::Key::new(hmac::HMAC_SHA256, secret);
        let tag = hmac::sign(&parent, b"dhan-login lockout fingerprints v1");
        FingerprintKey::from_bytes(tag.as_ref())
    }

    /// The key in `<state_dir>/fingerprint.key`, made (32 random bytes, mode 0600) when
    /// there is none. Two processes making it at once end up with the same one: the file
    /// appears whole or not at all, and never replaces one that exists.
    pub(crate) fn in_state_dir(state_dir: &Path) -> std::io::Result<FingerprintKey> {
        let path = state_dir.join(KEY_FILE);
        let decode = |text: &str| {
            base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .ok()
                .filter(|b| b.len() >= 32)
                .map(|b| FingerprintKey::from_bytes(&b))
                .ok_or_else(|| {
                    std::io::Error::other(format!(
                        "{} does not hold a key (32 bytes in base64)",
                        path.display()
                    ))
                })
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => return decode(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        create_private_dir(state_dir)?;
        let mut bytes = [0u8; 32];
        rand::fill(&mut bytes);
        let text = base64::engine::general_purpose::STANDARD.encode(bytes);
        let mut tmp = tempfile::Builder::new()
            .prefix(".tmp-")
            .permissions(std::fs::Permissions::from_mode(0o600))
            .tempfile_in(state_dir)?;
        tmp.write_all(text.as_bytes())?;
        tmp.as_file().sync_all()?;
        match tmp.persist_noclobber(&path) {
            Ok(_) => Ok(FingerprintKey::from_bytes(&bytes)),
            // Another process made it first: use that one.
            Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => {
                decode(&std::fs::read_to_string(&path)?)
            }
            Err(e) => Err(e.error),
        }
    }

    /// The fingerprint of the client id and the values of `fields`. None when one of them
    /// is configured but cannot be read now (a failing command): that is not a change.
    pub async fn fingerprint(
        &self,
        profile: &Profile,
        fields: &[impl AsRef<str>],
    ) -> Option<String> {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(b"dhan-login credentials v3\0");
        ctx.update(profile.client_id.as_deref().unwrap_or("").as_bytes());
        for field in fields {
            let field = field.as_ref();
            ctx.update(b"\0");
            ctx.update(field.as_bytes());
            ctx.update(b"=");
            if field == OTP_COMMAND {
                match &profile.otp_command {
                    Some(command) => ctx.update(command.as_bytes()),
                    None => ctx.update(b"\x01absent"),
                }
                continue;
            }
            match Secret::from_key(field).and_then(|s| profile.get(s)) {
                Some(s) => match s.load().await {
                    Ok(v) => ctx.update(v.expose_secret().as_bytes()),
                    Err(_) => return None,
                },
                None => ctx.update(b"\x01absent"),
            }
        }
        let tag = ctx.sign();
        Some(format!("{SCHEME}{}:{}", self.id, hex(&tag.as_ref()[..16])))
    }

    /// True when `stored` was made with this key, so that comparing it with a fresh
    /// fingerprint says whether the values changed.
    pub fn made(&self, stored: &str) -> bool {
        stored
            .strip_prefix(SCHEME)
            .and_then(|rest| rest.strip_prefix(self.id.as_str()))
            .is_some_and(|rest| rest.starts_with(':'))
    }
}

/// True for a fingerprint an older version made without a key: it could be searched for
/// the values it hides, so it is dropped (its lockout then holds whatever the values are).
pub(crate) fn is_unkeyed(stored: &str) -> bool {
    !stored.is_empty() && !stored.starts_with(SCHEME)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_file_is_made_once_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let a = FingerprintKey::in_state_dir(&state).unwrap();
        let b = FingerprintKey::in_state_dir(&state).unwrap();
        assert_eq!(a.id, b.id);
        let mode = std::fs::metadata(state.join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::write(state.join(KEY_FILE), "short").unwrap();
        let e = FingerprintKey::in_state_dir(&state).unwrap_err();
        assert!(e.to_string().contains("fingerprint.key"), "{e}");
    }

    #[test]
    fn a_fingerprint_names_its_key() {
        let k1 = FingerprintKey::from_bytes(&[1; 32]);
        let k2 = FingerprintKey::from_bytes(&[2; 32]);
        let made = format!("hmac1:{}:00112233445566778899aabbccddeeff", k1.id);
        assert!(k1.made(&made));
        assert!(!k2.made(&made));
        assert!(!k1.made("0011223344556677"));
        assert!(is_unkeyed("0011223344556677"));
        assert!(!is_unkeyed(&made));
        assert!(!is_unkeyed(""));
    }
}
