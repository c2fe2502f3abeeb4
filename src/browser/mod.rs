//! Headless Chromium on Dhan's consent login page.
//!
//! Recognises the screen shown (mobile, TOTP, SMS/e-mail OTP, PIN, error, expired) from
//! the whole page at every look, answers it the way a person would (focus, real key
//! events, mouse clicks) in whatever order the page chooses, types each code at most
//! once and nothing into a page it cannot place, and captures the tokenId from the top
//! frame's final redirect without loading it. Nothing of the browser survives the call:
//! not on success, not on failure, not when the future is dropped halfway (a browser
//! started ahead of its login runs on a task of its own, which the drop cancels: it is
//! then ended on a runtime worker right after, or when the runtime shuts down).
//!
//! Layout: `launch` finds and starts Chromium, `session` owns it and guarantees cleanup
//! (with `reap` for the process tree), `selectors` is the overridable page profile,
//! `screens` classifies the page (`screens.js`) and decides what to do, `dom` acts on
//! the page, `traffic` sees whether the page submitted by itself, `dialogs` dismisses
//! alerts (keeping their text), `capture` intercepts the redirect and blocks trackers,
//! `flow` runs the loop, `artifacts` keeps what a human needs after a failure, and
//! `quiet` keeps the CDP transport's logging (which quotes page content) away from the
//! application's logs.

mod answer;
mod artifacts;
mod capture;
mod dialogs;
mod dom;
mod driver;
mod engine;
mod error;
mod flow;
mod launch;
mod login;
mod profile;
mod quiet;
mod reap;
mod sandbox;
mod screens;
mod scrub;
mod selectors;
mod session;
mod spawn;
mod traffic;
mod typing;

use secrecy::SecretString;
use tracing::instrument::WithSubscriber;
use url::Url;

pub use error::{Artifacts, BrowserError, Limit, Step};
pub use login::{ConsentLogin, OtpSource, PageReport};
pub use reap::become_subreaper;
pub use selectors::SelectorProfile;

/// The browser a login would run, or why there is none (`status` tells it in advance).
pub fn find_browser(
    settings: &crate::config::BrowserSettings,
) -> Result<std::path::PathBuf, BrowserError> {
    launch::find_executable(settings, &|k| std::env::var_os(k)).map(|found| found.path)
}

use crate::config::BrowserSettings;
use crate::progress::Progress;
// A `ConsentLogin` is given one: what it must remove from what it saves.
pub use crate::redact::Scrubber;

/// Runs the consent login in a fresh headless Chromium and returns the tokenId.
///
/// Progress steps: launch, open, mobile, totp (or otp, or none on a trusted device), pin,
/// capture, close. On any failure after
/// launch, a screenshot, the page's HTML and a step log are saved under
/// `settings.artifacts_dir` and named in the error. Errors for which
/// [`BrowserError::is_fatal`] holds must not be retried. Nothing of the browser is left
/// when this returns; `start_browser` and `capture_token_id_in` (crate-internal) are the same login
/// cut in two, for callers with requests of their own to overlap with it.
pub async fn capture_token_id(
    settings: &BrowserSettings,
    login: ConsentLogin<'_>,
) -> Result<SecretString, BrowserError> {
    let progress = login.progress;
    let muffler = quiet::Muffler::new();
    let dispatch = muffler.dispatch.clone();
    let (outcome, ending) = flow::run(settings, login, muffler, driver::Job::Login, None)
        .with_subscriber(dispatch.clone())
        .await?;
    BrowserEnd { ending, dispatch }.gone(progress).await;
    token_id_of(outcome)
}

fn token_id_of(outcome: flow::Outcome) -> Result<SecretString, BrowserError> {
    match outcome {
        flow::Outcome::TokenId(id) => Ok(id),
        flow::Outcome::Report(_) => Err(BrowserError::driver(Step::Capture, "no tokenId")),
    }
}

/// How the last Chromium this process started ran: as which user, and whether with its
/// sandbox (`dhan-login doctor` tells it). `None` before any browser was started.
pub fn browser_sandbox() -> Option<String> {
    sandbox::last()
}

/// Opens the consent page, says which screen it shows, and types nothing: the consent
/// stays unused. Progress steps: launch, open, close.
pub async fn inspect_consent_page(
    settings: &BrowserSettings,
    consent_url: Url,
    scrubber: Scrubber,
    progress: &dyn Progress,
) -> Result<PageReport, BrowserError> {
    let muffler = quiet::Muffler::new();
    let dispatch = muffler.dispatch.clone();
    let empty = SecretString::from(String::new());
    let login = ConsentLogin {
        consent_url,
        redirect_url: None,
        mobile: &empty,
        pin: &empty,
        totp: None,
        otp: None,
        scrubber,
        progress,
        record_dir: None,
    };
    let (outcome, ending) = flow::run(settings, login, muffler, driver::Job::Inspect, None)
        .with_subscriber(dispatch.clone())
        .await?;
    BrowserEnd { ending, dispatch }.gone(progress).await;
    match outcome {
        flow::Outcome::Report(r) => Ok(r),
        flow::Outcome::TokenId(_) => Err(BrowserError::driver(Step::Open, "unexpected tokenId")),
    }
}

