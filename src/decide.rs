//! Which token a caller gets: the stored one, or a new one, and why. One pure function
//! of the stored token, the profile's rules, the caller's request and the time, so that
//! every rule is tested with a fixed clock and the CLI, the daemon and a library user
//! decide alike.
//!
//! [`plan`] is the whole decision for one request, taken in stages as the manager learns
//! the facts (the daemon's answer, the store, the ownership); [`after_failure`] says what
//! a failed login leaves. The manager and the sources only do what these say.
//!
//! The rules follow how Dhan's tokens live (docs/DHAN_TOKENS.md): one live token per
//! client, so every new one ends the token every other consumer holds; a token dies 24 h
//! after it was minted, at that clock time. With a daily `login_at`, a token is replaced
//! once a day at that time and never between two of them while it lives.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Days, NaiveTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use crate::dhan::totp_step;
use crate::error_class::ErrorClass;
use crate::token::{Token, TokenKind, ist};

/// A time of day in IST (`HH:MM`, seconds optional): the daily login time, or the time a
/// token must still be alive at (`token --valid-until`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct IstTime(NaiveTime);

impl IstTime {
    /// The time of day `hour:minute` in IST; `None` outside 00:00..=23:59.
    pub fn hm(hour: u32, minute: u32) -> Option<IstTime> {
        NaiveTime::from_hms_opt(hour, minute, 0).map(IstTime)
    }

    /// The latest instant at or before `now` when IST clocks showed this time.
    pub fn latest(self, now: DateTime<Utc>) -> DateTime<Utc> {
        let today = now.with_timezone(&ist()).date_naive();
        let at = |day: chrono::NaiveDate| {
            ist()
                .from_local_datetime(&day.and_time(self.0))
                .single()
                .map_or(now, |d| d.with_timezone(&Utc))
        };
        let candidate = at(today);
        if candidate <= now {
            candidate
        } else {
            today.checked_sub_days(Days::new(1)).map_or(now, at)
        }
    }

    /// The first instant after `now` when IST clocks show this time.
    pub fn next(self, now: DateTime<Utc>) -> DateTime<Utc> {
        self.latest(now) + chrono::Duration::days(1)
    }
}

impl FromStr for IstTime {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        NaiveTime::parse_from_str(s, "%H:%M")
            .or_else(|_| NaiveTime::parse_from_str(s, "%H:%M:%S"))
            .map(IstTime)
            .map_err(|_| format!("`{s}` is not a time of day as HH:MM (IST, 24-hour clock)"))
    }
}

impl fmt::Display for IstTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use chrono::Timelike;
        if self.0.second() == 0 {
            write!(f, "{}", self.0.format("%H:%M"))
        } else {
            write!(f, "{}", self.0.format("%H:%M:%S"))
        }
    }
}

/// `at` as IST clocks show it: `2026-12-06 08:00 IST`.
pub fn ist_wall_clock(at: DateTime<Utc>) -> String {
    at.with_timezone(&ist())
        .format("%Y-%m-%d %H:%M IST")
        .to_string()
}

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

