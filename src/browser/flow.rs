//! The consent login: launch, open the page, then one loop — look at the page, name the
//! screen shown, act on it — until the tokenId is captured or the deadline passes.
//!
//! Screens never wait on their own; the loop does, on the page's own changes (each look
//! resolves as soon as a DOM mutation changes the verdict), never on a fixed timer. The
//! page chooses the order of its screens; `screens::decide` chooses the action.

use std::collections::HashSet;
use std::fmt::Display;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chromiumoxide::Page;
use chromiumoxide::cdp::browser_protocol::page::{
    AddScriptToEvaluateOnNewDocumentParams, NavigateParams,
};
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;

use super::artifacts::{Recorder, StepLog, save_failure};
use super::capture::{self, Slot};
use super::dialogs::{self, Dialogs};
use super::dom;
use super::error::{Artifacts, BrowserError, Limit, Step};
use super::launch;
use super::quiet::Muffler;
use super::screens::{self, Action, Code, History, Patience, Screen, Snapshot, Stop, Timing};
use super::selectors::SelectorProfile;
use super::session::{Ending, Session, Started};
use super::traffic::{self, Traffic};
use super::{ConsentLogin, OtpSource, PageReport, SharedScrubber, scrub_with};
use crate::config::BrowserSettings;

/// Dhan's PIN has six digits.
const PIN_DIGITS: usize = 6;

/// How long a doubtful screen must stay the same before the login gives up on it.
const SETTLE: Duration = Duration::from_millis(1200);

/// After a look fails (the document was being replaced), the next one comes this soon.
const RELOOK: Duration = Duration::from_millis(15);

#[derive(Debug, Clone, Copy)]
struct Deadline {
    at: Instant,
    limit: Limit,
}

/// What a run of the browser is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Job {
    /// Log in and capture the tokenId.
    Login,
    /// Open the page, say which screen it shows, type nothing (`dhan-login doctor`).
    Inspect,
}

pub(super) enum Outcome {
    TokenId(SecretString),
    Report(PageReport),
}

