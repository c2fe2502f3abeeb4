//! What survives between runs: one state file per profile, and a lock per profile.

mod atomic;
mod ledger;
mod lock;
mod tokens;

pub use atomic::write_atomic;
pub use ledger::{ConsentLedger, DHAN_CONSENT_LIMIT, LedgerDay, PendingConsent, next_ist_midnight};
pub use lock::{LockError, ProfileLock};
pub use tokens::{LastError, Lockout, ProfileState, StoreError, TokenStore};
