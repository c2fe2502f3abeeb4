//! The consent login, screen by screen.
//!
//! Each step acts, then waits for what only the next screen has or for the error the
//! page may show instead; nothing sleeps for a fixed time. The page is probed at a short
//! interval (one script evaluates all candidates and error watches per round trip), so
//! server-rendered and script-rendered variants are handled alike.

use std::collections::HashSet;
use std::fmt::Display;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chromiumoxide::Page;
use chromiumoxide::cdp::browser_protocol::page::NavigateParams;
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;

use super::artifacts::{Recorder, StepLog, save_failure};
use super::capture::{self, Slot};
use super::dialogs::{self, Dialogs};
use super::dom::{self, ErrorWatch, PageError, Probe, Target};
use super::error::{Artifacts, BrowserError, Limit, Step};
use super::launch;
use super::quiet::Muffler;
use super::selectors::SelectorProfile;
use super::session::{Ending, Session, Started};
use super::traffic::{self, Traffic};
use super::{ConsentLogin, SharedScrubber, scrub_with};
use crate::config::BrowserSettings;

/// Dhan's TOTP and PIN both have six digits, one box each.
const TOTP_DIGITS: usize = 6;
const PIN_DIGITS: usize = 6;

#[derive(Debug, Clone, Copy)]
struct Deadline {
    at: Instant,
    limit: Limit,
}

/// One look at the page.
enum Probed {
    Page(Probe),
    /// The page could not answer this time (often: it was navigating). Scrubbed.
    Failed(String),
    /// The deadline passed while waiting for the answer.
    OutOfTime,
}

/// What the error names when a wait runs out.
struct Missing {
    what: &'static str,
    tried: Vec<String>,
}

impl Missing {
    fn of(what: &'static str, lists: &[&[String]]) -> Self {
        Missing {
            what,
            tried: lists.iter().flat_map(|l| l.iter().cloned()).collect(),
        }
    }
}

/// Logs in, in the browser `started_ahead` or else one launched here. On success the
/// browser is still being ended when this returns: the caller awaits the `Ending`.
pub(super) async fn run(
    settings: &BrowserSettings,
    login: ConsentLogin<'_>,
    muffler: Muffler,
    started_ahead: Option<Started>,
) -> Result<(SecretString, Ending), BrowserError> {
    let started = Instant::now();
    let mobile = digits("mobile", login.mobile, None)?;
    let pin = digits("pin", login.pin, Some(PIN_DIGITS))?;
    let profile = Arc::new(SelectorProfile::load(settings.selectors.as_deref())?);
    let recorder = match login.record_dir {
        Some(dir) => Some(Recorder::new(dir).map_err(|e| BrowserError::Input {
            field: "record_dir",
            message: format!("cannot create {}: {e}", dir.display()),
        })?),
        None => None,
    };

    let mut scrubber = login.scrubber;
    scrubber.add(mobile.expose_secret());
    scrubber.add(pin.expose_secret());
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
            progress,
        },
        warned: HashSet::new(),
        step: Step::Open,
    };
    let result = driver.steps(&mut session).await;

    let result = match result {
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
            Ok(_) => "tokenId captured".to_string(),
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
    totp: &'a crate::totp::TotpGenerator,
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
    /// The step in progress, for errors raised outside a step's own code.
    step: Step,
}

