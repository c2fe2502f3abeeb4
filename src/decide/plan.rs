//! What the manager does next for one request, in stages as it learns the facts (the
//! daemon's answer, the store, the ownership), and what a failed login leaves.

use std::fmt;

use chrono::{DateTime, Utc};

use super::{
    Ask, Decision, Logins, Rules, Why, asks_daemon, decide, spent_step_floor, takes_daemons,
};
use crate::error_class::ErrorClass;
use crate::token::{Token, TokenKind};

/// What the manager knows before it owns the profile, when it asks [`plan`] what to do
/// next. It fills the facts in as it goes: the daemon's answer, then the store.
#[derive(Debug, Clone, Copy, Default)]
pub struct Facts<'a> {
    /// Whether a running daemon is known, and what it answered once asked.
    pub daemon: Daemon<'a>,
    /// The stored token (live or not) once the store was read: `Some(None)` when none is.
    pub stored: Option<Option<&'a Token>>,
}

/// A running `dhan-login serve`, seen from a consumer.
#[derive(Debug, Clone, Copy, Default)]
pub enum Daemon<'a> {
    /// None is known (no `serve.listen`), or this is the daemon itself.
    #[default]
    Unknown,
    /// One is known and was not asked yet.
    Known,
    /// It was asked: its token, or none (no answer, or no token to give).
    Answered(Option<&'a Token>),
}

/// What the manager does next, before it owns the profile.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Plan<'a> {
    /// Ask the running daemon for its token.
    AskDaemon,
    /// Hand out the daemon's token.
    TakeDaemons(&'a Token),
    /// Read the store.
    ReadStore,
    /// Hand out the stored token.
    HandOut(&'a Token),
    /// Refuse: a new token is needed and this host never logs in.
    LoginsOff(Why),
    /// A new token is needed, for this reason: own the profile (waiting for another
    /// process's login), read the store again and ask [`as_owner`].
    Own(Why),
}

/// What to do next for a token request, from what is known before owning the profile.
/// Pure: the manager only does what it says and calls again with the facts it learned.
///
/// In order: a known daemon is asked unless the caller forces or reports a token
/// (`asks_daemon`), and its token taken when it does (`takes_daemons`); a forced
/// login on a host that logs in owns the profile without reading the store first;
/// otherwise the stored token is decided on ([`decide`]): handed out, refused (logins
/// off), or replaced by the owner.
pub fn plan<'a>(facts: &Facts<'a>, rules: &Rules, ask: &Ask<'_>, now: DateTime<Utc>) -> Plan<'a> {
    match facts.daemon {
        Daemon::Known if asks_daemon(ask) => return Plan::AskDaemon,
        Daemon::Answered(Some(t)) if takes_daemons(t, rules, ask, now) => {
            return Plan::TakeDaemons(t);
        }
        _ => {}
    }
    let Some(stored) = facts.stored else {
        // Nothing stored can answer a forced request; the owner reads the store anyway.
        return if ask.force && rules.logins == Logins::Allowed {
            Plan::Own(Why::Forced)
        } else {
            Plan::ReadStore
        };
    };
    match (decide(stored, rules, ask, now), stored) {
        (Decision::Stored, Some(t)) => Plan::HandOut(t),
        (Decision::Stored, None) => Plan::Own(Why::NoToken),
        (Decision::LoginsOff(why), _) => Plan::LoginsOff(why),
        (Decision::Replace(why), _) => Plan::Own(why),
    }
}

/// What the owner of the profile read, and how it came to own it.
#[derive(Debug, Clone, Copy)]
pub struct Owned<'a> {
    /// The stored token, live or not.
    pub token: Option<&'a Token>,
    /// False once Dhan refused to renew the stored token.
    pub renewable: bool,
    /// The last TOTP step a login submitted.
    pub totp_last_step: Option<i64>,
    /// It waited for another process's login that began after this instant: a token
    /// obtained since is the one it came for, even when it forces a new one.
    pub waited_since: Option<DateTime<Utc>>,
    /// It took the profile over from a holder that vanished, maybe mid-login.
    pub took_over: bool,
}

/// What the owner of the profile does.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OwnerPlan<'a> {
    /// Hand out the stored token (another process's login may have made it).
    HandOut(&'a Token),
    /// Refuse: a new token is needed and this host never logs in.
    LoginsOff(Why),
    /// Run the chain of sources.
    Obtain(Obtain<'a>),
}

/// How the chain runs, when a new token is obtained.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Obtain<'a> {
    /// Why the stored token does not do.
    pub why: Why,
    /// Whether RenewToken is tried.
    pub renew: Renewal<'a>,
    /// The last TOTP step counted as spent: no code of it or before is submitted.
    pub totp_floor: Option<i64>,
}

