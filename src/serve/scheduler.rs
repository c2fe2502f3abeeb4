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

use super::handoff::Handoff;
use super::keeper::Keeper;
use super::notify::{Event, Notifier};
use super::plan::{Failed, MAX_NAP, Plan, Seen, Step, Timing, backoff, chrono_duration, ident};
use super::status::{Failure, Phase, Slot};
use crate::config::{Paths, Profile};
use crate::decide::Logins;
use crate::error::Error;
use crate::error_class::ErrorClass;
use crate::manager::{Request, TokenManager};
use crate::progress::Progress;
use crate::token::{SourceKind, Token};

/// How the daemon reads the environment (again on every profile reload).
pub type Env = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// The first wait after the stored state could not be read (doubling after that).
const STORE_RETRY: Duration = Duration::from_secs(1);

pub(crate) struct Scheduler {
    slot: Arc<Slot>,
    paths: Arc<Paths>,
    env: Env,
    handoff: Handoff,
    notifier: Arc<Notifier>,
    nudge: Arc<Notify>,
    stop: watch::Receiver<bool>,
    http: reqwest::Client,
    manager: Arc<TokenManager>,
    /// The profile's lease, with a shared database.
    keeper: Keeper,
    /// The config file as last loaded; another stamp means reload.
    stamp: Option<Stamp>,
    /// What is remembered between looks, and the decisions taken from it.
    plan: Plan,
    /// Reads of the stored state that failed in a row.
    unread: u32,
    /// How long before its expiry a token is refreshed (`refresh_ahead`).
    ahead: Duration,
    /// When the live token last read falls due: a store outage's backoff never sleeps
    /// past it, or the token could die while the store is already back.
    due: Option<DateTime<Utc>>,
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
    /// The daemon's one HTTP client, for the managers of reloaded profiles.
    pub(crate) http: reqwest::Client,
}

impl Scheduler {
    pub(crate) fn new(p: Parts) -> Scheduler {
        let manager = p.slot.status.borrow().manager.clone();
        Scheduler {
            stamp: stamp(&p.paths.config_file),
            slot: p.slot,
            paths: p.paths,
            env: p.env,
            handoff: Handoff::new(p.files.0, p.files.1),
            notifier: p.notifier,
            nudge: p.nudge,
            stop: p.stop,
            http: p.http,
            manager,
            keeper: Keeper::default(),
            ahead: p.timing.ahead,
            plan: Plan::new(p.timing),
            unread: 0,
            due: None,
        }
    }

    pub(crate) async fn run(mut self) {
        self.cycle().await;
        self.keeper.release().await;
    }

    async fn cycle(&mut self) {
        while !*self.stop.borrow() {
            let now = Utc::now();
            if stamp(&self.paths.config_file) != self.stamp {
                self.reload();
            }
            let state = match self.manager.state().await {
                Ok(s) => {
                    self.unread = 0;
                    s
                }
                Err(e) => {
                    // A database restarting is back in seconds: look again soon, then
                    // less and less often.
                    self.unread += 1;
                    let mut again = backoff(self.unread, STORE_RETRY, MAX_NAP);
                    if let Some(due) = self.due {
                        let left = (due - now).to_std().unwrap_or(Duration::ZERO);
                        again = again.min(left.max(STORE_RETRY));
                    }
                    tracing::warn!(profile = %self.slot.name, "cannot read the profile's state: {e}");
                    self.failed(now, e.class(), e.to_string());
                    self.wait(now + chrono_duration(again), Phase::Retrying)
                        .await;
                    continue;
                }
            };
            if self.plan.locked_out() {
                // Secrets may live in files or commands the stamp does not cover: read
                // them again to see whether the rejected credentials were replaced.
                self.reload();
            }
            let live = state.token.as_ref().filter(|t| t.is_live(now));
            self.due = live.map(|t| t.expires_at - chrono_duration(self.ahead));
            if let Some(t) = live {
                self.publish(t);
            }
            // This host never logs in: serve what another host stores, and look again
            // soon. Nothing failed, so nothing is counted or logged as a failure; and it
            // takes no lease, which would keep a replica that may log in standing by.
            if self.manager.profile().logins == Logins::Never {
                self.keeper.release().await;
                let phase = if live.is_some() {
                    Phase::Waiting
                } else {
                    Phase::Awaiting
                };
                self.wait(now + chrono_duration(MAX_NAP), phase).await;
                continue;
            }
            // Another replica holds the profile and refreshes it: serve what it stores.
            let manager = self.manager.clone();
            let standby = self.keeper.standby_until(&manager, live.is_some(), now);
            if let Some(until) = standby.await {
                self.wait(until, Phase::Standby).await;
                continue;
            }
            // A replica that may not replace the token passed a consumer's report on
            // through the shared database.
            if let (Some(t), Some(reported)) = (live, state.reported_dead)
                && t.obtained_at.timestamp_millis() == reported.timestamp_millis()
                && !self.slot.is_dead(t)
            {
                tracing::warn!(profile = %self.slot.name, "another replica reported the token and Dhan's profile endpoint calls it dead: replacing it");
                self.slot.report_dead(t);
            }
            // A consumer reported the token and Dhan's `profile` endpoint called it dead:
            // replace it now (Dhan's mint window and the backoff still apply).
            if live.is_some_and(|t| self.slot.is_dead(t)) {
                match self.plan.retry_at().filter(|at| *at > now) {
                    Some(at) => self.wait(at, Phase::Retrying).await,
                    None => {
                        self.reload();
                        if !self.refresh(None).await {
                            return;
                        }
                    }
                }
                continue;
            }
            // The manager's own guard: the profile is held while every login path it
            // has would send credentials Dhan rejected.
            let lockout = self.manager.lockout_hold(&state).await.unwrap_or_else(|e| {
                tracing::warn!(profile = %self.slot.name, "cannot read the lockouts: {e}");
                None
            });
            let (step, events) = {
                let status = self.slot.status.borrow();
                let seen = Seen {
                    profile: &self.slot.name,
                    state: &state,
                    lockout,
                    last_failure: status
                        .last_failure
                        .as_ref()
                        .map(|f| (f.class, f.message.as_str())),
                    jitter_draw: rand::rng().random_range(0.0..=1.0),
                    login_at: self.manager.profile().login_at,
                };
                self.plan.decide(&seen, now)
            };
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
        let obtained = async {
            match self.keeper.owner() {
                Some(owner) => manager.token_as(owner, &req, &progress).await,
                None => manager.token(&req, &progress).await,
            }
        };
        let result = tokio::select! {
            r = obtained => r,
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
                self.plan.succeeded();
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
                match self.plan.failed(class, e.retry_after(), current, now) {
                    Failed::HeldUntil(until) => {
                        let event =
                            Event::fatal(&self.slot.name, class, &e.to_string(), Some(until), now);
                        tokio::select! {
                            _ = self.notifier.send(event) => {}
                            _ = stopped(&mut self.stop) => return false,
                        }
                    }
                    Failed::RetryIn(wait) => tracing::warn!(
                        profile = %self.slot.name,
                        class = %class,
                        retry_in_secs = wait.as_secs_f64(),
                        "refresh failed: {e}"
                    ),
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
            .map(|p| {
                TokenManager::builder(p)
                    .http_client(self.http.clone())
                    .build()
            });
        match loaded {
            Ok(m) => {
                m.carry_over(&self.manager);
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
            _ = self.slot.wake.notified() => {}
            _ = stopped(&mut self.stop) => {}
        }
    }
}

/// Resolves once shutdown is asked for (or the daemon is gone).
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
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
