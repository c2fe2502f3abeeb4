//! Where a profile's shared state lives: files in the state folder (one machine, the
//! default) or a PostgreSQL database (several machines).
//!
//! Everything two processes must agree on goes through here: the token and what happened
//! last (the TOTP step included), the lockouts, the consent ledger with its pending
//! consentAppId, and who may log in for a profile right now.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::attempt::{MintAttempt, MintOutcome, MintWait, wait_for};
use super::fingerprint::{FingerprintKey, KEY_FILE};
use super::ledger::{ConsentLedger, LedgerDay};
use super::lock::ProfileLock;
use super::lockout::{Lockout, LockoutStore, Lockouts};
use super::mint::MintFiles;
use super::pg::{Lease, PgBackend};
use super::tokens::{ProfileState, StoreError, TokenStore, check_profile_name};
use crate::config::StoreSettings;
use crate::secret::Secret;

/// Where a profile's shared state is kept. Cloning is cheap; clones share the database
/// pool. The file backend's async methods do their (short) file I/O inline.
#[derive(Debug, Clone)]
pub enum StateBackend {
    /// Files in the state folder: one machine.
    Files(FileBackend),
    /// A PostgreSQL database named by `[store] url`: several machines.
    Postgres(Arc<PgBackend>),
}

/// The files under the state folder, as every version before the database kept them.
/// Opaque: use it through [`StateBackend`].
#[derive(Debug, Clone)]
pub struct FileBackend {
    state_dir: PathBuf,
    tokens: TokenStore,
    lockouts: LockoutStore,
}

/// The right to log in for a profile, held until dropped.
#[derive(Debug)]
pub enum Ownership {
    /// A file lock: the kernel drops it when the holder dies.
    File(ProfileLock),
    /// A lease row in the database, renewed in the background.
    Lease(Lease),
}

impl Ownership {
    /// True when another holder had it first (and may have stored a fresh token).
    pub fn waited(&self) -> bool {
        match self {
            Ownership::File(l) => l.waited,
            Ownership::Lease(l) => l.waited(),
        }
    }

    /// False once a lease may have passed to another holder (or the database has not
    /// confirmed it for a while): a holder between logins then stands by.
    pub fn is_current(&self) -> bool {
        match self {
            Ownership::File(_) => true,
            Ownership::Lease(l) => l.is_current(),
        }
    }

    /// True when the previous holder vanished mid-login instead of letting go.
    pub fn took_over(&self) -> bool {
        match self {
            // The kernel drops a dead holder's file lock: nothing tells it apart.
            Ownership::File(_) => false,
            Ownership::Lease(l) => l.took_over(),
        }
    }

    /// Lets go at once (a dropped lease is let go in the background, which a process
    /// about to exit may never run).
    pub async fn release(self) {
        match self {
            Ownership::File(l) => drop(l),
            Ownership::Lease(l) => l.release().await,
        }
    }
}

impl StateBackend {
    /// The backend a profile's settings name: the database when a store URL is set.
    pub fn for_settings(state_dir: &Path, store: &Arc<StoreSettings>) -> Self {
        if store.url.is_some() {
            StateBackend::Postgres(PgBackend::new(store))
        } else {
            StateBackend::files(state_dir)
        }
    }

    /// The file backend on `state_dir` (nothing is created until the first write).
    pub fn files(state_dir: &Path) -> Self {
        StateBackend::Files(FileBackend {
            state_dir: state_dir.to_path_buf(),
            tokens: TokenStore::new(state_dir),
            lockouts: LockoutStore::new(state_dir),
        })
    }

    /// The stored state of `profile`: an empty (renewable) state when none is stored. A
    /// state file that does not parse is moved aside and reported as
    /// `StoreError::Corrupt`; the next load starts empty.
    pub async fn load(&self, profile: &str) -> Result<ProfileState, StoreError> {
        match self {
            StateBackend::Files(f) => f.tokens.load(profile),
            StateBackend::Postgres(p) => p.load(profile).await,
        }
    }

    /// Writes the state. `owner` is the ownership the write was decided under: the
    /// database refuses it when that lease has since passed to another holder.
    pub async fn save(
        &self,
        profile: &str,
        state: &ProfileState,
        owner: Option<&Ownership>,
    ) -> Result<(), StoreError> {
        match self {
            StateBackend::Files(f) => f.tokens.save(profile, state),
            StateBackend::Postgres(p) => {
                let lease = match owner {
                    Some(Ownership::Lease(l)) => Some(l),
                    _ => None,
                };
                p.save(profile, state, lease).await
            }
        }
    }

    /// Drops the stored token if it is still `read` (files: writes `state`, which holds
    /// none, under the caller's file lock). False when another token was stored since:
    /// it stays.
    pub async fn forget(
        &self,
        profile: &str,
        state: &ProfileState,
        read: &crate::token::Token,
    ) -> Result<bool, StoreError> {
        match self {
            // The caller holds the file lock: nothing changed since it read.
            StateBackend::Files(f) => f.tokens.save(profile, state).map(|()| true),
            StateBackend::Postgres(p) => p.forget(profile, read).await,
        }
    }