impl Driver<'_> {
    async fn steps(&mut self, session: &mut Session) -> Result<SecretString, BrowserError> {
        self.run_step(Step::Open, session).await?;
        self.run_step(Step::Mobile, session).await?;
        self.run_step(Step::Totp, session).await?;
        self.run_step(Step::Pin, session).await?;
        self.run_step(Step::Capture, session).await?;
        self.slot
            .get()
            .ok_or_else(|| BrowserError::driver(Step::Capture, "the tokenId went missing"))
    }

    async fn run_step(&mut self, step: Step, session: &mut Session) -> Result<(), BrowserError> {
        self.step = step;
        self.login.progress.step_started(step.as_str());
        self.log.start(step);
        let result = match step {
            Step::Open => self.open(session).await,
            Step::Mobile => self.mobile().await,
            Step::Totp => self.totp().await,
            Step::Pin => self.pin().await,
            Step::Capture => self.capture().await,
            Step::Launch | Step::Close => Ok(()),
        };
        let took = self.log.finish(match &result {
            Ok(()) => Ok(()),
            Err(e) => Err(self.scrub(&e.to_string())),
        });
        self.login.progress.step_finished(step.as_str(), took);
        result
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

    fn page(&self) -> Result<Page, BrowserError> {
        self.page
            .clone()
            .ok_or_else(|| BrowserError::driver(self.step, "no page is open"))
    }

    /// Runs `fut` before `dl`; its error becomes a driver error of the current step.
    async fn within<T, E: Display>(
        &self,
        dl: Deadline,
        fut: impl Future<Output = Result<T, E>>,
    ) -> Result<T, BrowserError> {
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

    /// The page's own message, scrubbed, as a fatal error of `step`.
    fn page_error(&self, step: Step, e: PageError) -> BrowserError {
        let message = self.scrub(&e.message);
        tracing::info!(step = %step, via = %e.via, "the login page shows an error");
        if e.expired {
            BrowserError::ConsentExpired {
                step,
                message,
                artifacts: Artifacts::None,
            }
        } else {
            BrowserError::Rejected {
                step,
                message,
                artifacts: Artifacts::None,
            }
        }
    }

    /// Probes once, folding in the texts of dialogs dismissed since the last probe.
    async fn probe_once(&mut self, page: &Page, targets: &[Target<'_>], dl: Deadline) -> Probed {
        let errors = ErrorWatch {
            selectors: &self.profile.error,
            texts: &self.profile.error_texts,
            expired: &self.profile.expired_texts,
        };
        let answer = match tokio::time::timeout_at(dl.at, dom::probe(page, targets, errors)).await {
            Err(_) => return Probed::OutOfTime,
            Ok(a) => a,
        };
        match answer {
            Ok(mut p) => {
                for text in self.dialogs.take() {
                    let lower = text.to_lowercase();
                    let matches =
                        |list: &[String]| list.iter().any(|t| lower.contains(&t.to_lowercase()));
                    let expired = matches(&self.profile.expired_texts);
                    let error = expired || matches(&self.profile.error_texts);
                    let shown = self.scrub(&text);
                    self.log
                        .note(format!("dismissed a page dialog: \"{shown}\""));
                    if error && p.error.is_none() {
                        p.error = Some(PageError {
                            message: text,
                            via: "a JavaScript dialog".into(),
                            expired,
                        });
                    }
                }
                for bad in &p.invalid {
                    if self.warned.insert(bad.clone()) {
                        tracing::warn!(candidate = %bad, "the browser rejects this selector candidate; fix the selector profile");
                        self.log.note(format!("invalid candidate skipped: `{bad}`"));
                    }
                }
                Probed::Page(p)
            }
            Err(e) => {
                let msg = self.scrub(&e.to_string());
                tracing::trace!(error = %msg, "probe failed; retrying");
                Probed::Failed(msg)
            }
        }
    }

    fn note_matches(&mut self, targets: &[Target<'_>], probe: &Probe) {
        for t in targets {
            if let Some(f) = probe.found.get(t.key)
                && let Some(c) = t.candidates.get(f.candidate)
            {
                self.log.matched(t.key, c);
            }
        }
    }

    /// Waits for `done` to accept a probe, failing fast on an on-page error (blamed on
    /// `blame`, the step whose input the page is answering).
    async fn wait<T>(
        &mut self,
        blame: Step,
        targets: &[Target<'_>],
        dl: Deadline,
        missing: Missing,
        wake_on_capture: bool,
        mut done: impl FnMut(&Probe) -> Option<T>,
    ) -> Result<T, BrowserError> {
        let page = self.page()?;
        let poll = self.profile.poll_interval();
        let mut last_failure: Option<String> = None;
        loop {
            match self.probe_once(&page, targets, dl).await {
                Probed::OutOfTime => break,
                Probed::Failed(msg) => last_failure = Some(msg),
                Probed::Page(p) => {
                    last_failure = None;
                    if let Some(e) = p.error {
                        return Err(self.page_error(blame, e));
                    }
                    if let Some(v) = done(&p) {
                        self.note_matches(targets, &p);
                        return Ok(v);
                    }
                }
            }
            if Instant::now() >= dl.at {
                break;
            }
            self.pause(poll, dl, wake_on_capture).await;
        }
        Err(self.ran_out(dl, missing, last_failure))
    }

    async fn pause(&self, poll: Duration, dl: Deadline, wake_on_capture: bool) {
        let until = (Instant::now() + poll).min(dl.at);
        if wake_on_capture {
            tokio::select! {
                _ = tokio::time::sleep_until(until) => {}
                _ = self.slot.wait() => {}
            }
        } else {
            tokio::time::sleep_until(until).await;
        }
    }

    fn ran_out(
        &mut self,
        dl: Deadline,
        missing: Missing,
        last_failure: Option<String>,
    ) -> BrowserError {
        if let Some(msg) = last_failure {
            return BrowserError::driver(
                self.step,
                format!(
                    "the page stopped answering while waiting for {} ({msg})",
                    missing.what
                ),
            );
        }
        self.log
            .note(format!("waited for {} until {}", missing.what, dl.limit));
        BrowserError::ElementMissing {
            step: self.step,
            what: missing.what.to_string(),
            tried: missing.tried,
            limit: dl.limit,
            artifacts: Artifacts::None,
        }
    }

    /// After the last key: lets a self-submitting page go first, clicks `submit` (once,
    /// never after the page sent a request of its own), and waits for `done`.
    #[allow(clippy::too_many_arguments)]
    async fn submit<T>(
        &mut self,
        submit_key: &'static str,
        targets: &[Target<'_>],
        traffic_before: u64,
        grace: Duration,
        dl: Deadline,
        after: Missing,
        wake_on_capture: bool,
        mut done: impl FnMut(&Probe, bool) -> Option<T>,
    ) -> Result<T, BrowserError> {
        let page = self.page()?;
        let poll = self.profile.poll_interval();
        let typed_at = Instant::now();
        let mut clicked = false;
        let mut last_failure: Option<String> = None;
        let step = self.step;
        loop {
            match self.probe_once(&page, targets, dl).await {
                Probed::OutOfTime => break,
                Probed::Failed(msg) => last_failure = Some(msg),
                Probed::Page(p) => {
                    last_failure = None;
                    if let Some(e) = p.error {
                        return Err(self.page_error(step, e));
                    }
                    let by_page = self.traffic.count() > traffic_before;
                    if let Some(v) = done(&p, clicked || by_page) {
                        self.note_matches(targets, &p);
                        if by_page && !clicked {
                            self.log.note("the page submitted by itself");
                        }
                        return Ok(v);
                    }
                    if !clicked && !by_page && typed_at.elapsed() >= grace && p.ready(submit_key) {
                        self.note_matches(targets, &p);
                        // Once only, even if the click reports an error: a second
                        // submission of the same code may count as a wrong attempt.
                        clicked = true;
                        match self.within(dl, dom::click(&page, submit_key)).await {
                            Ok(()) => self.log.note(format!("clicked {submit_key}")),
                            Err(e) => {
                                let msg = self.scrub(&e.to_string());
                                tracing::debug!(error = %msg, "clicking {submit_key} failed");
                                self.log
                                    .note(format!("clicking {submit_key} failed: {msg}"));
                            }
                        }
                        continue;
                    }
                }
            }
            if Instant::now() >= dl.at {
                break;
            }
            self.pause(poll, dl, wake_on_capture).await;
        }
        let submitted = clicked || self.traffic.count() > traffic_before;
        let missing = if submitted {
            after
        } else {
            let candidates = targets
                .iter()
                .find(|t| t.key == submit_key)
                .map(|t| t.candidates.to_vec())
                .unwrap_or_default();
            Missing {
                what: submit_key,
                tried: candidates,
            }
        };
        Err(self.ran_out(dl, missing, last_failure))
    }

    /// Types `secret` into one field, focused first, key by key.
    async fn type_field(
        &mut self,
        key: &'static str,
        secret: &SecretString,
        dl: Deadline,
    ) -> Result<(), BrowserError> {
        let page = self.page()?;
        let focused = self.within(dl, dom::focus(&page, key, 0)).await?;
        if !focused.ok {
            return Err(BrowserError::driver(
                self.step,
                format!("could not focus {key}"),
            ));
        }
        for c in secret.expose_secret().chars() {
            self.within(dl, dom::press_digit(&page, c)).await?;
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
        dl: Deadline,
    ) -> Result<(), BrowserError> {
        let page = self.page()?;
        for (i, c) in secret.expose_secret().chars().enumerate() {
            let focused = self.within(dl, dom::focus(&page, key, i)).await?;
            if !focused.ok {
                return Err(BrowserError::driver(
                    self.step,
                    format!("could not focus box {} of {key}", i + 1),
                ));
            }
            if focused.filled_before != i {
                return Err(BrowserError::driver(
                    self.step,
                    format!(
                        "only {} of the first {i} boxes of {key} hold a digit: the page did not take the key events",
                        focused.filled_before
                    ),
                ));
            }
            self.within(dl, dom::press_digit(&page, c)).await?;
        }
        Ok(())
    }

    /// Saves the screen just reached, with the candidates that led to it.
    async fn record(&mut self, screen: &str) {
        let Some(page) = self.page.clone() else {
            return;
        };
        let matched = self.log.matches_of(self.step);
        if let Some(rec) = self.recorder.as_mut() {
            rec.screen(&page, screen, &matched, &self.scrubber).await;
        }
    }

    async fn open(&mut self, session: &mut Session) -> Result<(), BrowserError> {
        let dl = self.deadline();
        let page = self.within(dl, session.blank_page()).await?;
        self.page = Some(page.clone());
        let (traffic, task) = self.within(dl, traffic::watch(&page)).await?;
        session.own_task(task);
        self.traffic = traffic;
        let task = self
            .within(
                dl,
                capture::arm(
                    &page,
                    self.login.redirect_url.clone(),
                    self.settings.block_resources,
                    self.scrubber.clone(),
                    self.slot.clone(),
                ),
            )
            .await?;
        session.own_task(task);
        let (dialogs, task) = self.within(dl, dialogs::dismiss_all(&page)).await?;
        session.own_task(task);
        self.dialogs = dialogs;

        let nav = self
            .within(
                dl,
                page.execute(NavigateParams::new(self.login.consent_url.as_str())),
            )
            .await?;
        if let Some(err) = nav.result.error_text.as_deref().filter(|e| !e.is_empty()) {
            return Err(BrowserError::Navigation {
                step: Step::Open,
                message: self.scrub(err),
                artifacts: Artifacts::None,
            });
        }
        let profile = self.profile.clone();
        let targets = [Target::inputs("mobile_input", &profile.mobile_input, 1)];
        self.wait(
            Step::Open,
            &targets,
            dl,
            Missing::of("mobile_input", &[&profile.mobile_input]),
            false,
            |p| p.has("mobile_input").then_some(()),
        )
        .await?;
        self.record("mobile").await;
        Ok(())
    }

    async fn mobile(&mut self) -> Result<(), BrowserError> {
        let dl = self.deadline();
        let page = self.page()?;
        let mobile = self.login_mobile.clone();
        let before = self.traffic.count();
        self.type_field("mobile_input", &mobile, dl).await?;
        let want = mobile.expose_secret().len();
        let landed = self
            .within(dl, dom::value_len(&page, "mobile_input"))
            .await?;
        if landed != Some(want) {
            return Err(BrowserError::driver(
                Step::Mobile,
                format!(
                    "the mobile number did not land in mobile_input ({} of {want} digits): the page did not take the key events",
                    landed.unwrap_or(0)
                ),
            ));
        }
        let profile = self.profile.clone();
        let targets = [
            Target::button("mobile_submit", &profile.mobile_submit),
            Target::inputs("totp_boxes", &profile.totp_boxes, TOTP_DIGITS),
            Target::inputs("totp_single", &profile.totp_single, 1),
            Target::present("totp_screen", &profile.totp_screen),
            Target::inputs("mobile_input", &profile.mobile_input, 1),
        ];
        // Typing a mobile number twice harms nobody: no grace before the click.
        self.submit(
            "mobile_submit",
            &targets,
            before,
            Duration::ZERO,
            dl,
            Missing::of(
                "totp_screen",
                &[
                    &profile.totp_screen,
                    &profile.totp_boxes,
                    &profile.totp_single,
                ],
            ),
            false,
            |p, _| totp_reached(p).then_some(()),
        )
        .await?;
        self.record("totp").await;
        Ok(())
    }

    async fn totp(&mut self) -> Result<(), BrowserError> {
        let profile = self.profile.clone();
        let boxes = self
            .digit_inputs(
                Step::Totp,
                ("totp_boxes", &profile.totp_boxes, TOTP_DIGITS),
                ("totp_single", &profile.totp_single),
            )
            .await?;

        // Only now: the code must be as fresh as possible when it is typed.
        let overall = Deadline {
            at: self.overall_at,
            limit: Limit::Overall(self.settings.overall_timeout),
        };
        let code = self
            .within(overall, async {
                Ok::<_, String>(self.login.totp.next_code().await)
            })
            .await?;
        if let Ok(mut s) = self.scrubber.lock() {
            s.add(code.expose_secret());
        }
        // The generator may have waited for a fresh step: the budget starts again here.
        let dl = self.deadline();
        let before = self.traffic.count();
        if boxes {
            self.type_boxes("totp_boxes", &code, dl).await?;
        } else {
            self.type_field("totp_single", &code, dl).await?;
        }
        let targets = [
            Target::button("totp_submit", &profile.totp_submit),
            Target::inputs("pin_boxes", &profile.pin_boxes, PIN_DIGITS),
            Target::inputs("pin_single", &profile.pin_single, 1),
            Target::present("pin_screen", &profile.pin_screen),
            Target::inputs("totp_boxes", &profile.totp_boxes, TOTP_DIGITS),
            Target::inputs("totp_single", &profile.totp_single, 1),
        ];
        self.submit(
            "totp_submit",
            &targets,
            before,
            profile.submit_grace(),
            dl,
            Missing::of(
                "pin_screen",
                &[&profile.pin_screen, &profile.pin_boxes, &profile.pin_single],
            ),
            false,
            |p, _| pin_reached(p).then_some(()),
        )
        .await?;
        self.record("pin").await;
        Ok(())
    }

    /// Waits for a step's code inputs: true for one-digit boxes, false for one field.
    async fn digit_inputs(
        &mut self,
        step: Step,
        (boxes, box_candidates, digits): (&'static str, &[String], usize),
        (single, single_candidates): (&'static str, &[String]),
    ) -> Result<bool, BrowserError> {
        let dl = self.deadline();
        let inputs = [
            Target::inputs(boxes, box_candidates, digits),
            Target::inputs(single, single_candidates, 1),
        ];
        let missing = Missing::of(boxes, &[box_candidates, single_candidates]);
        self.wait(step, &inputs, dl, missing, false, |p| {
            if p.has(boxes) {
                Some(true)
            } else {
                p.has(single).then_some(false)
            }
        })
        .await
    }

    async fn pin(&mut self) -> Result<(), BrowserError> {
        let dl = self.deadline();
        let profile = self.profile.clone();
        let boxes = self
            .digit_inputs(
                Step::Pin,
                ("pin_boxes", &profile.pin_boxes, PIN_DIGITS),
                ("pin_single", &profile.pin_single),
            )
            .await?;
        let pin = self.login_pin.clone();
        let before = self.traffic.count();
        if boxes {
            self.type_boxes("pin_boxes", &pin, dl).await?;
        } else {
            self.type_field("pin_single", &pin, dl).await?;
        }
        let targets = [Target::button("pin_submit", &profile.pin_submit)];
        let slot = self.slot.clone();
        self.submit(
            "pin_submit",
            &targets,
            before,
            profile.submit_grace(),
            dl,
            Missing::of("the redirect with a tokenId", &[]),
            true,
            |_, submitted| (submitted || slot.get().is_some()).then_some(()),
        )
        .await
    }

    async fn capture(&mut self) -> Result<(), BrowserError> {
        let dl = self.deadline();
        let slot = self.slot.clone();
        let got = self
            .wait(
                Step::Pin,
                &[],
                dl,
                Missing::of("the redirect with a tokenId", &[]),
                true,
                |_| slot.get().map(|_| ()),
            )
            .await;
        match got {
            Ok(()) => {
                self.log.note("tokenId captured from the redirect");
                Ok(())
            }
            // Nothing on the page to name: the redirect simply did not come.
            Err(BrowserError::ElementMissing { limit, .. }) => Err(BrowserError::Timeout {
                step: Step::Capture,
                limit,
                artifacts: Artifacts::None,
            }),
            Err(e) => Err(e),
        }
    }
}

/// The TOTP screen is up: its inputs are there, or its heading is and the mobile field
/// is gone (a heading alone could be text on the mobile screen).
fn totp_reached(p: &Probe) -> bool {
    p.has("totp_boxes") || p.has("totp_single") || (p.has("totp_screen") && !p.has("mobile_input"))
}

fn pin_reached(p: &Probe) -> bool {
    p.has("pin_boxes")
        || p.has("pin_single")
        || (p.has("pin_screen") && !p.has("totp_boxes") && !p.has("totp_single"))
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
