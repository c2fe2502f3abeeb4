//! What a profile's scheduler does next: a pure function of what it remembers, what it
//! saw at its last look and the time, so that every rule is tested with a fixed clock.
//! The scheduler does the looking (the store, the lockouts) and the doing (refresh,
//! wait, send events).

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::notify::Event;
use super::status::{Hold, Phase};
use crate::decide::{IstTime, daily_login_after};
use crate::error_class::ErrorClass;
use crate::store::{ProfileState, next_ist_midnight};
use crate::token::{SourceKind, Token};

/// The longest the scheduler sleeps without looking again.
pub(crate) const MAX_NAP: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    pub(crate) ahead: Duration,
    pub(crate) jitter: Duration,
    pub(crate) retry_min: Duration,
    pub(crate) retry_max: Duration,
    pub(crate) warn_before: Duration,
}

/// A token told apart from its successor without holding its value.
pub(crate) type Ident = (DateTime<Utc>, DateTime<Utc>);

pub(crate) fn ident(t: &Token) -> Ident {
    (t.expires_at, t.obtained_at)
}

#[derive(Debug, PartialEq)]
pub(crate) enum Step {
    Refresh(Option<SourceKind>),
    Wait { until: DateTime<Utc>, phase: Phase },
}

/// What one look found, besides the time.
pub(crate) struct Seen<'a> {
    pub(crate) profile: &'a str,
    pub(crate) state: &'a ProfileState,
    /// The lockout that holds the profile (every login path it has would send rejected
    /// credentials): since when, and why.
    pub(crate) lockout: Option<(DateTime<Utc>, String)>,
    /// The last failure, for the warning that the token is about to expire.
    pub(crate) last_failure: Option<(ErrorClass, &'a str)>,
    /// A number in 0..=1 choosing a new token's share of the jitter.
    pub(crate) jitter_draw: f64,
    /// The profile's daily login time: the refresh is due then (plus the jitter), not
    /// `ahead` before expiry.
    pub(crate) login_at: Option<IstTime>,
}

/// What the scheduler remembers between looks.
#[derive(Debug)]
pub(crate) struct Plan {
    timing: Timing,
    /// The refresh time chosen for a token under a daily login time (its jitter is
    /// drawn once).
    due: Option<(Ident, Option<IstTime>, DateTime<Utc>)>,
    /// Failures in a row, and when to try again; forgotten when another token appears.
    streak: u32,
    retry: Option<(DateTime<Utc>, Option<Ident>)>,
    consent_hold: Option<DateTime<Utc>>,
    /// Held by a lockout at the last look.
    locked_out: bool,
    /// The lockout already reported, and the token already warned about.
    noted_lockout: Option<DateTime<Utc>>,
    warned_for: Option<DateTime<Utc>>,
}

impl Plan {
    pub(crate) fn new(timing: Timing) -> Plan {
        Plan {
            timing,
            due: None,
            streak: 0,
            retry: None,
            consent_hold: None,
            locked_out: false,
            noted_lockout: None,
            warned_for: None,
        }
    }

    /// Held by a lockout at the last look.
    pub(crate) fn locked_out(&self) -> bool {
        self.locked_out
    }

    /// When the next try after a failure is due, if one failed.
    pub(crate) fn retry_at(&self) -> Option<DateTime<Utc>> {
        self.retry.map(|(at, _)| at)
    }

