//! The browser login on every page the stand-in can draw within what public scripts saw
//! of Dhan's consent page: box markup × submission × TOTP screen × rendering, plus the
//! pages that must fail safely. Real headless Chromium; every cell has its own stand-in,
//! consent and Chromium, and must leave nothing behind.
//!
//! Set DHAN_LOGIN_SKIP_BROWSER_TESTS=1 to skip them on a machine without Chromium.
#![cfg(feature = "browser")]

use crate::common::browser_support as support;
use crate::common::browser_tests_skipped;

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use dhan_login::mock::{
    Endpoint, EntryKind, Markup, MockOptions, PageVariant, SecondFactor, Submission,
};
use dhan_login::{
    ErrorClass,
    browser::{BrowserError, OtpSource, Step},
};
use secrecy::{ExposeSecret, SecretString};
use support::{Case, Login, Steps};
use url::Url;

const MARKUPS: [Markup; 4] = [
    Markup::CodeInput,
    Markup::TelBoxes,
    Markup::PasswordPin,
    Markup::SingleField,
];
const SUBMISSIONS: [Submission; 3] = [Submission::Auto, Submission::Button, Submission::Random];

/// One login on one page; Err carries what went wrong, for the matrix report.
async fn cell(variant: PageVariant, with_redirect: bool) -> Result<Duration, String> {
    let case = Case::start(MockOptions {
        page_variant: variant,
        ..Default::default()
    })
    .await;
    let redirect = Url::parse(&case.server.account().redirect_url).unwrap();
    let steps = Steps::default();
    let started = Instant::now();
    let token = case
        .login(Login {
            redirect: with_redirect.then_some(&redirect),
            progress: Some(&steps),
            ..Default::default()
        })
        .await
        .map_err(|e| format!("{e}"))?;
    let took = started.elapsed();
    if token.expose_secret() == case.server.decoy_token_id() {
        return Err("the tracker's decoy tokenId was taken for the answer".into());
    }
    let grant = case.consume(&token).await;
    if !grant["accessToken"].is_string() {
        return Err(format!("consume-consent: {grant}"));
    }
    let s = &case.server;
    let totp_entries = u32::from(variant.totp_screen);
    let counts = (
        s.calls(Endpoint::GenerateConsent),
        s.entries(EntryKind::Mobile),
        s.entries(EntryKind::Totp),
        s.entries(EntryKind::Pin),
    );
    if counts != (1, 1, totp_entries, 1) {
        return Err(format!(
            "consents, mobile, TOTP and PIN submissions were {counts:?}, want (1, 1, {totp_entries}, 1)"
        ));
    }
    let mut want = vec!["launch", "open", "mobile"];
    if variant.totp_screen {
        want.push("totp");
    }
    want.extend(["pin", "capture", "close"]);
    if steps.started() != want {
        return Err(format!("steps {:?}, want {want:?}", steps.started()));
    }
    case.assert_clean();
    case.assert_logs_clean(&case.secrets(Some(token.expose_secret()), None));
    Ok(took)
}