/// When the daily login replaces a token obtained at `obtained_at`: the first `login_at`
/// after it. The daemon sleeps until then (plus its jitter), so its schedule stays
/// anchored to `login_at` instead of drifting earlier with each token.
#[cfg(feature = "serve")]
pub(crate) fn daily_login_after(login_at: IstTime, obtained_at: DateTime<Utc>) -> DateTime<Utc> {
    login_at.next(obtained_at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::SourceKind;

    /// An instant given as IST wall-clock time on 2026-12-DD.
    fn ist_at(day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
        ist()
            .with_ymd_and_hms(2026, 12, day, hour, minute, 0)
            .unwrap()
            .with_timezone(&Utc)
    }

    /// A token minted at `obtained`, living Dhan's 24 h.
    fn minted(obtained: DateTime<Utc>) -> Token {
        // A value of its own, as every token Dhan mints differs.
        let mut t = Token::from_grant(
            &format!("a.{}.c", obtained.timestamp()),
            Some("1000000001"),
            Some("2099-01-01T00:00:00"),
            SourceKind::Totp,
            obtained,
        )
        .unwrap();
        t.expires_at = obtained + chrono::Duration::hours(24);
        t
    }

    fn daily(at: &str) -> Rules {
        Rules {
            margin: chrono::Duration::minutes(30),
            login_at: Some(at.parse().unwrap()),
            logins: Logins::Allowed,
        }
    }

    fn no_schedule() -> Rules {
        Rules {
            login_at: None,
            ..daily("08:00")
        }
    }

    const ASK: Ask<'static> = Ask {
        force: false,
        valid_until: None,
        refused: None,
        fresh_since: None,
    };

    #[test]
    fn ist_times_parse_print_and_fall_on_ist_days() {
        let at: IstTime = "08:00".parse().unwrap();
        assert_eq!(at.to_string(), "08:00");
        assert_eq!(
            "07:05:30".parse::<IstTime>().unwrap().to_string(),
            "07:05:30"
        );
        for bad in ["8", "24:00", "08:60", "eight", ""] {
            assert!(bad.parse::<IstTime>().is_err(), "{bad}");
        }
        // 08:00 IST is 02:30 UTC.
        assert_eq!(at.latest(ist_at(6, 9, 0)), ist_at(6, 8, 0));
        assert_eq!(at.latest(ist_at(6, 8, 0)), ist_at(6, 8, 0));
        assert_eq!(at.latest(ist_at(6, 7, 59)), ist_at(5, 8, 0));
        assert_eq!(at.next(ist_at(6, 7, 59)), ist_at(6, 8, 0));
        assert_eq!(at.next(ist_at(6, 8, 0)), ist_at(7, 8, 0));
        // Past 05:30 IST the UTC date is still the day before's in the small hours.
        let late: IstTime = "01:00".parse().unwrap();
        assert_eq!(late.latest(ist_at(6, 2, 0)), ist_at(6, 1, 0));
    }

    #[test]
    fn before_the_login_time_a_token_of_yesterday_morning_is_kept() {
        let t = minted(ist_at(5, 8, 3));
        assert_eq!(
            decide(Some(&t), &daily("08:00"), &ASK, ist_at(6, 7, 50)),
            Decision::Stored,
            "ten minutes before it dies, with a margin of 30: the schedule wins"
        );
    }

    #[test]
    fn after_the_login_time_a_token_from_before_it_is_replaced_once() {
        let rules = daily("08:00");
        let old = minted(ist_at(5, 8, 3));
        assert_eq!(
            decide(Some(&old), &rules, &ASK, ist_at(6, 8, 1)),
            Decision::Replace(Why::BeforeLoginAt(ist_at(6, 8, 0)))
        );
        let new = minted(ist_at(6, 8, 1));
        for now in [ist_at(6, 8, 2), ist_at(6, 15, 0), ist_at(7, 7, 59)] {
            assert_eq!(
                decide(Some(&new), &rules, &ASK, now),
                Decision::Stored,
                "{now}"
            );
        }
        assert!(matches!(
            decide(Some(&new), &rules, &ASK, ist_at(7, 8, 0)),
            Decision::Replace(Why::BeforeLoginAt(_))
        ));
    }

    #[test]
    fn a_token_minted_late_the_day_before_is_replaced_at_the_login_time_not_mid_session() {
        // A manual run at 14:00 made a token that would die at 14:00 today, mid-session.
        let late = minted(ist_at(5, 14, 0));
        let rules = daily("08:00");
        assert_eq!(
            decide(Some(&late), &rules, &ASK, ist_at(5, 20, 0)),
            Decision::Stored
        );
        assert!(matches!(
            decide(Some(&late), &rules, &ASK, ist_at(6, 8, 0)),
            Decision::Replace(Why::BeforeLoginAt(_))
        ));
        // Without a login time it lives until its margin, in the middle of the session.
        assert_eq!(
            decide(Some(&late), &no_schedule(), &ASK, ist_at(6, 13, 31)),
            Decision::Replace(Why::WithinMargin)
        );
        assert_eq!(
            decide(Some(&late), &no_schedule(), &ASK, ist_at(6, 13, 29)),
            Decision::Stored
        );
    }

    #[test]
    fn between_two_login_times_a_dead_token_is_replaced_at_once() {
        let rules = daily("08:00");
        let t = minted(ist_at(6, 8, 1));
        let refused = Ask {
            refused: Some(&t),
            ..ASK
        };
        assert_eq!(
            decide(Some(&t), &rules, &refused, ist_at(6, 11, 0)),
            Decision::Replace(Why::Refused)
        );
        // Refused was another token (already replaced by someone else): this one stays.
        let other = minted(ist_at(6, 9, 0));
        assert_eq!(
            decide(Some(&other), &rules, &refused, ist_at(6, 11, 0)),
            Decision::Stored
        );
        let mut short = minted(ist_at(6, 8, 1));
        short.expires_at = ist_at(6, 10, 0);
        assert_eq!(
            decide(Some(&short), &rules, &ASK, ist_at(6, 10, 0)),
            Decision::Replace(Why::Expired)
        );
        assert_eq!(
            decide(None, &rules, &ASK, ist_at(6, 11, 0)),
            Decision::Replace(Why::NoToken)
        );
    }

    #[test]
    fn valid_until_replaces_a_token_that_dies_first() {
        let t = minted(ist_at(5, 14, 0));
        let until = |hhmm: &str| Ask {
            valid_until: Some(hhmm.parse().unwrap()),
            ..ASK
        };
        let at = ist_at(6, 9, 0);
        assert_eq!(
            decide(Some(&t), &no_schedule(), &until("15:30"), at),
            Decision::Replace(Why::DiesBefore(ist_at(6, 15, 30)))
        );
        assert_eq!(
            decide(Some(&t), &no_schedule(), &until("13:00"), at),
            Decision::Stored
        );
    }

    #[test]
    fn a_forced_request_replaces_unless_someone_else_just_did() {
        let rules = daily("08:00");
        let t = minted(ist_at(6, 9, 0));
        let forced = Ask { force: true, ..ASK };
        assert_eq!(
            decide(Some(&t), &rules, &forced, ist_at(6, 9, 5)),
            Decision::Replace(Why::Forced)
        );
        let waited = Ask {
            fresh_since: Some(ist_at(6, 8, 59)),
            ..forced
        };
        assert_eq!(
            decide(Some(&t), &rules, &waited, ist_at(6, 9, 5)),
            Decision::Stored
        );
    }

    #[test]
    fn a_host_that_never_logs_in_uses_a_live_token_and_refuses_otherwise() {
        let never = Rules {
            logins: Logins::Never,
            ..daily("08:00")
        };
        let old = minted(ist_at(5, 8, 3));
        assert_eq!(
            decide(Some(&old), &never, &ASK, ist_at(6, 8, 1)),
            Decision::Stored
        );
        assert_eq!(
            decide(Some(&old), &never, &ASK, ist_at(6, 8, 4)),
            Decision::LoginsOff(Why::Expired)
        );
        assert_eq!(
            decide(None, &never, &ASK, ist_at(6, 8, 4)),
            Decision::LoginsOff(Why::NoToken)
        );
        let forced = Ask { force: true, ..ASK };
        assert_eq!(
            decide(Some(&old), &never, &forced, ist_at(6, 8, 1)),
            Decision::LoginsOff(Why::Forced)
        );
    }

    #[test]
    fn a_daemon_is_asked_unless_the_caller_forces_or_reports_a_token() {
        let t = minted(ist_at(6, 9, 0));
        assert!(asks_daemon(&ASK));
        assert!(!asks_daemon(&Ask { force: true, ..ASK }));
        assert!(!asks_daemon(&Ask {
            refused: Some(&t),
            ..ASK
        }));
    }

    #[test]
    fn the_daemons_token_is_taken_inside_this_hosts_margin_and_after_its_login_time() {
        let eager = Rules {
            margin: chrono::Duration::hours(24),
            ..daily("08:00")
        };
        // Minted yesterday before the login time, an hour left: this host would replace
        // its own token (twice over), and takes the daemon's.
        let t = minted(ist_at(5, 7, 0));
        let now = ist_at(6, 6, 0);
        assert!(matches!(
            decide(Some(&t), &eager, &ASK, now),
            Decision::Replace(Why::BeforeLoginAt(_))
        ));
        assert!(takes_daemons(&t, &eager, &ASK, now));
        // Dead at 07:00: not for a caller that needs it until 07:30, nor once expired.
        let until = |hhmm: &str| Ask {
            valid_until: Some(hhmm.parse().unwrap()),
            ..ASK
        };
        assert!(takes_daemons(&t, &eager, &until("06:45"), now));
        assert!(!takes_daemons(&t, &eager, &until("07:30"), now));
        assert!(!takes_daemons(&t, &eager, &ASK, ist_at(6, 7, 0)));
        // Forced or refused asks never reach the daemon; were they passed, the daemon's
        // schedule would still decide, not this caller's force.
        assert!(takes_daemons(&t, &eager, &Ask { force: true, ..ASK }, now));
        // A host that never logs in takes a live token whatever it needs it until.
        let never = Rules {
            logins: Logins::Never,
            ..eager
        };
        assert!(takes_daemons(&t, &never, &until("07:30"), now));
    }

    /// What the owner read: `token`, renewable, no TOTP step; not waited, not taken over.
    fn owned(token: Option<&Token>) -> Owned<'_> {
        Owned {
            token,
            renewable: true,
            totp_last_step: None,
            waited_since: None,
            took_over: false,
        }
    }

    fn obtain<'a>(p: OwnerPlan<'a>) -> Obtain<'a> {
        match p {
            OwnerPlan::Obtain(go) => go,
            other => panic!("not a login: {other:?}"),
        }
    }

    #[test]
    fn a_known_daemon_is_asked_first_and_its_token_taken_when_it_does() {
        let rules = daily("08:00");
        let now = ist_at(6, 9, 0);
        let known = Facts {
            daemon: Daemon::Known,
            ..Facts::default()
        };
        assert_eq!(plan(&known, &rules, &ASK, now), Plan::AskDaemon);
        // Forcing or reporting a refused token logs in here, as asked.
        let forced = Ask { force: true, ..ASK };
        assert_eq!(plan(&known, &rules, &forced, now), Plan::Own(Why::Forced));
        let t = minted(ist_at(6, 8, 1));
        let refused = Ask {
            refused: Some(&t),
            ..ASK
        };
        assert_eq!(plan(&known, &rules, &refused, now), Plan::ReadStore);
        // No daemon known: the store.
        assert_eq!(plan(&Facts::default(), &rules, &ASK, now), Plan::ReadStore);

        let answered = |t| Facts {
            daemon: Daemon::Answered(t),
            ..Facts::default()
        };
        assert_eq!(
            plan(&answered(Some(&t)), &rules, &ASK, now),
            Plan::TakeDaemons(&t)
        );
        // No answer, or a token that dies before the time asked for: the store.
        assert_eq!(plan(&answered(None), &rules, &ASK, now), Plan::ReadStore);
        let until = Ask {
            valid_until: Some("08:30".parse().unwrap()),
            ..ASK
        };
        assert_eq!(
            plan(&answered(Some(&t)), &rules, &until, now),
            Plan::ReadStore
        );
    }

    #[test]
    fn before_owning_the_stored_token_is_handed_out_refused_or_sent_to_the_owner() {
        let rules = daily("08:00");
        let t = minted(ist_at(6, 8, 1));
        let read = |t| Facts {
            stored: Some(t),
            ..Facts::default()
        };
        assert_eq!(
            plan(&read(Some(&t)), &rules, &ASK, ist_at(6, 9, 0)),
            Plan::HandOut(&t)
        );
        assert_eq!(
            plan(&read(Some(&t)), &rules, &ASK, ist_at(7, 8, 0)),
            Plan::Own(Why::BeforeLoginAt(ist_at(7, 8, 0)))
        );
        assert_eq!(
            plan(&read(None), &rules, &ASK, ist_at(6, 9, 0)),
            Plan::Own(Why::NoToken)
        );
        let never = Rules {
            logins: Logins::Never,
            ..rules
        };
        assert_eq!(
            plan(&read(None), &never, &ASK, ist_at(6, 9, 0)),
            Plan::LoginsOff(Why::NoToken)
        );
        // A forced login owns the profile without reading the store first; a host that
        // never logs in reads it, to refuse.
        let forced = Ask { force: true, ..ASK };
        assert_eq!(
            plan(&Facts::default(), &rules, &forced, ist_at(6, 9, 0)),
            Plan::Own(Why::Forced)
        );
        assert_eq!(
            plan(&Facts::default(), &never, &forced, ist_at(6, 9, 0)),
            Plan::ReadStore
        );
        assert_eq!(
            plan(&read(Some(&t)), &never, &forced, ist_at(6, 9, 0)),
            Plan::LoginsOff(Why::Forced)
        );
    }

    #[test]
    fn an_owner_that_waited_takes_the_token_the_login_before_it_made() {
        let rules = daily("08:00");
        let started = ist_at(6, 9, 0);
        let theirs = minted(ist_at(6, 9, 1));
        let forced = Ask { force: true, ..ASK };
        let waited = Owned {
            waited_since: Some(started),
            ..owned(Some(&theirs))
        };
        assert_eq!(
            as_owner(&waited, &rules, &forced, ist_at(6, 9, 2)),
            OwnerPlan::HandOut(&theirs)
        );
        // Without waiting, the stored token is not the login it came for.
        assert_eq!(
            obtain(as_owner(
                &owned(Some(&theirs)),
                &rules,
                &forced,
                ist_at(6, 9, 2)
            ))
            .why,
            Why::Forced
        );
        // A token from before the wait began is not one made for it.
        let older = Owned {
            waited_since: Some(ist_at(6, 9, 5)),
            ..waited
        };
        assert_eq!(
            obtain(as_owner(&older, &rules, &forced, ist_at(6, 9, 6))).why,
            Why::Forced
        );
        let never = Rules {
            logins: Logins::Never,
            ..rules
        };
        assert_eq!(
            as_owner(&owned(None), &never, &ASK, started),
            OwnerPlan::LoginsOff(Why::NoToken)
        );
    }

    #[test]
    fn an_owner_that_took_over_counts_the_current_totp_step_as_spent() {
        let rules = daily("08:00");
        let now = ist_at(6, 9, 0);
        let step = now.timestamp().div_euclid(30);
        let before = Owned {
            totp_last_step: Some(step - 10),
            ..owned(None)
        };
        assert_eq!(
            obtain(as_owner(&before, &rules, &ASK, now)).totp_floor,
            Some(step - 10)
        );
        let took_over = Owned {
            took_over: true,
            ..before
        };
        assert_eq!(
            obtain(as_owner(&took_over, &rules, &ASK, now)).totp_floor,
            Some(step)
        );
        // Never lowered: a later step already recorded stays.
        let ahead = Owned {
            totp_last_step: Some(step + 1),
            ..took_over
        };
        assert_eq!(
            obtain(as_owner(&ahead, &rules, &ASK, now)).totp_floor,
            Some(step + 1)
        );
        assert_eq!(spent_step_floor(None, now), Some(step));
        assert_eq!(spent_step_floor(Some(step - 3), now), Some(step));
    }

    #[test]
    fn renew_is_tried_only_on_a_live_self_token_dhan_did_not_refuse() {
        let mut t = minted(ist_at(5, 10, 0));
        t.kind = TokenKind::SelfWeb;
        let now = ist_at(6, 9, 0);
        fn renew<'a>(o: &Owned<'a>, now: DateTime<Utc>) -> Renewal<'a> {
            let rules = Rules {
                margin: chrono::Duration::hours(2),
                ..no_schedule()
            };
            obtain(as_owner(o, &rules, &ASK, now)).renew
        }
        assert_eq!(renew(&owned(Some(&t)), now), Renewal::Try(&t));
        // A token of unknown kind is tried: only the claim APP says Dhan refuses.
        let mut unknown = t.clone();
        unknown.kind = TokenKind::Unknown;
        assert_eq!(renew(&owned(Some(&unknown)), now), Renewal::Try(&unknown));
        let skipped = [
            (renew(&owned(None), now), NoRenewal::NoToken),
            (
                renew(&owned(Some(&t)), ist_at(6, 10, 0)),
                NoRenewal::Expired,
            ),
            (
                renew(
                    &Owned {
                        renewable: false,
                        ..owned(Some(&t))
                    },
                    now,
                ),
                NoRenewal::RefusedBefore,
            ),
        ];
        for (got, want) in skipped {
            assert_eq!(got, Renewal::Skip(want));
        }
        let mut app = t.clone();
        app.kind = TokenKind::App;
        assert_eq!(
            renew(&owned(Some(&app)), now),
            Renewal::Skip(NoRenewal::AppToken)
        );
        // The chain's report says these words (tests match some of them).
        assert_eq!(NoRenewal::NoToken.to_string(), "no stored token to renew");
        assert_eq!(
            NoRenewal::Expired.to_string(),
            "the stored token has expired; Dhan renews only live tokens"
        );
        assert_eq!(
            NoRenewal::AppToken.to_string(),
            "the stored token was made by an API login (APP): Dhan renews only Dhan Web (SELF) tokens"
        );
        assert_eq!(
            NoRenewal::RefusedBefore.to_string(),
            "Dhan refused to renew this token before"
        );
    }

    #[test]
    fn only_dhans_refusal_to_renew_stops_later_renewals() {
        let t = minted(ist_at(6, 8, 1));
        let now = ist_at(6, 9, 0);
        let renewable_after = |renewable, renew_failed| {
            after_failure(
                Why::Forced,
                Some(&t),
                renewable,
                renew_failed,
                ErrorClass::Transient,
                now,
            )
            .renewable
        };
        assert!(renewable_after(true, None), "renew not tried or worked");
        assert!(renewable_after(true, Some(ErrorClass::Transient)));
        assert!(renewable_after(true, Some(ErrorClass::RateLimited)));
        for refusal in [ErrorClass::UnexpectedBody, ErrorClass::TokenInvalid] {
            assert!(!renewable_after(true, Some(refusal)), "{refusal:?}");
        }
        assert!(!renewable_after(false, None), "a refusal before stays");
    }

    #[test]
    fn after_a_failure_the_old_token_is_handed_out_only_when_due_for_the_schedule_and_waiting_may_help()
     {
        let t = minted(ist_at(5, 8, 3));
        let now = ist_at(6, 8, 1);
        let handed = |why, stored, failed, now| {
            after_failure(why, stored, true, None, failed, now).hand_out_stored
        };
        let due = Why::BeforeLoginAt(ist_at(6, 8, 0));
        for why in [due, Why::WithinMargin] {
            assert!(handed(why, Some(&t), ErrorClass::Transient, now), "{why}");
            assert!(handed(why, Some(&t), ErrorClass::RateLimited, now), "{why}");
            // A rejection or a configuration error is the user's to see.
            for class in [ErrorClass::CredentialRejected, ErrorClass::Config] {
                assert!(!handed(why, Some(&t), class, now), "{why} {class:?}");
            }
            // Dead meanwhile, or nothing stored.
            assert!(!handed(
                why,
                Some(&t),
                ErrorClass::Transient,
                ist_at(6, 8, 3)
            ));
            assert!(!handed(why, None, ErrorClass::Transient, now));
        }
        // Asked for, needed until later, refused by Dhan, expired: never.
        for why in [
            Why::Forced,
            Why::DiesBefore(ist_at(6, 15, 30)),
            Why::Refused,
            Why::Expired,
            Why::NoToken,
        ] {
            assert!(!handed(why, Some(&t), ErrorClass::Transient, now), "{why}");
        }
    }

    #[test]
    fn a_caller_that_does_not_log_in_is_served_until_the_owners_daily_login() {
        let t = minted(ist_at(5, 8, 3));
        // Due for the daily login at 08:00 but alive until 08:03: served.
        assert!(serves_cached(&t, &daily("08:00"), ist_at(6, 8, 1)));
        assert!(serves_cached(&t, &daily("08:00"), ist_at(6, 7, 0)));
        assert!(!serves_cached(&t, &daily("08:00"), ist_at(6, 8, 3)));
        // Inside the margin without a daily login time: not served.
        assert!(!serves_cached(&t, &no_schedule(), ist_at(6, 7, 40)));
        assert!(serves_cached(&t, &no_schedule(), ist_at(6, 7, 0)));
    }

    #[test]
    fn a_report_is_answered_by_a_live_token_stored_since() {
        let reported = minted(ist_at(6, 8, 1));
        let newer = minted(ist_at(6, 9, 0));
        let now = ist_at(6, 9, 5);
        assert!(replaced_meanwhile(&newer, &reported, now));
        assert!(!replaced_meanwhile(&reported, &reported, now), "the same");
        assert!(
            !replaced_meanwhile(&newer, &reported, ist_at(7, 9, 0)),
            "dead by now"
        );
    }

    #[test]
    fn only_a_refusal_makes_a_checked_token_dead() {
        assert_eq!(verdict(None), Some(Verdict::Alive));
        assert_eq!(
            verdict(Some(ErrorClass::TokenInvalid)),
            Some(Verdict::Replaced)
        );
        for passing in [ErrorClass::Transient, ErrorClass::RateLimited] {
            assert_eq!(verdict(Some(passing)), Some(Verdict::Unverified));
        }
        for other in [ErrorClass::Config, ErrorClass::UnexpectedBody] {
            assert_eq!(verdict(Some(other)), None, "{other:?}");
        }
    }

    #[cfg(feature = "serve")]
    #[test]
    fn the_daily_login_stays_anchored_day_after_day() {
        let at: IstTime = "08:00".parse().unwrap();
        let mut obtained = ist_at(1, 8, 4);
        for day in 2..=20 {
            let due = daily_login_after(at, obtained);
            assert_eq!(due, ist_at(day, 8, 0));
            // The daemon logs in a few minutes after the time (its jitter).
            obtained = due + chrono::Duration::minutes(4);
        }
    }
}