    /// What to do at `now`, and the events to send first.
    pub(crate) fn decide(&mut self, seen: &Seen<'_>, now: DateTime<Utc>) -> (Step, Vec<Event>) {
        let mut events = Vec::new();
        self.locked_out = seen.lockout.is_some();
        let hold = if let Some((at, message)) = &seen.lockout {
            if self.noted_lockout != Some(*at) {
                self.noted_lockout = Some(*at);
                events.push(Event::fatal(
                    seen.profile,
                    ErrorClass::CredentialRejected,
                    message,
                    None,
                    now,
                ));
            }
            Some(Hold::Lockout { since: *at })
        } else if let Some(until) = self.consent_hold.filter(|u| *u > now) {
            Some(Hold::ConsentLimit { until })
        } else {
            self.consent_hold = None;
            None
        };

        let token = seen.state.token.as_ref().filter(|t| t.is_live(now));
        if let Some((_, failed_on)) = self.retry
            && token.map(ident) != failed_on
            && token.is_some()
        {
            // Someone else stored a token since our failure: start afresh.
            self.retry = None;
            self.streak = 0;
        }
        let phase = |fallback: Phase| match &hold {
            Some(h) => Phase::Held(h.clone()),
            None => fallback,
        };
        // RenewToken uses no credential and no consent: a held profile may still renew.
        let renew_only = hold.is_some();
        if renew_only && !(token.is_some() && seen.state.renewable) {
            // A held profile looks for an `unlock` or new credentials at the retry cap,
            // or sooner: a person fixing it wants to see it work.
            let until = match &hold {
                Some(Hold::ConsentLimit { until }) => *until,
                _ => now + chrono_duration(MAX_NAP.min(self.timing.retry_max)),
            };
            self.warn_if_expiring(seen, token, now, &mut events, true);
            return (
                Step::Wait {
                    until,
                    phase: phase(Phase::Waiting),
                },
                events,
            );
        }
        let failing = renew_only || self.streak > 0;
        self.warn_if_expiring(seen, token, now, &mut events, failing);
        if let Some((at, _)) = self.retry
            && at > now
        {
            let step = Step::Wait {
                until: at,
                phase: phase(Phase::Retrying),
            };
            return (step, events);
        }
        let due = token.map_or(now, |t| self.due(t, seen.jitter_draw, seen.login_at));
        if now >= due {
            let via = renew_only.then_some(SourceKind::Renew);
            return (Step::Refresh(via), events);
        }
        let step = Step::Wait {
            until: due,
            phase: phase(Phase::Waiting),
        };
        (step, events)
    }

    /// A refresh worked: the failures in a row are over.
    pub(crate) fn succeeded(&mut self) {
        self.streak = 0;
        self.retry = None;
    }

    /// A refresh failed at `now` with `class`; `current` is the token stored now. A
    /// spent consent budget holds the profile until Dhan's day ends (the returned
    /// time); anything else backs off, doubling, never below Dhan's own `retry_after`.
    pub(crate) fn failed(
        &mut self,
        class: ErrorClass,
        retry_after: Option<Duration>,
        current: Option<Ident>,
        now: DateTime<Utc>,
    ) -> Failed {
        if class == ErrorClass::ConsentLimit {
            let until = next_ist_midnight(now);
            self.consent_hold = Some(until);
            return Failed::HeldUntil(until);
        }
        // A credential rejection also lands here: the lockout the manager stored holds
        // the profile, and the backoff covers a lifted one.
        self.streak += 1;
        // Dhan's "once every 2 minutes" is a floor, whatever the backoff says.
        let wait = backoff(self.streak, self.timing.retry_min, self.timing.retry_max)
            .max(retry_after.unwrap_or_default());
        self.retry = Some((now + chrono_duration(wait), current));
        Failed::RetryIn(wait)
    }

    fn warn_if_expiring(
        &mut self,
        seen: &Seen<'_>,
        token: Option<&Token>,
        now: DateTime<Utc>,
        events: &mut Vec<Event>,
        failing: bool,
    ) {
        let Some(t) = token else { return };
        let close = t.expires_at - now <= chrono_duration(self.timing.warn_before);
        if !failing || !close || self.warned_for == Some(t.expires_at) {
            return;
        }
        self.warned_for = Some(t.expires_at);
        events.push(Event::expiring(
            seen.profile,
            t.expires_at,
            seen.last_failure,
            self.retry_at(),
            now,
        ));
    }