/// Logs in, in the browser `started_ahead` or else one launched here. On success the
/// browser is still being ended when this returns: the caller awaits the `Ending`.
pub(super) async fn run(
    settings: &BrowserSettings,
    login: ConsentLogin<'_>,
    muffler: Muffler,
    job: Job,
    started_ahead: Option<Started>,
) -> Result<(Outcome, Ending), BrowserError> {
    let started = Instant::now();
    let (mobile, pin) = match job {
        Job::Login => (
            digits("mobile", login.mobile, None)?,
            digits("pin", login.pin, Some(PIN_DIGITS))?,
        ),
        Job::Inspect => (SecretString::from(""), SecretString::from("")),
    };
    let profile = Arc::new(SelectorProfile::load(settings.selectors.as_deref())?);
    let recorder = match login.record_dir {
        Some(dir) => Some(Recorder::new(dir).map_err(|e| BrowserError::Input {
            field: "record_dir",
            message: format!("cannot create {}: {e}", dir.display()),
        })?),
        None => None,
    };

    let mut scrubber = login.scrubber;
    for secret in [&mobile, &pin] {
        if !secret.expose_secret().is_empty() {
            scrubber.add(secret.expose_secret());
        }
    }
    if let Some((_, id)) = login
        .consent_url
        .query_pairs()
        .find(|(k, _)| k.eq_ignore_ascii_case("consentAppId"))
    {
        scrubber.add(&id);
    }
    let scrubber: SharedScrubber = match &started_ahead {
        Some(ahead) => {
            *ahead.scrubber.lock().unwrap_or_else(|p| p.into_inner()) = scrubber;
            ahead.scrubber.clone()
        }
        None => Arc::new(Mutex::new(scrubber)),
    };

    let mut log = StepLog::new();
    let progress = login.progress;
    progress.step_started(Step::Launch.as_str());
    log.start(Step::Launch);
    let overall_at = started + settings.overall_timeout;
    let launch_timeout = settings
        .step_timeout
        .min(overall_at.saturating_duration_since(Instant::now()));
    let (launched, ahead_took) = match started_ahead {
        Some(ahead) => (ahead.session, Some(ahead.took)),
        None => match launch::find_executable(settings, &|k| std::env::var_os(k)) {
            Ok(found) => (
                Session::launch(settings, &found, launch_timeout, muffler, scrubber.clone()).await,
                None,
            ),
            Err(e) => (Err(e), None),
        },
    };
    if let Some(took) = ahead_took {
        log.note(format!("started ahead in {} ms", took.as_millis()));
    }
    let took = log.finish(match &launched {
        Ok(_) => Ok(()),
        Err(e) => Err(e.to_string()),
    });
    progress.step_finished(Step::Launch.as_str(), ahead_took.unwrap_or(took));
    let mut session = launched?;

    let mut driver = Driver {
        settings,
        profile,
        scrubber: scrubber.clone(),
        log,
        recorder,
        slot: Slot::default(),
        traffic: Traffic::default(),
        dialogs: Dialogs::default(),
        page: None,
        overall_at,
        login_mobile: mobile,
        login_pin: pin,
        login: LoginRefs {
            consent_url: login.consent_url,
            redirect_url: login.redirect_url.cloned(),
            totp: login.totp,
            otp: login.otp,
            progress,
        },
        warned: HashSet::new(),
        step: Step::Open,
        acted: Step::Open,
        step_at: None,
        job,
    };
    let result = driver.steps(&mut session).await;

    let result = match result {
        Ok(Outcome::Report(mut report)) => {
            if report.screen != Screen::Mobile.as_str() {
                // What a person needs to see why: the same files a failed login leaves.
                let text = format!("doctor: the consent page shows `{}`", report.screen);
                report.artifacts = save_failure(
                    &settings.artifacts_dir,
                    driver.page.as_ref(),
                    Step::Open,
                    &driver.log,
                    &text,
                    &scrubber,
                )
                .await;
            }
            Ok(Outcome::Report(report))
        }
        Ok(token) => Ok(token),
        Err(mut e) => {
            let text = scrub_with(&scrubber, &e.to_string());
            let step = e.step().unwrap_or(driver.step);
            let saved = save_failure(
                &settings.artifacts_dir,
                driver.page.as_ref(),
                step,
                &driver.log,
                &text,
                &scrubber,
            )
            .await;
            if let Artifacts::Failed(why) = &saved {
                tracing::warn!(reason = %why, "failure artifacts could not be saved");
            }
            e.set_artifacts(saved);
            Err(e)
        }
    };

    driver.page = None;
    // A failure ends the browser before returning; success hands the end to the caller,
    // who has its own request to make meanwhile (consume-consent).
    let result = match result {
        Ok(token) => {
            driver
                .log
                .note("Chromium is being ended while the caller goes on");
            Ok((token, session.end_in_background()))
        }
        Err(e) => {
            progress.step_started(Step::Close.as_str());
            driver.log.start(Step::Close);
            session.close().await;
            let took = driver.log.finish(Ok(()));
            progress.step_finished(Step::Close.as_str(), took);
            Err(e)
        }
    };
    if let Some(rec) = &driver.recorder {
        let outcome = match &result {
            Ok((Outcome::TokenId(_), _)) => "tokenId captured".to_string(),
            Ok((Outcome::Report(r), _)) => format!("the page shows `{}`", r.screen),
            Err(e) => scrub_with(&scrubber, &e.to_string()),
        };
        rec.finish(&driver.log, &outcome, &scrubber);
    }
    tracing::debug!(
        ok = result.is_ok(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "browser login finished"
    );
    result
}

/// The digits of a secret, or an error that names the field but not the value.
fn digits(
    field: &'static str,
    secret: &SecretString,
    len: Option<usize>,
) -> Result<SecretString, BrowserError> {
    let cleaned: String = secret
        .expose_secret()
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect();
    let bad = |message: String| BrowserError::Input { field, message };
    if cleaned.is_empty() || !cleaned.chars().all(|c| c.is_ascii_digit()) {
        return Err(bad("must be digits only (the value is not shown)".into()));
    }
    if let Some(n) = len
        && cleaned.chars().count() != n
    {
        return Err(bad(format!("must be {n} digits (the value is not shown)")));
    }
    Ok(SecretString::from(cleaned))
}

struct LoginRefs<'a> {
    consent_url: url::Url,
    redirect_url: Option<url::Url>,
    totp: Option<&'a crate::totp::TotpGenerator>,
    otp: Option<&'a dyn OtpSource>,
    progress: &'a dyn crate::progress::Progress,
}

