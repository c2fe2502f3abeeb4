//! Whether a stored token is handed out or replaced, and why: the profile's rules, the
//! caller's request and the time. Also which token a running daemon's answer may be.

use std::fmt;

use chrono::{DateTime, Utc};

use super::{IstTime, ist_wall_clock};
use crate::dhan::totp_step;
use crate::token::Token;

/// Whether this host may obtain tokens itself (`login = "never"` turns it off).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Logins {
    /// Log in (or renew) when the rules say the stored token must go.
    #[default]
    Allowed,
    /// Only ever hand out a live token made elsewhere: a second machine logging in with
    /// the same credentials would end the token of the first.
    Never,
}

/// A profile's rules for keeping its token.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// Without `login_at`: a token is replaced once it has less than this left.
    pub margin: chrono::Duration,
    /// The daily login time: a token obtained before its latest occurrence is replaced,
    /// and a live one obtained after it is never replaced before the next.
    pub login_at: Option<IstTime>,
    /// Whether this host may log in.
    pub logins: Logins,
}

/// What the caller asks beyond "a token".
#[derive(Debug, Clone, Copy, Default)]
pub struct Ask<'a> {
    /// A new token even if the stored one would do (`login`, `renew`, the daemon's
    /// scheduled refresh).
    pub force: bool,
    /// The token must still be alive at the next time IST clocks show this.
    pub valid_until: Option<IstTime>,
    /// Dhan's `profile` refused this token (DH-901): it is dead, whatever its expiry says.
    pub refused: Option<&'a Token>,
    /// The caller waited for another process's login that began after this instant: a
    /// token obtained since is the one it came for, even when it forced a new one.
    pub fresh_since: Option<DateTime<Utc>>,
}

/// Why the stored token does not do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// No token is stored.
    NoToken,
    /// The stored token has expired.
    Expired,
    /// Dhan's `profile` refused the stored token.
    Refused,
    /// The caller asked for a new token.
    Forced,
    /// The stored token was obtained before the daily login time that has just passed.
    BeforeLoginAt(DateTime<Utc>),
    /// The stored token dies before the time the caller needs it until.
    DiesBefore(DateTime<Utc>),
    /// The stored token has less than the margin left (no daily login time set).
    WithinMargin,
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Why::NoToken => f.write_str("no token is stored"),
            Why::Expired => f.write_str("the stored token has expired"),
            Why::Refused => f.write_str("Dhan refused the stored token"),
            Why::Forced => f.write_str("a new token was asked for"),
            Why::BeforeLoginAt(at) => write!(
                f,
                "the stored token predates the daily login time ({})",
                ist_wall_clock(*at)
            ),
            Why::DiesBefore(at) => {
                write!(f, "the stored token expires before {}", ist_wall_clock(*at))
            }
            Why::WithinMargin => f.write_str("the stored token is about to expire"),
        }
    }
}

/// The decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Hand out the stored token.
    Stored,
    /// Obtain a new token (renew or log in).
    Replace(Why),
    /// A new token is needed but this host never logs in.
    LoginsOff(Why),
}

/// Decides whether `stored` is handed out or replaced. Pure: no clock, no I/O.
pub fn decide(
    stored: Option<&Token>,
    rules: &Rules,
    ask: &Ask<'_>,
    now: DateTime<Utc>,
) -> Decision {
    let refused = |t: &Token| {
        ask.refused
            .is_some_and(|r| r.access_token == t.access_token)
    };
    let live = stored.filter(|t| t.is_live(now) && !refused(t));
    if let (Some(t), Some(since)) = (live, ask.fresh_since)
        && t.obtained_at >= since
    {
        return Decision::Stored;
    }
    let why = match (stored, live) {
        (None, _) => Why::NoToken,
        (Some(t), None) if refused(t) => Why::Refused,
        (Some(_), None) => Why::Expired,
        (_, Some(t)) => match keep_live(t, rules, ask, now) {
            None => return Decision::Stored,
            Some(why) => why,
        },
    };
    match rules.logins {
        Logins::Allowed => Decision::Replace(why),
        // A live token made elsewhere is handed out whatever the schedule says: only
        // a login would end it, and this host never logs in.
        Logins::Never if live.is_some() && why != Why::Forced => Decision::Stored,
        Logins::Never => Decision::LoginsOff(why),
    }
}

/// Why a live token must go, if it must.
fn keep_live(t: &Token, rules: &Rules, ask: &Ask<'_>, now: DateTime<Utc>) -> Option<Why> {
    if ask.force {
        return Some(Why::Forced);
    }
    if let Some(until) = ask.valid_until.map(|v| v.next(now))
        && t.expires_at < until
    {
        return Some(Why::DiesBefore(until));
    }
    match rules.login_at {
        Some(at) => {
            let latest = at.latest(now);
            (t.obtained_at < latest).then_some(Why::BeforeLoginAt(latest))
        }
        None => (!t.is_valid_for(now, rules.margin)).then_some(Why::WithinMargin),
    }
}

/// Whether a running daemon is asked before the store. A caller that forces a new token
/// (`login`, `renew`) or reports a refused one logs in here, as it asked.
pub(crate) fn asks_daemon(ask: &Ask<'_>) -> bool {
    !ask.force && ask.refused.is_none()
}

/// Whether the token a running daemon answered is handed out: unless it dies before the
/// time asked for (`valid_until`). The daemon keeps it on its own schedule: neither this
/// host's margin nor its login time may send it away, or the login here would end the
/// token everyone else holds.
pub(crate) fn takes_daemons(
    daemon: &Token,
    rules: &Rules,
    ask: &Ask<'_>,
    now: DateTime<Utc>,
) -> bool {
    let rules = Rules {
        login_at: None,
        margin: chrono::Duration::zero(),
        ..*rules
    };
    let ask = Ask {
        valid_until: ask.valid_until,
        ..Ask::default()
    };
    decide(Some(daemon), &rules, &ask, now) == Decision::Stored
}

/// The stored token a caller that does not log in itself may be handed: one `decide`
/// keeps, or one only waiting for the daily login that whoever owns the profile is
/// about to do (it is alive until then).
pub(crate) fn serves_cached(token: &Token, rules: &Rules, now: DateTime<Utc>) -> bool {
    matches!(
        decide(Some(token), rules, &Ask::default(), now),
        Decision::Stored | Decision::Replace(Why::BeforeLoginAt(_))
    )
}

/// The last TOTP step to count as spent when a run may have submitted the current code
/// without recording it (a holder that vanished mid-login, a state file set aside or
/// lost): Dhan would refuse that code as used, so the next login waits for a fresh one.
pub(crate) fn spent_step_floor(last: Option<i64>, now: DateTime<Utc>) -> Option<i64> {
    last.max(Some(totp_step(now.timestamp())))
}