    /// When to refresh `t`, with its jitter drawn once. Under a daily login time: the
    /// first one after the token was obtained, plus the jitter, so each day's login
    /// happens at the same time instead of `ahead` earlier than the day before's; a
    /// token that dies before that (a short-lived one) is replaced when it dies.
    fn due(&mut self, t: &Token, draw: f64, login_at: Option<IstTime>) -> DateTime<Utc> {
        if let Some((id, at, due)) = self.due
            && id == ident(t)
            && at == login_at
        {
            return due;
        }
        let jitter = self.timing.jitter.mul_f64(draw.clamp(0.0, 1.0));
        let due = match login_at {
            Some(at) => {
                (daily_login_after(at, t.obtained_at) + chrono_duration(jitter)).min(t.expires_at)
            }
            None => due_at(t, self.timing.ahead + jitter),
        };
        self.due = Some((ident(t), login_at, due));
        due
    }
}

/// How a failed refresh is followed up.
#[derive(Debug, PartialEq)]
pub(crate) enum Failed {
    /// The day's consents are spent: nothing before this.
    HeldUntil(DateTime<Utc>),
    /// Try again after this.
    RetryIn(Duration),
}

/// `lead` before expiry, but never before half the token's life has passed: with a
/// short-lived token and a long lead, refreshing at once would loop.
fn due_at(t: &Token, lead: Duration) -> DateTime<Utc> {
    let life = (t.expires_at - t.obtained_at).max(chrono::Duration::zero());
    t.expires_at - chrono_duration(lead).min(life / 2)
}

/// `min`, doubling per failure in a row, capped at `max`.
pub(crate) fn backoff(streak: u32, min: Duration, max: Duration) -> Duration {
    let doublings = streak.saturating_sub(1).min(20);
    min.saturating_mul(1 << doublings).min(max)
}

