//! The consent login: launch (or take the browser started ahead), open the page, answer
//! its screens, and leave artifacts when it fails.
//!
//! The rest of the login is split by concern: `driver` (the state the others share),
//! `engine` (the one loop that looks at the page), `answer` (acting on each screen),
//! `typing` (codes, keys and buttons).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use chromiumoxide::cdp::browser_protocol::page::{
    AddScriptToEvaluateOnNewDocumentParams, NavigateParams,
};
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;

use super::artifacts::{Recorder, StepLog, save_failure};
use super::capture::{self, Slot};
use super::dialogs::{self, Dialogs};
use super::dom;
use super::driver::{Driver, Job, LoginRefs};
use super::error::{Artifacts, BrowserError, Step};
use super::launch;
use super::login::{ConsentLogin, PageReport};
use super::quiet::Muffler;
use super::screens::Screen;
use super::scrub::{SharedScrubber, scrub_with};
use super::selectors::SelectorProfile;
use super::session::{Ending, Session, Started};
use super::traffic::{self, Traffic};
use super::typing::digits;
use crate::config::BrowserSettings;
use crate::sync::lock;

/// Dhan's PIN has six digits.
const PIN_DIGITS: usize = 6;

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
            *lock(&ahead.scrubber) = scrubber;
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
        // The interception and the page script are set up at once: each is one or two
        // commands, and none needs another's answer.
        let (capture_task, _) = tokio::try_join!(
            self.within(capture::arm(
                &page,
                capture::Capture {
                    redirect: self.login.redirect_url.clone(),
                    main_frame,
                    block_resources: self.settings.block_resources,
                    block_trackers: self.settings.block_trackers,
                    show_landing: self.settings.headed,
                },
                self.scrubber.clone(),
                self.slot.clone(),
            )),
            self.within(page.execute(AddScriptToEvaluateOnNewDocumentParams::new(
                dom::SUBMIT_WATCH,
            ))),
        )?;
        session.own_task(capture_task);
        let (dialogs, task) = self.within(dialogs::dismiss_all(&page)).await?;
        session.own_task(task);
        self.dialogs = dialogs;

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
}
