//! Answering the consent page's screens: the page chooses their order,
//! `screens::decide` the action, and this acts on it.

use std::time::Duration;

use tokio::time::Instant;

use super::dom;
use super::driver::Driver;
use super::engine::{View, Watch};
use super::error::{Artifacts, BrowserError, Step};
use super::login::PageReport;
use super::screens::{
    self, Action, Code, History, Patience, Screen, SincePress, Snapshot, Stop, Timing,
};
use super::traffic::{Mark, Traffic};
use super::typing::Pressed;

/// How long a doubtful screen must stay the same before the login gives up on it.
const SETTLE: Duration = Duration::from_millis(1200);

impl Driver<'_> {
    /// Looks until the page settles on a screen, types nothing, and says what it saw.
    pub(super) async fn first_screen(&mut self) -> Result<PageReport, BrowserError> {
        let page = self.page()?;
        let mut watch = Watch::new();
        let settled = |me: &Self, view: View<'_>| {
            let View::Page(snap, stable_for) = view else {
                return None;
            };
            let settled = match snap.screen {
                Screen::Navigating => false,
                // A script-drawn page may still be drawing: give it the settle time.
                Screen::Unknown | Screen::Unplaced | Screen::Ambiguous | Screen::Pending => {
                    stable_for >= SETTLE
                }
                _ => true,
            };
            settled.then(|| me.report(snap))
        };
        match self.wait_for(&page, &mut watch, settled).await {
            Ok((report, _)) => Ok(report),
            // Out of time: the last verdict is the answer.
            Err(e) => match watch.last() {
                Some(s) => Ok(self.report(s)),
                None => Err(e),
            },
        }
    }

    fn report(&self, s: &Snapshot) -> PageReport {
        let mut reasons: Vec<String> = s.reasons.iter().map(|r| self.scrub(r)).collect();
        if let Some(e) = &s.error {
            reasons.insert(0, format!("message: \"{}\"", self.scrub(&e.message)));
        }
        if let Some(b) = &s.submit {
            reasons.push(format!(
                "button: {}{}",
                self.scrub(&b.via),
                if b.enabled { "" } else { " (disabled)" }
            ));
        }
        PageReport {
            screen: s.screen.as_str().to_string(),
            reasons,
            artifacts: Artifacts::None,
        }
    }

    /// Look, decide, act, until the tokenId is captured.
    pub(super) async fn answer_screens(&mut self) -> Result<(), BrowserError> {
        let page = self.page()?;
        let patience = Patience {
            press_retry: self.profile.proceed_retry(),
            settle: SETTLE,
        };
        let mut history = History::default();
        let mut watch = Watch::new();
        // When the driver last pressed, when that screen's typing began, the page's own
        // count of the requests it had sent then, and whether the page took no notice
        // of the press.
        let mut pressed: Option<(Instant, Mark, u64, bool)> = None;
        loop {
            let decide = |me: &Self, view: View<'_>| match view {
                View::Captured => Some(None),
                View::Navigating => None,
                View::Page(snap, stable_for) => {
                    let timing = Timing {
                        stable_for,
                        since_press: pressed.map(|(at, typed_from, page, ignored)| SincePress {
                            elapsed: at.elapsed(),
                            sent: me.traffic.sent_since(typed_from) || snap.submits > page,
                            ignored,
                        }),
                    };
                    let action =
                        screens::decide(snap, &history, timing, patience, me.login.otp.is_some());
                    (!matches!(action, Action::Wait)).then_some(Some(action))
                }
            };
            let (Some(action), Some(snap)) = self.wait_for(&page, &mut watch, decide).await? else {
                return Ok(());
            };
            match action {
                Action::Wait => {}
                Action::TypeMobile => {
                    self.enter(Step::Mobile);
                    self.log.matched("screen", &self.scrub(&snap.describe()));
                    self.acted = Step::Mobile;
                    self.record("mobile").await;
                    self.arm(&page).await;
                    let before = (Traffic::mark(), snap.submits);
                    let settled = self.type_mobile(&page).await?;
                    let did = self.press(&page, Screen::Mobile, before, settled).await?;
                    history.mobile_submitted = true;
                    history.pressed = (did != Pressed::No).then_some(Screen::Mobile);
                    history.retried = false;
                    pressed = Some((Instant::now(), before.0, before.1, ignored(did)));
                }
                Action::RetryPress => {
                    self.log
                        .note("the screen did not move and the page sent nothing: pressing its button once more");
                    history.retried = true;
                    if let Some((_, from, page_before, _)) = pressed {
                        self.press(&page, snap.screen, (from, page_before), false)
                            .await?;
                    }
                }
                Action::Type(code) => {
                    self.enter(code.step());
                    // The verdict that led here belongs to this step's record.
                    self.log.matched("screen", &self.scrub(&snap.describe()));
                    self.acted = code.step();
                    self.record(code.as_str()).await;
                    let secret = self.code_for(code).await?;
                    self.arm(&page).await;
                    let before = (Traffic::mark(), snap.submits);
                    // From here on the code counts as given, whatever happens next: it
                    // is never typed a second time.
                    history.typed.push(code);
                    let settled = self.type_code(&snap, &secret).await?;
                    // Our own attribute on the group, for the looks that follow: it
                    // sets nothing of the page's in motion, so the typing's settle
                    // still stands for the press.
                    self.acting(dom::mark_filled(&page, "code", code.as_str()))
                        .await?;
                    let did = self.after_code(&page, code, before, settled).await?;
                    history.pressed = (did != Pressed::No).then_some(Screen::Pending);
                    history.retried = false;
                    pressed = Some((Instant::now(), before.0, before.1, ignored(did)));
                    if code == Code::Pin {
                        self.enter(Step::Capture);
                    }
                }
                Action::Stop(stop) => return Err(self.stopped(stop, &history)),
            }
            // What was just done changes the page: look again at once.
            watch.forget();
        }
    }

    /// The error for a stop of the decision table.
    fn stopped(&mut self, stop: Stop, history: &History) -> BrowserError {
        let step = self.acted;
        match stop {
            Stop::Rejected { message, known } if known || history.mobile_submitted => {
                tracing::info!(step = %step, "the login page shows an error");
                BrowserError::Rejected {
                    step,
                    message: self.scrub(&message),
                    artifacts: Artifacts::None,
                }
            }
            // Nothing was sent yet and the message is no known refusal: an alert-like
            // banner is no reason to hold the credentials.
            Stop::Rejected { message, .. } => BrowserError::Doubtful {
                step,
                seen: format!(
                    "a message before anything was typed: \"{}\"",
                    self.scrub(&message)
                ),
                artifacts: Artifacts::None,
            },
            Stop::Expired(message) => BrowserError::ConsentExpired {
                step,
                message: self.scrub(&message),
                artifacts: Artifacts::None,
            },
            Stop::CameBack(code) => BrowserError::Rejected {
                step: code.step(),
                message: format!(
                    "the {} screen was shown again after the code was submitted, without a message; not typing it again",
                    code.as_str().to_uppercase()
                ),
                artifacts: Artifacts::None,
            },
            Stop::Doubt(seen) => {
                let seen = self.scrub(&seen);
                self.log.note(format!("nothing typed: {seen}"));
                BrowserError::Doubtful {
                    step: self.step,
                    seen,
                    artifacts: Artifacts::None,
                }
            }
            Stop::NeedsOtp => BrowserError::NeedsOtp {
                step: Step::Otp,
                artifacts: Artifacts::None,
            },
        }
    }
}

fn ignored(pressed: Pressed) -> bool {
    matches!(pressed, Pressed::Yes { ignored: true })
}
