//! Dhan's 2-minute mint window, kept by every process: one generateAccessToken attempt per
//! client id within 125 s, recorded before it is sent; Dhan's throttle answer (which an
//! early attempt re-arms) is a wait, never a rejected credential.

use std::time::Duration;

use chrono::{NaiveDateTime, TimeZone, Utc};
use dhan_login::mock::{Endpoint, MockOptions};
use dhan_login::{ErrorClass, api::DhanApi};
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::Value;

use common::stand_in::{current_code, direct_login, ist};
use common::{Run, Stand};

use crate::common;

const THROTTLED: &str = "Token can be generated once every 2 minutes.";

/// A stand-in whose generateAccessToken keeps Dhan's window of `secs`.
async fn stand(secs: u64) -> Stand {
    Stand::start_with(MockOptions {
        mint_interval: Duration::from_secs(secs),
        ..MockOptions::default()
    })
    .await
}

/// `login --via totp` with the mint window every real run has (the sandbox turns it off).
async fn login(stand: &Stand) -> Run {
    let mut cmd = stand.cli(["login", "--via", "totp"]);
    cmd.env_remove("DHAN_LOGIN_MINT_INTERVAL_SECS");
    common::run(cmd, None).await
}

/// The IST time the refusal names as the next allowed attempt.
fn next_allowed(run: &Run) -> chrono::DateTime<Utc> {
    let marker = "next attempt is allowed at ";
    let at = run
        .stderr
        .find(marker)
        .unwrap_or_else(|| panic!("no next attempt named:\n{run}"))
        + marker.len();
    let text = &run.stderr[at..at + "2026-01-01 00:00:00 IST".len()];
    assert!(text.ends_with(" IST"), "{text}");
    let naive = NaiveDateTime::parse_from_str(&text[..19], "%Y-%m-%d %H:%M:%S").unwrap();
    ist()
        .from_local_datetime(&naive)
        .unwrap()
        .with_timezone(&Utc)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_stand_in_refuses_a_token_within_its_window_and_every_attempt_restarts_it() {
    let stand = stand(20).await;
    let s = &stand.server;
    let pin = s.account().pin.clone();
    let first = direct_login(s, &pin, &current_code(s)).await;
    assert_eq!(first.status(), StatusCode::OK);
    let body: Value = first.json().await.unwrap();
    assert!(body["accessToken"].is_string(), "{body}");

    tokio::time::sleep(Duration::from_secs(10)).await;
    let second = direct_login(s, &pin, &current_code(s)).await;
    // Dhan's shape: HTTP 200 with an error body.
    assert_eq!(second.status(), StatusCode::OK);
    let body: Value = second.json().await.unwrap();
    assert_eq!(body["status"], "error", "{body}");
    assert_eq!(body["message"], THROTTLED, "{body}");

    // More than 20 s after the token, but within 20 s of the refused attempt: still
    // refused, because that attempt restarted the window.
    tokio::time::sleep(Duration::from_secs(12)).await;
    let third = direct_login(s, &pin, &current_code(s)).await;
    let body: Value = third.json().await.unwrap();
    assert_eq!(body["message"], THROTTLED, "{body}");
    assert_eq!(s.logins(), 1);
    assert_eq!(s.calls(Endpoint::GenerateAccessToken), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_throttle_answer_is_a_wait_of_125_s_never_a_credential_rejection() {
    let stand = stand(120).await;
    let s = &stand.server;
    let a = s.account().clone();
    let api = DhanApi::new(s.auth_base_url(), s.api_base_url());
    let pin = SecretString::from(a.pin.clone());
    api.generate_access_token(&a.client_id, &pin, &SecretString::from(current_code(s)))
        .await
        .expect("the first token");
    let e = api
        .generate_access_token(&a.client_id, &pin, &SecretString::from(current_code(s)))
        .await
        .expect_err("within the window");
    assert_eq!(e.class(), ErrorClass::RateLimited, "{e}");
    assert_eq!(e.retry_after(), Some(Duration::from_secs(125)), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_process_within_125_s_sends_nothing_and_exits_5_naming_the_ist_time() {
    let stand = stand(120).await;
    let before = Utc::now();
    let first = login(&stand).await;
    first.assert_ok();
    let second = login(&stand).await;
    second.assert_class(ErrorClass::Transient);
    assert_eq!(
        stand.server.calls(Endpoint::GenerateAccessToken),
        1,
        "the second process sent a request:\n{second}"
    );
    // 125 s after the first attempt, which was made between `before` and now.
    let next = next_allowed(&second);
    let lo = before + chrono::Duration::seconds(124);
    let hi = Utc::now() + chrono::Duration::seconds(125);
    assert!(
        lo <= next && next <= hi,
        "{next} not in {lo}..{hi}:\n{second}"
    );
    assert!(!second.stderr.contains(first.out()), "the token leaked");
    // A wait is no lockout: nothing was recorded against the PIN or the TOTP secret.
    assert!(!stand.sandbox.state_dir().join("lockouts").exists());

    // `status` shows the closed window and the same next attempt, and sends nothing.
    let named = next
        .with_timezone(&ist())
        .format("%Y-%m-%d %H:%M:%S IST")
        .to_string();
    let status = |json: bool| {
        let mut cmd = stand.cli(if json {
            &["status", "--json"][..]
        } else {
            &["status"][..]
        });
        cmd.env_remove("DHAN_LOGIN_MINT_INTERVAL_SECS");
        common::run(cmd, None)
    };
    let text = status(false).await;
    assert!(
        text.stdout
            .contains(&format!("mint window: closed until {named}")),
        "{text}"
    );
    let json: Value = serde_json::from_str(status(true).await.assert_ok().out()).unwrap();
    assert_eq!(
        json["mint_window"]["closed_until_ist"],
        named.as_str(),
        "{json}"
    );
    assert_eq!(json["mint_window"]["last_outcome"], "minted", "{json}");
    assert_eq!(stand.server.calls(Endpoint::GenerateAccessToken), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_processes_started_together_send_one_request() {
    let stand = stand(120).await;
    let (a, b) = tokio::join!(login(&stand), login(&stand));
    assert_eq!(
        stand.server.calls(Endpoint::GenerateAccessToken),
        1,
        "\n{a}\n{b}"
    );
    assert!(a.success() || b.success(), "\n{a}\n{b}");
    for run in [&a, &b] {
        assert!(matches!(run.code, Some(0 | 5)), "{run}");
    }
}

/// Someone else (another tool on the same client id) minted a moment ago: Dhan's throttle
/// answer is recorded as the last attempt, so the next run waits 125 s from it and sends
/// nothing; and the PIN and TOTP secret are not locked.
#[tokio::test(flavor = "multi_thread")]
async fn dhans_throttle_answer_restarts_our_window_and_locks_nothing() {
    let stand = stand(120).await;
    let s = &stand.server;
    let elsewhere = direct_login(s, &s.account().pin.clone(), &current_code(s)).await;
    assert_eq!(elsewhere.status(), StatusCode::OK);

    let throttled = login(&stand).await;
    throttled.assert_class(ErrorClass::Transient);
    assert!(throttled.stderr.contains("rate limited"), "{throttled}");
    let state = stand.sandbox.state_dir();
    let recorded: Value = serde_json::from_slice(
        &std::fs::read(
            state
                .join("mints")
                .join(format!("{}.json", s.account().client_id)),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(recorded["outcome"], "throttled", "{recorded}");
    assert_eq!(s.calls(Endpoint::GenerateAccessToken), 2);

    let again = login(&stand).await;
    again.assert_class(ErrorClass::Transient);
    assert!(again.stderr.contains("(throttled)"), "{again}");
    assert_eq!(s.calls(Endpoint::GenerateAccessToken), 2, "{again}");
    assert!(
        !state.join("lockouts").exists(),
        "a throttle locked the credentials"
    );
}

/// `DHAN_LOGIN_MINT_INTERVAL_SECS` shortens the window only against a stand-in on a
/// loopback address: against Dhan's own host 125 s holds, whatever it says.
#[test]
fn a_shorter_window_holds_only_for_a_stand_in_on_loopback() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.toml"), "").unwrap();
    let interval = |auth: &str| {
        let env = [
            (
                "DHAN_LOGIN_CONFIG",
                dir.path()
                    .join("config.toml")
                    .to_string_lossy()
                    .into_owned(),
            ),
            (
                "DHAN_LOGIN_STATE_DIR",
                dir.path().to_string_lossy().into_owned(),
            ),
            ("DHAN_LOGIN_MINT_INTERVAL_SECS", "0".to_owned()),
            ("DHAN_AUTH_BASE_URL", auth.to_owned()),
        ];
        let lookup = |k: &str| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
        let paths = dhan_login::Paths::from_env(&lookup).unwrap();
        dhan_login::Profile::load("default", &paths, &lookup)
            .unwrap()
            .mint_interval
    };
    assert_eq!(interval("https://auth.dhan.co"), Duration::from_secs(125));
    assert_eq!(interval("http://127.0.0.1:9"), Duration::ZERO);
    assert_eq!(interval("http://localhost:9"), Duration::ZERO);
    assert_eq!(dhan_login::api::MINT_INTERVAL, Duration::from_secs(125));
}
