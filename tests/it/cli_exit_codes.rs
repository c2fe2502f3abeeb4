//! The binary's exit codes for each kind of failure (2 config, 3 credentials rejected, 4
//! consent limit, 5 network or transient), as README and `--help` document them.

use crate::common;

use std::time::Duration;

use common::cli::closed_port_url;
use common::cli::exit_of;
use common::{Sandbox, Stand, run};
use dhan_login::ErrorClass;
use dhan_login::mock::{Endpoint, Fault};

#[tokio::test(flavor = "multi_thread")]
async fn wrong_pin_exits_3_and_the_same_credentials_are_not_tried_again() {
    let s = Stand::start().await;
    let cmd = s.cli_wrong_pin(["login", "--via", "totp"]);
    let r = run(cmd, None).await;
    r.assert_class(ErrorClass::CredentialRejected);
    assert_eq!(
        s.server.calls(Endpoint::GenerateAccessToken),
        1,
        "a rejected PIN must never be retried"
    );
    let v = s.run(["status", "--json"]).await.json();
    assert_eq!(v["last_error"]["class"], "credential_rejected", "{v}");
    assert!(
        v["locked"].is_object(),
        "the rejection locks the profile: {v}"
    );

    // The whole chain with the same rejected credentials: refused locally, still 3, and
    // neither the PIN login nor the consent flow reaches Dhan.
    let cmd = s.cli_wrong_pin(["token"]);
    let r = run(cmd, None).await;
    r.assert_class(ErrorClass::CredentialRejected);
    assert!(r.stderr.contains("unlock"), "the way out is named:\n{r}");
    assert_eq!(s.server.calls(Endpoint::GenerateAccessToken), 1);
    assert_eq!(s.server.calls(Endpoint::GenerateConsent), 0);

    let r = s.run(["unlock"]).await;
    r.assert_ok();
    let v = s.run(["status", "--json"]).await.json();
    assert!(v["locked"].is_null(), "{v}");
}

#[cfg(feature = "browser")]
#[tokio::test(flavor = "multi_thread")]
async fn consent_limit_exits_4_before_any_browser_starts() {
    let s = Stand::start().await;
    s.server.set_consent_cap(0);
    let r = s.run(["login", "--via", "browser"]).await;
    r.assert_class(ErrorClass::ConsentLimit);
    assert!(
        r.stderr.to_lowercase().contains("consent limit"),
        "the message should say the consent limit is reached:\n{r}"
    );
    assert_eq!(s.server.calls(Endpoint::GenerateConsent), 1);
    assert_eq!(
        s.server.calls(Endpoint::ConsentLoginPage),
        0,
        "no login page may be opened without a consent"
    );

    // The day is marked used up: the next try is refused without asking Dhan.
    let r = s.run(["login", "--via", "browser"]).await;
    r.assert_class(ErrorClass::ConsentLimit);
    assert_eq!(s.server.calls(Endpoint::GenerateConsent), 1);

    // Another machine meets the answer given verbatim, as a 200 that says error.
    s.server.set_consent_cap(25);
    s.server.set_fault(
        Endpoint::GenerateConsent,
        Fault::Respond {
            status: 200,
            body: r#"{"errorType":"Consent_Limit","errorCode":"CONSENT_LIMIT_EXCEED","errorMessage":"Consent limit Exceeded"}"#.into(),
            content_type: "application/json".into(),
        },
    );
    let other = Sandbox::new();
    let mut cmd = s.command_in(&other);
    cmd.args(["login", "--via", "browser"]);
    let r = run(cmd, None).await;
    r.assert_class(ErrorClass::ConsentLimit);
    assert_eq!(s.server.calls(Endpoint::GenerateConsent), 2);
    assert_eq!(s.server.calls(Endpoint::ConsentLoginPage), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_dhan_exits_5() {
    let s = Stand::start().await;
    let dead = closed_port_url();

    let mut cmd = s.cli(["login", "--via", "totp"]);
    cmd.env("DHAN_AUTH_BASE_URL", &dead);
    let r = run(cmd, None).await;
    r.assert_class(ErrorClass::Transient);
    assert!(
        r.stderr.contains("connect"),
        "the message should say the connection failed:\n{r}"
    );

    // The whole chain (renew, totp, browser) against dead hosts: still transient. In a
    // sandbox of its own: the first run spent a TOTP step, and a second run in the same
    // state would (rightly) wait for the next one.
    let other = Sandbox::new();
    let mut cmd = s.command_in(&other);
    cmd.arg("token")
        .env("DHAN_AUTH_BASE_URL", &dead)
        .env("DHAN_API_BASE_URL", format!("{dead}/v2"));
    let r = run(cmd, None).await;
    r.assert_class(ErrorClass::Transient);
    assert!(
        r.elapsed < Duration::from_secs(10),
        "a refused connection should fail fast:\n{r}"
    );
    assert_eq!(s.server.logins(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn server_errors_are_transient_and_exit_5() {
    let s = Stand::start().await;
    s.server
        .set_fault(Endpoint::GenerateAccessToken, Fault::Status(503));
    let r = s.run(["login", "--via", "totp"]).await;
    r.assert_class(ErrorClass::Transient);
}

/// Dhan refusing a TOTP code as already used (another machine, or the user's own app,
/// spent this 30 s step) says nothing about the PIN or the secret: exit 5 with a wait,
/// no lockout stored, and the next run is not held by one.
#[tokio::test(flavor = "multi_thread")]
async fn a_totp_already_used_elsewhere_is_transient_and_locks_nothing() {
    let s = Stand::start().await;
    let a = s.server.account().clone();
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    // Far from the step's end, so that the run below computes the same step.
    if now() % 30 > 22 {
        tokio::time::sleep(Duration::from_secs(30 - now() % 30 + 1)).await;
    }
    let code = totp_rs::Builder::new()
        .with_secret(totp_rs::Secret::try_from_base32(&a.totp_secret).unwrap())
        .build_noncompliant()
        .generate(now())
        .to_string();
    let elsewhere = reqwest::Client::new()
        .post(format!(
            "{}app/generateAccessToken",
            s.server.auth_base_url()
        ))
        .query(&[
            ("dhanClientId", a.client_id.as_str()),
            ("pin", a.pin.as_str()),
            ("totp", code.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(elsewhere.status().as_u16(), 200);

    let r = s.run(["token"]).await;
    r.assert_class(ErrorClass::Transient);
    assert!(r.stderr.contains("already used"), "{r}");
    let lockouts = s.sandbox.state_dir().join("lockouts");
    let stored = std::fs::read_dir(&lockouts).map_or(0, |d| d.count());
    assert_eq!(stored, 0, "a lockout was stored in {}", lockouts.display());
    let again = s.run(["token"]).await;
    assert_ne!(
        again.code,
        Some(exit_of(ErrorClass::CredentialRejected)),
        "the next run is held:\n{again}"
    );
}
