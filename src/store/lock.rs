//! One process at a time obtains a profile's token.
//!
//! An advisory `flock` on a file in the state dir: the kernel drops it when the holder
//! dies, so a process killed mid-login never leaves a stale lock behind.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error_class::ErrorClass;

/// The right to log in for a profile was not obtained: another process kept it for
/// longer than the wait allowed, or the lock itself could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LockError {
    /// Another process on this machine held the profile's file lock for the whole wait.
    #[error(
        "another dhan-login is obtaining the token for profile `{profile}` and did not finish within {waited:?} (lock file {path})"
    )]
    Timeout {
        /// The profile asked for.
        profile: String,
        /// The lock file, to find its holder with `fuser` or `lsof`.
        path: PathBuf,
        /// How long this process waited.
        waited: Duration,
    },
    /// Another process (maybe on another machine) held the profile's database lease for
    /// the whole wait.
    #[error(
        "profile `{profile}` is leased to {holder} (another dhan-login, maybe on another machine) and it did not let go within {waited:?}"
    )]
    Leased {
        /// The profile asked for.
        profile: String,
        /// The lease holder as `host/pid/…`.
        holder: String,
        /// How long this process waited.
        waited: Duration,
    },
    /// The lock file could not be created or locked, or the lease table could not be
    /// reached within the wait.
    #[error("cannot lock {path}: {source}")]
    Io {
        /// The lock file, or `dhan_login_leases[<profile>]` for a database lease.
        path: PathBuf,
        /// The underlying failure.
        source: std::io::Error,
    },
}

impl LockError {
    /// `Transient` while another holder is busy, `Other` when the lock cannot be used.
    pub fn class(&self) -> ErrorClass {
        match self {
            // Another process is still logging in: worth trying again shortly.
            LockError::Timeout { .. } | LockError::Leased { .. } => ErrorClass::Transient,
            LockError::Io { .. } => ErrorClass::Other,
        }
    }
}

/// Held while a profile's token is being obtained; released on drop.
#[derive(Debug)]
pub struct ProfileLock {
    _file: File,
    /// True when we had to wait for another holder, who may have stored a fresh token.
    pub waited: bool,
}

impl ProfileLock {
    /// Waits up to `max_wait` for the lock on `<dir>/<profile>.lock` (creating `dir`,
    /// mode 0700), polling so that the wait stays bounded. `profile` must already be a
    /// safe file name; dhan-login's own callers check it first.
    pub async fn acquire(
        dir: &Path,
        profile: &str,
        max_wait: Duration,
    ) -> Result<ProfileLock, LockError> {
        let path = dir.join(format!("{profile}.lock"));
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        super::atomic::create_private_dir(dir).map_err(io)?;
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io)?;
        let start = Instant::now();
        let mut waited = false;
        loop {
            match file.try_lock() {
                Ok(()) => {
                    return Ok(ProfileLock {
                        _file: file,
                        waited,
                    });
                }
                Err(TryLockError::WouldBlock) => {}
                Err(TryLockError::Error(e)) => return Err(io(e)),
            }
            if start.elapsed() >= max_wait {
                return Err(LockError::Timeout {
                    profile: profile.to_owned(),
                    path,
                    waited: max_wait,
                });
            }
            if !waited {
                tracing::info!(
                    profile,
                    "another process is obtaining the token; waiting for it"
                );
            }
            waited = true;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
