//! What survives between runs: one state file per profile, and a lock per profile.

mod atomic;
mod lock;
mod tokens;

pub use atomic::write_atomic;
pub use lock::{LockError, ProfileLock};
pub use tokens::{LastError, ProfileState, StoreError, TokenStore};
