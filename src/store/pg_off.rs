//! `[store] url` in a build without the Cargo feature `postgres`: the same names as
//! `pg/`, so `StateBackend` has one shape in every build, and every call refused as a
//! configuration error that says which feature is missing. Nothing is sent anywhere.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::attempt::{MintAttempt, MintOutcome, MintWait};
use super::fingerprint::FingerprintKey;
use super::ledger::LedgerDay;
use super::lockout::{Lockout, Lockouts};
use super::tokens::{ProfileState, StoreError};
use crate::config::StoreSettings;
use crate::secret::Secret;
use crate::token::Token;

/// The database backend, absent from this build (Cargo feature `postgres` off): a profile
/// whose settings name a database fails on its first use of the state, with
/// `StoreError::Unusable`.
#[derive(Debug)]
pub struct PgBackend {
    _private: (),
}

/// A database lease. This build has no database (feature `postgres` off), so none exists.
#[derive(Debug)]
pub enum Lease {}

/// Another holder's lease; never seen without the database.
#[cfg(feature = "serve")]
#[derive(Debug, Clone)]
pub(crate) enum HeldElsewhere {}

fn off<T>() -> Result<T, StoreError> {
    Err(StoreError::Unusable {
        message:
            "store.url is set, but this build has no PostgreSQL support (Cargo feature `postgres`)"
                .into(),
    })
}

impl Lease {
    /// The lease's epoch.
    pub fn epoch(&self) -> i64 {
        match *self {}
    }

    /// Whether the database still confirms the lease.
    pub fn is_current(&self) -> bool {
        match *self {}
    }

    /// Who holds it.
    pub fn holder(&self) -> &str {
        match *self {}
    }

    /// Whether another holder had it first.
    pub fn waited(&self) -> bool {
        match *self {}
    }

    /// Whether it was taken from a holder that vanished.
    pub fn took_over(&self) -> bool {
        match *self {}
    }

    /// Lets go at once.
    pub async fn release(self) {
        match self {}
    }
}

// The signatures are those of `pg/mod.rs`, which `StateBackend` and the daemon's keeper
// call; the arguments have nowhere to go.
impl PgBackend {
    pub(crate) fn new(_settings: &Arc<StoreSettings>) -> Arc<PgBackend> {
        Arc::new(PgBackend { _private: () })
    }

    pub(crate) async fn load(&self, _profile: &str) -> Result<ProfileState, StoreError> {
        off()
    }

    pub(crate) async fn save(
        &self,
        _profile: &str,
        _state: &ProfileState,
        _lease: Option<&Lease>,
    ) -> Result<(), StoreError> {
        off()
    }

    pub(crate) async fn forget(&self, _profile: &str, _read: &Token) -> Result<bool, StoreError> {
        off()
    }

    pub(crate) async fn set_aside(&self, _profile: &str) -> Result<(), StoreError> {
        off()
    }

    pub(crate) async fn report_dead(
        &self,
        _profile: &str,
        _obtained_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        off()
    }

    pub(crate) async fn lease(&self, _profile: &str, _wait: Duration) -> Result<Lease, StoreError> {
        off()
    }

    #[cfg(feature = "serve")]
    pub(crate) async fn try_lease(
        &self,
        _profile: &str,
    ) -> Result<Result<Lease, HeldElsewhere>, StoreError> {
        off()
    }

    pub(crate) async fn fingerprint_key(&self) -> Result<FingerprintKey, StoreError> {
        off()
    }

    pub(crate) async fn lockouts(&self, _profile: &str) -> Result<Lockouts, StoreError> {
        off()
    }

    pub(crate) async fn add_lockout(
        &self,
        _profile: &str,
        _lockout: Lockout,
    ) -> Result<(), StoreError> {
        off()
    }

    pub(crate) async fn clear_covered(
        &self,
        _profile: &str,
        _worked: &[Secret],
    ) -> Result<(), StoreError> {
        off()
    }

    pub(crate) async fn clear_lockouts(&self, _profile: &str) -> Result<bool, StoreError> {
        off()
    }

    pub(crate) async fn ledger_today(
        &self,
        _client_id: &str,
        _now: DateTime<Utc>,
    ) -> Result<LedgerDay, StoreError> {
        off()
    }

    pub(crate) async fn reserve(
        &self,
        _client_id: &str,
        _now: DateTime<Utc>,
        _cap: u32,
    ) -> Result<(), StoreError> {
        off()
    }

    pub(crate) async fn unreserve(
        &self,
        _client_id: &str,
        _reserved_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        off()
    }

    pub(crate) async fn mark_exhausted(
        &self,
        _client_id: &str,
        _now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        off()
    }

    pub(crate) async fn set_pending(
        &self,
        _client_id: &str,
        _id: &str,
        _now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        off()
    }

    pub(crate) async fn clear_pending(
        &self,
        _client_id: &str,
        _id: &str,
    ) -> Result<(), StoreError> {
        off()
    }

    pub(crate) async fn last_mint(
        &self,
        _client_id: &str,
    ) -> Result<Option<MintAttempt>, StoreError> {
        off()
    }

    pub(crate) async fn reserve_mint(
        &self,
        _client_id: &str,
        _now: DateTime<Utc>,
        _interval: Duration,
    ) -> Result<Result<MintAttempt, MintWait>, StoreError> {
        off()
    }

    pub(crate) async fn record_mint(
        &self,
        _client_id: &str,
        _attempt: MintAttempt,
        _outcome: MintOutcome,
    ) -> Result<(), StoreError> {
        off()
    }
}