pub(crate) fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const S: fn(u64) -> Duration = Duration::from_secs;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).unwrap()
    }

    fn token(obtained: DateTime<Utc>, life_secs: i64) -> Token {
        let mut t = Token::from_grant(
            "t.t.t",
            Some("1"),
            Some("2099-01-01T00:00:00"),
            SourceKind::Totp,
            obtained,
        )
        .unwrap();
        t.expires_at = obtained + chrono::Duration::seconds(life_secs);
        t
    }

    fn timing() -> Timing {
        Timing {
            ahead: S(3600),
            jitter: S(600),
            retry_min: S(30),
            retry_max: S(300),
            warn_before: S(1800),
        }
    }

    fn state(token: Option<Token>) -> ProfileState {
        ProfileState {
            token,
            renewable: true,
            ..Default::default()
        }
    }

    fn seen(state: &ProfileState) -> Seen<'_> {
        Seen {
            profile: "p",
            state,
            lockout: None,
            last_failure: None,
            jitter_draw: 0.5,
            login_at: None,
        }
    }

    /// An instant given as IST wall-clock time on 2026-12-DD.
    fn ist_at(day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
        crate::token::ist()
            .with_ymd_and_hms(2026, 12, day, hour, minute, 0)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn under_a_login_time_it_wakes_at_that_time_plus_jitter_not_before_expiry() {
        let mut plan = Plan::new(timing());
        // Minted late the day before: it would die at 14:00, mid-session.
        let st = state(Some(token(ist_at(5, 14, 0), 24 * 3600)));
        let daily = Seen {
            login_at: Some("08:00".parse().unwrap()),
            ..seen(&st)
        };
        // Half of the 600 s jitter.
        let wake = ist_at(6, 8, 5);
        assert_eq!(wait_until(&plan.decide(&daily, ist_at(5, 20, 0)).0), wake);
        assert_eq!(wait_until(&plan.decide(&daily, ist_at(6, 7, 59)).0), wake);
        assert_eq!(plan.decide(&daily, wake).0, Step::Refresh(None));
        // Without the login time, it waits for `ahead` + jitter before 14:00.
        let mut plan = Plan::new(timing());
        assert_eq!(
            wait_until(&plan.decide(&seen(&st), ist_at(6, 7, 59)).0),
            ist_at(6, 12, 55)
        );
    }

    #[test]
    fn under_a_login_time_the_schedule_does_not_drift_and_a_dead_token_goes_at_once() {
        let mut plan = Plan::new(timing());
        let mut obtained = ist_at(1, 8, 5);
        for day in 2..=20 {
            let st = state(Some(token(obtained, 24 * 3600)));
            let daily = Seen {
                login_at: Some("08:00".parse().unwrap()),
                ..seen(&st)
            };
            let wake = wait_until(&plan.decide(&daily, obtained).0);
            assert_eq!(wake, ist_at(day, 8, 5), "day {day}");
            obtained = wake;
        }
        // A token that dies before the next login time is replaced when it dies.
        let short = state(Some(token(ist_at(6, 9, 0), 3600)));
        let daily = Seen {
            login_at: Some("08:00".parse().unwrap()),
            ..seen(&short)
        };
        assert_eq!(
            wait_until(&plan.decide(&daily, ist_at(6, 9, 1)).0),
            ist_at(6, 10, 0)
        );
    }

    fn wait_until(step: &Step) -> DateTime<Utc> {
        match step {
            Step::Wait { until, .. } => *until,
            Step::Refresh(via) => panic!("refresh ({via:?}), not a wait"),
        }
    }

    #[test]
    fn without_a_token_it_refreshes_at_once() {
        let mut plan = Plan::new(timing());
        let st = state(None);
        assert_eq!(plan.decide(&seen(&st), t0()).0, Step::Refresh(None));
    }

    #[test]
    fn a_live_token_waits_for_the_lead_plus_its_jitter_drawn_once() {
        let mut plan = Plan::new(timing());
        let t = token(t0(), 86_400);
        let st = state(Some(t.clone()));
        let (step, events) = plan.decide(&seen(&st), t0());
        // 3600 s ahead plus half of the 600 s jitter.
        let due = t.expires_at - chrono::Duration::seconds(3900);
        assert_eq!(
            step,
            Step::Wait {
                until: due,
                phase: Phase::Waiting
            }
        );
        assert!(events.is_empty());
        // A later look draws another number: the token's time does not move.
        let later = Seen {
            jitter_draw: 1.0,
            ..seen(&st)
        };
        assert_eq!(wait_until(&plan.decide(&later, t0() + S(60)).0), due);
        // At that time, the refresh is due.
        assert_eq!(plan.decide(&later, due).0, Step::Refresh(None));
    }

    #[test]
    fn failures_back_off_doubling_and_another_token_ends_the_streak() {
        let mut plan = Plan::new(timing());
        let st = state(None);
        let now = t0();
        assert_eq!(
            plan.failed(ErrorClass::Transient, None, None, now),
            Failed::RetryIn(S(30))
        );
        let step = plan.decide(&seen(&st), now + S(10)).0;
        assert_eq!(
            step,
            Step::Wait {
                until: now + S(30),
                phase: Phase::Retrying
            }
        );
        assert_eq!(plan.decide(&seen(&st), now + S(30)).0, Step::Refresh(None));
        assert_eq!(
            plan.failed(ErrorClass::Transient, None, None, now + S(30)),
            Failed::RetryIn(S(60))
        );
        // Dhan's own wait is a floor.
        assert_eq!(
            plan.failed(ErrorClass::RateLimited, Some(S(200)), None, now + S(90)),
            Failed::RetryIn(S(200))
        );
        // Another process stored a token meanwhile: no retry pending, its own time.
        let stored = state(Some(token(now + S(100), 86_400)));
        let (step, _) = plan.decide(&seen(&stored), now + S(120));
        assert!(wait_until(&step) > now + S(3600), "{step:?}");
        assert_eq!(plan.retry_at(), None);
        assert_eq!(
            plan.failed(ErrorClass::Transient, None, None, now + S(200)),
            Failed::RetryIn(S(30)),
            "the streak started again"
        );
    }

    #[test]
    fn a_spent_consent_budget_holds_until_ist_midnight_but_renewal_goes_on() {
        let mut plan = Plan::new(timing());
        let now = t0();
        let midnight = Utc.with_ymd_and_hms(2026, 11, 25, 18, 30, 0).unwrap();
        assert_eq!(
            plan.failed(ErrorClass::ConsentLimit, None, None, now),
            Failed::HeldUntil(midnight)
        );
        let held = Phase::Held(Hold::ConsentLimit { until: midnight });
        let st = state(None);
        assert_eq!(
            plan.decide(&seen(&st), now + S(60)).0,
            Step::Wait {
                until: midnight,
                phase: held
            }
        );
        // A renewable token that is due may still be renewed: no credential, no consent.
        let t = token(now - chrono::Duration::hours(23), 86_400);
        let st = state(Some(t));
        assert_eq!(
            plan.decide(&seen(&st), now + S(60)).0,
            Step::Refresh(Some(SourceKind::Renew))
        );
        // After midnight the hold is over.
        let st = state(None);
        assert_eq!(plan.decide(&seen(&st), midnight).0, Step::Refresh(None));
    }

    #[test]
    fn a_lockout_holds_and_is_reported_once() {
        let mut plan = Plan::new(timing());
        let since = t0() - chrono::Duration::hours(1);
        let st = state(None);
        let locked = Seen {
            lockout: Some((since, "Dhan said no".into())),
            ..seen(&st)
        };
        let (step, events) = plan.decide(&locked, t0());
        assert_eq!(
            step,
            Step::Wait {
                until: t0() + S(30),
                phase: Phase::Held(Hold::Lockout { since })
            }
        );
        assert_eq!(events.len(), 1);
        assert!(plan.locked_out());
        let (_, events) = plan.decide(&locked, t0() + S(30));
        assert!(events.is_empty(), "reported once");
        let (step, _) = plan.decide(&seen(&st), t0() + S(60));
        assert_eq!(step, Step::Refresh(None), "unlocked");
        assert!(!plan.locked_out());
    }

    #[test]
    fn a_failing_profile_warns_once_before_its_token_expires() {
        let mut plan = Plan::new(timing());
        let now = t0();
        // 20 minutes left, within the 30 of warn_before.
        let t = token(now - chrono::Duration::minutes(100), 7200);
        let st = state(Some(t.clone()));
        let (_, events) = plan.decide(&seen(&st), now);
        assert!(events.is_empty(), "not failing: no warning");
        plan.failed(ErrorClass::Transient, None, Some(ident(&t)), now);
        let failing = Seen {
            last_failure: Some((ErrorClass::Transient, "timed out")),
            ..seen(&st)
        };
        let (_, events) = plan.decide(&failing, now + S(1));
        assert_eq!(events.len(), 1);
        let (_, events) = plan.decide(&failing, now + S(2));
        assert!(events.is_empty(), "warned once per token");
    }

    #[test]
    fn a_day_token_is_refreshed_the_lead_before_expiry() {
        let t = token(t0(), 86_400);
        let due = due_at(&t, S(3600 + 120));
        assert_eq!(t.expires_at - due, chrono::Duration::seconds(3720));
    }

    #[test]
    fn a_short_token_is_refreshed_no_sooner_than_half_its_life() {
        let t = token(t0(), 600);
        assert_eq!(due_at(&t, S(3600)), t0() + chrono::Duration::seconds(300));
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let b: Vec<_> = (1..=6).map(|n| backoff(n, S(30), S(300))).collect();
        assert_eq!(b, [S(30), S(60), S(120), S(240), S(300), S(300)]);
        assert_eq!(backoff(u32::MAX, S(30), S(300)), S(300));
    }
}
