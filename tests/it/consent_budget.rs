//! The daily consent budget, against the stand-in, which counts what reaches it: never more
//! than 25 consents a day, Dhan's "limit reached" stops every path that day, a pending
//! consent is reused by the next attempt, and a consent that never left is not counted.

use crate::common;

#[cfg(feature = "browser")]
use std::time::Duration;

#[cfg(feature = "browser")]
use common::run_within;
use common::{Stand, run};
use dhan_login::ErrorClass;
use dhan_login::mock::{Endpoint, MockOptions};

/// A manual login whose pasted tokenId Dhan does not know: the consent is spent (a
/// tokenId was produced from it) and the exchange fails. Each run needs a new consent.
async fn manual_attempt(stand: &Stand) -> common::Run {
    run(manual(stand), Some(b"not-a-real-token-id\n")).await
}

/// `login --via manual` reading stdin only: with a loopback redirect URL it would also
/// listen there and keep waiting after stdin closes.
fn manual(stand: &Stand) -> std::process::Command {
    let mut cmd = stand.cli(["login", "--via", "manual"]);
    cmd.env_remove("DHAN_REDIRECT_URL");
    cmd
}

#[tokio::test(flavor = "multi_thread")]
async fn twenty_six_consents_in_a_day_reach_dhan_only_twenty_five_times() {
    let stand = Stand::start().await;
    for i in 0..25 {
        let r = manual_attempt(&stand).await;
        assert_eq!(
            r.code,
            Some(1),
            "attempt {i}: the bogus tokenId is refused:\n{r}"
        );
    }
    assert_eq!(stand.server.calls(Endpoint::GenerateConsent), 25);
    let r = manual_attempt(&stand).await;
    r.assert_class(ErrorClass::ConsentLimit);
    assert_eq!(
        stand.server.calls(Endpoint::GenerateConsent),
        25,
        "the 26th was refused locally"
    );
    assert!(r.stderr.contains("25 of 25 consents used today"), "{r}");
    assert!(r.stderr.contains("00:00 IST"), "names the reset time:\n{r}");
    let status = stand.run(["status", "--json"]).await;
    assert_eq!(status.json()["consents"]["used_today"], 25);
}

#[tokio::test(flavor = "multi_thread")]
async fn dhan_saying_the_limit_is_reached_stops_every_call_that_day() {
    let stand = Stand::start_with(MockOptions {
        consent_cap: 3,
        ..MockOptions::default()
    })
    .await;
    for _ in 0..3 {
        assert_eq!(manual_attempt(&stand).await.code, Some(1));
    }
    let fourth = manual_attempt(&stand).await;
    fourth.assert_class(ErrorClass::ConsentLimit);
    assert!(fourth.stderr.contains("consent limit"), "{fourth}");
    assert_eq!(stand.server.calls(Endpoint::GenerateConsent), 4);
    let fifth = manual_attempt(&stand).await;
    fifth.assert_class(ErrorClass::ConsentLimit);
    assert_eq!(
        stand.server.calls(Endpoint::GenerateConsent),
        4,
        "no call after CONSENT_LIMIT_EXCEED"
    );
    assert!(
        fifth
            .stderr
            .contains("Dhan said the daily consent limit is reached"),
        "{fifth}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pending_consent_is_reused_by_the_next_attempt() {
    let stand = Stand::start().await;
    // stdin closes without a tokenId: the consent stays pending.
    let r = run(manual(&stand), Some(b"")).await;
    assert_eq!(r.code, Some(1), "{r}");
    let status = stand.run(["status", "--json"]).await;
    assert_eq!(status.json()["consents"]["pending"], true);
    let r = run(manual(&stand), Some(b"")).await;
    assert_eq!(r.code, Some(1), "{r}");
    assert_eq!(
        stand.server.calls(Endpoint::GenerateConsent),
        1,
        "the second attempt reused the consent"
    );
}

#[cfg(feature = "browser")]
#[tokio::test(flavor = "multi_thread")]
async fn a_browser_retry_reuses_the_pending_consent() {
    if common::browser_tests_skipped("a_browser_retry_reuses_the_pending_consent") {
        return;
    }
    use dhan_login::mock::{Markup, PageVariant};
    let stand = Stand::start_with(MockOptions {
        page_variant: PageVariant {
            markup: Markup::MissingPinBoxes,
            ..PageVariant::classic()
        },
        ..MockOptions::default()
    })
    .await;
    let first = run(stand.cli(["login", "--via", "browser"]), None).await;
    assert_eq!(first.code, Some(1), "the PIN boxes are missing:\n{first}");
    assert_eq!(stand.server.calls(Endpoint::GenerateConsent), 1);

    stand.server.set_page_variant(PageVariant::classic());
    // The retry waits for a TOTP step the first attempt did not use: up to 35 s.
    let retry = run_within(
        stand.cli(["login", "--via", "browser", "--json"]),
        None,
        Duration::from_secs(70),
    )
    .await;
    retry.assert_ok();
    assert_eq!(retry.json()["source"], "browser");
    assert_eq!(
        stand.server.calls(Endpoint::GenerateConsent),
        1,
        "the retry used the pending consentAppId"
    );
    let status = stand.run(["status", "--json"]).await;
    assert_eq!(
        status.json()["consents"]["pending"],
        false,
        "consumed, so dropped"
    );
}

/// During an outage (nothing listens where Dhan should be) every generate-consent fails
/// before a byte is sent: 30 tries spend nothing from the day's 25, where they used to
/// lock the browser path until midnight IST.
#[tokio::test(flavor = "multi_thread")]
async fn consents_that_never_left_the_machine_are_not_counted() {
    let stand = Stand::start().await;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    for _ in 0..30 {
        let mut cmd = stand.cli(["login", "--via", "browser"]);
        cmd.env("DHAN_AUTH_BASE_URL", &closed)
            .env("DHAN_API_BASE_URL", format!("{closed}/v2"));
        let r = run(cmd, None).await;
        r.assert_class(ErrorClass::Transient);
        assert!(r.stderr.contains("nothing sent"), "{r}");
    }
    let client_id = stand.server.account().client_id.clone();
    let day = dhan_login::store::StateBackend::files(&stand.sandbox.state_dir())
        .ledger(25)
        .today(&client_id, chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(day.used, 0, "consents counted for requests that never left");
    assert!(!day.exhausted);
}
