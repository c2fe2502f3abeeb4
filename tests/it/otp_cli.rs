//! An account without TOTP: the consent page asks for a code sent by SMS or e-mail, and
//! `otp_command` (DHAN_OTP_COMMAND) supplies it. Real Chromium against the stand-in.
#![cfg(feature = "browser")]

use crate::common;

use common::pty::Pty;
use common::{Stand, browser_tests_skipped, run};
use dhan_login::ErrorClass;
use dhan_login::mock::{Endpoint, EntryKind, MockOptions, PageVariant, SecondFactor};

/// A stand-in whose page asks for an SMS OTP where the TOTP screen would be.
async fn sms_stand() -> Stand {
    Stand::start_with(MockOptions {
        page_variant: PageVariant {
            second_factor: SecondFactor::SmsOtp,
            ..PageVariant::default()
        },
        ..Default::default()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otp_command_answers_the_sms_otp_screen_without_any_totp_secret() {
    if browser_tests_skipped("otp_command") {
        return;
    }
    let stand = sms_stand().await;
    let otp = stand.server.sms_otp();
    let mut cmd = stand.cli(["login", "--via", "browser", "-vv"]);
    cmd.env_remove("DHAN_TOTP_SECRET");
    cmd.env("DHAN_OTP_COMMAND", format!("printf '%s\\n' {otp}"));
    let out = run(cmd, None).await;
    out.assert_ok();
    assert_eq!(stand.server.entries(EntryKind::SmsOtp), 1, "{out}");
    assert_eq!(stand.server.entries(EntryKind::Totp), 0, "{out}");
    assert_eq!(stand.server.entries(EntryKind::Pin), 1, "{out}");
    assert!(
        !out.stderr.contains(&otp),
        "the OTP reached the logs:\n{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_otp_source_the_sms_screen_is_a_config_error_and_nothing_is_typed() {
    if browser_tests_skipped("otp_missing") {
        return;
    }
    let stand = sms_stand().await;
    // A TOTP secret is configured, but the page asks for an SMS OTP: never the TOTP.
    let out = run(stand.cli(["login", "--via", "browser"]), None).await;
    out.assert_class(ErrorClass::Config);
    assert!(out.stderr.contains("otp_command"), "{out}");
    assert_eq!(stand.server.entries(EntryKind::SmsOtp), 0, "{out}");
    assert_eq!(stand.server.entries(EntryKind::Totp), 0, "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_terminal_the_sms_otp_is_asked_for_and_typed_unseen() {
    if browser_tests_skipped("otp_terminal") {
        return;
    }
    let stand = sms_stand().await;
    let otp = stand.server.sms_otp();
    // A TOTP secret is configured (else the browser path is not taken), but the page asks
    // for the SMS code: with no otp_command, the person at the terminal types it.
    let cmd = stand.cli(["login", "--via", "browser"]);
    let typed = otp.clone();
    let (seen, code) = tokio::task::spawn_blocking(move || {
        let mut p = Pty::spawn(cmd);
        p.expect("OTP (not shown): ");
        p.answer(&typed);
        p.finish()
    })
    .await
    .expect("the terminal session ends");
    assert_eq!(code, 0, "{seen}");
    assert_eq!(stand.server.entries(EntryKind::SmsOtp), 1, "{seen}");
    assert_eq!(stand.server.entries(EntryKind::Totp), 0, "{seen}");
    assert!(
        !seen.contains(&otp),
        "the OTP showed on the terminal:\n{seen}"
    );
}

/// A wrong code from `otp_command` is a rejection of the command (which would print a
/// wrong one again), not of the mobile, PIN or TOTP secret: the same command is refused
/// before anything is spent or typed, and a changed command lifts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_sms_code_locks_only_the_otp_command_and_a_new_command_lifts_it() {
    if browser_tests_skipped("otp_rejected") {
        return;
    }
    let stand = sms_stand().await;
    let otp = stand.server.sms_otp();
    let wrong = if otp == "000000" { "111111" } else { "000000" };
    let login = |code: &str| {
        let mut cmd = stand.cli(["login", "--via", "browser"]);
        cmd.env_remove("DHAN_TOTP_SECRET");
        cmd.env("DHAN_OTP_COMMAND", format!("printf '%s\\n' {code}"));
        cmd
    };
    let out = run(login(wrong), None).await;
    out.assert_class(ErrorClass::CredentialRejected);
    assert_eq!(stand.server.entries(EntryKind::SmsOtp), 1, "{out}");
    let file = stand.sandbox.state_dir().join("lockouts/default.json");
    let lockouts: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).expect("a lockout is recorded"))
            .expect("the lockout file is JSON");
    let named: Vec<&str> = lockouts["lockouts"]
        .as_array()
        .expect("a list of lockouts")
        .iter()
        .flat_map(|l| l["secrets"].as_array().expect("secrets").iter())
        .map(|s| s.as_str().expect("a key"))
        .collect();
    assert_eq!(named, ["otp_command"], "{lockouts}");

    // The same command: refused before a consent, the page or the PIN.
    let consents = stand.server.calls(Endpoint::GenerateConsent);
    let pages = stand.server.calls(Endpoint::ConsentLoginPage);
    let out = run(login(wrong), None).await;
    out.assert_class(ErrorClass::CredentialRejected);
    assert!(out.stderr.contains("otp_command"), "{out}");
    assert_eq!(stand.server.calls(Endpoint::GenerateConsent), consents);
    assert_eq!(stand.server.calls(Endpoint::ConsentLoginPage), pages);
    assert_eq!(stand.server.entries(EntryKind::SmsOtp), 1, "{out}");

    // A fixed command is a change: it logs in.
    let out = run(login(&otp), None).await;
    out.assert_ok();
    assert_eq!(stand.server.entries(EntryKind::SmsOtp), 2, "{out}");
}
