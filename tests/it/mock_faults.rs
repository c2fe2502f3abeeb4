//! The stand-in's faults (status, delay, malformed body, wrong credential, canned answer)
//! and its plumbing: request counts, Date headers, `describe`, options, shutdown.

use crate::common;

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use common::stand_in::{
    classic_to_pin, client, consent_id, consume, current_code, direct_login, error_of,
    generate_consent, get_page, next_code, post_boxes, profile, renew, server, url,
};
use dhan_login::mock::{Endpoint, Fault, MockAccount, MockOptions, MockServer, TokenKind};
use reqwest::StatusCode;
use serde_json::Value;

#[tokio::test]
async fn status_fault_answers_plain_text_until_cleared() {
    let s = server().await;
    let token = s.issue_token(TokenKind::App, Duration::from_secs(600));
    s.set_fault(Endpoint::Profile, Fault::Status(503));
    for _ in 0..2 {
        let r = profile(&s, &token).await;
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain")
        );
        assert!(r.text().await.unwrap().contains("503"));
    }
    s.clear_faults();
    assert_eq!(profile(&s, &token).await.status(), StatusCode::OK);
    assert_eq!(s.calls(Endpoint::Profile), 3, "faulted requests count too");
}

#[tokio::test]
async fn fault_once_hits_a_single_request() {
    let s = server().await;
    let token = s.issue_token(TokenKind::App, Duration::from_secs(600));
    s.set_fault_once(Endpoint::Profile, Fault::Status(502));
    assert_eq!(profile(&s, &token).await.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(profile(&s, &token).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn delay_fault_holds_the_answer_then_answers() {
    let s = server().await;
    let token = s.issue_token(TokenKind::App, Duration::from_secs(600));
    s.set_fault(Endpoint::Profile, Fault::Delay(Duration::from_millis(400)));
    let started = Instant::now();
    let r = profile(&s, &token).await;
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert_eq!(r.status(), StatusCode::OK);

    // A slow login page, for drivers with a step timeout.
    s.set_fault(
        Endpoint::ConsentLoginPage,
        Fault::Delay(Duration::from_millis(300)),
    );
    let consent = consent_id(&s).await;
    let started = Instant::now();
    let r = get_page(&s, &consent).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(r.text().await.unwrap().contains("formcontrolname"));

    let quick = client()
        .get(s.consent_login_url(&consent).as_str())
        .timeout(Duration::from_millis(100))
        .send()
        .await;
    assert!(quick.is_err(), "a client with a shorter timeout gives up");
}

#[tokio::test]
async fn malformed_body_is_a_200_that_does_not_parse() {
    let s = server().await;
    s.set_fault(Endpoint::GenerateAccessToken, Fault::MalformedBody);
    let r = direct_login(&s, &s.account().pin, &current_code(&s)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let text = r.text().await.unwrap();
    assert!(serde_json::from_str::<Value>(&text).is_err(), "{text}");
    assert_eq!(s.logins(), 0);

    s.set_fault(Endpoint::ConsentLoginPage, Fault::MalformedBody);
    let page = get_page(&s, "anything").await.text().await.unwrap();
    assert!(!page.contains("</html>"));
}

#[tokio::test]
async fn wrong_credential_fault_rejects_right_credentials() {
    let s = server().await;
    let pin = s.account().pin.clone();
    let consent = consent_id(&s).await;
    let session = classic_to_pin(&s, &consent).await;

    s.set_fault(Endpoint::GenerateAccessToken, Fault::WrongCredential);
    let r = direct_login(&s, &pin, &next_code(&s)).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    s.set_fault(Endpoint::GenerateConsent, Fault::WrongCredential);
    assert_eq!(
        generate_consent(&s).await.status(),
        StatusCode::UNAUTHORIZED
    );

    s.set_fault(Endpoint::ConsentLoginPage, Fault::WrongCredential);
    let page = post_boxes(&s, &consent, &session, "pin", &pin)
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(
        error_of(&page).as_deref(),
        Some("Incorrect PIN, please try again")
    );

    let live = s.issue_token(TokenKind::SelfWeb, Duration::from_secs(600));
    s.set_fault(Endpoint::RenewToken, Fault::WrongCredential);
    let r = renew(&s, &live).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    s.set_fault(Endpoint::Profile, Fault::WrongCredential);
    assert_eq!(profile(&s, &live).await.status(), StatusCode::UNAUTHORIZED);
    assert!(s.is_live(&live));

    s.clear_faults();
    let r = post_boxes(&s, &consent, &session, "pin", &pin).await;
    assert_eq!(r.status(), StatusCode::FOUND);
    assert_eq!(s.logins(), 0);
}

#[tokio::test]
async fn respond_fault_sends_the_canned_answer() {
    let s = server().await;
    let canned =
        r#"{"errorType":"Input_Exception","errorCode":"DH-904","errorMessage":"slow down"}"#;
    s.set_fault(
        Endpoint::GenerateConsent,
        Fault::Respond {
            status: 429,
            body: canned.into(),
            content_type: "application/json".into(),
        },
    );
    let r = generate_consent(&s).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers()["content-type"], "application/json");
    assert_eq!(r.text().await.unwrap(), canned);
    assert_eq!(s.consents_today(), 0);

    s.set_fault(
        Endpoint::ConsumeConsent,
        Fault::Respond {
            status: 500,
            body: "upstream exploded".into(),
            content_type: "text/plain".into(),
        },
    );
    let r = consume(&s, "whatever").await;
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(r.text().await.unwrap(), "upstream exploded");
}

#[tokio::test]
async fn every_request_is_counted_under_its_endpoint() {
    let s = server().await;
    for ep in Endpoint::ALL {
        assert_eq!(s.calls(ep), 0);
    }
    let token = s.issue_token(TokenKind::SelfWeb, Duration::from_secs(600));
    let _ = profile(&s, &token).await;
    let _ = profile(&s, &token).await;
    let _ = renew(&s, &token).await;
    let _ = generate_consent(&s).await;
    // A wrong method still reached the stand-in.
    let r = client()
        .get(url(&s.auth_base_url(), "/app/generateAccessToken"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    let r = client()
        .get(url(&s.auth_base_url(), "/nowhere"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    assert_eq!(s.calls(Endpoint::Profile), 2);
    assert_eq!(s.calls(Endpoint::RenewToken), 1);
    assert_eq!(s.calls(Endpoint::GenerateConsent), 1);
    assert_eq!(s.calls(Endpoint::GenerateAccessToken), 1);
    assert_eq!(s.calls(Endpoint::ConsumeConsent), 0);
    assert_eq!(s.calls(Endpoint::ConsentLoginPage), 0);
}

#[tokio::test]
async fn every_answer_carries_a_correct_date_header() {
    let s = server().await;
    s.set_fault(Endpoint::Profile, Fault::Status(500));
    let answers = [
        profile(&s, "x").await,
        renew(&s, "x").await,
        get_page(&s, "x").await,
        direct_login(&s, "1", "2").await,
    ];
    for r in answers {
        let date = r.headers()["date"].to_str().unwrap();
        let at = DateTime::parse_from_rfc2822(date).unwrap();
        let skew = (at.with_timezone(&Utc) - Utc::now()).num_seconds().abs();
        assert!(skew <= 2, "{date}");
    }
}

#[tokio::test]
async fn describe_json_names_everything_a_client_needs() {
    let s = server().await;
    let d = s.describe_json();
    let port = s.local_addr().port();
    assert_eq!(d["auth_base_url"], format!("http://127.0.0.1:{port}"));
    assert_eq!(d["api_base_url"], format!("http://127.0.0.1:{port}/v2"));
    assert_eq!(
        s.api_base_url().as_str(),
        format!("http://127.0.0.1:{port}/v2")
    );
    let a = s.account();
    assert_eq!(d["client_id"], a.client_id.as_str());
    assert_eq!(d["totp_secret"], a.totp_secret.as_str());
    for key in ["mobile", "pin", "api_key", "api_secret", "redirect_url"] {
        assert!(d[key].is_string(), "{key}");
    }
    assert_eq!(a, &MockAccount::demo());
    assert!(!format!("{a:?}").contains(&a.pin), "Debug hides the PIN");
}

#[tokio::test]
async fn bad_options_are_refused_and_shutdown_closes_the_port() {
    let bad = MockOptions {
        account: MockAccount {
            totp_secret: "not base32!".into(),
            ..MockAccount::demo()
        },
        ..MockOptions::default()
    };
    assert!(MockServer::start(bad).await.is_err());

    let s = server().await;
    let u = url(&s.api_base_url(), "/profile");
    s.shutdown().await;
    assert!(client().get(u).send().await.is_err());
}
