//! The browser login end to end: real headless Chromium against the local stand-in.
//!
//! Every case has its own stand-in, consent, artifacts folder and Chromium profile, so
//! the cases run in parallel. After each one, no process of its Chromium may be left and
//! its profile directory must be gone. Set DHAN_LOGIN_SKIP_BROWSER_TESTS=1 to skip them
//! on a machine without Chromium.
#![cfg(feature = "browser")]

use crate::common::browser_support as support;
use crate::common::browser_tests_skipped;

use std::time::Duration;

use dhan_login::mock::{Endpoint, EntryKind, Fault, Markup, MockAccount, MockOptions, PageVariant};
use dhan_login::{
    ErrorClass,
    browser::{BrowserError, Limit, Step},
};
use secrecy::ExposeSecret;
use support::{Case, Login, Steps, files_under, session_processes};
use url::Url;

/// Not the stand-in's secret: every code it makes is wrong there.
const WRONG_TOTP_SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

async fn happy(variant: PageVariant, redirect_configured: bool) {
    let case = Case::start(MockOptions {
        page_variant: variant,
        ..Default::default()
    })
    .await;
    let redirect = Url::parse(&case.server.account().redirect_url).unwrap();
    let steps = Steps::default();
    let token = case
        .login(Login {
            redirect: redirect_configured.then_some(&redirect),
            progress: Some(&steps),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("{variant:?}: {e}\n{}", case.logs.text()));
    let grant = case.consume(&token).await;
    assert!(grant["accessToken"].is_string(), "{grant}");
    assert_eq!(
        steps.started(),
        [
            "launch", "open", "mobile", "totp", "pin", "capture", "close"
        ]
    );
    case.assert_clean();
    case.assert_logs_clean(&case.secrets(Some(token.expose_secret()), None));
    assert!(
        !case.artifacts_dir().exists(),
        "a successful login leaves no artifacts"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classic_login_returns_a_token_id_the_stand_in_accepts() {
    if browser_tests_skipped("classic_login") {
        return;
    }
    happy(PageVariant::classic(), true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spa_login_with_auto_submit_returns_a_token_id() {
    if browser_tests_skipped("spa_login") {
        return;
    }
    // Without a configured redirect URL: the first request naming a tokenId is caught.
    happy(PageVariant::spa_classic(), false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_totp_field_login_returns_a_token_id() {
    if browser_tests_skipped("single_totp_field") {
        return;
    }
    happy(
        PageVariant {
            markup: Markup::SingleField,
            ..PageVariant::classic()
        },
        true,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_that_drops_digits_typed_in_one_go_still_logs_in() {
    if browser_tests_skipped("slow_focus") {
        return;
    }
    // Boxes that move the focus on 40 ms after a digit: the digits sent in one go pile up
    // in the first box (dropped by maxlength=1, or spread over the wrong boxes by
    // <code-input>), so the driver must empty them and type key by key. The same boxes
    // moving the focus at once take the digits in one go.
    const SLOWLY: &str = "typing key by key";
    for (markup, spa, slow_focus) in [
        (Markup::CodeInput, true, true),
        (Markup::PasswordPin, false, true),
        (Markup::CodeInput, true, false),
        (Markup::PasswordPin, false, false),
    ] {
        let variant = PageVariant {
            markup,
            spa,
            slow_focus,
            ..PageVariant::default()
        };
        let case = Case::start(MockOptions {
            page_variant: variant,
            ..Default::default()
        })
        .await;
        let record = case.dir.path().join("record");
        let token = case
            .login(Login {
                record_dir: Some(&record),
                ..Default::default()
            })
            .await
            .unwrap_or_else(|e| panic!("{variant:?}: {e}\n{}", case.logs.text()));
        let grant = case.consume(&token).await;
        assert!(grant["accessToken"].is_string(), "{grant}");
        assert_eq!(case.server.entries(EntryKind::Totp), 1, "{variant:?}");
        assert_eq!(case.server.entries(EntryKind::Pin), 1, "{variant:?}");
        let log = std::fs::read_to_string(record.join("steps.log")).expect("the step log");
        assert_eq!(
            log.matches(SLOWLY).count(),
            if slow_focus { 2 } else { 0 },
            "{variant:?}: once per code screen, and only where the page dropped digits\n{log}"
        );
        case.assert_clean();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boxes_that_take_no_keys_never_get_a_code_sent() {
    if browser_tests_skipped("keys_ignored") {
        return;
    }
    for spa in [true, false] {
        let mut case = Case::start(MockOptions {
            page_variant: PageVariant {
                spa,
                keys_ignored: true,
                ..PageVariant::default()
            },
            ..Default::default()
        })
        .await;
        case.settings.step_timeout = Duration::from_secs(10);
        let err = case
            .login(Login::default())
            .await
            .expect_err("no digit lands: no token");
        let text = err.to_string();
        assert!(text.contains("did not take the key events"), "{text}");
        assert_eq!(err.step(), Some(Step::Totp), "{err}");
        assert_eq!(case.server.entries(EntryKind::Mobile), 1, "spa {spa}");
        assert_eq!(case.server.entries(EntryKind::Totp), 0, "spa {spa}");
        assert_eq!(case.server.entries(EntryKind::Pin), 0, "spa {spa}");
        case.assert_clean();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_totp_is_fatal_and_submitted_once() {
    if browser_tests_skipped("wrong_totp") {
        return;
    }
    let case = Case::start(MockOptions::default()).await;
    let err = case
        .login(Login {
            totp_secret: Some(WRONG_TOTP_SECRET),
            ..Default::default()
        })
        .await
        .expect_err("a wrong TOTP must fail");
    assert!(err.is_fatal(), "{err}");
    assert_eq!(err.class(), ErrorClass::CredentialRejected);
    assert_eq!(err.step(), Some(Step::Totp));
    let text = err.to_string();
    assert!(text.contains("Invalid Totp entered"), "{text}");
    // Page, mobile form, one TOTP form: a second TOTP post would be a fourth call.
    assert_eq!(case.server.calls(Endpoint::ConsentLoginPage), 3);
    case.assert_clean();
    case.assert_logs_clean(&case.secrets(None, Some(WRONG_TOTP_SECRET)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_pin_is_fatal_with_the_pages_message() {
    if browser_tests_skipped("wrong_pin") {
        return;
    }
    let case = Case::start(MockOptions::default()).await;
    let err = case
        .login(Login {
            pin: Some("000000"),
            ..Default::default()
        })
        .await
        .expect_err("a wrong PIN must fail");
    assert!(err.is_fatal(), "{err}");
    assert_eq!(err.class(), ErrorClass::CredentialRejected);
    assert_eq!(err.step(), Some(Step::Pin));
    assert!(
        err.to_string().contains("Incorrect PIN, please try again"),
        "{err}"
    );
    // Page, mobile, TOTP, one PIN post.
    assert_eq!(case.server.calls(Endpoint::ConsentLoginPage), 4);
    case.assert_clean();
    let mut secrets = case.secrets(None, None);
    secrets.push("000000".into());
    case.assert_logs_clean(&secrets);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_pin_boxes_fail_with_safe_artifacts() {
    if browser_tests_skipped("missing_pin_boxes") {
        return;
    }
    let mut case = Case::start(MockOptions {
        page_variant: PageVariant {
            markup: Markup::MissingPinBoxes,
            ..PageVariant::classic()
        },
        ..Default::default()
    })
    .await;
    case.settings.step_timeout = Duration::from_secs(3);
    let record = case.dir.path().join("record");
    let err = case
        .login(Login {
            record_dir: Some(&record),
            ..Default::default()
        })
        .await
        .expect_err("no PIN boxes, no login");
    assert!(!err.is_fatal(), "{err}");
    let BrowserError::ScreenUnknown {
        step,
        ref seen,
        limit,
        ..
    } = err
    else {
        panic!("expected ScreenUnknown, got {err}");
    };
    // The TOTP was answered; what came next had a PIN heading and nothing to type into.
    assert_eq!(step, Step::Totp);
    assert!(seen.contains("no group of digit inputs"), "{seen}");
    assert!(seen.contains("pin"), "{seen}");
    assert_eq!(limit, Limit::Step(Duration::from_secs(3)));
    let text = err.to_string();
    let dir = err
        .artifacts_dir()
        .expect("artifacts were saved")
        .to_path_buf();
    assert!(text.contains("step `totp`"), "{text}");
    assert!(text.contains("Enter PIN"), "{text}");
    assert!(text.contains(&dir.display().to_string()), "{text}");
    assert!(dir.starts_with(case.artifacts_dir()));

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }
    let png = std::fs::read(dir.join("screenshot.png")).expect("screenshot.png");
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    let html = std::fs::read_to_string(dir.join("page.html")).expect("page.html");
    assert!(html.contains("Enter PIN"), "the page is the PIN screen");
    let log = std::fs::read_to_string(dir.join("steps.log")).expect("steps.log");
    for step in ["launch", "open", "mobile", "totp"] {
        assert!(log.contains(step), "{log}");
    }
    // What each look saw, with its reasons, is in the log.
    assert!(
        log.contains("matched screen: `totp (six digit boxes"),
        "{log}"
    );
    assert!(log.contains("no group of digit inputs"), "{log}");

    // Artifacts and the recording of each screen, byte for byte: no secret anywhere.
    let secrets = case.secrets(None, None);
    let mut files = files_under(&dir);
    files.extend(files_under(&record));
    assert!(
        files.iter().any(|f| f.ends_with("02-totp.json")),
        "{files:?}"
    );
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        for s in &secrets {
            assert!(!text.contains(s.as_str()), "{} holds a secret", f.display());
        }
    }
    case.assert_clean();
    case.assert_logs_clean(&secrets);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_to_a_host_that_does_not_resolve_is_still_captured() {
    if browser_tests_skipped("unresolvable_redirect") {
        return;
    }
    let redirect = Url::parse("https://callback.invalid/dhan").unwrap();
    let case = Case::start(MockOptions {
        account: MockAccount {
            redirect_url: redirect.to_string(),
            ..MockAccount::demo()
        },
        ..Default::default()
    })
    .await;
    let token = case
        .login(Login {
            redirect: Some(&redirect),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", case.logs.text()));
    case.consume(&token).await;
    case.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_pages_within_the_step_timeout_succeed() {
    if browser_tests_skipped("slow_pages") {
        return;
    }
    let mut case = Case::start(MockOptions::default()).await;
    case.settings.step_timeout = Duration::from_secs(4);
    case.server.set_fault(
        Endpoint::ConsentLoginPage,
        Fault::Delay(Duration::from_millis(800)),
    );
    let token = case
        .login(Login::default())
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", case.logs.text()));
    case.consume(&token).await;
    case.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_slower_than_the_step_timeout_ends_in_a_clean_timeout() {
    if browser_tests_skipped("too_slow") {
        return;
    }
    let mut case = Case::start(MockOptions::default()).await;
    case.settings.step_timeout = Duration::from_millis(2500);
    // The page would come after a minute; the login must give up long before it. The
    // margin is wide: launch, the failure report (up to 5 s for a page with no document
    // yet) and close took 10.6 s on a loaded machine.
    case.server.set_fault(
        Endpoint::ConsentLoginPage,
        Fault::Delay(Duration::from_secs(60)),
    );
    let started = std::time::Instant::now();
    let err = case.login(Login::default()).await.expect_err("too slow");
    assert!(
        started.elapsed() < Duration::from_secs(40),
        "waited {:?} for a page that takes 60 s, with a 2.5 s step limit",
        started.elapsed()
    );
    assert!(
        matches!(
            err,
            BrowserError::Timeout {
                step: Step::Open,
                limit: Limit::Step(_),
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.class(), ErrorClass::Transient);
    assert!(!err.is_fatal());
    assert!(err.to_string().contains("step `open`"), "{err}");
    case.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_consent_is_fatal() {
    if browser_tests_skipped("expired_consent") {
        return;
    }
    let mut case = Case::start(MockOptions::default()).await;
    case.consent_id = "00000000-0000-0000-0000-000000000000".into();
    let err = case
        .login(Login::default())
        .await
        .expect_err("unknown consent");
    assert!(
        matches!(
            err,
            BrowserError::ConsentExpired {
                step: Step::Open,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.is_fatal());
    assert!(
        err.to_string()
            .contains("Consent has expired or is invalid"),
        "{err}"
    );
    case.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_login_midway_leaves_no_process_or_profile() {
    if browser_tests_skipped("dropped_login") {
        return;
    }
    // The Spa draws nothing for a long while: the login is surely mid-flight when dropped.
    let case = Case::start(MockOptions {
        page_variant: PageVariant::spa_classic(),
        spa_render_delay: Duration::from_secs(30),
        ..Default::default()
    })
    .await;
    let login = case.login(Login::default());
    let watcher = async {
        // While the browser runs: its flags reached Chromium as real switches.
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let Some((profile, session)) = case.session_markers() else {
                continue;
            };
            let procs = session_processes(&profile, &session);
            let browser = procs
                .iter()
                .find(|p| p.contains("--user-data-dir=") && !p.contains("--type="));
            let Some(browser) = browser else {
                continue;
            };
            return browser.clone();
        }
    };
    let (outcome, browser_cmdline) = tokio::join!(
        tokio::time::timeout(Duration::from_secs(3), login),
        tokio::time::timeout(Duration::from_secs(3), watcher)
    );
    assert!(outcome.is_err(), "the login should still have been running");
    let cmdline = browser_cmdline.expect("the browser process was seen");
    assert!(cmdline.contains(" --disable-quic"), "{cmdline}");
    assert!(cmdline.contains(" --no-startup-window"), "{cmdline}");
    assert!(!cmdline.contains("----"), "{cmdline}");
    // Root's Chromium runs as another user, with its sandbox.
    assert!(!cmdline.contains(" --no-sandbox"), "{cmdline}");
    case.assert_clean();
}

/// This process's effective uid, from /proc/self/status.
fn my_uid() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))?
                .split_whitespace()
                .nth(2)?
                .parse()
                .ok()
        })
        .expect("/proc/self/status names the uid")
}

/// A consent page nobody answers is a navigation error with Chromium's own reason, not a
/// page the driver looks at until its deadline, and nothing of the browser is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consent_page_nobody_answers_is_a_navigation_error() {
    if browser_tests_skipped("consent_page_unreachable") {
        return;
    }
    let case = Case::start(MockOptions::default()).await;
    // A port that was just free: nothing listens there now.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let url = Url::parse(&format!(
        "http://127.0.0.1:{port}/login/consentApp-login?consentAppId=x"
    ))
    .unwrap();
    let err = case
        .login(Login {
            consent_url: Some(url),
            ..Login::default()
        })
        .await
        .expect_err("nothing listens there");
    let text = err.to_string();
    assert!(
        matches!(
            err,
            BrowserError::Navigation {
                step: Step::Open,
                ..
            }
        ),
        "{text}"
    );
    assert!(text.contains("ERR_CONNECTION_REFUSED"), "{text}");
    case.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_login_during_launch_leaves_nothing() {
    if browser_tests_skipped("dropped_during_launch") {
        return;
    }
    let case = Case::start(MockOptions::default()).await;
    // Chromium needs ~250 ms to say where DevTools listens: this drops it before that.
    let outcome =
        tokio::time::timeout(Duration::from_millis(120), case.login(Login::default())).await;
    assert!(outcome.is_err(), "the launch cannot have finished");
    case.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_selector_profile_overrides_the_built_in_one() {
    if browser_tests_skipped("user_selectors") {
        return;
    }
    let mut case = Case::start(MockOptions::default()).await;
    let file = case.dir.path().join("selectors.toml");
    std::fs::write(&file, "mobile_input = ['input[', '#no-such-field']\n").unwrap();
    case.settings.selectors = Some(file);
    // The page is doubtful at once; the deadline only bounds a loaded machine.
    case.settings.step_timeout = Duration::from_secs(15);
    let err = case
        .login(Login::default())
        .await
        .expect_err("no such field");
    let text = err.to_string();
    // Without its mobile candidates the page's tel field is a digit field of the wrong
    // size: nothing is typed.
    assert!(
        matches!(
            err,
            BrowserError::Doubtful {
                step: Step::Open,
                ..
            }
        ),
        "{text}"
    );
    assert!(text.contains("maxlength (10)"), "{text}");
    // The invalid candidate is reported once, not silently ignored.
    assert!(case.logs.text().contains("rejects this candidate"));
    case.assert_clean();
}

#[tokio::test]
async fn a_missing_browser_is_a_config_error_naming_what_was_tried() {
    let mut case = Case::start(MockOptions::default()).await;
    case.settings.executable = Some("/nonexistent/chromium".into());
    let err = case.login(Login::default()).await.expect_err("no browser");
    assert_eq!(err.class(), ErrorClass::Config);
    assert!(!err.is_fatal());
    assert!(err.to_string().contains("/nonexistent/chromium"), "{err}");
}

/// Not a check: the timing quoted in the docs. Run with
/// `cargo test --release --test it -- --ignored --nocapture browser::classic_login_timing`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark, run by hand"]
async fn classic_login_timing() {
    let mut to_token = Vec::new();
    let mut whole = Vec::new();
    for run in 1..=5 {
        let case = Case::start(MockOptions::default()).await;
        support::fresh_totp_window(Duration::from_secs(8)).await;
        let steps = Steps::default();
        let t = std::time::Instant::now();
        case.login(Login {
            progress: Some(&steps),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        let total = t.elapsed();
        let token_at = steps.ended("capture").expect("capture step ended");
        let parts: Vec<String> = steps
            .durations()
            .iter()
            .map(|(s, d)| format!("{s} {:.0}", d.as_secs_f64() * 1000.0))
            .collect();
        eprintln!(
            "run {run}: launch->tokenId {:.0} ms, whole call {:.0} ms ({} ms)",
            token_at.as_secs_f64() * 1000.0,
            total.as_secs_f64() * 1000.0,
            parts.join(", ")
        );
        to_token.push(token_at);
        whole.push(total);
        case.assert_clean();
    }
    to_token.sort();
    whole.sort();
    eprintln!(
        "median of 5: launch->tokenId {:.0} ms, whole call {:.0} ms",
        to_token[2].as_secs_f64() * 1000.0,
        whole[2].as_secs_f64() * 1000.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_is_dismissed_and_its_error_text_is_fatal() {
    if browser_tests_skipped("alert") {
        return;
    }
    let case = Case::start(MockOptions::default()).await;
    // A page that blocks in alert() before its form even exists.
    let body = "<!doctype html><script>alert('Your account is blocked. Contact support.')</script>\
                <form method=post><input type=tel formcontrolname=mobileNumber>\
                <button type=submit>Proceed</button></form>";
    case.server.set_fault(
        Endpoint::ConsentLoginPage,
        Fault::Respond {
            status: 200,
            body: body.into(),
            content_type: "text/html".into(),
        },
    );
    let err = case.login(Login::default()).await.expect_err("blocked");
    assert!(matches!(err, BrowserError::Rejected { .. }), "{err}");
    assert!(err.is_fatal());
    assert!(err.to_string().contains("account is blocked"), "{err}");
    case.assert_clean();
}

/// A login on the default page, watching its Chromium's processes: every command line seen.
async fn login_watching_processes(case: &Case) -> Vec<String> {
    let seen = std::sync::Mutex::new(Vec::<String>::new());
    let watch = async {
        loop {
            tokio::time::sleep(Duration::from_millis(40)).await;
            if let Some((profile, session)) = case.session_markers() {
                let mut seen = seen.lock().unwrap();
                let found = session_processes(&profile, &session);
                // A child that rewrites its title overwrites its environment (the session
                // marker) too: descendants are also found as the browser's (a sandboxed
                // renderer is a zygote's grandchild).
                let pids: Vec<u32> = found
                    .iter()
                    .filter_map(|p| p.split_once(": ")?.0.parse().ok())
                    .collect();
                for p in found.into_iter().chain(descendants_of(&pids)) {
                    // The pid goes, its uids stay: one process is one line.
                    let Some((pid, cmdline)) = p.split_once(": ") else {
                        continue;
                    };
                    let Some(uids) = uids_of(pid) else {
                        continue;
                    };
                    let line = format!("uid {uids}: {cmdline}");
                    if !seen.contains(&line) {
                        seen.push(line);
                    }
                }
            }
        }
    };
    let token = tokio::select! {
        token = case.login(Login::default()) => token,
        () = watch => unreachable!("the watcher never ends"),
    };
    let token = token.unwrap_or_else(|e| panic!("{e}\n{}", case.logs.text()));
    let grant = case.consume(&token).await;
    assert!(grant["accessToken"].is_string(), "{grant}");
    case.assert_clean();
    seen.into_inner().unwrap()
}

/// "real effective" uids of a live process, from /proc/PID/status.
fn uids_of(pid: &str) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let uids: Vec<&str> = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .take(2)
        .collect();
    Some(uids.join(" "))
}

/// "pid: command line" of every live process below one of `parents`.
fn descendants_of(parents: &[u32]) -> Vec<String> {
    let mut all = Vec::new();
    let mut level = children_of(parents);
    while !level.is_empty() {
        let pids: Vec<u32> = level
            .iter()
            .filter_map(|p| p.split_once(": ")?.0.parse().ok())
            .collect();
        all.append(&mut level);
        level = children_of(&pids);
    }
    all
}

/// "pid: command line" of every live process whose parent is one of `parents`.
fn children_of(parents: &[u32]) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
            let ppid: u32 = status
                .lines()
                .find_map(|l| l.strip_prefix("PPid:"))?
                .trim()
                .parse()
                .ok()?;
            if !parents.contains(&ppid) {
                return None;
            }
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            Some(format!("{pid}: {cmdline}"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_has_a_process_of_its_own_unless_chromium_runs_as_one() {
    if browser_tests_skipped("single_process") {
        return;
    }
    let renderer = |seen: &[String]| seen.iter().any(|c| c.contains("--type=renderer"));
    let case = Case::start(MockOptions {
        page_variant: PageVariant::default(),
        ..Default::default()
    })
    .await;
    // With the sandbox on, for root too (Chromium then runs as another user), the page
    // has a sandboxed renderer of its own.
    let seen = login_watching_processes(&case).await;
    assert!(renderer(&seen), "{seen:#?}");
    assert!(
        seen.iter().all(|c| !c.contains("--single-process")),
        "{seen:#?}"
    );

    let mut case = Case::start(MockOptions {
        page_variant: PageVariant::default(),
        ..Default::default()
    })
    .await;
    case.settings.single_process = Some(true);
    let seen = login_watching_processes(&case).await;
    assert!(!renderer(&seen), "{seen:#?}");
    assert!(seen.iter().all(|c| !c.contains("--type=")), "{seen:#?}");
    assert!(
        seen.iter().any(|c| c.contains(" --single-process")),
        "{seen:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_root_login_runs_chromium_as_another_user_with_its_sandbox_on() {
    if browser_tests_skipped("sandbox") {
        return;
    }
    let case = Case::start(MockOptions::default()).await;
    let seen = login_watching_processes(&case).await;
    let me = my_uid();
    let ran_as = |line: &String| -> Vec<u32> {
        line.strip_prefix("uid ")
            .and_then(|rest| rest.split_once(':'))
            .map(|(uids, _)| uids.split(' ').filter_map(|u| u.parse().ok()).collect())
            .unwrap_or_default()
    };
    // The page's renderer is among them: the page itself ran unprivileged, sandboxed.
    assert!(
        seen.iter().any(|c| c.contains("--type=renderer")),
        "{seen:#?}"
    );
    for line in &seen {
        let uids = ran_as(line);
        assert_eq!(uids.len(), 2, "{line}");
        if me == 0 {
            // Not root, neither real nor effective, in any process of the tree.
            assert!(uids.iter().all(|u| *u != 0), "{seen:#?}");
        } else {
            // Another user's login is unchanged: Chromium runs as that user.
            assert!(uids.iter().all(|u| *u == me), "{seen:#?}");
        }
        assert!(!line.contains("--no-sandbox"), "{seen:#?}");
        assert!(!line.contains("--single-process"), "{seen:#?}");
    }
    if me == 0 {
        let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
        let dedicated: u32 = passwd
            .lines()
            .find_map(|l| l.strip_prefix("dhan-login-chromium:x:"))
            .and_then(|rest| rest.split(':').next()?.parse().ok())
            .expect("the dedicated user was created");
        assert!(
            seen.iter().all(|l| ran_as(l) == [dedicated, dedicated]),
            "{seen:#?}"
        );
    }
}