/// What the owner of the profile does with what it read: the stored token when `decide`
/// keeps it now (a login it waited for counts as its own), else a login, with whether
/// RenewToken may be tried and the TOTP steps counted as spent.
pub fn as_owner<'a>(
    owned: &Owned<'a>,
    rules: &Rules,
    ask: &Ask<'_>,
    now: DateTime<Utc>,
) -> OwnerPlan<'a> {
    let ask = Ask {
        fresh_since: owned.waited_since,
        ..*ask
    };
    let why = match (decide(owned.token, rules, &ask, now), owned.token) {
        (Decision::Stored, Some(t)) => return OwnerPlan::HandOut(t),
        (Decision::Stored, None) => Why::NoToken,
        (Decision::LoginsOff(why), _) => return OwnerPlan::LoginsOff(why),
        (Decision::Replace(why), _) => why,
    };
    OwnerPlan::Obtain(Obtain {
        why,
        renew: renewal(owned, now),
        totp_floor: if owned.took_over {
            // The holder before may have submitted the current code without recording it.
            spent_step_floor(owned.totp_last_step, now)
        } else {
            owned.totp_last_step
        },
    })
}

/// Whether RenewToken is tried, on which token, or why not.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Renewal<'a> {
    /// Renew this token.
    Try(&'a Token),
    /// Not tried.
    Skip(NoRenewal),
}

/// Why RenewToken is not tried; the text is what the chain's report says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoRenewal {
    /// Nothing is stored.
    NoToken,
    /// Dhan renews only live tokens.
    Expired,
    /// An API login's token (APP): Dhan answers HTTP 500 DH-905 to its renewal.
    AppToken,
    /// Dhan refused to renew this token before.
    RefusedBefore,
}

impl fmt::Display for NoRenewal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NoRenewal::NoToken => "no stored token to renew",
            NoRenewal::Expired => "the stored token has expired; Dhan renews only live tokens",
            NoRenewal::AppToken => {
                "the stored token was made by an API login (APP): Dhan renews only Dhan Web (SELF) tokens"
            }
            NoRenewal::RefusedBefore => "Dhan refused to renew this token before",
        })
    }
}

/// Whether RenewToken may be tried on the stored token.
fn renewal<'a>(owned: &Owned<'a>, now: DateTime<Utc>) -> Renewal<'a> {
    let why = match owned.token {
        None => NoRenewal::NoToken,
        Some(t) if !t.is_live(now) => NoRenewal::Expired,
        // The JWT says which kind it is, so nothing is sent for an APP token.
        Some(t) if t.kind == TokenKind::App => NoRenewal::AppToken,
        Some(_) if !owned.renewable => NoRenewal::RefusedBefore,
        Some(t) => return Renewal::Try(t),
    };
    Renewal::Skip(why)
}

/// What is kept after the chain failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AfterFailure {
    /// Whether RenewToken may be tried on the stored token next time.
    pub renewable: bool,
    /// Whether the stored token is still handed out, with the failure beside it.
    pub hand_out_stored: bool,
}

/// What a failed chain leaves: `why` the token was to be replaced, the stored token and
/// its renewable flag, the class of RenewToken's failure if it was tried and failed,
/// and the class of the chain's failure.
///
/// Only Dhan's refusal to renew (not a timeout or a rate limit) stops later renewals.
/// The stored token is still handed out only when it was replaced for the schedule's
/// sake (not asked for, not needed until a later time, not refused by Dhan), it is
/// live, and waiting may fix the failure: a rejection or a configuration error is the
/// user's to see, and no token hides it.
pub fn after_failure(
    why: Why,
    stored: Option<&Token>,
    renewable: bool,
    renew_failed: Option<ErrorClass>,
    failed: ErrorClass,
    now: DateTime<Utc>,
) -> AfterFailure {
    let passing = |c: ErrorClass| matches!(c, ErrorClass::Transient | ErrorClass::RateLimited);
    AfterFailure {
        renewable: renewable && renew_failed.is_none_or(passing),
        hand_out_stored: matches!(why, Why::WithinMargin | Why::BeforeLoginAt(_))
            && passing(failed)
            && stored.is_some_and(|t| t.is_live(now)),
    }
}
