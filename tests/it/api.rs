//! The Dhan API client against the local stand-in: every endpoint's success and each
//! error class.

use std::time::Duration;

use chrono::Utc;
use dhan_login::mock::{Endpoint, Fault, MockOptions, MockServer, TokenKind as MockKind};
use dhan_login::{
    ErrorClass, SourceKind,
    api::{ApiError, DhanApi},
    token::TokenKind,
};
use secrecy::SecretString;

async fn server() -> MockServer {
    MockServer::start(MockOptions::default()).await.unwrap()
}

fn api(s: &MockServer) -> DhanApi {
    DhanApi::with_timeout(s.auth_base_url(), s.api_base_url(), Duration::from_secs(2))
}

fn secret(s: &str) -> SecretString {
    SecretString::from(s.to_owned())
}

fn totp_now(s: &MockServer) -> SecretString {
    let t = totp_rs::Builder::new()
        .with_secret(totp_rs::Secret::try_from_base32(&s.account().totp_secret).unwrap())
        .build_noncompliant();
    secret(&t.generate_current().to_string())
}

fn respond(status: u16, body: &str) -> Fault {
    Fault::Respond {
        status,
        body: body.to_owned(),
        content_type: "application/json".to_owned(),
    }
}

#[tokio::test]
async fn generate_access_token_success_gives_a_24h_app_token() {
    let s = server().await;
    let a = s.account().clone();
    let grant = api(&s)
        .generate_access_token(&a.client_id, &secret(&a.pin), &totp_now(&s))
        .await
        .unwrap();
    let token = grant
        .into_token(&a.client_id, SourceKind::Totp, Utc::now())
        .unwrap();
    assert!(s.is_live(token.access_token.secret()));
    assert_eq!(token.kind, TokenKind::App);
    assert_eq!(token.client_id, a.client_id);
    let left = token.expires_at - Utc::now();
    assert!(
        left > chrono::Duration::hours(23) && left <= chrono::Duration::hours(24),
        "{left}"
    );
    assert_eq!(s.calls(Endpoint::GenerateAccessToken), 1);
}

#[tokio::test]
async fn wrong_pin_is_a_credential_rejection_without_the_pin_in_the_message() {
    let s = server().await;
    let a = s.account().clone();
    let err = api(&s)
        .generate_access_token(&a.client_id, &secret("000111"), &totp_now(&s))
        .await
        .err()
        .unwrap();
    assert_eq!(err.class(), ErrorClass::CredentialRejected, "{err}");
    assert!(!err.to_string().contains("000111"));
    assert_eq!(s.calls(Endpoint::GenerateAccessToken), 1);
}

