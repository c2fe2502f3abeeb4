//! Which token a caller gets: the stored one, or a new one, and why. One pure function
//! of the stored token, the profile's rules, the caller's request and the time, so that
//! every rule is tested with a fixed clock and the CLI, the daemon and a library user
//! decide alike.
//!
//! The rules follow how Dhan's tokens live (docs/DHAN_TOKENS.md): one live token per
//! client, so every new one ends the token every other consumer holds; a token dies 24 h
//! after it was minted, at that clock time. With a daily `login_at`, a token is replaced
//! once a day at that time and never between two of them while it lives.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Days, NaiveTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use crate::error_class::ErrorClass;
use crate::token::{Token, ist};

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
