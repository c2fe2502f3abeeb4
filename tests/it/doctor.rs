//! `dhan-login doctor`: the API key is checked with at most one consent, the consent
//! page's screen is reported, and nothing is ever typed into it.
#![cfg(feature = "browser")]

use crate::common;

use common::{Stand, browser_tests_skipped, run};
use dhan_login::mock::{Endpoint, Fault};
use serde_json::Value;

fn report(run: &common::Run) -> Value {
    serde_json::from_str(run.stdout.trim()).unwrap_or_else(|e| panic!("not JSON ({e}):\n{run}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_reports_the_mobile_screen_spends_one_consent_and_types_nothing() {
    if browser_tests_skipped("doctor_mobile") {
        return;
    }
    let stand = Stand::start().await;
    let first = run(stand.cli(["doctor", "--json"]), None).await;
    first.assert_ok();
    let r = report(&first);
    assert_eq!(r["screen"], "mobile", "{first}");
    assert_eq!(r["consent"], "generated", "{first}");
    assert!(r["artifacts"].is_null(), "{first}");
    // How Chromium ran: sandboxed, and never as root.
    let browser = r["browser"].as_str().unwrap_or_default();
    assert!(browser.ends_with("with its sandbox on"), "{first}");
    assert!(!browser.contains("as root"), "{first}");
    // Only the page itself was loaded: no mobile, code or PIN was posted.
    assert_eq!(stand.server.calls(Endpoint::GenerateConsent), 1);
    assert_eq!(stand.server.calls(Endpoint::ConsentLoginPage), 1, "{first}");
    assert_eq!(stand.server.logins(), 0);

    // A second doctor and then a real login both reuse the pending consent.
    let again = run(stand.cli(["doctor", "--json"]), None).await;
    again.assert_ok();
    assert_eq!(report(&again)["consent"], "reused");
    let login = run(stand.cli(["login", "--via", "browser"]), None).await;
    login.assert_ok();
    assert_eq!(stand.server.calls(Endpoint::GenerateConsent), 1, "{login}");

    // Human output names the screen and promises nothing was typed.
    let human = run(stand.cli(["doctor"]), None).await;
    human.assert_ok();
    assert!(
        human.stdout.contains("shows the `mobile` screen"),
        "{human}"
    );
    assert!(human.stdout.contains("nothing was typed"), "{human}");
    assert!(
        human.stdout.contains("browser: Chromium runs as "),
        "{human}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_on_a_page_it_cannot_recognise_fails_with_artifacts() {
    if browser_tests_skipped("doctor_unknown") {
        return;
    }
    let stand = Stand::start().await;
    // A page with nothing the classifier knows: a captcha-like challenge.
    let body = "<!doctype html><title>Check</title><h1>Verify you are human</h1>\
                <p>Tick the box to continue.</p><input type=checkbox><button>Next</button>";
    stand.server.set_fault(
        Endpoint::ConsentLoginPage,
        Fault::Respond {
            status: 200,
            body: body.into(),
            content_type: "text/html".into(),
        },
    );
    let out = run(stand.cli(["doctor", "--json"]), None).await;
    out.assert_code(1);
    let r = report(&out);
    assert_eq!(r["screen"], "unknown", "{out}");
    let reasons = r["reasons"].to_string();
    assert!(reasons.contains("no mobile field"), "{reasons}");
    assert!(reasons.contains("Verify you are human"), "{reasons}");
    let dir = r["artifacts"].as_str().expect("artifacts were saved");
    let png =
        std::fs::read(std::path::Path::new(dir).join("screenshot.png")).expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG"));
    assert_eq!(stand.server.logins(), 0);
    assert_eq!(stand.server.calls(Endpoint::GenerateConsent), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_with_a_wrong_api_secret_says_so_before_any_browser() {
    let stand = Stand::start().await;
    let mut cmd = stand.cli(["doctor"]);
    cmd.env("DHAN_API_SECRET", "not-the-secret");
    let out = run(cmd, None).await;
    assert!(!out.success(), "{out}");
    assert_eq!(stand.server.calls(Endpoint::ConsentLoginPage), 0, "{out}");
    assert!(!out.stderr.contains("not-the-secret"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_printed_page_profile_is_a_valid_override_file() {
    let stand = Stand::start().await;
    let out = run(stand.cli(["config", "page-profile"]), None).await;
    out.assert_ok();
    let file = stand.sandbox.path().join("selectors.toml");
    std::fs::write(&file, &out.stdout).unwrap();
    let loaded =
        dhan_login::browser::SelectorProfile::load(Some(&file)).expect("loads as a user file");
    assert_eq!(
        loaded,
        dhan_login::browser::SelectorProfile::built_in().unwrap()
    );
    assert!(out.stdout.contains("pin_words"), "{out}");
}