    /// Moves the stored state out of the way after a token that replaced it could not
    /// be saved: the stored token is dead, and must not be handed out.
    pub async fn set_aside(&self, profile: &str) -> Result<(), StoreError> {
        match self {
            StateBackend::Files(f) => f.tokens.set_aside(profile),
            StateBackend::Postgres(p) => p.set_aside(profile).await,
        }
    }

    /// A consumer reported `token` (the stored one) and Dhan's `profile` endpoint called
    /// it dead, to a process that may not replace it: in the shared database the report
    /// waits for the replica holding the profile. With state files every daemon replaces
    /// its own token, so there is no one to tell.
    pub async fn report_dead(
        &self,
        profile: &str,
        token: &crate::token::Token,
    ) -> Result<(), StoreError> {
        match self {
            StateBackend::Files(_) => Ok(()),
            StateBackend::Postgres(p) => p.report_dead(profile, token.obtained_at).await,
        }
    }

    /// Waits up to `wait` for the right to log in for `profile`.
    pub async fn own(&self, profile: &str, wait: Duration) -> Result<Ownership, StoreError> {
        // Before the name becomes a file's name: `../x` stays inside the state folder.
        check_profile_name(profile)?;
        match self {
            StateBackend::Files(f) => {
                let dir = TokenStore::lock_dir(&f.state_dir);
                Ok(Ownership::File(
                    ProfileLock::acquire(&dir, profile, wait).await?,
                ))
            }
            StateBackend::Postgres(p) => Ok(Ownership::Lease(p.lease(profile, wait).await?)),
        }
    }

    /// The profile's lockouts; an unreadable record is `Lockouts::Unreadable`, which locks
    /// every login path.
    pub async fn lockouts(&self, profile: &str) -> Result<Lockouts, StoreError> {
        match self {
            StateBackend::Files(f) => f.lockouts.load(profile),
            StateBackend::Postgres(p) => p.lockouts(profile).await,
        }
    }

    /// The key lockout fingerprints are made with: `fingerprint.key` in the state folder
    /// (made on first use), or derived from `store.key` for the database.
    pub async fn fingerprint_key(&self) -> Result<FingerprintKey, StoreError> {
        match self {
            StateBackend::Files(f) => {
                FingerprintKey::in_state_dir(&f.state_dir).map_err(|source| StoreError::Write {
                    path: f.state_dir.join(KEY_FILE),
                    source,
                })
            }
            StateBackend::Postgres(p) => p.fingerprint_key().await,
        }
    }

    /// Records a rejection, replacing one for the same secrets and values. An unreadable
    /// record is left as it is (it already locks everything).
    pub async fn add_lockout(&self, profile: &str, lockout: Lockout) -> Result<(), StoreError> {
        match self {
            StateBackend::Files(f) => f.lockouts.add(profile, lockout),
            StateBackend::Postgres(p) => p.add_lockout(profile, lockout).await,
        }
    }

    /// Drops the lockouts whose secrets are all in `worked`: a login that sent them just
    /// succeeded.
    pub async fn clear_covered(&self, profile: &str, worked: &[Secret]) -> Result<(), StoreError> {
        match self {
            StateBackend::Files(f) => f.lockouts.clear_covered(profile, worked),
            StateBackend::Postgres(p) => p.clear_covered(profile, worked).await,
        }
    }

    /// Removes every lockout of the profile (`dhan-login unlock`). True if there were any.
    pub async fn clear_lockouts(&self, profile: &str) -> Result<bool, StoreError> {
        match self {
            StateBackend::Files(f) => f.lockouts.clear(profile),
            StateBackend::Postgres(p) => p.clear_lockouts(profile).await,
        }
    }

    /// The mint window of every client id, leaving `interval` between two attempts.
    pub fn mint_window(&self, interval: Duration) -> MintWindow {
        MintWindow {
            backend: self.clone(),
            interval,
        }
    }

    /// The consent ledger, with the profile's daily cap.
    pub fn ledger(&self, cap: u32) -> Ledger {
        Ledger {
            backend: self.clone(),
            cap: cap.min(crate::dhan::DHAN_CONSENT_LIMIT),
        }
    }
}

/// Consents used per client id and IST day, and the pending consentAppId.
#[derive(Debug, Clone)]
pub struct Ledger {
    backend: StateBackend,
    cap: u32,
}

impl Ledger {
    /// The daily cap in force: the profile's, at most Dhan's 25.
    pub fn cap(&self) -> u32 {
        self.cap
    }

    fn files(&self, f: &FileBackend) -> ConsentLedger {
        ConsentLedger::new(&f.state_dir, self.cap)
    }

    /// Today's (IST) figures for `client_id`. Only reads, so it works on a state folder
    /// that cannot be written; a corrupt ledger counts as used up.
    pub async fn today(
        &self,
        client_id: &str,
        now: DateTime<Utc>,
    ) -> Result<LedgerDay, StoreError> {
        match &self.backend {
            StateBackend::Files(f) => self.files(f).today(client_id, now),
            StateBackend::Postgres(p) => p.ledger_today(client_id, now).await,
        }
    }

