//! What survives between runs: one state file per profile, and a lock per profile.
//!
//! [`TokenManager`](crate::TokenManager) reads and writes all of it; the types here are
//! for a program that inspects the state itself (`dhan-login status` does) or picks a
//! [`StateBackend`] of its own, whose methods are the way in: the files behind the file
//! backend (token files, consent ledger, lockout records) stay inside the crate.

mod atomic;
mod attempt;
mod backend;
mod fingerprint;
mod ledger;
mod lock;
mod lockout;
mod mint;
#[cfg(feature = "postgres")]
mod pg;
#[cfg(not(feature = "postgres"))]
#[path = "pg_off.rs"]
mod pg;
mod tokens;

pub use atomic::write_atomic;
pub use attempt::{MintAttempt, MintOutcome, MintWait};
pub use backend::{FileBackend, Ledger, MintWindow, Ownership, StateBackend};
pub use fingerprint::FingerprintKey;
pub(crate) use fingerprint::OTP_COMMAND;
pub use ledger::{LedgerDay, PendingConsent, next_ist_midnight};
pub use lock::{LockError, ProfileLock};
pub use lockout::{Lockout, Lockouts};
pub use pg::{Lease, PgBackend};
pub use tokens::{
    KeptTokenId, LastError, LegacyLockout, ProfileState, StoreError, check_profile_name,
};
