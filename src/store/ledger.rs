//! The consent ledger: how many consents each client id has used today (IST), whether
//! Dhan said the day is exhausted, and the last consentAppId not yet turned into a tokenId.
//!
//! Dhan allows 25 consents a day and keeps an unused consentAppId valid until a tokenId is
//! generated from it, so a retry reuses the pending one instead of spending another.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Days, NaiveDate, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use super::atomic::{create_private_dir, write_atomic};
use super::tokens::StoreError;
use crate::dhan::DHAN_CONSENT_LIMIT;
use crate::error_class::ErrorClass;
use crate::token::ist;

/// One client id's consent figures for one IST day.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct LedgerDay {
    /// The IST calendar day the counts belong to.
    pub day: Option<NaiveDate>,
    /// generate-consent calls made that day.
    pub used: u32,
    /// Dhan answered CONSENT_LIMIT_EXCEED that day.
    pub exhausted: bool,
    /// A consent generated but not yet turned into a tokenId: the next browser login
    /// reuses it instead of spending another.
    pub pending: Option<PendingConsent>,
}

/// A consentAppId that Dhan still holds open.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PendingConsent {
    /// The consentAppId generate-consent returned.
    pub consent_app_id: String,
    /// When it was generated.
    pub created_at: DateTime<Utc>,
}

/// Ledger files under `<state>/consents/<client id>.json`, each guarded by a lock file
/// while it is read and rewritten.
#[derive(Debug, Clone)]
pub(crate) struct ConsentLedger {
    dir: PathBuf,
    cap: u32,
}

impl ConsentLedger {
    /// The ledger files of the state folder `state_dir`, allowing `cap` consents a day
    /// (never more than Dhan's 25).
    pub(crate) fn new(state_dir: &Path, cap: u32) -> Self {
        Self {
            dir: state_dir.join("consents"),
            cap: cap.min(DHAN_CONSENT_LIMIT),
        }
    }

    /// Today's figures for `client_id` (a new IST day starts from zero; a pending
    /// consent carries over, since Dhan keeps it valid). Only reads: `status` and
    /// `/metrics` must work on a state folder they cannot write. A corrupt file counts as
    /// used up here too, and is moved aside by the next write.
    pub(crate) fn today(
        &self,
        client_id: &str,
        now: DateTime<Utc>,
    ) -> Result<LedgerDay, StoreError> {
        let path = client_file(&self.dir, client_id)?;
        let today = now.with_timezone(&ist()).date_naive();
        let day = match parse(&path)? {
            Parsed::Day(d) => d,
            Parsed::Corrupt(e) => {
                tracing::warn!(
                    "consent ledger {} is corrupt ({e}); counting today's consents as used up",
                    path.display()
                );
                used_up(today)
            }
        };
        Ok(roll_to(day, today))
    }

    /// Counts a generate-consent call before it is made; refuses when the cap is reached
    /// or Dhan already said the day is exhausted.
    pub(crate) fn reserve(&self, client_id: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        let cap = self.cap;
        self.update(client_id, now, |d| {
            if let Some(refusal) = refusal(d, cap, now) {
                return Err(refusal);
            }
            d.used += 1;
            Ok(())
        })
        .map(|_| ())
    }

    /// Gives back a consent `reserve` counted at `reserved_at` whose request never left
    /// this machine (no connection could be made): Dhan saw nothing, so nothing was spent.
    pub(crate) fn unreserve(
        &self,
        client_id: &str,
        reserved_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.update(client_id, reserved_at, |d| {
            d.used = d.used.saturating_sub(1);
            Ok(())
        })
        .map(|_| ())
    }

    /// Records that Dhan answered CONSENT_LIMIT_EXCEED: no consent is reserved again
    /// until the next IST midnight, whatever the count says.
    pub(crate) fn mark_exhausted(
        &self,
        client_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.update(client_id, now, |d| {
            d.exhausted = true;
            Ok(())
        })
        .map(|_| ())
    }

    /// Remembers the consentAppId `id` as pending (replacing an older one) until it is
    /// turned into a tokenId.
    pub(crate) fn set_pending(
        &self,
        client_id: &str,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.update(client_id, now, |d| {
            d.pending = Some(PendingConsent {
                consent_app_id: id.to_owned(),
                created_at: now,
            });
            Ok(())
        })
        .map(|_| ())
    }

    /// Drops the pending consent if it is `id` (consumed, or rejected by Dhan).
    pub(crate) fn clear_pending(
        &self,
        client_id: &str,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.update(client_id, now, |d| {
            if d.pending.as_ref().is_some_and(|p| p.consent_app_id == id) {
                d.pending = None;
            }
            Ok(())
        })
        .map(|_| ())
    }

