//! Lockouts: which credentials Dhan rejected, in a small file of their own per profile.
//!
//! Apart from the state file so that nothing that happens to the token (a corrupt state
//! file moved aside, a logout) can drop one. Each lockout names the secrets that were sent
//! when Dhan said no and a hash of their values: a login path that would send any of them
//! is refused while they are unchanged. A lockout file that cannot be read counts as a
//! lockout of every path: guessing "not locked" is how accounts get locked.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::atomic::write_atomic;
use super::fingerprint::{OTP_COMMAND, is_unkeyed};
use super::tokens::{StoreError, profile_file};
use crate::secret::Secret;

/// One rejection by Dhan: while the same secrets hold the same values, no login path that
/// sends any of them is tried again.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Lockout {
    /// The fields Dhan rejected together (`pin`, `totp_secret`…); never their values.
    pub secrets: Vec<String>,
    /// A keyed hash of the client id and those values (see [`FingerprintKey`]); empty
    /// for a lockout that holds whatever values are configured.
    ///
    /// [`FingerprintKey`]: super::FingerprintKey
    pub fingerprint: String,
    /// When Dhan rejected them.
    pub at: DateTime<Utc>,
    /// What Dhan said, scrubbed of secrets.
    pub message: String,
}

impl Lockout {
    /// True when a login that sends `sends`, and takes its code from `otp_command` when
    /// `otp_command` is true, would repeat what Dhan rejected here.
    pub fn holds_for(&self, sends: &[Secret], otp_command: bool) -> bool {
        self.names_any(sends) || (otp_command && self.secrets.iter().any(|s| s == OTP_COMMAND))
    }

    /// True when Dhan rejected one of `sends` in this lockout. The file keeps the
    /// secrets' config keys; a key this version does not know matches nothing.
    pub fn names_any(&self, sends: &[Secret]) -> bool {
        self.secrets
            .iter()
            .any(|s| sends.iter().any(|which| which.key() == s))
    }

