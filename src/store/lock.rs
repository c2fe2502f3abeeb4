//! One process at a time obtains a profile's token.
//!
//! An advisory `flock` on a file in the state dir: the kernel drops it when the holder
//! dies, so a process killed mid-login never leaves a stale lock behind.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error_class::ErrorClass;

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another dhan-login is obtaining the token for profile `{profile}` and did not finish within {waited:?} (lock file {path})"
    )]
    Timeout {
        profile: String,
        path: PathBuf,
        waited: Duration,
    },
    #[error(
        "profile `{profile}` is leased to {holder} (another dhan-login, maybe on another machine) and it did not let go within {waited:?}"
    )]
    Leased {
        profile: String,
        holder: String,
        waited: Duration,
    },
    #[error("cannot lock {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl LockError {
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
    /// Waits up to `max_wait` for the lock, polling so that the wait stays bounded.
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
