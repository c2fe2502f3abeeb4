//! One task per profile: refresh ahead of expiry through the same `TokenManager` as the
//! CLI (so file locks keep a CLI login and the daemon apart), back off on failures that
//! may pass, hold on fatal ones, hand every new token off.
//!
//! Every decision is taken from the wall clock and the stored state after a nap of at
//! most `MAX_NAP`, so a token stored by another process, an `unlock`, a config change or
//! a clock jump is seen within that time (a clock jump at once, see `clock`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use rand::Rng;
use tokio::sync::{Notify, watch};

use super::Env;
use super::handoff::Handoff;
use super::notify::{Event, Notifier};
use super::status::{Failure, Hold, Phase, Slot};
use crate::config::{Paths, Profile};
use crate::error::Error;
use crate::error_class::ErrorClass;
use crate::manager::{Request, TokenManager};
use crate::progress::Progress;
use crate::store::{ProfileState, next_ist_midnight};
use crate::token::{SourceKind, Token};

/// The longest the scheduler sleeps without looking again.
const MAX_NAP: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    pub(crate) ahead: Duration,
    pub(crate) jitter: Duration,
    pub(crate) retry_min: Duration,
    pub(crate) retry_max: Duration,
    pub(crate) warn_before: Duration,
}

/// A token told apart from its successor without holding its value.
type Ident = (DateTime<Utc>, DateTime<Utc>);

fn ident(t: &Token) -> Ident {
    (t.expires_at, t.obtained_at)
}

pub(crate) struct Scheduler {
    slot: Arc<Slot>,
    paths: Arc<Paths>,
    env: Env,
    timing: Timing,
    handoff: Handoff,
    notifier: Arc<Notifier>,
    nudge: Arc<Notify>,
    stop: watch::Receiver<bool>,
    manager: Arc<TokenManager>,
    /// The config file as last loaded; another stamp means reload.
    stamp: Option<Stamp>,
    /// The refresh time chosen for a token (its jitter is drawn once).
    plan: Option<(Ident, DateTime<Utc>)>,
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

enum Step {
    Refresh(Option<SourceKind>),
    Wait { until: DateTime<Utc>, phase: Phase },
}

#[derive(Debug, Clone, PartialEq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    ino: u64,
}

fn stamp(path: &std::path::Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some(Stamp {
        len: m.len(),
        modified: m.modified().ok(),
        ino: m.ino(),
    })
}

pub(crate) struct Parts {
    pub(crate) slot: Arc<Slot>,
    pub(crate) paths: Arc<Paths>,
    pub(crate) env: Env,
    pub(crate) timing: Timing,
    pub(crate) files: (PathBuf, PathBuf),
    pub(crate) notifier: Arc<Notifier>,
    pub(crate) nudge: Arc<Notify>,
    pub(crate) stop: watch::Receiver<bool>,
}

impl Scheduler {
    pub(crate) fn new(p: Parts) -> Scheduler {
        let manager = p.slot.status.borrow().manager.clone();
        Scheduler {
            stamp: stamp(&p.paths.config_file),
            slot: p.slot,
            paths: p.paths,
            env: p.env,
            timing: p.timing,
            handoff: Handoff::new(p.files.0, p.files.1),
            notifier: p.notifier,
            nudge: p.nudge,
            stop: p.stop,
            manager,
            plan: None,
            streak: 0,
            retry: None,
            consent_hold: None,
            locked_out: false,
            noted_lockout: None,
            warned_for: None,
        }
    }

    pub(crate) async fn run(mut self) {
        while !*self.stop.borrow() {
            let now = Utc::now();
            if stamp(&self.paths.config_file) != self.stamp {
                self.reload();
            }
            let state = match self.manager.state().await {
                Ok(s) => s,
                Err(e) => {
                    self.failed(now, e.class(), e.to_string());
                    self.wait(now + MAX_NAP, Phase::Retrying).await;
                    continue;
                }
            };
            if self.locked_out {
                // Secrets may live in files or commands the stamp does not cover: read
                // them again to see whether the rejected credentials were replaced.
                self.reload();
            }
            if let Some(t) = state.token.as_ref().filter(|t| t.is_live(now)) {
                self.publish(t);
            }
            let (step, events) = self.decide(&state, now).await;
            for e in events {
                tokio::select! {
                    _ = self.notifier.send(e) => {}
                    _ = stopped(&mut self.stop) => return,
                }
            }
            match step {
                Step::Wait { until, phase } => self.wait(until, phase).await,
                Step::Refresh(via) => {
                    // A config change since the last cycle is honoured by this refresh.
                    self.reload();
                    if !self.refresh(via).await {
                        return;
                    }
                }
            }
        }
    }

