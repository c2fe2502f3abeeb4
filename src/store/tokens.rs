//! The per-profile state file: the current token and what happened last.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::atomic::write_atomic;
use crate::error_class::ErrorClass;
use crate::token::Token;

/// Why the shared state (token, lockouts, consent ledger, ownership) could not be read
/// or written. Messages name the file or the database, never a token's value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A state file exists but could not be read (permissions, I/O error).
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file that could not be read.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// A state or lockout file could not be written, so the change it carried is lost.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file that could not be written.
        path: PathBuf,
        /// What the operating system (or the serialiser) said.
        source: std::io::Error,
    },
    /// A state file did not parse; it was renamed aside, kept for inspection, and the
    /// profile starts from an empty state.
    #[error("{path} was corrupt ({reason}); moved aside to {moved_to}")]
    Corrupt {
        /// The file as it was named.
        path: PathBuf,
        /// Where it is now.
        moved_to: PathBuf,
        /// The parser's complaint (line and column, never the content).
        reason: String,
    },
    /// Corrupt, on a folder where it cannot be moved (a read-only `status`, say).
    #[error("{path} is corrupt ({reason}) and was left in place: {source}")]
    CorruptKept {
        /// The corrupt file, still in place.
        path: PathBuf,
        /// The parser's complaint (line and column, never the content).
        reason: String,
        /// Why the rename failed.
        source: std::io::Error,
    },
    /// The profile name would not make a safe file name (`../x`, an empty name, a
    /// leading dot); it is refused before it reaches a path.
    #[error("profile name `{0}` may only hold letters, digits, `-`, `_` and `.`")]
    BadProfileName(String),
    /// The shared database could not be reached or refused a statement.
    #[error("state database: {message}")]
    Database {
        /// What went wrong, naming the setting (`store.key`, `store.url`) when one is
        /// at fault; never the URL's password or a token.
        message: String,
    },
    /// The database cannot be used as configured, and waiting will not change that: the
    /// store key is missing or malformed, the server refused the user or password, the
    /// database does not exist. The fix is the user's (exit 2).
    #[error("state database: {message}")]
    Unusable {
        /// What is wrong, naming the setting to fix; never the URL's password or a key.
        message: String,
    },
    /// A write made under a database lease that has since passed to another holder
    /// (this process paused or lost the network for longer than the lease).
    #[error(
        "profile `{profile}`: the lease this write was made under (epoch {epoch}) has passed to another holder; the write was refused so that it cannot overwrite a newer token"
    )]
    Fenced {
        /// The profile whose write was refused.
        profile: String,
        /// The epoch of the lease the write was made under.
        epoch: i64,
    },
    /// The database was migrated by a newer dhan-login; this one refuses to touch it.
    #[error(
        "the state database's schema is at version {found}, newer than the {known} this dhan-login knows: upgrade dhan-login here before pointing it at that database"
    )]
    SchemaTooNew {
        /// The schema version in the database.
        found: i32,
        /// The newest version this build knows.
        known: i32,
    },
    /// The consent ledger refuses: the day's consents are spent, or the client id cannot
    /// name a ledger file. Also a `[store] url` that cannot work as written.
    #[error("{message}")]
    Refused {
        /// `ConsentLimit` for a spent day, `Config` for a bad client id or store URL.
        class: ErrorClass,
        /// The reason, with the time the count resets where that applies.
        message: String,
    },
    /// An I/O failure with no file to name (the store's own files report `Read` or
    /// `Write` with their path).
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The right to log in for a profile was not obtained.
    #[error(transparent)]
    Lock(#[from] super::lock::LockError),
    /// generateAccessToken was tried too recently for this client id: no request sent.
    #[error(transparent)]
    MintWindow(#[from] super::attempt::MintWait),
}

impl StoreError {
    /// The class that decides fallback, retries and the exit code.
    pub fn class(&self) -> ErrorClass {
        match self {
            StoreError::BadProfileName(_)
            | StoreError::SchemaTooNew { .. }
            | StoreError::Unusable { .. } => ErrorClass::Config,
            // The database is down or restarting, or another machine took the profile
            // over: worth trying again shortly.
            StoreError::Database { .. } | StoreError::Fenced { .. } => ErrorClass::Transient,
            StoreError::Refused { class, .. } => *class,
            StoreError::Lock(e) => e.class(),
            StoreError::MintWindow(_) => ErrorClass::RateLimited,
            StoreError::Read { .. }
            | StoreError::Write { .. }
            | StoreError::Corrupt { .. }
            | StoreError::CorruptKept { .. }
            | StoreError::Io(_) => ErrorClass::Other,
        }
    }
}

/// The last failure, for `status` and the daemon's health.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LastError {
    /// When it happened.
    pub at: DateTime<Utc>,
    /// The [`ErrorClass`] as its snake_case name (`consent_limit`…), kept as text so a
    /// state written by a newer version with a new class still loads.
    pub class: String,
    /// The error's message, as printed (free of secrets).
    pub message: String,
}

