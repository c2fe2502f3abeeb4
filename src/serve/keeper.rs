//! With a shared database, one replica holds each profile's lease between logins and does
//! its refreshes; the others stand by, serve the token the holder stores, and take the
//! lease over when it lapses (the holder died, froze or lost the database). Holding it
//! between logins is what makes a failover need no login: the successor finds the token
//! fresh and only takes over the duty of refreshing it.
//!
//! With state files every daemon refreshes on its own schedule; the file lock taken per
//! login keeps them (and the CLI) apart, as before.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::manager::TokenManager;
use crate::store::{Ownership, StateBackend};

/// How often a replica on standby looks again while the profile has no live token (the
/// holder is logging in): a waiting token request sees it that soon.
const TOKENLESS_LOOK: Duration = Duration::from_secs(1);

/// A look just after the holder's lease would lapse finds it lapsed.
const AFTER_LAPSE: Duration = Duration::from_millis(50);

#[derive(Default)]
pub(crate) struct Keeper {
    held: Option<Ownership>,
}

impl Keeper {
    /// The lease this replica holds for the profile, to log in under.
    pub(crate) fn owner(&self) -> Option<&Ownership> {
        self.held.as_ref()
    }

    /// None when this replica refreshes the profile (it holds the lease now, or state
    /// files need no holder); else when to look again.
    pub(crate) async fn standby_until(
        &mut self,
        manager: &TokenManager,
        has_token: bool,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let StateBackend::Postgres(db) = manager.backend() else {
            return None;
        };
        let name = &manager.profile().name;
        if let Some(held) = &self.held {
            if held.is_current() {
                return None;
            }
            tracing::warn!(
                profile = %name,
                "the profile's lease may have passed to another replica (not renewed in time): standing by"
            );
            self.held = None;
        }
        let look = if has_token {
            Duration::MAX
        } else {
            TOKENLESS_LOOK
        };
        let again = match db.try_lease(name).await {
            Ok(Ok(lease)) => {
                tracing::info!(
                    profile = %name,
                    epoch = lease.epoch(),
                    took_over = lease.took_over(),
                    "holding the profile's lease: this replica refreshes it"
                );
                self.held = Some(Ownership::Lease(lease));
                return None;
            }
            Ok(Err(elsewhere)) => (elsewhere.lapses_in + AFTER_LAPSE).min(look),
            Err(e) => {
                tracing::warn!(profile = %name, "cannot read the profile's lease: {e}");
                TOKENLESS_LOOK
            }
        };
        Some(now + chrono::Duration::from_std(again).unwrap_or(chrono::Duration::MAX))
    }

    /// Lets the lease go at once, so another replica need not wait for it to lapse.
    pub(crate) async fn release(&mut self) {
        if let Some(held) = self.held.take() {
            held.release().await;
        }
    }
}