struct Driver<'a> {
    settings: &'a BrowserSettings,
    profile: Arc<SelectorProfile>,
    scrubber: SharedScrubber,
    log: StepLog,
    recorder: Option<Recorder>,
    slot: Slot,
    traffic: Traffic,
    dialogs: Dialogs,
    page: Option<Page>,
    overall_at: Instant,
    login_mobile: SecretString,
    login_pin: SecretString,
    login: LoginRefs<'a>,
    /// Invalid candidates already warned about.
    warned: HashSet<String>,
    /// The step in progress (for progress reports and timeouts).
    step: Step,
    /// The last step that typed or clicked: the page's errors answer that one.
    acted: Step,
    /// The deadline of the step in progress.
    step_at: Option<Deadline>,
    job: Job,
}

impl Driver<'_> {
    async fn steps(&mut self, session: &mut Session) -> Result<Outcome, BrowserError> {
        self.enter(Step::Open);
        let result = match self.open(session).await {
            Ok(()) => match self.job {
                Job::Login => self.answer_screens().await.map(|()| None),
                Job::Inspect => self.first_screen().await.map(Some),
            },
            Err(e) => Err(e),
        };
        let took = self.log.finish(match &result {
            Ok(_) => Ok(()),
            Err(e) => Err(self.scrub(&e.to_string())),
        });
        self.login.progress.step_finished(self.step.as_str(), took);
        if let Some(report) = result? {
            return Ok(Outcome::Report(report));
        }
        self.log.note("tokenId captured from the redirect");
        self.slot
            .get()
            .map(Outcome::TokenId)
            .ok_or_else(|| BrowserError::driver(Step::Capture, "the tokenId went missing"))
    }

    /// Looks until the page settles on a screen, types nothing, and says what it saw.
    async fn first_screen(&mut self) -> Result<PageReport, BrowserError> {
        let page = self.page()?;
        let mut last: Option<Snapshot> = None;
        let mut same_since = Instant::now();
        loop {
            let snap = match self.look(&page, last.as_ref()).await {
                Ok(Looked::Page(s)) => s,
                Ok(Looked::Failed) | Ok(Looked::Captured) => {
                    self.pause(RELOOK).await;
                    continue;
                }
                // Out of time: the last verdict is the answer.
                Err(e) => {
                    return match last {
                        Some(s) => Ok(self.report(&s)),
                        None => Err(e),
                    };
                }
            };
            if self.verdict_changed(last.as_ref(), &snap) {
                same_since = Instant::now();
            }
            let settled = match snap.screen {
                Screen::Navigating => false,
                // A script-drawn page may still be drawing: give it the settle time.
                Screen::Unknown | Screen::Unplaced | Screen::Ambiguous | Screen::Pending => {
                    same_since.elapsed() >= SETTLE
                }
                _ => true,
            };
            if settled {
                return Ok(self.report(&snap));
            }
            last = Some(snap);
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

    /// Ends the step in progress and starts `step` with a fresh budget.
    fn enter(&mut self, step: Step) {
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

    fn scrub(&self, text: &str) -> String {
        scrub_with(&self.scrubber, text)
    }

    /// A fresh step budget, never past the overall deadline.
    fn deadline(&self) -> Deadline {
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

    fn current_deadline(&self) -> Deadline {
        self.step_at.unwrap_or_else(|| self.deadline())
    }

    fn page(&self) -> Result<Page, BrowserError> {
        self.page
            .clone()
            .ok_or_else(|| BrowserError::driver(self.step, "no page is open"))
    }

    /// Runs `fut` before the step's deadline; its error becomes a driver error.
    async fn within<T, E: Display>(
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

    async fn open(&mut self, session: &mut Session) -> Result<(), BrowserError> {
        let page = self.within(session.blank_page()).await?;
        self.page = Some(page.clone());
        let main_frame = self
            .within(page.mainframe())
            .await?
            .ok_or_else(|| BrowserError::driver(Step::Open, "the new tab has no main frame"))?;
        let (traffic, task) = self
            .within(traffic::watch(&page, main_frame.clone()))
            .await?;
        session.own_task(task);
        self.traffic = traffic;
        let task = self
            .within(capture::arm(
                &page,
                capture::Capture {
                    redirect: self.login.redirect_url.clone(),
                    main_frame,
                    block_resources: self.settings.block_resources,
                    block_trackers: self.settings.block_trackers,
                },
                self.scrubber.clone(),
                self.slot.clone(),
            ))
            .await?;
        session.own_task(task);
        let (dialogs, task) = self.within(dialogs::dismiss_all(&page)).await?;
        session.own_task(task);
        self.dialogs = dialogs;
        self.within(page.execute(AddScriptToEvaluateOnNewDocumentParams::new(
            dom::SUBMIT_WATCH,
        )))
        .await?;

        let nav = self
            .within(page.execute(NavigateParams::new(self.login.consent_url.as_str())))
            .await?;
        if let Some(err) = nav.result.error_text.as_deref().filter(|e| !e.is_empty()) {
            return Err(BrowserError::Navigation {
                step: Step::Open,
                message: self.scrub(err),
                artifacts: Artifacts::None,
            });
        }
        Ok(())
    }

    /// The loop: look, decide, act, until the tokenId is captured.
    async fn answer_screens(&mut self) -> Result<(), BrowserError> {
        let page = self.page()?;
        let patience = Patience {
            proceed_retry: self.profile.proceed_retry(),
            settle: SETTLE,
        };
        let mut history = History::default();
        let mut last: Option<Snapshot> = None;
        let mut same_since = Instant::now();
        // When the mobile screen was submitted, with the request counts at that moment.
        let mut mobile_sent: Option<(Instant, u64, u64)> = None;
        loop {
            let snap = match self.look(&page, last.as_ref()).await? {
                Looked::Captured => return Ok(()),
                Looked::Failed => {
                    self.pause(RELOOK).await;
                    continue;
                }
                Looked::Page(s) => s,
            };
            if self.verdict_changed(last.as_ref(), &snap) {
                same_since = Instant::now();
            }
            let timing = Timing {
                stable_for: same_since.elapsed(),
                since_mobile_submit: mobile_sent.map(|(at, traffic, page)| {
                    let sent = self.traffic.count() > traffic || snap.submits > page;
                    (at.elapsed(), sent)
                }),
            };
            let action =
                screens::decide(&snap, &history, timing, patience, self.login.otp.is_some());
            match action {
                Action::Wait => {}
                Action::TypeMobile => {
                    self.enter(Step::Mobile);
                    self.log.matched("screen", &self.scrub(&snap.describe()));
                    self.acted = Step::Mobile;
                    self.record("mobile").await;
                    let before = (self.traffic.count(), snap.submits);
                    self.type_mobile(&page).await?;
                    self.submit(&page, &snap).await?;
                    history.mobile_submitted = true;
                    mobile_sent = Some((Instant::now(), before.0, before.1));
                }
                Action::RetryProceed => {
                    self.log
                        .note("the mobile screen did not move and the page sent nothing: pressing its button once more");
                    history.mobile_retried = true;
                    self.submit(&page, &snap).await?;
                }
                Action::Type(code) => {
                    self.enter(code.step());
                    // The verdict that led here belongs to this step's record.
                    self.log.matched("screen", &self.scrub(&snap.describe()));
                    self.acted = code.step();
                    self.record(code.as_str()).await;
                    let secret = self.code_for(code).await?;
                    let before = (self.traffic.count(), snap.submits);
                    // From here on the code counts as given, whatever happens next: it
                    // is never typed a second time.
                    history.typed.push(code);
                    self.type_code(&snap, &secret).await?;
                    self.within(dom::mark_filled(&page, "code", code.as_str()))
                        .await?;
                    self.after_code(&page, code, before).await?;
                    if code == Code::Pin {
                        self.enter(Step::Capture);
                    }
                }
                Action::Stop(stop) => return Err(self.stopped(stop, &history)),
            }
            last = Some(snap);
            if !matches!(action, Action::Wait) {
                // What was just done changes the page: look again at once.
                last = None;
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

    async fn code_for(&mut self, code: Code) -> Result<SecretString, BrowserError> {
        let secret = match code {
            Code::Pin => self.login_pin.clone(),
            Code::Totp => {
                // Only now: the code must be as fresh as possible when it is typed.
                let Some(totp) = self.login.totp else {
                    return Err(BrowserError::Input {
                        field: "totp_secret",
                        message: "the login page asks for a TOTP and none is configured (set totp_secret)".into(),
                    });
                };
                let overall = Deadline {
                    at: self.overall_at,
                    limit: Limit::Overall(self.settings.overall_timeout),
                };
                let code = tokio::time::timeout_at(overall.at, totp.next_code())
                    .await
                    .map_err(|_| BrowserError::Timeout {
                        step: Step::Totp,
                        limit: overall.limit,
                        artifacts: Artifacts::None,
                    })?;
                // The generator may have waited for a fresh step: the budget starts again.
                self.step_at = Some(self.deadline());
                code
            }
            Code::Otp => {
                let Some(source) = self.login.otp else {
                    return Err(BrowserError::NeedsOtp {
                        step: Step::Otp,
                        artifacts: Artifacts::None,
                    });
                };
                let got = self.within(source.code()).await?;
                let got = digits("otp", &got, Some(6))?;
                self.step_at = Some(self.deadline());
                got
            }
        };
        if let Ok(mut s) = self.scrubber.lock() {
            s.add(secret.expose_secret());
        }
        Ok(secret)
    }

    async fn type_mobile(&mut self, page: &Page) -> Result<(), BrowserError> {
        let mobile = self.login_mobile.clone();
        self.type_field("mobile", &mobile).await?;
        let want = mobile.expose_secret().len();
        let landed = self.within(dom::value_len(page, "mobile")).await?;
        if landed != Some(want) {
            return Err(BrowserError::driver(
                Step::Mobile,
                format!(
                    "the mobile number did not land in its field ({} of {want} digits): the page did not take the key events",
                    landed.unwrap_or(0)
                ),
            ));
        }
        Ok(())
    }

    async fn type_code(
        &mut self,
        snap: &Snapshot,
        secret: &SecretString,
    ) -> Result<(), BrowserError> {
        let boxes = snap.group.as_ref().is_some_and(|g| g.count > 1);
        if boxes {
            self.type_boxes("code", secret).await
        } else {
            self.type_field("code", secret).await
        }
    }

    /// Presses the screen's own button, or Enter where it has none.
    async fn submit(&mut self, page: &Page, snap: &Snapshot) -> Result<(), BrowserError> {
        match &snap.submit {
            Some(b) if b.enabled => {
                let via = self.scrub(&b.via);
                match self.within(dom::click(page, "submit")).await {
                    Ok(()) => self
                        .log
                        .note(format!("clicked the screen's button ({via})")),
                    // Once only, even if the click reports an error: a second submission
                    // of the same code may count as a wrong attempt.
                    Err(e) => {
                        let msg = self.scrub(&e.to_string());
                        self.log.note(format!("clicking the button failed: {msg}"));
                    }
                }
            }
            Some(_) => self
                .log
                .note("the screen's button is disabled: waiting for the page"),
            None => {
                self.within(dom::press_enter(page)).await?;
                self.log.note("no button on this screen: pressed Enter");
            }
        }
        Ok(())
    }

    /// After the last digit: lets a page that submits by itself go first; presses the
    /// screen's button (once) only when the page sent nothing within the grace.
    async fn after_code(
        &mut self,
        page: &Page,
        code: Code,
        (traffic_before, page_before): (u64, u64),
    ) -> Result<(), BrowserError> {
        let grace_until = Instant::now() + self.profile.submit_grace();
        let mut last: Option<Snapshot> = None;
        loop {
            if self.traffic.count() > traffic_before {
                self.log.note("the page submitted by itself");
                return Ok(());
            }
            let snap = match self.look(page, last.as_ref()).await? {
                Looked::Captured => return Ok(()),
                Looked::Failed => {
                    // The document is being replaced: the page has submitted.
                    self.log.note("the page submitted by itself (navigating)");
                    return Ok(());
                }
                Looked::Page(s) => s,
            };
            if snap.submits > page_before || self.traffic.count() > traffic_before {
                self.log.note("the page submitted by itself");
                return Ok(());
            }
            match snap.screen {
                Screen::Error | Screen::Expired => return Ok(()),
                // Our filled group, untouched so far.
                Screen::Pending => {}
                _ => {
                    self.log.note(format!(
                        "the page moved on from the {} screen by itself",
                        code.as_str()
                    ));
                    return Ok(());
                }
            }
            if Instant::now() >= grace_until {
                return self.submit(page, &snap).await;
            }
            last = Some(snap);
        }
    }

    /// Types `secret` into one field, focused first, key by key.
    async fn type_field(
        &mut self,
        key: &'static str,
        secret: &SecretString,
    ) -> Result<(), BrowserError> {
        let page = self.page()?;
        let focused = self.within(dom::focus(&page, key, 0)).await?;
        if !focused.ok {
            return Err(BrowserError::driver(
                self.step,
                format!("could not focus the {key} field"),
            ));
        }
        for c in secret.expose_secret().chars() {
            self.within(dom::press_digit(&page, c)).await?;
        }
        Ok(())
    }

    /// Types one digit per box, focusing each box first and checking that the previous
    /// digits landed (pages that ignore synthetic keys are caught here, not by a
    /// timeout three screens later).
    async fn type_boxes(
        &mut self,
        key: &'static str,
        secret: &SecretString,
    ) -> Result<(), BrowserError> {
        let page = self.page()?;
        for (i, c) in secret.expose_secret().chars().enumerate() {
            let focused = self.within(dom::focus(&page, key, i)).await?;
            if !focused.ok {
                return Err(BrowserError::driver(
                    self.step,
                    format!("could not focus box {} of the {key} group", i + 1),
                ));
            }
            if focused.filled_before != i {
                return Err(BrowserError::driver(
                    self.step,
                    format!(
                        "only {} of the first {i} boxes of the {key} group hold a digit: the page did not take the key events",
                        focused.filled_before
                    ),
                ));
            }
            self.within(dom::press_digit(&page, c)).await?;
        }
        Ok(())
    }

    /// Saves the screen just reached (`dhan-login record`).
    async fn record(&mut self, screen: &str) {
        let Some(page) = self.page.clone() else {
            return;
        };
        let matched = self.log.matches_of(self.step);
        if let Some(rec) = self.recorder.as_mut() {
            rec.screen(&page, screen, &matched, &self.scrubber).await;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_are_checked_without_showing_them() {
        let s = |v: &str| SecretString::from(v.to_string());
        assert!(digits("pin", &s("135790"), Some(6)).is_ok());
        assert_eq!(
            digits("mobile", &s("99999 00042"), None)
                .unwrap()
                .expose_secret(),
            "9999900042"
        );
        let e = digits("pin", &s("13579x"), Some(6))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("pin:") && !e.contains("13579"), "{e}");
        let e = digits("pin", &s("1357"), Some(6)).unwrap_err().to_string();
        assert!(!e.contains("1357"), "{e}");
    }
}