    /// What to do now, from the stored state and the wall clock.
    async fn decide(&mut self, state: &ProfileState, now: DateTime<Utc>) -> (Step, Vec<Event>) {
        let name = self.slot.name.clone();
        let mut events = Vec::new();
        // The manager's own guard: the profile is held while every login path it has
        // would send credentials Dhan rejected.
        let lockout = self.manager.lockout_hold(state).await.unwrap_or_else(|e| {
            tracing::warn!(profile = %name, "cannot read the lockouts: {e}");
            None
        });
        self.locked_out = lockout.is_some();
        let hold = if let Some((at, message)) = lockout {
            if self.noted_lockout != Some(at) {
                self.noted_lockout = Some(at);
                events.push(Event::fatal(
                    &name,
                    ErrorClass::CredentialRejected,
                    &message,
                    None,
                    now,
                ));
            }
            Some(Hold::Lockout { since: at })
        } else if let Some(until) = self.consent_hold.filter(|u| *u > now) {
            Some(Hold::ConsentLimit { until })
        } else {
            self.consent_hold = None;
            None
        };

        let token = state.token.as_ref().filter(|t| t.is_live(now));
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
        if renew_only && !(token.is_some() && state.renewable) {
            // A held profile looks for an `unlock` or new credentials at the retry cap,
            // or sooner: a person fixing it wants to see it work.
            let until = match &hold {
                Some(Hold::ConsentLimit { until }) => *until,
                _ => now + chrono_duration(MAX_NAP.min(self.timing.retry_max)),
            };
            self.warn_if_expiring(token, now, &mut events, true);
            return (
                Step::Wait {
                    until,
                    phase: phase(Phase::Waiting),
                },
                events,
            );
        }
        self.warn_if_expiring(token, now, &mut events, renew_only || self.streak > 0);
        if let Some((at, _)) = self.retry
            && at > now
        {
            let step = Step::Wait {
                until: at,
                phase: phase(Phase::Retrying),
            };
            return (step, events);
        }
        let due = token.map_or(now, |t| self.due(t));
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

    fn warn_if_expiring(
        &mut self,
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
        let status = self.slot.status.borrow();
        let last = status
            .last_failure
            .as_ref()
            .map(|f| (f.class, f.message.as_str()));
        events.push(Event::expiring(
            &self.slot.name,
            t.expires_at,
            last,
            self.retry.map(|(at, _)| at),
            now,
        ));
    }

    /// When to refresh `t`, with its jitter drawn once.
    fn due(&mut self, t: &Token) -> DateTime<Utc> {
        if let Some((id, due)) = self.plan
            && id == ident(t)
        {
            return due;
        }
        let jitter = self
            .timing
            .jitter
            .mul_f64(rand::rng().random_range(0.0..=1.0));
        let due = due_at(t, self.timing.ahead + jitter);
        self.plan = Some((ident(t), due));
        due
    }

    /// Runs one refresh; false when shutdown interrupted it.
    async fn refresh(&mut self, via: Option<SourceKind>) -> bool {
        self.slot.status.send_modify(|s| {
            s.phase = Phase::Refreshing;
            s.attempts += 1;
            s.next_at = None;
        });
        let req = Request {
            force: true,
            via,
            ..Request::default()
        };
        let progress = LogProgress(self.slot.name.clone());
        let manager = self.manager.clone();
        // Dropping the login on shutdown is the clean abort: the browser's guard kills
        // Chromium, the file lock is released, nothing half-written is ever saved.
        let result = tokio::select! {
            r = manager.token(&req, &progress) => r,
            _ = stopped(&mut self.stop) => return false,
        };
        let now = Utc::now();
        let margin = manager.profile().margin;
        let result = result.and_then(|got| {
            if got.token.is_valid_for(now, margin) {
                Ok(got)
            } else {
                // Refreshing again at once would loop on Dhan.
                Err(Error::Refused {
                    class: ErrorClass::UnexpectedBody,
                    message: format!(
                        "the new token expires at {}, within the margin: is the clock right?",
                        got.token.expires_at.to_rfc3339()
                    ),
                })
            }
        });
        match result {
            Ok(got) => {
                tracing::info!(
                    profile = %self.slot.name,
                    source = %got.token.source,
                    expires_at = %got.token.expires_at.to_rfc3339(),
                    "token refreshed"
                );
                self.streak = 0;
                self.retry = None;
                if let Some(e) = &got.unsaved {
                    // Served from memory until a save works; the next refresh retries it.
                    self.failed(
                        now,
                        ErrorClass::Other,
                        format!("the new token could not be saved: {e}"),
                    );
                }
                self.slot.status.send_modify(|s| {
                    s.last_success = Some(now);
                    if !got.cached {
                        *s.obtained.entry(got.token.source.as_str()).or_default() += 1;
                    }
                });
                self.publish(&got.token);
            }
            Err(e) => {
                let class = e.class();
                self.failed(now, class, e.to_string());
                let current = manager
                    .state()
                    .await
                    .ok()
                    .and_then(|s| s.token)
                    .map(|t| ident(&t));
                if class == ErrorClass::ConsentLimit {
                    let until = next_ist_midnight(now);
                    self.consent_hold = Some(until);
                    let event =
                        Event::fatal(&self.slot.name, class, &e.to_string(), Some(until), now);
                    tokio::select! {
                        _ = self.notifier.send(event) => {}
                        _ = stopped(&mut self.stop) => return false,
                    }
                } else {
                    // A credential rejection also lands here: the lockout the manager
                    // stored holds the profile, and the backoff covers a lifted one.
                    self.streak += 1;
                    // Dhan's "once every 2 minutes" is a floor, whatever the backoff says.
                    let wait = backoff(self.streak, self.timing.retry_min, self.timing.retry_max)
                        .max(e.retry_after().unwrap_or_default());
                    self.retry = Some((now + chrono_duration(wait), current));
                    tracing::warn!(
                        profile = %self.slot.name,
                        class = %class,
                        retry_in_secs = wait.as_secs_f64(),
                        "refresh failed: {e}"
                    );
                }
            }
        }
        true
    }

    fn failed(&mut self, at: DateTime<Utc>, class: ErrorClass, message: String) {
        self.slot.status.send_modify(|s| {
            *s.failures.entry(class.as_str()).or_default() += 1;
            s.last_failure = Some(Failure { at, class, message });
        });
    }

    /// Loads the profile again; on failure the last good one stays in use.
    fn reload(&mut self) {
        self.stamp = stamp(&self.paths.config_file);
        let loaded = Profile::load(&self.slot.name, &self.paths, &*self.env)
            .map_err(Error::from)
            .map(TokenManager::new);
        match loaded {
            Ok(m) => {
                self.manager = Arc::new(m);
                let m = self.manager.clone();
                self.slot.status.send_modify(|s| s.manager = m);
            }
            Err(e) => {
                tracing::error!(profile = %self.slot.name, "cannot load the profile (keeping the last good one): {e}");
                self.failed(Utc::now(), e.class(), e.to_string());
            }
        }
    }

    fn publish(&mut self, t: &Token) {
        match self.handoff.publish(t) {
            Ok(true) => tracing::info!(
                profile = %self.slot.name,
                file = %self.handoff.token_file().display(),
                "token and env files updated"
            ),
            Ok(false) => {}
            Err(e) => tracing::error!(
                profile = %self.slot.name,
                file = %self.handoff.token_file().display(),
                "cannot write the token files: {e}"
            ),
        }
    }

    async fn wait(&mut self, until: DateTime<Utc>, phase: Phase) {
        self.slot.status.send_modify(|s| {
            s.phase = phase;
            s.next_at = Some(until);
        });
        let left = (until - Utc::now())
            .to_std()
            .unwrap_or(Duration::ZERO)
            .min(MAX_NAP);
        tokio::select! {
            _ = tokio::time::sleep(left) => {}
            _ = self.nudge.notified() => {}
            _ = stopped(&mut self.stop) => {}
        }
    }
}

/// Resolves once shutdown is asked for (or the daemon is gone).
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// `lead` before expiry, but never before half the token's life has passed: with a
/// short-lived token and a long lead, refreshing at once would loop.
fn due_at(t: &Token, lead: Duration) -> DateTime<Utc> {
    let life = (t.expires_at - t.obtained_at).max(chrono::Duration::zero());
    t.expires_at - chrono_duration(lead).min(life / 2)
}

/// `min`, doubling per failure in a row, capped at `max`.
fn backoff(streak: u32, min: Duration, max: Duration) -> Duration {
    let doublings = streak.saturating_sub(1).min(20);
    min.saturating_mul(1 << doublings).min(max)
}

fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// Login steps in the daemon's log.
struct LogProgress(String);

impl Progress for LogProgress {
    fn step_started(&self, step: &str) {
        tracing::debug!(profile = %self.0, step, "started");
    }

    fn step_finished(&self, step: &str, elapsed: Duration) {
        tracing::debug!(profile = %self.0, step, ms = elapsed.as_millis() as u64, "finished");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

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

    #[test]
    fn a_day_token_is_refreshed_the_lead_before_expiry() {
        let t0 = Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).unwrap();
        let t = token(t0, 86_400);
        let due = due_at(&t, Duration::from_secs(3600 + 120));
        assert_eq!(t.expires_at - due, chrono::Duration::seconds(3720));
    }

    #[test]
    fn a_short_token_is_refreshed_no_sooner_than_half_its_life() {
        let t0 = Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).unwrap();
        let t = token(t0, 600);
        assert_eq!(
            due_at(&t, Duration::from_secs(3600)),
            t0 + chrono::Duration::seconds(300)
        );
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let s = Duration::from_secs;
        let b: Vec<_> = (1..=6).map(|n| backoff(n, s(30), s(300))).collect();
        assert_eq!(b, [s(30), s(60), s(120), s(240), s(300), s(300)]);
        assert_eq!(backoff(u32::MAX, s(30), s(300)), s(300));
    }
}