/// Everything stored for one profile between runs. The token and a kept tokenId are the
/// secrets in it; the database backend stores them encrypted, the file backend in a
/// 0600 file.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ProfileState {
    /// The current token, if one was obtained and has not been dropped.
    pub token: Option<Token>,
    /// False once RenewToken refused this token: do not ask again.
    #[serde(default = "yes")]
    pub renewable: bool,
    /// The last failure, until a token is obtained or imported.
    pub last_error: Option<LastError>,
    /// When this state last changed.
    pub updated_at: Option<DateTime<Utc>>,
    /// A lockout stored here by versions before lockouts got their own file. Its
    /// fingerprint covered every credential at once and cannot be matched per path, so
    /// it holds every login until `dhan-login unlock`.
    #[serde(default, rename = "lockout", skip_serializing_if = "Option::is_none")]
    pub legacy_lockout: Option<LegacyLockout>,
    /// The last TOTP step submitted, so no later run submits the same code.
    #[serde(default)]
    pub totp_last_step: Option<i64>,
    /// A tokenId the login page gave whose exchange failed on the way: the next login
    /// exchanges it before spending a consent or typing anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kept_token_id: Option<KeptTokenId>,
    /// Read from a state set aside after a failed save: the run that failed may have
    /// used a later TOTP step than the one recorded.
    #[serde(skip)]
    pub set_aside: bool,
    /// When the token was obtained that a consumer reported to a replica which may not
    /// replace it and that Dhan's `profile` endpoint called dead (shared database only):
    /// the replica holding the profile replaces that token.
    #[serde(skip)]
    pub reported_dead: Option<DateTime<Utc>>,
}

/// A tokenId whose exchange (consumeApp-consent) failed with Dhan unreachable or
/// answering 5xx, so it may still be good. With the API secret it is a token: the file
/// backend keeps it in the 0600 state file as it keeps the token, the database sealed
/// with the store key. Debug never shows it.
#[derive(Clone, Serialize, Deserialize)]
pub struct KeptTokenId {
    #[serde(with = "secret_text")]
    value: SecretString,
    /// The client id (and so the app) it was made for: another one's is never sent.
    pub client_id: String,
    /// When the page gave it; it is dropped, untried, once too old to be of use.
    pub captured_at: DateTime<Utc>,
}

impl KeptTokenId {
    /// A tokenId captured at `captured_at` for `client_id`.
    pub fn new(value: SecretString, client_id: &str, captured_at: DateTime<Utc>) -> Self {
        Self {
            value,
            client_id: client_id.to_owned(),
            captured_at,
        }
    }

    /// The tokenId itself, to send to consumeApp-consent.
    pub fn value(&self) -> &SecretString {
        &self.value
    }
}

impl std::fmt::Debug for KeptTokenId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeptTokenId")
            .field("value", &"****")
            .field("client_id", &self.client_id)
            .field("captured_at", &self.captured_at)
            .finish()
    }
}

impl PartialEq for KeptTokenId {
    fn eq(&self, other: &Self) -> bool {
        self.value.expose_secret() == other.value.expose_secret()
            && self.client_id == other.client_id
            && self.captured_at == other.captured_at
    }
}

/// Writing the state is the one place the tokenId's value is exposed.
mod secret_text {
    use secrecy::{ExposeSecret, SecretString};
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(v: &SecretString, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(v.expose_secret())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SecretString, D::Error> {
        String::deserialize(d).map(SecretString::from)
    }
}

/// A lockout in the format of versions before lockouts got their own file
/// ([`ProfileState::legacy_lockout`]).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LegacyLockout {
    /// When Dhan rejected the credentials.
    pub at: DateTime<Utc>,
    /// What Dhan said.
    pub message: String,
}

fn yes() -> bool {
    true
}

impl ProfileState {
    /// Notes a failure as the last error, stamped `now`.
    pub fn record_error(&mut self, class: ErrorClass, message: String, now: DateTime<Utc>) {
        self.last_error = Some(LastError {
            at: now,
            class: class.as_str().to_owned(),
            message,
        });
        self.updated_at = Some(now);
    }
}