    /// Read, change and write under an exclusive lock, so two processes never both
    /// take the last consent.
    fn update(
        &self,
        client_id: &str,
        now: DateTime<Utc>,
        change: impl FnOnce(&mut LedgerDay) -> Result<(), StoreError>,
    ) -> Result<LedgerDay, StoreError> {
        let path = client_file(&self.dir, client_id)?;
        let _guard = lock_client_file(&self.dir, &path)?;
        let today = now.with_timezone(&ist()).date_naive();
        let mut day = roll_to(read(&path, today)?, today);
        let before = day.clone();
        change(&mut day)?;
        if day != before || !path.exists() {
            let written = serde_json::to_vec_pretty(&day)
                .map_err(std::io::Error::other)
                .and_then(|bytes| write_atomic(&path, &bytes));
            written.map_err(|source| StoreError::Write { path, source })?;
        }
        Ok(day)
    }
}

/// `<dir>/<client id>.json`: the ledger's and the mint window's file for a client id.
pub(super) fn client_file(dir: &Path, client_id: &str) -> Result<PathBuf, StoreError> {
    check_client_id(client_id)?;
    Ok(dir.join(format!("{client_id}.json")))
}

/// Creates `dir` when missing and takes the lock of a client file, held while it is
/// read and rewritten.
pub(super) fn lock_client_file(dir: &Path, path: &Path) -> Result<File, StoreError> {
    create_private_dir(dir).map_err(|source| StoreError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    lock(&path.with_extension("lock"))
}

pub(super) fn lock(path: &Path) -> Result<File, StoreError> {
    let locked = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        // Held for a read and a rename: microseconds. The kernel frees it if we die.
        .and_then(|file| file.lock().map(|()| file));
    locked.map_err(|source| StoreError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// A new IST day starts from zero, keeping the pending consent.
fn roll_to(day: LedgerDay, today: NaiveDate) -> LedgerDay {
    if day.day == Some(today) {
        return day;
    }
    LedgerDay {
        day: Some(today),
        pending: day.pending,
        ..Default::default()
    }
}

/// Over-counting costs a wait, under-counting can cost the account its consents.
fn used_up(today: NaiveDate) -> LedgerDay {
    LedgerDay {
        day: Some(today),
        used: DHAN_CONSENT_LIMIT,
        exhausted: false,
        pending: None,
    }
}

enum Parsed {
    Day(LedgerDay),
    Corrupt(serde_json::Error),
}

/// The file as it is; an absent one is an unused day.
fn parse(path: &Path) -> Result<Parsed, StoreError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Parsed::Day(LedgerDay::default()));
        }
        Err(source) => {
            return Err(StoreError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    Ok(match serde_json::from_slice(&bytes) {
        Ok(d) => Parsed::Day(d),
        Err(e) => Parsed::Corrupt(e),
    })
}

/// A ledger that does not parse is moved aside and counted as used up for the day.
fn read(path: &Path, today: NaiveDate) -> Result<LedgerDay, StoreError> {
    match parse(path)? {
        Parsed::Day(d) => Ok(d),
        Parsed::Corrupt(e) => {
            let aside = path.with_extension(format!(
                "json.corrupt-{}",
                Utc::now().format("%Y%m%dT%H%M%S%.3fZ")
            ));
            std::fs::rename(path, &aside).map_err(|source| StoreError::Write {
                path: path.to_path_buf(),
                source,
            })?;
            tracing::warn!(
                "consent ledger {} was corrupt ({e}); moved aside to {}; counting today's consents as used up",
                path.display(),
                aside.display()
            );
            Ok(used_up(today))
        }
    }
}

/// Why no further consent may be generated today, if none may.
pub(super) fn refusal(d: &LedgerDay, cap: u32, now: DateTime<Utc>) -> Option<StoreError> {
    let reset = next_ist_midnight(now);
    if d.exhausted {
        return Some(limit(format!(
            "Dhan said the daily consent limit is reached ({} used today); no generate-consent call until it resets at {} ({} UTC)",
            d.used,
            reset.with_timezone(&ist()).format("%Y-%m-%d %H:%M IST"),
            reset.format("%H:%M")
        )));
    }
    (d.used >= cap).then(|| {
        limit(format!(
            "{} of {cap} consents used today (IST); the count resets at {} ({} UTC)",
            d.used,
            reset.with_timezone(&ist()).format("%Y-%m-%d %H:%M IST"),
            reset.format("%H:%M")
        ))
    })
}

/// Client ids are digits (Dhan's) or letters and digits (the stand-in's).
pub(super) fn check_client_id(client_id: &str) -> Result<(), StoreError> {
    if client_id.is_empty() || !client_id.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(StoreError::Refused {
            class: ErrorClass::Config,
            message: "client_id must be alphanumeric".into(),
        });
    }
    Ok(())
}

fn limit(message: String) -> StoreError {
    StoreError::Refused {
        class: ErrorClass::ConsentLimit,
        message,
    }
}

/// The next 00:00 in India, when Dhan's daily consent count is taken to reset.
pub fn next_ist_midnight(now: DateTime<Utc>) -> DateTime<Utc> {
    let tomorrow = now
        .with_timezone(&ist())
        .date_naive()
        .checked_add_days(Days::new(1))
        .unwrap_or(NaiveDate::MAX);
    ist()
        .from_local_datetime(&tomorrow.and_hms_opt(0, 0, 0).unwrap_or_default())
        .single()
        .map(|d| d.with_timezone(&Utc))
        .unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ist_midnight_is_18_30_utc() {
        let now = Utc.with_ymd_and_hms(2026, 11, 25, 18, 29, 0).unwrap();
        assert_eq!(
            next_ist_midnight(now),
            Utc.with_ymd_and_hms(2026, 11, 25, 18, 30, 0).unwrap()
        );
        let now = Utc.with_ymd_and_hms(2026, 11, 25, 18, 30, 0).unwrap();
        assert_eq!(
            next_ist_midnight(now),
            Utc.with_ymd_and_hms(2026, 11, 26, 18, 30, 0).unwrap()
        );
    }

    #[test]
    fn the_cap_is_enforced_and_resets_on_a_new_ist_day() {
        let dir = tempfile::tempdir().unwrap();
        let l = ConsentLedger::new(dir.path(), 2);
        let day1 = Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap();
        l.reserve("1", day1).unwrap();
        l.reserve("1", day1).unwrap();
        let err = l.reserve("1", day1).err().unwrap();
        assert_eq!(err.class(), ErrorClass::ConsentLimit);
        assert!(
            err.to_string().contains("2 of 2 consents used today"),
            "{err}"
        );
        assert!(err.to_string().contains("2026-11-26 00:00 IST"), "{err}");
        // 18:30 UTC is midnight in India.
        let day2 = Utc.with_ymd_and_hms(2026, 11, 25, 18, 30, 0).unwrap();
        l.reserve("1", day2).unwrap();
        assert_eq!(l.today("1", day2).unwrap().used, 1);
    }

    #[test]
    fn a_ledger_that_cannot_be_written_names_its_path() {
        let dir = tempfile::tempdir().unwrap();
        // A file where the ledger folder should be: no folder, file or lock can be made.
        std::fs::write(dir.path().join("consents"), b"").unwrap();
        let l = ConsentLedger::new(dir.path(), 25);
        let t = Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap();
        let err = l.reserve("1", t).err().unwrap();
        assert!(matches!(err, StoreError::Write { .. }), "{err:?}");
        assert!(err.to_string().contains("consents"), "{err}");
        let err = l.today("1", t).err().unwrap();
        assert!(matches!(err, StoreError::Read { .. }), "{err:?}");
        assert!(err.to_string().contains("consents/1.json"), "{err}");
    }

    #[test]
    fn a_corrupt_ledger_counts_the_day_as_used_up() {
        let dir = tempfile::tempdir().unwrap();
        let l = ConsentLedger::new(dir.path(), 25);
        let t = Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap();
        l.reserve("1", t).unwrap();
        std::fs::write(dir.path().join("consents/1.json"), b"{\"day\": \"2026-").unwrap();
        assert_eq!(l.today("1", t).unwrap().used, DHAN_CONSENT_LIMIT);
        assert_eq!(
            l.reserve("1", t).err().unwrap().class(),
            ErrorClass::ConsentLimit
        );
        // The next IST day starts afresh.
        l.reserve("1", t + chrono::Duration::days(1)).unwrap();
    }

    #[test]
    fn exhausted_blocks_until_reset_and_pending_survives_the_day() {
        let dir = tempfile::tempdir().unwrap();
        let l = ConsentLedger::new(dir.path(), 25);
        let t = Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap();
        l.set_pending("1", "abc", t).unwrap();
        l.mark_exhausted("1", t).unwrap();
        assert_eq!(
            l.reserve("1", t).err().unwrap().class(),
            ErrorClass::ConsentLimit
        );
        let next = t + chrono::Duration::days(1);
        l.reserve("1", next).unwrap();
        let d = l.today("1", next).unwrap();
        assert_eq!(d.pending.unwrap().consent_app_id, "abc");
        l.clear_pending("1", "other", next).unwrap();
        assert!(l.today("1", next).unwrap().pending.is_some());
        l.clear_pending("1", "abc", next).unwrap();
        assert!(l.today("1", next).unwrap().pending.is_none());
    }
}
