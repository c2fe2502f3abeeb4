//! The page engine: one loop that looks at the page until the caller's rule accepts what
//! it sees, or the step's deadline passes.
//!
//! Screens never wait on their own; this loop does, on the page's own changes (each look
//! resolves as soon as a DOM mutation changes the verdict), never on a fixed timer.

use std::time::Duration;

use chromiumoxide::Page;
use tokio::time::Instant;

use super::driver::{Deadline, Driver};
use super::error::{Artifacts, BrowserError, Step};
use super::screens::{self, Screen, Snapshot};

/// After a look fails (the document was being replaced), the next one comes this soon.
const RELOOK: Duration = Duration::from_millis(15);

/// What the engine shows the caller's rule after each look.
pub(super) enum View<'s> {
    /// The tokenId arrived.
    Captured,
    /// The page could not answer (often: it was navigating).
    Navigating,
    /// The page, and how long its verdict has held.
    Page(&'s Snapshot, Duration),
}

/// The engine's memory between looks: the last snapshot, and since when its verdict holds.
pub(super) struct Watch {
    last: Option<Snapshot>,
    same_since: Instant,
    /// Whether a changed verdict goes to the step log (not while a typed code is being
    /// handed to the page: that wait is part of the code's step).
    notes: bool,
}

impl Watch {
    pub(super) fn new() -> Self {
        Watch {
            last: None,
            same_since: Instant::now(),
            notes: true,
        }
    }

    pub(super) fn quiet() -> Self {
        Watch {
            notes: false,
            ..Watch::new()
        }
    }

    pub(super) fn last(&self) -> Option<&Snapshot> {
        self.last.as_ref()
    }

    /// What was just done changes the page: the next look must not wait for a change.
    pub(super) fn forget(&mut self) {
        self.last = None;
    }
}

impl Driver<'_> {
    /// The one wait loop: looks until `rule` returns something for a view, then gives
    /// that with the snapshot it was about. A view the rule passes over is waited out:
    /// the next look waits for the page to change, or comes at once after a failed one.
    pub(super) async fn wait_for<T>(
        &mut self,
        page: &Page,
        watch: &mut Watch,
        mut rule: impl FnMut(&Self, View<'_>) -> Option<T>,
    ) -> Result<(T, Option<Snapshot>), BrowserError> {
        loop {
            let snap = match self.look(page, watch.last.as_ref()).await? {
                Looked::Page(s) => s,
                looked => {
                    let view = match looked {
                        Looked::Captured => View::Captured,
                        _ => View::Navigating,
                    };
                    if let Some(t) = rule(self, view) {
                        return Ok((t, None));
                    }
                    self.pause(RELOOK).await;
                    continue;
                }
            };
            if watch.notes && self.verdict_changed(watch.last.as_ref(), &snap) {
                watch.same_since = Instant::now();
            }
            match rule(self, View::Page(&snap, watch.same_since.elapsed())) {
                Some(t) => return Ok((t, Some(snap))),
                None => watch.last = Some(snap),
            }
        }
    }

    /// One look, waiting up to the look interval for the page to differ from `last`;
    /// a captured tokenId ends it early.
    async fn look(&mut self, page: &Page, last: Option<&Snapshot>) -> Result<Looked, BrowserError> {
        if self.slot.get().is_some() {
            return Ok(Looked::Captured);
        }
        let dl = self.current_deadline();
        if Instant::now() >= dl.at {
            return Err(self.ran_out(dl, last));
        }
        let wait = self.profile.look_interval();
        let signature = last.map(|s| s.signature.as_str());
        let answer = tokio::select! {
            a = tokio::time::timeout_at(dl.at, screens::look(page, &self.profile, signature, wait)) => a,
            _ = self.slot.wait() => return Ok(Looked::Captured),
        };
        let mut snap = match answer {
            Err(_) => return Err(self.ran_out(dl, last)),
            Ok(Err(e)) => {
                tracing::trace!(error = %self.scrub(&e.to_string()), "look failed (navigating?)");
                return Ok(Looked::Failed);
            }
            Ok(Ok(s)) => s,
        };
        self.fold_dialogs(&mut snap);
        for bad in &snap.invalid {
            if self.warned.insert(bad.clone()) {
                tracing::warn!(candidate = %bad, "the browser rejects this candidate; fix the page profile");
                self.log.note(format!("invalid candidate skipped: `{bad}`"));
            }
        }
        Ok(Looked::Page(snap))
    }

    /// True when `snap`'s verdict differs from `last`'s; the new verdict and its
    /// reasons then go to the step log.
    fn verdict_changed(&mut self, last: Option<&Snapshot>, snap: &Snapshot) -> bool {
        if last.map(|l| &l.signature) == Some(&snap.signature) {
            return false;
        }
        let seen = self.scrub(&snap.describe());
        tracing::debug!(screen = %seen, "looked at the page");
        self.log.matched("screen", &seen);
        true
    }

    /// Dialogs dismissed since the last look: one saying an error text is the page's
    /// answer.
    fn fold_dialogs(&mut self, snap: &mut Snapshot) {
        for text in self.dialogs.take() {
            let lower = text.to_lowercase();
            let matches = |list: &[String]| list.iter().any(|t| lower.contains(&t.to_lowercase()));
            let expired = matches(&self.profile.expired_texts);
            let error = expired || matches(&self.profile.error_texts);
            let shown = self.scrub(&text);
            self.log
                .note(format!("dismissed a page dialog: \"{shown}\""));
            if error && snap.error.is_none() {
                snap.screen = if expired {
                    Screen::Expired
                } else {
                    Screen::Error
                };
                snap.reasons.push("a JavaScript dialog".into());
                snap.error = Some(screens::PageError {
                    message: text,
                    known: true,
                });
            }
        }
    }

    async fn pause(&self, d: Duration) {
        tokio::select! {
            _ = tokio::time::sleep(d) => {}
            _ = self.slot.wait() => {}
        }
    }

    fn ran_out(&mut self, dl: Deadline, last: Option<&Snapshot>) -> BrowserError {
        let seen = last
            .map(|s| self.scrub(&s.describe()))
            .unwrap_or_else(|| "the page never answered".to_string());
        self.log
            .note(format!("waited until {}; last look: {seen}", dl.limit));
        if self.step == Step::Capture && last.is_some_and(|s| s.screen == Screen::Unknown) {
            // The PIN screen is gone and nothing else came: the redirect simply did not.
            return BrowserError::Timeout {
                step: Step::Capture,
                limit: dl.limit,
                artifacts: Artifacts::None,
            };
        }
        BrowserError::ScreenUnknown {
            step: self.step,
            seen,
            limit: dl.limit,
            artifacts: Artifacts::None,
        }
    }
}

/// The outcome of one look.
enum Looked {
    Page(Snapshot),
    /// The page could not answer (often: it was navigating).
    Failed,
    /// The tokenId arrived.
    Captured,
}