fn describe(v: &PageVariant) -> String {
    format!(
        "{:<12} {:<10} {:<11} {:<15} {}",
        format!("{:?}", v.markup),
        format!("{:?}", v.submission),
        if v.totp_screen {
            "TOTP shown"
        } else {
            "TOTP skipped"
        },
        if v.spa {
            "single-page"
        } else {
            "server-rendered"
        },
        if v.tracker_iframe {
            "tracker"
        } else {
            "no tracker"
        }
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_variant_logs_in_with_one_consent_and_each_code_sent_once() {
    if browser_tests_skipped("matrix") {
        return;
    }
    let mut cells = Vec::new();
    for markup in MARKUPS {
        for submission in SUBMISSIONS {
            for totp_screen in [true, false] {
                for spa in [false, true] {
                    let variant = PageVariant {
                        markup,
                        submission,
                        totp_screen,
                        spa,
                        ..PageVariant::default()
                    };
                    // Half the cells without a redirect URL (alternating with the TOTP
                    // screen, so both renderings meet both): the tracker's decoy must
                    // still lose to the top frame's redirect.
                    let with_redirect = (cells.len() / 2) % 2 == 0;
                    cells.push((
                        variant,
                        with_redirect,
                        tokio::spawn(cell(variant, with_redirect)),
                    ));
                }
            }
        }
    }
    report_cells("browser login matrix", cells).await;
}

/// One running cell: its page, whether a redirect URL is set, and its login.
type Cell = (
    PageVariant,
    bool,
    tokio::task::JoinHandle<Result<Duration, String>>,
);

/// Awaits every cell and fails with one report of them all.
async fn report_cells(title: &str, cells: Vec<Cell>) {
    let mut report = Vec::new();
    let mut failed = 0;
    let mut times = Vec::new();
    for (variant, with_redirect, task) in cells {
        let outcome = match task.await {
            Ok(r) => r,
            Err(e) => Err(format!("panicked: {e}")),
        };
        let redirect = if with_redirect {
            "redirect set"
        } else {
            "no redirect"
        };
        match outcome {
            Ok(took) => {
                times.push(took);
                report.push(format!(
                    "pass  {}  {redirect:<12} {:>5} ms",
                    describe(&variant),
                    took.as_millis()
                ));
            }
            Err(why) => {
                failed += 1;
                report.push(format!(
                    "FAIL  {}  {redirect:<12} {why}",
                    describe(&variant)
                ));
            }
        }
    }
    times.sort();
    eprintln!(
        "{title} ({} cells, median {} ms):\n{}",
        report.len(),
        times.get(times.len() / 2).map_or(0, |d| d.as_millis()),
        report.join("\n")
    );
    assert_eq!(failed, 0, "{failed} cell(s) failed:\n{}", report.join("\n"));
}

/// Pages that punish a fixed wait after the last digit: one that sends by itself after
/// a random 0–600 ms (a press meanwhile sends the code again), one that sends within
/// the sixth digit's own key event, one that only takes its button, and one whose button
/// stays enabled while its request is in flight (every press sends). On each, every
/// markup and both renderings, with the tracker frame on half the cells of each
/// (submission, rendering) pair: exactly one submission per screen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_that_send_in_their_own_time_get_each_code_once() {
    if browser_tests_skipped("own_time") {
        return;
    }
    let mut cells = Vec::new();
    for submission in [
        Submission::Deferred,
        Submission::OnKey,
        Submission::Button,
        Submission::BusyButton,
    ] {
        for (m, markup) in MARKUPS.into_iter().enumerate() {
            for spa in [false, true] {
                let variant = PageVariant {
                    markup,
                    submission,
                    spa,
                    tracker_iframe: (m + usize::from(spa)) % 2 == 0,
                    ..PageVariant::default()
                };
                cells.push((variant, true, tokio::spawn(cell(variant, true))));
            }
        }
    }
    report_cells("pages that send in their own time", cells).await;
}

/// Logs in on `variant`, expecting an error; returns it with the case for more checks.
async fn failing(
    variant: PageVariant,
    step_timeout: Duration,
    login: Login<'_>,
) -> (Case, BrowserError) {
    let mut case = Case::start(MockOptions {
        page_variant: variant,
        ..Default::default()
    })
    .await;
    case.settings.step_timeout = step_timeout;
    let err = case
        .login(login)
        .await
        .expect_err("this page must not give a token");
    (case, err)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn masked_and_unmasked_groups_at_once_get_nothing_typed() {
    if browser_tests_skipped("ambiguous") {
        return;
    }
    let variant = PageVariant {
        markup: Markup::Ambiguous,
        ..PageVariant::default()
    };
    let (case, err) = failing(variant, Duration::from_secs(10), Login::default()).await;
    assert!(matches!(err, BrowserError::Doubtful { .. }), "{err}");
    assert!(!err.is_fatal(), "{err}");
    let text = err.to_string();
    assert!(text.contains("nothing was typed"), "{text}");
    assert!(
        text.contains("masked") && text.contains("unmasked"),
        "{text}"
    );
    assert_eq!(case.server.entries(EntryKind::Totp), 0);
    assert_eq!(case.server.entries(EntryKind::Pin), 0);
    let dir = err.artifacts_dir().expect("artifacts say what was seen");
    let log = std::fs::read_to_string(dir.join("steps.log")).unwrap();
    assert!(log.contains("ambiguous"), "{log}");
    case.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unrecognisable_screen_gets_nothing_typed() {
    if browser_tests_skipped("unrecognisable") {
        return;
    }
    let variant = PageVariant {
        markup: Markup::Unrecognisable,
        ..PageVariant::default()
    };
    let (case, err) = failing(variant, Duration::from_secs(3), Login::default()).await;
    assert!(!err.is_fatal(), "{err}");
    assert!(
        matches!(
            err,
            BrowserError::ScreenUnknown { .. } | BrowserError::Doubtful { .. }
        ),
        "{err}"
    );
    assert_eq!(case.server.entries(EntryKind::Mobile), 1);
    assert_eq!(case.server.entries(EntryKind::Totp), 0);
    assert_eq!(case.server.entries(EntryKind::Pin), 0);
    assert!(err.artifacts_dir().is_some(), "{err}");
    case.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proceed_that_does_not_take_is_pressed_once_more() {
    if browser_tests_skipped("proceed_retry") {
        return;
    }
    let case = Case::start(MockOptions {
        page_variant: PageVariant {
            proceed_ignored_once: true,
            ..PageVariant::default()
        },
        ..Default::default()
    })
    .await;
    let token = case
        .login(Login::default())
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", case.logs.text()));
    case.consume(&token).await;
    assert_eq!(case.server.entries(EntryKind::Mobile), 1);
    assert_eq!(case.server.entries(EntryKind::Totp), 1);
    assert_eq!(case.server.entries(EntryKind::Pin), 1);
    case.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ignored_proceed_is_pressed_again_when_the_page_settles_not_after_a_wait() {
    if browser_tests_skipped("proceed_settled") {
        return;
    }
    for spa in [true, false] {
        let mut case = Case::start(MockOptions {
            page_variant: PageVariant {
                proceed_ignored_once: true,
                spa,
                ..PageVariant::default()
            },
            ..Default::default()
        })
        .await;
        // A patience longer than the step's budget: only seeing the page settle
        // without sending can have the press made again in time.
        let profile = case.dir.path().join("selectors.toml");
        std::fs::write(&profile, "proceed_retry_ms = 30000\n").expect("profile written");
        case.settings.selectors = Some(profile);
        let token = case
            .login(Login::default())
            .await
            .unwrap_or_else(|e| panic!("spa {spa}: {e}\n{}", case.logs.text()));
        case.consume(&token).await;
        assert_eq!(case.server.entries(EntryKind::Mobile), 1, "spa {spa}");
        assert_eq!(case.server.entries(EntryKind::Totp), 1, "spa {spa}");
        assert_eq!(case.server.entries(EntryKind::Pin), 1, "spa {spa}");
        case.assert_clean();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trackers_decoy_token_id_is_ignored_without_a_redirect_url() {
    if browser_tests_skipped("decoy") {
        return;
    }
    for spa in [true, false] {
        let case = Case::start(MockOptions {
            page_variant: PageVariant {
                tracker_iframe: true,
                spa,
                ..PageVariant::default()
            },
            ..Default::default()
        })
        .await;
        let token = case
            .login(Login::default())
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", case.logs.text()));
        assert_ne!(token.expose_secret(), case.server.decoy_token_id());
        let grant = case.consume(&token).await;
        assert!(grant["accessToken"].is_string());
        case.assert_clean();
    }
}

/// Answers the SMS OTP screen with the stand-in's code, counting how often it was asked.
struct FixedOtp {
    code: String,
    asked: std::sync::atomic::AtomicU32,
}

impl OtpSource for FixedOtp {
    fn code(&self) -> Pin<Box<dyn Future<Output = Result<SecretString, String>> + Send + '_>> {
        self.asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let code = self.code.clone();
        Box::pin(async move { Ok(SecretString::from(code)) })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sms_otp_screen_gets_the_otp_never_a_totp() {
    if browser_tests_skipped("sms_otp") {
        return;
    }
    let variant = PageVariant {
        second_factor: SecondFactor::SmsOtp,
        ..PageVariant::default()
    };
    // Without a source for the OTP: a configuration error, nothing typed there.
    let (case, err) = failing(variant, Duration::from_secs(10), Login::default()).await;
    assert!(matches!(err, BrowserError::NeedsOtp { .. }), "{err}");
    assert_eq!(err.class(), ErrorClass::Config);
    assert_eq!(case.server.entries(EntryKind::SmsOtp), 0);
    assert_eq!(case.server.entries(EntryKind::Totp), 0);
    case.assert_clean();

    // With one: the OTP goes in, once; then the PIN.
    let case = Case::start(MockOptions {
        page_variant: variant,
        ..Default::default()
    })
    .await;
    let otp = FixedOtp {
        code: case.server.sms_otp(),
        asked: Default::default(),
    };
    let steps = Steps::default();
    let token = case
        .login(Login {
            otp: Some(&otp),
            progress: Some(&steps),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", case.logs.text()));
    case.consume(&token).await;
    assert_eq!(otp.asked.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(case.server.entries(EntryKind::SmsOtp), 1);
    assert_eq!(case.server.entries(EntryKind::Totp), 0);
    assert_eq!(case.server.entries(EntryKind::Pin), 1);
    assert_eq!(
        steps.started(),
        ["launch", "open", "mobile", "otp", "pin", "capture", "close"]
    );
    let mut secrets = case.secrets(Some(token.expose_secret()), None);
    secrets.push(case.server.sms_otp());
    case.assert_logs_clean(&secrets);
    case.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_totp_on_the_code_input_page_is_fatal_and_sent_once() {
    if browser_tests_skipped("wrong_totp_code_input") {
        return;
    }
    for submission in [Submission::Auto, Submission::Button] {
        let variant = PageVariant {
            submission,
            ..PageVariant::default()
        };
        let (case, err) = failing(
            variant,
            Duration::from_secs(10),
            Login {
                totp_secret: Some("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"),
                ..Default::default()
            },
        )
        .await;
        assert!(err.is_fatal(), "{err}");
        assert_eq!(err.step(), Some(Step::Totp), "{err}");
        assert!(err.to_string().contains("Invalid Totp entered"), "{err}");
        assert_eq!(case.server.entries(EntryKind::Totp), 1);
        assert_eq!(case.server.entries(EntryKind::Pin), 0);
        case.assert_clean();
    }
}

/// Counts TCP connections to a loopback port until dropped.
struct Tally {
    port: u16,
    hits: std::sync::Arc<std::sync::atomic::AtomicU32>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Tally {
    fn start() -> Tally {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (h, s) = (hits.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok(_) => {
                        h.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Tally { port, hits, stop }
    }

    fn hits(&self) -> u32 {
        self.hits.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for Tally {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracker_hosts_are_never_contacted() {
    if browser_tests_skipped("trackers") {
        return;
    }
    // The page loads a tag-manager script; Chromium is told that host lives on a local
    // port that counts connections. Without blocking it is contacted, with it never.
    for block in [false, true] {
        let tally = Tally::start();
        let mut case = Case::start(MockOptions::default()).await;
        case.settings.block_trackers = block;
        case.settings.extra_args.push(format!(
            "host-resolver-rules=MAP www.googletagmanager.com 127.0.0.1:{}",
            tally.port
        ));
        let token = case
            .login(Login::default())
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", case.logs.text()));
        case.consume(&token).await;
        if block {
            assert_eq!(tally.hits(), 0, "a tracker host was contacted");
        } else {
            assert!(
                tally.hits() > 0,
                "the control run never reached the tracker: the test proves nothing"
            );
        }
        case.assert_clean();
    }
}