/// Checks a profile name before it becomes part of a path: `../x` must never name a
/// file outside the state folder. Every command that reaches the state refuses what
/// this refuses; `init` checks it before writing a profile no command could use.
pub fn check_profile_name(profile: &str) -> Result<(), StoreError> {
    let ok = !profile.is_empty()
        && !profile.starts_with('.')
        && profile
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(StoreError::BadProfileName(profile.to_owned()))
    }
}

/// `<dir>/<profile>.json`, for a checked profile name.
pub(super) fn profile_file(dir: &Path, profile: &str) -> Result<PathBuf, StoreError> {
    check_profile_name(profile)?;
    Ok(dir.join(format!("{profile}.json")))
}

fn replaced(path: &Path) -> PathBuf {
    path.with_extension("json.replaced")
}

/// Token files under `<state>/tokens/<profile>.json`, mode 0600.
#[derive(Debug, Clone)]
pub(crate) struct TokenStore {
    dir: PathBuf,
}

impl TokenStore {
    /// The store under `state_dir`; nothing is created until the first save.
    pub(crate) fn new(state_dir: &Path) -> Self {
        Self {
            dir: state_dir.join("tokens"),
        }
    }

    /// The folder holding the per-profile lock files ([`ProfileLock`]) of a state folder:
    /// another program that takes the same lock waits for dhan-login's logins.
    ///
    /// [`ProfileLock`]: super::ProfileLock
    pub(crate) fn lock_dir(state_dir: &Path) -> PathBuf {
        state_dir.join("locks")
    }

    /// The state file of `profile`; `BadProfileName` for a name that is not a safe file
    /// name.
    pub(crate) fn path(&self, profile: &str) -> Result<PathBuf, StoreError> {
        profile_file(&self.dir, profile)
    }

    /// The stored state; an absent file is an empty state. A file that does not parse is
    /// moved aside (kept for inspection) and reported as `Corrupt`, or `CorruptKept`
    /// where it cannot be moved.
    pub(crate) fn load(&self, profile: &str) -> Result<ProfileState, StoreError> {
        let path = self.path(profile)?;
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(self.load_replaced(&path));
            }
            Err(source) => return Err(StoreError::Read { path, source }),
        };
        match serde_json::from_slice(&bytes) {
            Ok(state) => Ok(state),
            Err(e) => {
                let stamp = Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
                let moved_to = path.with_extension(format!("json.corrupt-{stamp}"));
                // serde_json's message names line and column, never the content.
                if let Err(source) = std::fs::rename(&path, &moved_to) {
                    return Err(StoreError::CorruptKept {
                        path,
                        reason: e.to_string(),
                        source,
                    });
                }
                Err(StoreError::Corrupt {
                    path,
                    moved_to,
                    reason: e.to_string(),
                })
            }
        }
    }

    /// Replaces the stored state atomically (a crash leaves the old file or the new one,
    /// mode 0600). Takes no lock: the caller holds the profile's ownership.
    pub(crate) fn save(&self, profile: &str, state: &ProfileState) -> Result<(), StoreError> {
        let path = self.path(profile)?;
        let bytes = serde_json::to_vec_pretty(state).map_err(|e| StoreError::Write {
            path: path.clone(),
            source: std::io::Error::other(e),
        })?;
        write_atomic(&path, &bytes).map_err(|source| StoreError::Write {
            path: path.clone(),
            source,
        })?;
        // The new state supersedes one set aside by a failed save.
        let _ = std::fs::remove_file(replaced(&path));
        Ok(())
    }

    /// After a new token could not be saved: moves the state file (and the token Dhan
    /// has just replaced) out of the way, so no later run prints a dead token. A rename
    /// needs no free space, so it works on a full disk.
    pub(crate) fn set_aside(&self, profile: &str) -> Result<(), StoreError> {
        let path = self.path(profile)?;
        match std::fs::rename(&path, replaced(&path)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(StoreError::Write { path, source }),
        }
    }

    /// What a set-aside state still tells (the last TOTP step, renewability), without
    /// its token; an empty state when there is none.
    fn load_replaced(&self, path: &Path) -> ProfileState {
        let aside = std::fs::read(replaced(path))
            .ok()
            .and_then(|b| serde_json::from_slice::<ProfileState>(&b).ok());
        match aside {
            Some(state) => ProfileState {
                token: None,
                kept_token_id: None,
                set_aside: true,
                ..state
            },
            None => ProfileState {
                renewable: true,
                ..Default::default()
            },
        }
    }
}