#[tokio::test]
async fn echoed_secrets_in_an_error_body_are_scrubbed_but_the_body_is_kept() {
    let s = server().await;
    let a = s.account().clone();
    s.set_fault(
        Endpoint::GenerateAccessToken,
        respond(
            400,
            &format!(r#"{{"status":"error","message":"bad pin {} here"}}"#, a.pin),
        ),
    );
    let err = api(&s)
        .generate_access_token(&a.client_id, &secret(&a.pin), &totp_now(&s))
        .await
        .err()
        .unwrap();
    let text = err.to_string();
    assert!(!text.contains(&a.pin), "{text}");
    assert!(text.contains("bad pin **** here"), "{text}");
}

#[tokio::test]
async fn consent_is_generated_and_the_limit_is_classified() {
    let s = server().await;
    let a = s.account().clone();
    let api = api(&s);
    let id = api
        .generate_consent(&a.client_id, &secret(&a.api_key), &secret(&a.api_secret))
        .await
        .unwrap();
    assert!(s.consent_usable(&id));
    assert!(
        api.consent_login_url(&id)
            .as_str()
            .ends_with(&format!("/login/consentApp-login?consentAppId={id}"))
    );
    s.set_consent_cap(1);
    let err = api
        .generate_consent(&a.client_id, &secret(&a.api_key), &secret(&a.api_secret))
        .await
        .err()
        .unwrap();
    assert_eq!(err.class(), ErrorClass::ConsentLimit, "{err}");
    let err = api
        .generate_consent(&a.client_id, &secret(&a.api_key), &secret("wrong-secret"))
        .await
        .err()
        .unwrap();
    assert_eq!(err.class(), ErrorClass::CredentialRejected, "{err}");
}

#[tokio::test]
async fn consume_reads_expiry_with_and_without_milliseconds() {
    let s = server().await;
    let a = s.account().clone();
    let api = api(&s);
    for (expiry, want) in [
        ("2026-01-01T00:00:00.000", "2025-12-31T18:30:00+00:00"),
        ("2025-09-23T12:37:23", "2025-09-23T07:07:23+00:00"),
    ] {
        let body = format!(
            r#"{{"dhanClientId":"{}","dhanClientName":"X","dhanClientUcc":"U","givenPowerOfAttorney":true,"accessToken":"opaque.fake.token","expiryTime":"{expiry}"}}"#,
            a.client_id
        );
        s.set_fault(Endpoint::ConsumeConsent, respond(200, &body));
        let grant = api
            .consume_consent(
                &secret("tid-1"),
                &secret(&a.api_key),
                &secret(&a.api_secret),
            )
            .await
            .unwrap();
        // Received before both expiries: an expired grant is refused.
        let received = chrono::DateTime::parse_from_rfc3339("2025-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let token = grant
            .into_token(&a.client_id, SourceKind::Browser, received)
            .unwrap();
        assert_eq!(token.expires_at.to_rfc3339(), want);
    }
}

#[tokio::test]
async fn consume_of_an_unknown_token_id_is_refused() {
    let s = server().await;
    let a = s.account().clone();
    let err = api(&s)
        .consume_consent(
            &secret("no-such-id"),
            &secret(&a.api_key),
            &secret(&a.api_secret),
        )
        .await
        .err()
        .unwrap();
    assert!(
        matches!(err, ApiError::Refused { status: 400, .. }),
        "{err}"
    );
    assert!(!err.to_string().contains("no-such-id"));
}

#[tokio::test]
async fn renew_extends_a_self_token_and_kills_the_old_one() {
    let s = server().await;
    let a = s.account().clone();
    let old = s.issue_token(MockKind::SelfWeb, Duration::from_secs(3600));
    let current = dhan_login::Token::from_grant(
        &old,
        Some(&a.client_id),
        None,
        SourceKind::Import,
        Utc::now(),
    )
    .unwrap();
    let grant = api(&s).renew(&current).await.unwrap();
    let new = grant
        .into_token(&a.client_id, SourceKind::Renew, Utc::now())
        .unwrap();
    assert_ne!(new.access_token.secret(), old);
    assert!(s.is_live(new.access_token.secret()));
    assert!(!s.is_live(&old));
    assert_eq!(new.kind, TokenKind::SelfWeb);
    assert!(new.expires_at - Utc::now() > chrono::Duration::hours(23));
}

#[tokio::test]
async fn renew_body_with_token_field_and_no_expiry_uses_the_jwt_exp() {
    let s = server().await;
    let a = s.account().clone();
    let minted = s.issue_token(MockKind::SelfWeb, Duration::from_secs(7200));
    let current = dhan_login::Token::from_grant(
        &minted,
        Some(&a.client_id),
        None,
        SourceKind::Import,
        Utc::now(),
    )
    .unwrap();
    s.set_fault(
        Endpoint::RenewToken,
        respond(200, &format!(r#"{{"token":"{minted}"}}"#)),
    );
    let renewed = api(&s)
        .renew(&current)
        .await
        .unwrap()
        .into_token(&a.client_id, SourceKind::Renew, Utc::now())
        .unwrap();
    assert_eq!(renewed.expires_at, current.expires_at);
}

#[tokio::test]
async fn renew_of_an_expired_token_is_dh901() {
    let s = server().await;
    let a = s.account().clone();
    let t = s.issue_token(MockKind::SelfWeb, Duration::from_secs(1));
    let current =
        dhan_login::Token::from_grant(&t, Some(&a.client_id), None, SourceKind::Import, Utc::now())
            .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let err = api(&s).renew(&current).await.err().unwrap();
    assert_eq!(err.class(), ErrorClass::TokenInvalid, "{err}");
}

#[tokio::test]
async fn profile_reads_validity_and_rejects_bad_tokens() {
    let s = server().await;
    let t = s.issue_token(MockKind::App, Duration::from_secs(3600));
    let info = api(&s).profile(&t).await.unwrap();
    assert_eq!(
        info.client_id.as_deref(),
        Some(s.account().client_id.as_str())
    );
    let validity = info.token_validity.unwrap();
    assert!(
        (validity - (Utc::now() + chrono::Duration::hours(1)))
            .num_minutes()
            .abs()
            <= 2
    );
    let err = api(&s).profile("not-a-token").await.err().unwrap();
    assert_eq!(err.class(), ErrorClass::TokenInvalid);
}

#[tokio::test]
async fn the_three_error_shapes_and_faults_are_classified() {
    let s = server().await;
    let t = s.issue_token(MockKind::App, Duration::from_secs(3600));
    let api = api(&s);
    let cases: Vec<(Fault, ErrorClass)> = vec![
        (
            respond(
                429,
                r#"{"errorType":"Rate_Limit","errorCode":"DH-904","errorMessage":"Too many requests"}"#,
            ),
            ErrorClass::RateLimited,
        ),
        (
            respond(401, r#"{"status":"error","message":"Invalid token"}"#),
            ErrorClass::TokenInvalid,
        ),
        (
            Fault::Respond {
                status: 502,
                body: "Bad Gateway".into(),
                content_type: "text/plain".into(),
            },
            ErrorClass::Transient,
        ),
        (Fault::Status(503), ErrorClass::Transient),
        (Fault::MalformedBody, ErrorClass::UnexpectedBody),
        (Fault::Delay(Duration::from_secs(5)), ErrorClass::Transient),
    ];
    for (fault, want) in cases {
        s.set_fault(Endpoint::Profile, fault.clone());
        let err = api
            .profile(&t)
            .await
            .err()
            .unwrap_or_else(|| panic!("{fault:?} succeeded"));
        assert_eq!(err.class(), want, "{fault:?}: {err}");
    }
    // The plain-text body is kept for the user to read.
    s.set_fault(
        Endpoint::Profile,
        Fault::Respond {
            status: 418,
            body: "teapot says no".into(),
            content_type: "text/plain".into(),
        },
    );
    let err = api.profile(&t).await.err().unwrap();
    assert!(err.to_string().contains("teapot says no"), "{err}");
}

#[tokio::test]
async fn a_closed_port_is_transient_and_names_no_url() {
    let api = DhanApi::with_timeout(
        "http://127.0.0.1:9".parse().unwrap(),
        "http://127.0.0.1:9/v2".parse().unwrap(),
        Duration::from_secs(2),
    );
    let err = api
        .generate_access_token("1", &secret("246810"), &secret("135791"))
        .await
        .err()
        .unwrap();
    assert_eq!(err.class(), ErrorClass::Transient);
    let text = err.to_string();
    assert!(
        !text.contains("246810") && !text.contains("135791"),
        "{text}"
    );
}

#[tokio::test]
async fn server_date_is_measured() {
    let s = server().await;
    let (server_time, local) = api(&s).probe_server_time().await.unwrap();
    assert!((server_time - local).num_seconds().abs() <= 2);
}

#[tokio::test]
async fn a_404_from_a_login_endpoint_is_not_a_credential_rejection() {
    // A wrong base URL or a proxy answers 404: locking the credentials for it would
    // outlive fixing the URL.
    let s = server().await;
    let a = s.account().clone();
    s.set_fault(
        Endpoint::GenerateAccessToken,
        Fault::Respond {
            status: 404,
            body: "Not Found".into(),
            content_type: "text/plain".into(),
        },
    );
    let err = api(&s)
        .generate_access_token(&a.client_id, &secret(&a.pin), &totp_now(&s))
        .await
        .err()
        .unwrap();
    assert_eq!(err.class(), ErrorClass::Other, "{err}");
}
