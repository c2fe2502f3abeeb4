//! Locking a mutex whose holder panicked.

use std::sync::{Mutex, MutexGuard};

/// The guard of `m`, also after a holder panicked: every value kept behind these locks
/// (counters, last steps, recorded events) stays consistent between statements, so a
/// panic elsewhere must not take every later caller down with it.
pub(crate) fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