// Moved from the integration tests when `TokenStore` became the crate's own: the file
// backend is reached through `StateBackend` from outside.
#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use chrono::Utc;
    use proptest::strategy::Strategy;

    use super::*;
    use crate::token::SourceKind;

    fn state_with(value: &str) -> ProfileState {
        ProfileState {
            token: Some(
                Token::from_grant(
                    value,
                    Some("1100000042"),
                    Some("2030-01-01T00:00:00"),
                    SourceKind::Totp,
                    Utc::now(),
                )
                .unwrap(),
            ),
            renewable: true,
            updated_at: Some(Utc::now()),
            ..Default::default()
        }
    }

    #[test]
    fn saved_state_is_private_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let store = TokenStore::new(dir.path());
        let state = state_with("token.one.1");
        store.save("default", &state).unwrap();
        let path = store.path("default").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "file mode {mode:o}");
        let dir_mode = std::fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dir_mode, 0o700, "dir mode {dir_mode:o}");
        assert_eq!(store.load("default").unwrap(), state);
    }

    #[test]
    fn a_missing_file_is_an_empty_renewable_state() {
        let dir = tempfile::tempdir().unwrap();
        let state = TokenStore::new(dir.path()).load("default").unwrap();
        assert!(state.token.is_none());
        assert!(state.renewable);
    }

    #[test]
    fn replacement_is_atomic_for_a_concurrent_reader() {
        let dir = tempfile::tempdir().unwrap();
        let store = TokenStore::new(dir.path());
        store.save("p", &state_with("a.a.a")).unwrap();
        let path = store.path("p").unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut reads = 0u32;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let bytes = std::fs::read(&path).unwrap();
                    let parsed: Result<ProfileState, _> = serde_json::from_slice(&bytes);
                    assert!(parsed.is_ok(), "torn read after {reads} reads");
                    reads += 1;
                }
                reads
            })
        };
        for i in 0..300 {
            // Values of different lengths, so a torn write would show.
            store
                .save("p", &state_with(&format!("x.x.{}", "x".repeat(1 + i % 97))))
                .unwrap();
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let reads = reader.join().unwrap();
        assert!(reads > 0);
        // No temp files are left behind.
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("tokens"))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp-"))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn a_corrupt_file_is_moved_aside_with_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let store = TokenStore::new(dir.path());
        store.save("default", &state_with("a.a.a")).unwrap();
        let path = store.path("default").unwrap();
        std::fs::write(&path, b"{\"token\": {\"access_token\": \"half").unwrap();
        let err = store.load("default").err().unwrap();
        let StoreError::Corrupt { moved_to, .. } = &err else {
            panic!("expected Corrupt, got {err}");
        };
        assert!(moved_to.exists());
        assert!(!path.exists());
        let text = err.to_string();
        assert!(
            text.contains("corrupt") && text.contains("moved aside"),
            "{text}"
        );
        assert!(
            !text.contains("half"),
            "the message must not quote the content: {text}"
        );
        // The next load starts clean.
        assert!(store.load("default").unwrap().token.is_none());
    }

    #[test]
    fn profile_names_cannot_escape_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let store = TokenStore::new(dir.path());
        for bad in ["../x", "a/b", "", ".hidden"] {
            assert!(
                matches!(store.path(bad), Err(StoreError::BadProfileName(_))),
                "{bad}"
            );
        }
    }

    proptest::proptest! {
        /// A token file of any bytes loads or is reported corrupt (and moved aside); it
        /// never panics.
        #[test]
        fn the_token_file_parser_takes_any_bytes(
            bytes in proptest::prop_oneof![
                proptest::prelude::any::<Vec<u8>>(),
                "\\{\"token\": \\{\"access_token\": \"[a-z.\\n]{0,20}\", \"client_id\": \"[0-9a]{0,4}\", \"expires_at\": \"2030-01-01T00:00:00Z\", \"kind\": \"APP\", \"source\": \"totp\", \"obtained_at\": \"2025-01-01T00:00:00Z\"\\}\\}"
                    .prop_map(String::into_bytes),
            ],
        ) {
            let dir = tempfile::tempdir().unwrap();
            let store = TokenStore::new(dir.path());
            std::fs::create_dir_all(dir.path().join("tokens")).unwrap();
            std::fs::write(dir.path().join("tokens/p.json"), &bytes).unwrap();
            let _ = store.load("p");
        }
    }
}