/// A Chromium started before its login is known (the consent URL needs generate-consent
/// first): start both at once and hand this to [`capture_token_id_in`]. Dropping it kills
/// the browser and removes its profile. A failed start is reported by the login.
pub(crate) struct StartedBrowser(session::Started);

/// Starts Chromium for one login; see [`StartedBrowser`]. The start runs on a task of its
/// own: in the caller's `join!` it would share a thread with the requests made meanwhile,
/// and building their HTTP client (reading the system's root certificates, ~5 ms) held
/// Chromium's spawn back by that much. Dropping the returned future aborts the task, and
/// with it the start (the session's `Drop` kills what was already running).
pub(crate) async fn start_browser(settings: &BrowserSettings) -> StartedBrowser {
    let settings = settings.clone();
    // The caller's subscriber, which a spawned task would not inherit.
    let dispatch = tracing::dispatcher::get_default(tracing::Dispatch::clone);
    let task = AbortOnDrop(tokio::spawn(
        async move { session::Started::start(&settings).await }.with_subscriber(dispatch),
    ));
    match task.finish().await {
        Ok(started) => StartedBrowser(started),
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// A task that ends when its handle is dropped unawaited.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> AbortOnDrop<T> {
    /// Awaits the task; only a panic makes it fail, since nothing else aborts it.
    async fn finish(mut self) -> Result<T, tokio::task::JoinError> {
        (&mut self.0).await
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// [`capture_token_id`] in a browser already started. Returns as soon as the tokenId is
/// captured: the browser is still being ended then, so that the caller's next request
/// (consume-consent) runs meanwhile; [`BrowserEnd::gone`] waits for the end.
pub(crate) async fn capture_token_id_in(
    browser: StartedBrowser,
    settings: &BrowserSettings,
    login: ConsentLogin<'_>,
) -> Result<Captured, BrowserError> {
    let dispatch = browser.0.dispatch.clone();
    let muffler = quiet::Muffler::new();
    let (outcome, ending) = flow::run(
        settings,
        login,
        muffler,
        driver::Job::Login,
        Some(browser.0),
    )
    .with_subscriber(dispatch.clone())
    .await?;
    Ok(Captured {
        token_id: token_id_of(outcome)?,
        end: BrowserEnd { ending, dispatch },
    })
}

/// The tokenId of a finished login, its browser still being ended.
pub(crate) struct Captured {
    pub(crate) token_id: SecretString,
    pub(crate) end: BrowserEnd,
}

/// A browser being ended (killed, reaped, its profile removed) on a thread of its own.
/// The end completes even if this is dropped.
pub(crate) struct BrowserEnd {
    ending: session::Ending,
    dispatch: tracing::Dispatch,
}

impl BrowserEnd {
    /// Waits until no process and no profile of the browser is left (progress step
    /// `close`).
    pub(crate) async fn gone(self, progress: &dyn Progress) {
        progress.step_started(error::Step::Close.as_str());
        let took = self.ending.wait().with_subscriber(self.dispatch).await;
        progress.step_finished(error::Step::Close.as_str(), took);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::totp::TotpGenerator;
    use std::path::Path;
    use std::sync::Arc;

    fn assert_send<T: Send>(_: &T) {}

    #[test]
    fn login_future_is_send() {
        // A daemon spawns logins on a multi-threaded runtime.
        let settings = BrowserSettings::with_defaults(Path::new("/nonexistent"));
        let secret = SecretString::from("JBSWY3DPEHPK3PXP".to_string());
        let totp = TotpGenerator::new(&secret, Arc::new(crate::totp::SystemClock)).unwrap();
        let mobile = SecretString::from("9999900042".to_string());
        let pin = SecretString::from("135790".to_string());
        let login = ConsentLogin {
            consent_url: Url::parse("http://127.0.0.1:1/login").unwrap(),
            redirect_url: None,
            mobile: &mobile,
            pin: &pin,
            totp: Some(&totp),
            otp: None,
            scrubber: Scrubber::new(),
            progress: &crate::progress::NoProgress,
            record_dir: None,
        };
        let fut = capture_token_id(&settings, login);
        assert_send(&fut);
    }

    #[test]
    fn debug_of_a_login_shows_no_secret() {
        let mobile = SecretString::from("9999900042".to_string());
        let pin = SecretString::from("135790".to_string());
        let redirect = Url::parse("http://127.0.0.1:9/dhan/callback").unwrap();
        let login = ConsentLogin {
            consent_url: Url::parse(
                "http://127.0.0.1:1/login/consentApp-login?consentAppId=c0ffee-4242",
            )
            .unwrap(),
            redirect_url: Some(&redirect),
            mobile: &mobile,
            pin: &pin,
            totp: None,
            otp: None,
            scrubber: Scrubber::new(),
            progress: &crate::progress::NoProgress,
            record_dir: None,
        };
        let shown = format!("{login:?}");
        for secret in ["9999900042", "135790", "c0ffee-4242"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("/login/consentApp-login"), "{shown}");
        assert!(shown.contains("/dhan/callback"), "{shown}");
    }
}
