//! One generateAccessToken attempt as the mint window records it, and the refusal of
//! an attempt that would come too soon after it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::token::ist;

/// One `generateAccessToken` attempt.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct MintAttempt {
    /// When it was recorded, just before the request went out.
    pub at: DateTime<Utc>,
    /// How it ended, as far as is known.
    pub outcome: MintOutcome,
}

/// How a `generateAccessToken` attempt ended.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum MintOutcome {
    /// Recorded and sent; no answer recorded (the process may have died waiting).
    Sent,
    /// Dhan minted a token.
    Minted,
    /// Dhan said a token can be generated once every 2 minutes (which re-arms the wait).
    Throttled,
    /// Dhan refused the PIN or TOTP.
    Rejected,
    /// No usable answer: a network failure, a 5xx, an unreadable body.
    Failed,
}

impl MintOutcome {
    /// The snake_case name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            MintOutcome::Sent => "sent",
            MintOutcome::Minted => "minted",
            MintOutcome::Throttled => "throttled",
            MintOutcome::Rejected => "rejected",
            MintOutcome::Failed => "failed",
        }
    }

    /// The outcome stored as `name`; an unknown name (a newer version's) reads as sent.
    #[cfg(feature = "postgres")]
    pub(crate) fn parse(name: &str) -> MintOutcome {
        match name {
            "minted" => MintOutcome::Minted,
            "throttled" => MintOutcome::Throttled,
            "rejected" => MintOutcome::Rejected,
            "failed" => MintOutcome::Failed,
            _ => MintOutcome::Sent,
        }
    }
}

/// A `generateAccessToken` attempt refused here, before any request: the last one was
/// too recent. Its message names both times in IST, as Dhan's clock reads them.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error(
    "generateAccessToken was tried for client {client_id} at {} ({}); Dhan allows one attempt every 2 minutes and every refused attempt restarts that wait, so the next attempt is allowed at {}",
    ist_time(.last.at),
    .last.outcome.as_str(),
    ist_time(*.next_at)
)]
pub struct MintWait {
    /// The client id the window belongs to.
    pub client_id: String,
    /// The attempt that closed the window.
    pub last: MintAttempt,
    /// The first instant another attempt may be sent.
    pub next_at: DateTime<Utc>,
    /// How long that was from the refusal.
    pub wait: Duration,
}

impl MintWait {
    /// When the next attempt is allowed, as IST clocks show it (to the second).
    pub fn next_at_ist(&self) -> String {
        ist_time(self.next_at)
    }
}

fn ist_time(t: DateTime<Utc>) -> String {
    t.with_timezone(&ist())
        .format("%Y-%m-%d %H:%M:%S IST")
        .to_string()
}

/// The wait `last` imposes at `now`, if any.
pub(super) fn wait_for(
    client_id: &str,
    last: Option<MintAttempt>,
    now: DateTime<Utc>,
    interval: Duration,
) -> Option<MintWait> {
    let last = last?;
    let next_at = last.at + chrono::Duration::from_std(interval).unwrap_or(chrono::Duration::MAX);
    let wait = (next_at - now).to_std().ok().filter(|w| !w.is_zero())?;
    Some(MintWait {
        client_id: client_id.to_owned(),
        last,
        next_at,
        wait,
    })
}