    /// True when every secret of this lockout is in `worked`: a login that sent them all
    /// just succeeded, so the rejection is over.
    pub fn covered_by(&self, worked: &[Secret]) -> bool {
        self.secrets
            .iter()
            .all(|s| worked.iter().any(|which| which.key() == s))
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct LockoutFile {
    #[serde(default)]
    lockouts: Vec<Lockout>,
}

/// What the lockout file says.
#[derive(Debug, Clone, PartialEq)]
pub enum Lockouts {
    /// The lockouts on record; empty when nothing is locked.
    Recorded(Vec<Lockout>),
    /// The file exists but cannot be read or parsed: every path is locked until `unlock`.
    Unreadable {
        /// The file, or `dhan_login_lockouts[<profile>]` for a database row.
        path: PathBuf,
        /// Why it cannot be read (never its content).
        reason: String,
        /// The file's modification time: since when it locks everything.
        since: DateTime<Utc>,
    },
}

impl Lockouts {
    /// True when nothing is locked (an unreadable record locks everything).
    pub fn is_empty(&self) -> bool {
        matches!(self, Lockouts::Recorded(l) if l.is_empty())
    }
}

/// Blanks the fingerprints an older version made without a key (they could be searched
/// for the PIN), so that their lockouts hold whatever the values are. True if it did.
pub(crate) fn drop_unkeyed(all: &mut [Lockout]) -> bool {
    let mut changed = false;
    for l in all.iter_mut().filter(|l| is_unkeyed(&l.fingerprint)) {
        l.fingerprint.clear();
        changed = true;
    }
    changed
}

/// Lockout files under `<state>/lockouts/<profile>.json`, mode 0600.
#[derive(Debug, Clone)]
pub(crate) struct LockoutStore {
    dir: PathBuf,
}

impl LockoutStore {
    /// The lockout files of the state folder `state_dir`; nothing is created until a
    /// rejection is recorded.
    pub(crate) fn new(state_dir: &Path) -> Self {
        Self {
            dir: state_dir.join("lockouts"),
        }
    }

    /// The profile's lockouts. An unreadable file is `Ok(Unreadable)`, not an error: the
    /// caller must treat it as locked. Errs only on a bad profile name.
    pub(crate) fn load(&self, profile: &str) -> Result<Lockouts, StoreError> {
        let path = profile_file(&self.dir, profile)?;
        let unreadable = |reason: String| {
            let since = std::fs::metadata(&path)
                .and_then(|m| m.modified())
                .map(DateTime::<Utc>::from)
                .unwrap_or(DateTime::UNIX_EPOCH);
            Lockouts::Unreadable {
                path: path.clone(),
                reason,
                since,
            }
        };
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Lockouts::Recorded(Vec::new()));
            }
            Err(e) => return Ok(unreadable(e.to_string())),
        };
        match serde_json::from_slice::<LockoutFile>(&bytes) {
            Ok(mut f) => {
                if drop_unkeyed(&mut f.lockouts) {
                    // Best effort: the lockouts hold either way, this only stops the file
                    // from keeping a searchable hash of a PIN.
                    let _ = self.write(profile, f.lockouts.clone());
                }
                Ok(Lockouts::Recorded(f.lockouts))
            }
            // serde_json's message names line and column, never the content.
            Err(e) => Ok(unreadable(e.to_string())),
        }
    }

    /// Records a rejection. An unreadable file is left as it is: it already locks all.
    pub(crate) fn add(&self, profile: &str, lockout: Lockout) -> Result<(), StoreError> {
        let Lockouts::Recorded(mut all) = self.load(profile)? else {
            return Ok(());
        };
        all.retain(|l| l.secrets != lockout.secrets || l.fingerprint != lockout.fingerprint);
        all.push(lockout);
        self.write(profile, all)
    }

    /// Drops the lockouts whose secrets all just worked in a login that sent `worked`.
    pub(crate) fn clear_covered(&self, profile: &str, worked: &[Secret]) -> Result<(), StoreError> {
        let Lockouts::Recorded(all) = self.load(profile)? else {
            return Ok(());
        };
        let before = all.len();
        let left: Vec<Lockout> = all.into_iter().filter(|l| !l.covered_by(worked)).collect();
        if left.len() != before {
            self.write(profile, left)?;
        }
        Ok(())
    }

    /// Removes every lockout of the profile (`dhan-login unlock`). True if there was a file.
    pub(crate) fn clear(&self, profile: &str) -> Result<bool, StoreError> {
        let path = profile_file(&self.dir, profile)?;
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(source) => Err(StoreError::Write { path, source }),
        }
    }

    fn write(&self, profile: &str, lockouts: Vec<Lockout>) -> Result<(), StoreError> {
        let path = profile_file(&self.dir, profile)?;
        if lockouts.is_empty() {
            return self.clear(profile).map(|_| ());
        }
        let bytes = serde_json::to_vec_pretty(&LockoutFile { lockouts }).map_err(|e| {
            StoreError::Write {
                path: path.clone(),
                source: std::io::Error::other(e),
            }
        })?;
        write_atomic(&path, &bytes).map_err(|source| StoreError::Write { path, source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lockout(secrets: &[&str], fingerprint: &str) -> Lockout {
        Lockout {
            secrets: secrets.iter().map(|s| s.to_string()).collect(),
            fingerprint: fingerprint.into(),
            at: Utc::now(),
            message: "Invalid PIN".into(),
        }
    }

    #[test]
    fn a_success_clears_only_what_it_proved() {
        let dir = tempfile::tempdir().unwrap();
        let s = LockoutStore::new(dir.path());
        s.add("p", lockout(&["pin", "totp_secret"], "a")).unwrap();
        s.add("p", lockout(&["api_key", "api_secret"], "b"))
            .unwrap();
        s.clear_covered("p", &[Secret::Pin, Secret::TotpSecret])
            .unwrap();
        let Lockouts::Recorded(left) = s.load("p").unwrap() else {
            panic!("readable")
        };
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].secrets, ["api_key", "api_secret"]);
        assert!(s.clear("p").unwrap());
        assert!(s.load("p").unwrap().is_empty());
    }

    #[test]
    fn a_corrupt_file_stays_and_counts_as_locked() {
        let dir = tempfile::tempdir().unwrap();
        let s = LockoutStore::new(dir.path());
        s.add("p", lockout(&["pin", "totp_secret"], "a")).unwrap();
        let path = dir.path().join("lockouts/p.json");
        std::fs::write(&path, b"{\"lockouts\": [{\"secr").unwrap();
        assert!(matches!(s.load("p").unwrap(), Lockouts::Unreadable { .. }));
        // Adding or clearing what a login proved does not paper over it.
        s.add("p", lockout(&["api_key"], "c")).unwrap();
        s.clear_covered("p", &[Secret::Pin, Secret::TotpSecret])
            .unwrap();
        assert!(matches!(s.load("p").unwrap(), Lockouts::Unreadable { .. }));
        assert!(path.exists());
        assert!(s.clear("p").unwrap());
    }
}
