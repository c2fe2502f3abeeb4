//! The state of one browser login, shared by the files that drive it: the page, the
//! step in progress and its deadline, the step log, and what to type.

use std::collections::HashSet;
use std::fmt::Display;
use std::sync::Arc;

use chromiumoxide::Page;
use secrecy::SecretString;
use tokio::time::Instant;

use super::artifacts::{Recorder, StepLog};
use super::capture::Slot;
use super::dialogs::Dialogs;
use super::error::{Artifacts, BrowserError, Limit, Step};
use super::login::OtpSource;
use super::scrub::{SharedScrubber, scrub_with};
use super::selectors::SelectorProfile;
use super::traffic::Traffic;
use crate::config::BrowserSettings;

#[derive(Debug, Clone, Copy)]
pub(super) struct Deadline {
    pub(super) at: Instant,
    pub(super) limit: Limit,
}

/// What a run of the browser is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Job {
    /// Log in and capture the tokenId.
    Login,
    /// Open the page, say which screen it shows, type nothing (`dhan-login doctor`).
    Inspect,
}

pub(super) struct LoginRefs<'a> {
    pub(super) consent_url: url::Url,
    pub(super) redirect_url: Option<url::Url>,
    pub(super) totp: Option<&'a crate::totp::TotpGenerator>,
    pub(super) otp: Option<&'a dyn OtpSource>,
    pub(super) progress: &'a dyn crate::progress::Progress,
}

pub(super) struct Driver<'a> {
    pub(super) settings: &'a BrowserSettings,
    pub(super) profile: Arc<SelectorProfile>,
    pub(super) scrubber: SharedScrubber,
    pub(super) log: StepLog,
    pub(super) recorder: Option<Recorder>,
    pub(super) slot: Slot,
    pub(super) traffic: Traffic,
    pub(super) dialogs: Dialogs,
    pub(super) page: Option<Page>,
    pub(super) overall_at: Instant,
    pub(super) login_mobile: SecretString,
    pub(super) login_pin: SecretString,
    pub(super) login: LoginRefs<'a>,
    /// Invalid candidates already warned about.
    pub(super) warned: HashSet<String>,
    /// The step in progress (for progress reports and timeouts).
    pub(super) step: Step,
    /// The last step that typed or clicked: the page's errors answer that one.
    pub(super) acted: Step,
    /// The deadline of the step in progress.
    pub(super) step_at: Option<Deadline>,
    pub(super) job: Job,
}

impl Driver<'_> {
    /// Ends the step in progress and starts `step` with a fresh budget.
    pub(super) fn enter(&mut self, step: Step) {
        if self.step_at.is_some() {
            if self.step == step {
                return;
            }
            let took = self.log.finish(Ok(()));
            self.login.progress.step_finished(self.step.as_str(), took);
        }
        self.step = step;
        self.login.progress.step_started(step.as_str());
        self.log.start(step);
        self.step_at = Some(self.deadline());
    }

    pub(super) fn scrub(&self, text: &str) -> String {
        scrub_with(&self.scrubber, text)
    }

    /// A fresh step budget, never past the overall deadline.
    pub(super) fn deadline(&self) -> Deadline {
        let step_at = Instant::now() + self.settings.step_timeout;
        if step_at < self.overall_at {
            Deadline {
                at: step_at,
                limit: Limit::Step(self.settings.step_timeout),
            }
        } else {
            Deadline {
                at: self.overall_at,
                limit: Limit::Overall(self.settings.overall_timeout),
            }
        }
    }

    pub(super) fn current_deadline(&self) -> Deadline {
        self.step_at.unwrap_or_else(|| self.deadline())
    }

    pub(super) fn page(&self) -> Result<Page, BrowserError> {
        self.page
            .clone()
            .ok_or_else(|| BrowserError::driver(self.step, "no page is open"))
    }

    /// Runs `fut` before the step's deadline; its error becomes a driver error.
    pub(super) async fn within<T, E: Display>(
        &self,
        fut: impl Future<Output = Result<T, E>>,
    ) -> Result<T, BrowserError> {
        let dl = self.current_deadline();
        match tokio::time::timeout_at(dl.at, fut).await {
            Err(_) => Err(BrowserError::Timeout {
                step: self.step,
                limit: dl.limit,
                artifacts: Artifacts::None,
            }),
            Ok(Err(e)) => Err(BrowserError::driver(self.step, self.scrub(&e.to_string()))),
            Ok(Ok(v)) => Ok(v),
        }
    }

    /// [`Driver::within`], ended early (None) by a captured tokenId: a page may leave for
    /// the redirect in the middle of an action (it submits on a key event), and Chromium
    /// then never acknowledges that action.
    pub(super) async fn acting<T, E: Display>(
        &self,
        fut: impl Future<Output = Result<T, E>>,
    ) -> Result<Option<T>, BrowserError> {
        tokio::select! {
            r = self.within(fut) => r.map(Some),
            _ = self.slot.wait() => Ok(None),
        }
    }

    /// Saves the screen just reached (`dhan-login record`).
    pub(super) async fn record(&mut self, screen: &str) {
        let Some(page) = self.page.clone() else {
            return;
        };
        let matched = self.log.matches_of(self.step);
        if let Some(rec) = self.recorder.as_mut() {
            rec.screen(&page, screen, &matched, &self.scrubber).await;
        }
    }
}