    /// Counts a generate-consent call before it is made, checking the cap in the same
    /// step, so that concurrent callers can never together exceed it.
    pub async fn reserve(&self, client_id: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        match &self.backend {
            StateBackend::Files(f) => self.files(f).reserve(client_id, now),
            StateBackend::Postgres(p) => p.reserve(client_id, now, self.cap).await,
        }
    }

    /// Gives back the consent `reserve` counted at `reserved_at`: its request never left
    /// this machine (refused connection, DNS, TLS handshake), so Dhan spent none.
    pub async fn unreserve(
        &self,
        client_id: &str,
        reserved_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        match &self.backend {
            StateBackend::Files(f) => self.files(f).unreserve(client_id, reserved_at),
            StateBackend::Postgres(p) => p.unreserve(client_id, reserved_at).await,
        }
    }

    /// Records that Dhan answered CONSENT_LIMIT_EXCEED: nothing is reserved again until
    /// the next IST midnight.
    pub async fn mark_exhausted(
        &self,
        client_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        match &self.backend {
            StateBackend::Files(f) => self.files(f).mark_exhausted(client_id, now),
            StateBackend::Postgres(p) => p.mark_exhausted(client_id, now).await,
        }
    }

    /// Remembers the consentAppId `id` until it is turned into a tokenId, so that a retry
    /// reuses it instead of spending another consent.
    pub async fn set_pending(
        &self,
        client_id: &str,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        match &self.backend {
            StateBackend::Files(f) => self.files(f).set_pending(client_id, id, now),
            StateBackend::Postgres(p) => p.set_pending(client_id, id, now).await,
        }
    }

    /// Drops the pending consent if it is still `id` (used, or rejected by Dhan).
    pub async fn clear_pending(
        &self,
        client_id: &str,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        match &self.backend {
            StateBackend::Files(f) => self.files(f).clear_pending(client_id, id, now),
            StateBackend::Postgres(p) => p.clear_pending(client_id, id).await,
        }
    }
}

/// When `generateAccessToken` was last tried per client id, shared by every process (and
/// every replica, in the database): no attempt is sent within `interval` of the last.
#[derive(Debug, Clone)]
pub struct MintWindow {
    backend: StateBackend,
    interval: Duration,
}

impl MintWindow {
    /// The least time left between two attempts.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// The last attempt for `client_id`, if one is recorded.
    pub async fn last(
        &self,
        client_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<MintAttempt>, StoreError> {
        match &self.backend {
            StateBackend::Files(f) => MintFiles::new(&f.state_dir).last(client_id, now),
            StateBackend::Postgres(p) => p.last_mint(client_id).await,
        }
    }

    /// `StoreError::MintWindow` when an attempt at `now` would come too soon after the
    /// last. Only reads: a caller about to wait for a fresh TOTP code asks this first.
    pub async fn check(&self, client_id: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        let last = self.last(client_id, now).await?;
        match wait_for(client_id, last, now, self.interval) {
            Some(wait) => Err(wait.into()),
            None => Ok(()),
        }
    }

    /// Records an attempt at `now`, to be sent right after, in the same step as the
    /// check: two callers never both pass. `StoreError::MintWindow` when it is too soon.
    pub async fn reserve(
        &self,
        client_id: &str,
        now: DateTime<Utc>,
    ) -> Result<MintAttempt, StoreError> {
        let reserved = match &self.backend {
            StateBackend::Files(f) => {
                MintFiles::new(&f.state_dir).reserve(client_id, now, self.interval)?
            }
            StateBackend::Postgres(p) => p.reserve_mint(client_id, now, self.interval).await?,
        };
        reserved.map_err(|wait: MintWait| wait.into())
    }

    /// Sets how `attempt` ended (kept only while it is still the last attempt).
    pub async fn record(
        &self,
        client_id: &str,
        attempt: MintAttempt,
        outcome: MintOutcome,
    ) -> Result<(), StoreError> {
        match &self.backend {
            StateBackend::Files(f) => {
                MintFiles::new(&f.state_dir).record(client_id, attempt, outcome)
            }
            StateBackend::Postgres(p) => p.record_mint(client_id, attempt, outcome).await,
        }
    }
}

// `store/pg_off.rs` is the database backend of a build without it.
#[cfg(all(test, not(feature = "postgres")))]
mod without_postgres {
    use super::*;
    use crate::config::SecretRef;
    use crate::error_class::ErrorClass;

    #[tokio::test]
    async fn a_database_in_a_build_without_it_is_a_config_error_naming_the_feature() {
        let state = tempfile::tempdir().unwrap();
        let store = StoreSettings {
            url: Some(SecretRef::inline("postgres://db.invalid/dhan")),
            ..StoreSettings::default()
        };
        let backend = StateBackend::for_settings(state.path(), &Arc::new(store));
        assert!(matches!(backend, StateBackend::Postgres(_)));
        let err = backend.load("default").await.unwrap_err();
        assert_eq!(err.class(), ErrorClass::Config);
        assert!(err.to_string().contains("`postgres`"), "{err}");
    }
}
