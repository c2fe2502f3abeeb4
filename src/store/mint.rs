//! The mint window: when `generateAccessToken` was last tried for a client id, and how
//! that try ended.
//!
//! Dhan mints at most one token every 2 minutes per client, and an attempt inside that
//! window is refused and re-arms it: the wait counts from the last *attempt*, by anyone,
//! not from the last token (a public project that retried on the refusal made 3,831
//! attempts in a day, 2026-08). So every attempt is written down before its request is
//! sent, and no process or replica sends one within `interval` of the last: one file per
//! client id under `<state>/mints/` (guarded by a lock file while it is read and
//! rewritten), or one row of `dhan_login_mints` in the shared database.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::atomic::write_atomic;
use super::attempt::{MintAttempt, MintOutcome, MintWait, wait_for};
use super::ledger::{client_file, lock, lock_client_file};
use super::tokens::StoreError;
#[cfg(test)]
use crate::api::MINT_INTERVAL;

/// The mint window's files under `<state>/mints/<client id>.json`.
#[derive(Debug, Clone)]
pub(super) struct MintFiles {
    dir: PathBuf,
}

impl MintFiles {
    pub(super) fn new(state_dir: &Path) -> Self {
        MintFiles {
            dir: state_dir.join("mints"),
        }
    }

    fn path(&self, client_id: &str) -> Result<PathBuf, StoreError> {
        client_file(&self.dir, client_id)
    }

    /// The last attempt. A file that does not parse counts as an attempt just now: the
    /// safe reading, since it may have recorded one.
    pub(super) fn last(
        &self,
        client_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<MintAttempt>, StoreError> {
        let path = self.path(client_id)?;
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(
                    "mint window {} does not parse ({e}): counting an attempt now",
                    path.display()
                );
                MintAttempt {
                    at: now,
                    outcome: MintOutcome::Sent,
                }
            }))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StoreError::Read { path, source }),
        }
    }

    /// Records an attempt at `now` unless the last one is within `interval`; the refusal
    /// says until when. Read and written under the client id's lock file.
    pub(super) fn reserve(
        &self,
        client_id: &str,
        now: DateTime<Utc>,
        interval: Duration,
    ) -> Result<Result<MintAttempt, MintWait>, StoreError> {
        let path = self.path(client_id)?;
        let _guard = lock_client_file(&self.dir, &path)?;
        if let Some(wait) = wait_for(client_id, self.last(client_id, now)?, now, interval) {
            return Ok(Err(wait));
        }
        let attempt = MintAttempt {
            at: now,
            outcome: MintOutcome::Sent,
        };
        self.write(&path, &attempt)?;
        Ok(Ok(attempt))
    }

    /// Sets the outcome of `attempt`, unless a later attempt was recorded since.
    pub(super) fn record(
        &self,
        client_id: &str,
        attempt: MintAttempt,
        outcome: MintOutcome,
    ) -> Result<(), StoreError> {
        let path = self.path(client_id)?;
        let _guard = lock(&path.with_extension("lock"))?;
        if self.last(client_id, attempt.at)?.map(|a| a.at) != Some(attempt.at) {
            return Ok(());
        }
        self.write(&path, &MintAttempt { outcome, ..attempt })
    }

    fn write(&self, path: &Path, attempt: &MintAttempt) -> Result<(), StoreError> {
        serde_json::to_vec_pretty(attempt)
            .map_err(std::io::Error::other)
            .and_then(|bytes| write_atomic(path, &bytes))
            .map_err(|source| StoreError::Write {
                path: path.to_path_buf(),
                source,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 9, 1, 3, 0, 0).unwrap()
    }

    #[test]
    fn an_attempt_closes_the_window_for_the_interval_from_the_attempt() {
        let dir = tempfile::tempdir().unwrap();
        let files = MintFiles::new(dir.path());
        let first = files.reserve("1100000001", t0(), MINT_INTERVAL).unwrap();
        let first = first.expect("nothing recorded yet");
        files
            .record("1100000001", first, MintOutcome::Throttled)
            .unwrap();
        let later = t0() + chrono::Duration::seconds(124);
        let wait = files
            .reserve("1100000001", later, MINT_INTERVAL)
            .unwrap()
            .expect_err("inside the window");
        assert_eq!(wait.next_at, t0() + chrono::Duration::seconds(125));
        assert_eq!(wait.wait, Duration::from_secs(1));
        assert_eq!(wait.last.outcome, MintOutcome::Throttled);
        // 03:02:05 UTC is 08:32:05 IST.
        assert!(wait.to_string().contains("08:32:05 IST"), "{wait}");
        // The refusal recorded nothing: the window still counts from the first attempt.
        let at_edge = t0() + chrono::Duration::seconds(125);
        assert!(
            files
                .reserve("1100000001", at_edge, MINT_INTERVAL)
                .unwrap()
                .is_ok()
        );
        // Another client id has a window of its own.
        assert!(
            files
                .reserve("1100000002", later, MINT_INTERVAL)
                .unwrap()
                .is_ok()
        );
    }

    #[test]
    fn an_outcome_never_lands_on_a_later_attempt() {
        let dir = tempfile::tempdir().unwrap();
        let files = MintFiles::new(dir.path());
        let first = files.reserve("7", t0(), Duration::ZERO).unwrap().unwrap();
        let second = files
            .reserve("7", t0() + chrono::Duration::seconds(1), Duration::ZERO)
            .unwrap()
            .unwrap();
        files.record("7", first, MintOutcome::Minted).unwrap();
        assert_eq!(files.last("7", t0()).unwrap(), Some(second));
    }

    #[test]
    fn a_damaged_file_counts_as_an_attempt_now() {
        let dir = tempfile::tempdir().unwrap();
        let files = MintFiles::new(dir.path());
        std::fs::create_dir_all(dir.path().join("mints")).unwrap();
        std::fs::write(dir.path().join("mints/7.json"), b"{not json").unwrap();
        let wait = files
            .reserve("7", t0(), MINT_INTERVAL)
            .unwrap()
            .unwrap_err();
        assert_eq!(wait.next_at, t0() + chrono::Duration::seconds(125));
    }
}
