//! What checking a token with Dhan's `profile` endpoint means for it, and for a
//! consumer's report that Dhan refused it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error_class::ErrorClass;
use crate::token::Token;

/// Whether the token stored now replaced `reported` (one a consumer said Dhan refused)
/// meanwhile: another process logged in while Dhan was asked, and its live token is the
/// new one, so nothing more is started for the report.
pub(crate) fn replaced_meanwhile(stored: &Token, reported: &Token, now: DateTime<Utc>) -> bool {
    stored.is_live(now) && stored.access_token != reported.access_token
}

/// What checking a token with Dhan's `profile` endpoint found: the token of a report
/// (`token --rejected`, the daemon's route) or of `token --verify`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Verdict {
    /// Dhan's `profile` endpoint accepts the token: it is handed back unchanged.
    Alive,
    /// The token was dead (or there was none): this is a new one.
    Replaced,
    /// Dhan could not be asked (a timeout, a 5xx): the token is handed back unchanged.
    Unverified,
}

impl Verdict {
    /// The snake_case name, as in the daemon's JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Alive => "alive",
            Verdict::Replaced => "replaced",
            Verdict::Unverified => "unverified",
        }
    }
}

/// What `profile`'s answer on a token means: `None` for a yes, else the class of its
/// error. A failure that says nothing about the token (Dhan unreachable, a rate limit)
/// keeps it, and nothing is started for it; only a refusal (DH-901, 401, expiry) makes
/// it dead.
pub(crate) fn verdict(answer: Option<ErrorClass>) -> Option<Verdict> {
    match answer {
        None => Some(Verdict::Alive),
        Some(ErrorClass::Transient | ErrorClass::RateLimited) => Some(Verdict::Unverified),
        Some(ErrorClass::TokenInvalid) => Some(Verdict::Replaced),
        Some(_) => None,
    }
}
