//! The local Dhan stand-in, driven over plain HTTP the way clients (ours and DhanHQ-py)
//! talk to it.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone, Utc};
use dhan_login::mock::{
    Endpoint, EntryKind, Fault, Markup, MockAccount, MockOptions, MockServer, PageVariant,
    SecondFactor, Submission, TokenKind,
};
use reqwest::StatusCode;
use serde_json::Value;
use totp_rs::{Builder, Secret};

const BLOCKED: &str = "Your account is temporarily blocked";

/// A stand-in whose screens are server-rendered forms, which these tests post to.
async fn server() -> MockServer {
    server_with(MockOptions {
        page_variant: PageVariant::classic(),
        ..MockOptions::default()
    })
    .await
}

async fn server_with(opts: MockOptions) -> MockServer {
    MockServer::start(opts).await.expect("mock server starts")
}

/// Redirects must stay visible: the tokenId lives in the 302's Location.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn code_at(secret: &str, unix: u64) -> String {
    Builder::new()
        .with_secret(Secret::try_from_base32(secret).unwrap())
        .build_noncompliant()
        .generate(unix)
        .to_string()
}

fn current_code(s: &MockServer) -> String {
    code_at(&s.account().totp_secret, unix_now())
}

/// The code of the following 30 s step: still inside the server's ±1 window, and a
/// step of its own, so a second login in one test is not a reuse.
fn next_code(s: &MockServer) -> String {
    code_at(&s.account().totp_secret, unix_now() + 30)
}

fn ist() -> FixedOffset {
    FixedOffset::east_opt(19800).unwrap()
}

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("three JWT parts");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn url(base: &url::Url, path: &str) -> String {
    format!("{}{}", base.as_str().trim_end_matches('/'), path)
}

async fn direct_login(s: &MockServer, pin: &str, totp: &str) -> reqwest::Response {
    client()
        .post(url(&s.auth_base_url(), "/app/generateAccessToken"))
        .query(&[
            ("dhanClientId", s.account().client_id.as_str()),
            ("pin", pin),
            ("totp", totp),
        ])
        .send()
        .await
        .unwrap()
}

async fn generate_consent(s: &MockServer) -> reqwest::Response {
    let a = s.account();
    client()
        .post(url(&s.auth_base_url(), "/app/generate-consent"))
        .query(&[("client_id", a.client_id.as_str())])
        .header("app_id", &a.api_key)
        .header("app_secret", &a.api_secret)
        .send()
        .await
        .unwrap()
}

async fn consent_id(s: &MockServer) -> String {
    let r = generate_consent(s).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    body["consentAppId"].as_str().unwrap().to_owned()
}

async fn consume(s: &MockServer, token_id: &str) -> reqwest::Response {
    let a = s.account();
    client()
        .get(url(&s.auth_base_url(), "/app/consumeApp-consent"))
        .query(&[("tokenId", token_id)])
        .header("app_id", &a.api_key)
        .header("app_secret", &a.api_secret)
        .send()
        .await
        .unwrap()
}

async fn renew(s: &MockServer, token: &str) -> reqwest::Response {
    client()
        .get(url(&s.api_base_url(), "/RenewToken"))
        .header("access-token", token)
        .header("dhanClientId", &s.account().client_id)
        .send()
        .await
        .unwrap()
}

async fn profile(s: &MockServer, token: &str) -> reqwest::Response {
    client()
        .get(url(&s.api_base_url(), "/profile"))
        .header("access-token", token)
        .send()
        .await
        .unwrap()
}

async fn get_page(s: &MockServer, consent: &str) -> reqwest::Response {
    client()
        .get(s.consent_login_url(consent).as_str())
        .send()
        .await
        .unwrap()
}

/// Posts a Classic screen's form the way a browser would: to the page's own URL.
async fn post_form(s: &MockServer, consent: &str, fields: &[(&str, &str)]) -> reqwest::Response {
    let mut body = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in fields {
        body.append_pair(k, v);
    }
    client()
        .post(s.consent_login_url(consent).as_str())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.finish())
        .send()
        .await
        .unwrap()
}

fn session_of(html: &str) -> String {
    let marker = r#"name="session" value=""#;
    let start = html.find(marker).expect("hidden session field") + marker.len();
    let len = html[start..].find('"').unwrap();
    html[start..start + len].to_owned()
}

/// The text of the page's error: an ngx-toastr toast, or the expired page's alert.
fn error_of(html: &str) -> Option<String> {
    let body = html.split("<body>").nth(1)?;
    let start = [
        "<div class=\"toast-message\"",
        "<div class=\"alert alert-danger\"",
    ]
    .iter()
    .find_map(|m| body.find(m))?;
    let open_end = body[start..].find('>')? + start + 1;
    let len = body[open_end..].find("</div>")?;
    Some(body[open_end..open_end + len].to_owned())
}

/// The `window.PAGE` settings the server gave the page script.
fn page_settings(html: &str) -> Value {
    let marker = "window.PAGE = ";
    let start = html.find(marker).expect("page settings") + marker.len();
    let len = html[start..].find(";</script>").unwrap();
    serde_json::from_str(&html[start..start + len]).unwrap()
}

/// Digits as the six one-character boxes post them: the same name six times.
fn boxes(name: &'static str, digits: &str) -> Vec<(&'static str, String)> {
    digits.chars().map(|c| (name, c.to_string())).collect()
}

async fn post_boxes(
    s: &MockServer,
    consent: &str,
    session: &str,
    name: &'static str,
    digits: &str,
) -> reqwest::Response {
    let fields = boxes(name, digits);
    let mut all: Vec<(&str, &str)> = vec![("session", session)];
    all.extend(fields.iter().map(|(k, v)| (*k, v.as_str())));
    post_form(s, consent, &all).await
}

/// Mobile and TOTP screens passed; returns the session, now on the PIN screen.
async fn classic_to_pin(s: &MockServer, consent: &str) -> String {
    let page = get_page(s, consent).await.text().await.unwrap();
    let session = session_of(&page);
    let mobile = s.account().mobile.clone();
    let r = post_form(
        s,
        consent,
        &[("session", &session), ("mobileNumber", &mobile)],
    )
    .await;
    assert!(r.text().await.unwrap().contains("Enter TOTP"));
    let r = post_boxes(s, consent, &session, "totp", &current_code(s)).await;
    assert!(r.text().await.unwrap().contains("Enter PIN"));
    session
}

fn location(r: &reqwest::Response) -> url::Url {
    let loc = r.headers()["location"].to_str().unwrap();
    url::Url::parse(loc).unwrap()
}

fn token_id_of(r: &reqwest::Response) -> String {
    location(r)
        .query_pairs()
        .find(|(k, _)| k == "tokenId")
        .map(|(_, v)| v.into_owned())
        .expect("tokenId in Location")
}

fn assert_six_fields(body: &Value, account: &MockAccount) {
    assert_eq!(body["dhanClientId"], account.client_id.as_str());
    assert_eq!(body["dhanClientName"], account.client_name.as_str());
    assert_eq!(body["dhanClientUcc"], account.ucc.as_str());
    assert_eq!(body["givenPowerOfAttorney"], true);
    assert!(body["accessToken"].as_str().is_some());
    assert!(body["expiryTime"].as_str().is_some());
    assert_eq!(body.as_object().unwrap().len(), 6, "{body}");
}

/// `expiryTime` read as Dhan means it: IST wall-clock time.
fn expiry_utc(body: &Value) -> DateTime<Utc> {
    let text = body["expiryTime"].as_str().unwrap();
    assert!(!text.ends_with('Z') && !text.contains('+'), "{text}");
    let naive = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.3f").unwrap();
    assert_eq!(text.len(), "2026-01-01T00:00:00.000".len());
    ist()
        .from_local_datetime(&naive)
        .unwrap()
        .with_timezone(&Utc)
}

#[tokio::test]
async fn direct_login_returns_the_six_fields_and_an_app_jwt() {
    let s = server().await;
    let r = direct_login(&s, &s.account().pin, &current_code(&s)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_six_fields(&body, s.account());

    let expiry = expiry_utc(&body);
    let in_24h = Utc::now() + chrono::TimeDelta::hours(24);
    assert!(
        (expiry - in_24h).num_seconds().abs() <= 5,
        "{expiry} vs {in_24h}"
    );

    let token = body["accessToken"].as_str().unwrap();
    let c = claims(token);
    assert_eq!(c["tokenConsumerType"], "APP");
    assert_eq!(c["dhanClientId"], s.account().client_id.as_str());
    assert_eq!(c["exp"].as_i64().unwrap(), expiry.timestamp());
    assert!(c["iat"].as_i64().is_some() && c["iss"].is_string());
    assert!(c["partnerId"].is_string() && c["userRegion"].is_string());
    assert!(s.is_live(token));
    assert_eq!(s.logins(), 1);
    assert_eq!(s.calls(Endpoint::GenerateAccessToken), 1);
}

#[tokio::test]
async fn direct_login_rejects_wrong_pin_totp_and_client() {
    let s = server().await;
    let pin = s.account().pin.clone();

    let r = direct_login(&s, "000000", &current_code(&s)).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({"status": "error", "message": "Invalid PIN"})
    );

    let wrong = format!(
        "{:06}",
        (current_code(&s).parse::<u32>().unwrap() + 1) % 1_000_000
    );
    let r = direct_login(&s, &pin, &wrong).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["message"], "Invalid TOTP");

    // Two steps back is outside the ±1 window.
    let stale = code_at(&s.account().totp_secret, unix_now() - 60);
    let r = direct_login(&s, &pin, &stale).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    let r = client()
        .post(url(&s.auth_base_url(), "/app/generateAccessToken"))
        .query(&[
            ("dhanClientId", "999"),
            ("pin", &pin),
            ("totp", &current_code(&s)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    let r = client()
        .post(url(&s.auth_base_url(), "/app/generateAccessToken"))
        .query(&[
            ("dhanClientId", s.account().client_id.as_str()),
            ("pin", &pin),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    assert_eq!(s.logins(), 0);
    assert_eq!(s.calls(Endpoint::GenerateAccessToken), 5);
    // Failures spent nothing: the right code still works afterwards.
    assert_eq!(
        direct_login(&s, &pin, &current_code(&s)).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_totp_code_works_once() {
    let s = server().await;
    let pin = s.account().pin.clone();
    let code = current_code(&s);
    assert_eq!(direct_login(&s, &pin, &code).await.status(), StatusCode::OK);

    let r = direct_login(&s, &pin, &code).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body: Value = r.json().await.unwrap();
    assert!(body["message"].as_str().unwrap().contains("already used"));
    assert_eq!(s.logins(), 1);

    // The next step's code is a different code: accepted.
    assert_eq!(
        direct_login(&s, &pin, &next_code(&s)).await.status(),
        StatusCode::OK
    );

    s.set_totp_reuse_allowed(true);
    assert_eq!(direct_login(&s, &pin, &code).await.status(), StatusCode::OK);
    assert_eq!(s.logins(), 3);
}

#[tokio::test]
async fn a_new_token_ends_the_previous_one() {
    let s = server().await;
    let old = s.issue_token(TokenKind::SelfWeb, Duration::from_secs(3600));
    assert!(s.is_live(&old));
    let r = direct_login(&s, &s.account().pin, &current_code(&s)).await;
    let body: Value = r.json().await.unwrap();
    let new = body["accessToken"].as_str().unwrap();
    assert!(s.is_live(new));
    assert!(!s.is_live(&old));
    assert_eq!(profile(&s, &old).await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn consent_generation_checks_credentials_and_caps_the_day() {
    let s = server().await;
    s.set_consent_cap(2);

    let r = generate_consent(&s).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], "success");
    assert_eq!(body["consentAppStatus"], "GENERATED");
    let first = body["consentAppId"].as_str().unwrap().to_owned();
    assert_eq!(first.len(), 36);
    assert!(s.consent_usable(&first));

    let second = consent_id(&s).await;
    assert_ne!(first, second);

    let r = generate_consent(&s).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["errorCode"], "CONSENT_LIMIT_EXCEED");
    assert_eq!(body["errorMessage"], "Consent limit Exceeded");
    assert_eq!(s.consents_today(), 2);

    // Raising the cap lets the day go on.
    s.set_consent_cap(3);
    assert_eq!(generate_consent(&s).await.status(), StatusCode::OK);

    let a = s.account();
    let r = client()
        .post(url(&s.auth_base_url(), "/app/generate-consent"))
        .query(&[("client_id", a.client_id.as_str())])
        .header("app_id", &a.api_key)
        .header("app_secret", "not-the-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body: Value = r.json().await.unwrap();
    assert!(body["errorCode"].is_string() && body["errorMessage"].is_string());

    let r = client()
        .post(url(&s.auth_base_url(), "/app/generate-consent"))
        .query(&[("client_id", "123")])
        .header("APP_ID", &a.api_key)
        .header("App_Secret", &a.api_secret)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::BAD_REQUEST,
        "header case is irrelevant, client_id is not"
    );
    assert_eq!(s.consents_today(), 3);
    assert_eq!(s.calls(Endpoint::GenerateConsent), 6);
}

#[tokio::test]
async fn classic_pages_lead_to_a_302_with_a_one_time_token_id() {
    let s = server().await;
    let consent = consent_id(&s).await;

    let r = get_page(&s, &consent).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = r.text().await.unwrap();
    assert!(page.contains(
        r#"<input type="tel" id="mobileNumber" class="form-control" formcontrolname="mobileNumber" placeholder="Enter mobile number" maxlength="10""#
    ));
    assert!(page.contains("<app-root>\n<app-login><form"));
    assert!(page.contains(r#"<form class="login-form" method="post""#));
    assert!(page.contains(r#"<button type="submit" class="btn btn-primary">Proceed</button>"#));
    assert!(!page.contains("{{"), "unfilled placeholder");
    assert!(
        !page.contains("<script src") && !page.contains("<link"),
        "self-contained"
    );
    assert_eq!(error_of(&page), None);
    let session = session_of(&page);

    let r = post_form(
        &s,
        &consent,
        &[("session", &session), ("mobileNumber", "9000000000")],
    )
    .await;
    let page = r.text().await.unwrap();
    assert_eq!(
        error_of(&page).as_deref(),
        Some("Mobile number is not registered")
    );
    assert!(page.contains(r#"formcontrolname="mobileNumber""#));

    let mobile = s.account().mobile.clone();
    let r = post_form(
        &s,
        &consent,
        &[("session", &session), ("mobileNumber", &mobile)],
    )
    .await;
    let page = r.text().await.unwrap();
    assert!(page.contains("Enter TOTP"));
    assert_eq!(
        page.matches(r#"<input type="tel" class="otp-box" maxlength="1" inputmode="numeric">"#)
            .count(),
        6
    );
    assert!(page.contains(r#"<button type="submit" class="btn btn-primary">Proceed</button>"#));
    assert_eq!(page_settings(&page)["submission"], "button");

    let r = post_boxes(&s, &consent, &session, "totp", "000000").await;
    let page = r.text().await.unwrap();
    assert_eq!(error_of(&page).as_deref(), Some("Invalid Totp entered"));
    assert!(page.contains("Enter TOTP"));

    let r = post_boxes(&s, &consent, &session, "totp", &current_code(&s)).await;
    let page = r.text().await.unwrap();
    assert!(page.contains("Enter PIN for your Account"));
    assert_eq!(
        page.matches(
            r#"<input type="password" class="otp-box" maxlength="1" inputmode="numeric">"#
        )
        .count(),
        6
    );
    assert!(page.contains(r#"<button type="submit" class="btn btn-primary">Continue</button>"#));
    assert_eq!(error_of(&page), None, "a new screen starts without a toast");

    let r = post_boxes(&s, &consent, &session, "pin", "999999").await;
    let page = r.text().await.unwrap();
    assert_eq!(
        error_of(&page).as_deref(),
        Some("Incorrect PIN, please try again")
    );

    let pin = s.account().pin.clone();
    let r = post_boxes(&s, &consent, &session, "pin", &pin).await;
    assert_eq!(r.status(), StatusCode::FOUND);
    let loc = location(&r);
    assert!(loc.as_str().starts_with(&s.account().redirect_url), "{loc}");
    let token_id = token_id_of(&r);
    assert!(!s.consent_usable(&consent));

    assert_eq!(s.logins(), 0, "a tokenId is not a token yet");
    let r = consume(&s, &token_id).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_six_fields(&body, s.account());
    let token = body["accessToken"].as_str().unwrap();
    assert_eq!(claims(token)["tokenConsumerType"], "APP");
    assert!(s.is_live(token));
    assert_eq!(s.logins(), 1);

    let r = consume(&s, &token_id).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(s.logins(), 1);

    // The consent is spent: its page now says so.
    let page = get_page(&s, &consent).await.text().await.unwrap();
    assert!(page.contains("Session expired"));
    assert_eq!(
        error_of(&page).as_deref(),
        Some("Consent has expired or is invalid. Please generate a new consent.")
    );
    assert_eq!(s.calls(Endpoint::ConsentLoginPage), 8);
    assert_eq!(s.calls(Endpoint::ConsumeConsent), 2);
    assert_eq!(s.entries(EntryKind::Mobile), 2);
    assert_eq!(s.entries(EntryKind::Totp), 2);
    assert_eq!(s.entries(EntryKind::Pin), 2);
    assert_eq!(s.entries(EntryKind::SmsOtp), 0);
}

#[tokio::test]
async fn redirect_keeps_the_registered_query() {
    let account = MockAccount {
        redirect_url: "http://127.0.0.1:9/cb?app=demo".into(),
        ..MockAccount::demo()
    };
    let s = server_with(MockOptions {
        account,
        page_variant: PageVariant::classic(),
        ..MockOptions::default()
    })
    .await;
    let consent = consent_id(&s).await;
    let session = classic_to_pin(&s, &consent).await;
    let pin = s.account().pin.clone();
    let r = post_boxes(&s, &consent, &session, "pin", &pin).await;
    assert_eq!(r.status(), StatusCode::FOUND);
    let loc = location(&r);
    assert_eq!(loc.path(), "/cb");
    assert!(loc.query_pairs().any(|(k, v)| k == "app" && v == "demo"));
    assert!(!token_id_of(&r).is_empty());
}

#[tokio::test]
async fn unknown_consent_and_stale_sessions_show_the_expired_screen() {
    let s = server().await;
    let page = get_page(&s, "no-such-consent").await.text().await.unwrap();
    assert!(page.contains(r#"<h2 class="login-title">Session expired</h2>"#));
    assert!(!page.contains(r#"name="session""#));

    let r = post_form(&s, "x", &[("session", "forged"), ("mobileNumber", "1")]).await;
    assert!(r.text().await.unwrap().contains("Session expired"));
}

#[tokio::test]
async fn three_wrong_secrets_block_the_login() {
    let s = server().await;
    let consent = consent_id(&s).await;
    let session = classic_to_pin(&s, &consent).await;
    let mut last = String::new();
    for _ in 0..3 {
        last = post_boxes(&s, &consent, &session, "pin", "000001")
            .await
            .text()
            .await
            .unwrap();
    }
    assert_eq!(error_of(&last).as_deref(), Some(BLOCKED));
    let pin = s.account().pin.clone();
    let r = post_boxes(&s, &consent, &session, "pin", &pin).await;
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "blocked: the right PIN no longer helps"
    );
    assert_eq!(error_of(&r.text().await.unwrap()).as_deref(), Some(BLOCKED));
}

/// A stand-in on which one test can log in many times with many variants.
async fn many_logins_server() -> MockServer {
    let s = server_with(MockOptions {
        consent_cap: 1000,
        ..MockOptions::default()
    })
    .await;
    s.set_totp_reuse_allowed(true);
    s
}

/// What a code screen holds, counted by input kind:
/// [code-input boxes, code-hidden code-input boxes, tel maxlength=1 boxes,
///  password maxlength=1 boxes, single tel fields, single password fields, plain text boxes].
fn inputs_of(html: &str) -> [usize; 7] {
    let body = html.split("<app-login>").nth(1).unwrap_or(html);
    let body = body.split("</app-login>").next().unwrap();
    [
        body.matches(r#"<span><input type="tel" inputmode="numeric" autocomplete="one-time-code""#)
            .count(),
        body.matches(r#"<span class="code-hidden"><input type="tel" inputmode="numeric" autocomplete="one-time-code""#)
            .count(),
        body.matches(r#"<input type="tel" class="otp-box" maxlength="1""#)
            .count(),
        body.matches(r#"<input type="password" class="otp-box" maxlength="1""#)
            .count(),
        body.matches(r#"<input type="tel" class="form-control otp-field" inputmode="numeric" autocomplete="one-time-code" maxlength="6""#)
            .count(),
        body.matches(r#"<input type="password" class="form-control otp-field" inputmode="numeric" maxlength="6""#)
            .count(),
        body.matches(r#"<input type="text""#).count(),
    ]
}

/// The inputs §2a-style markup puts on a screen showing a six-digit code read off a
/// device (TOTP, SMS OTP), or on the PIN screen.
fn expected_inputs(markup: Markup, pin: bool) -> [usize; 7] {
    match (markup, pin) {
        (Markup::CodeInput | Markup::Ambiguous | Markup::Unrecognisable, true) => {
            [0, 6, 0, 0, 0, 0, 0]
        }
        (Markup::CodeInput | Markup::Ambiguous | Markup::Unrecognisable, false)
        | (Markup::MissingPinBoxes, false) => [6, 0, 0, 0, 0, 0, 0],
        (Markup::TelBoxes, _) | (Markup::PasswordPin, false) => [0, 0, 6, 0, 0, 0, 0],
        (Markup::PasswordPin, true) => [0, 0, 0, 6, 0, 0, 0],
        (Markup::SingleField, false) => [0, 0, 0, 0, 1, 0, 0],
        (Markup::SingleField, true) => [0, 0, 0, 0, 0, 1, 0],
        (Markup::MissingPinBoxes, true) => [0; 7],
    }
}

fn assert_rendered(html: &str, what: &str) {
    assert!(!html.contains("{{"), "{what}: unfilled placeholder");
    assert!(
        html.contains("<app-root>\n<app-login>"),
        "{what}: Angular-like root"
    );
    // The component's boxes carry none of the attributes scripts used to select by.
    for group in html.split("<code-input>").skip(1) {
        let group = group.split("</code-input>").next().unwrap();
        for attr in ["maxlength", "name=", "formcontrolname", "type=\"password\""] {
            assert!(!group.contains(attr), "{what}: {attr} in a <code-input>");
        }
    }
}

#[tokio::test]
async fn every_server_rendered_variant_renders_every_screen_and_counts_entries() {
    let s = many_logins_server().await;
    let mobile = s.account().mobile.clone();
    let pin = s.account().pin.clone();
    let mut expected_entries = [0u32; 4];
    for markup in Markup::ALL {
        for second_factor in [SecondFactor::Totp, SecondFactor::SmsOtp] {
            for totp_screen in [true, false] {
                let variant = PageVariant {
                    markup,
                    second_factor,
                    totp_screen,
                    spa: false,
                    ..PageVariant::default()
                };
                let what = format!("{variant:?}");
                s.set_page_variant(variant);
                let consent = consent_id(&s).await;
                let page = get_page(&s, &consent).await.text().await.unwrap();
                assert_rendered(&page, &what);
                assert!(page.contains("Login via Dhan") && page.contains("Mobile Number"));
                let session = session_of(&page);
                let page = post_form(
                    &s,
                    &consent,
                    &[("session", &session), ("mobileNumber", &mobile)],
                )
                .await
                .text()
                .await
                .unwrap();
                expected_entries[0] += 1;
                assert_rendered(&page, &what);

                // The screen after the mobile number: the second factor, or the PIN.
                let (field, code, second) = match (totp_screen, second_factor) {
                    (false, _) => ("pin", pin.clone(), None),
                    (true, SecondFactor::Totp) => ("totp", current_code(&s), Some(1)),
                    (true, SecondFactor::SmsOtp) => ("otp", s.sms_otp(), Some(2)),
                };
                if markup == Markup::Unrecognisable {
                    assert!(page.contains("Verify it's you"), "{what}");
                    assert_eq!(inputs_of(&page), [0, 0, 0, 0, 0, 0, 1], "{what}");
                    let page = post_form(&s, &consent, &[("session", &session), ("answer", &code)])
                        .await
                        .text()
                        .await
                        .unwrap();
                    assert_eq!(
                        error_of(&page).as_deref(),
                        Some("We could not verify you. Please try again later."),
                        "{what}"
                    );
                    assert!(page.contains("Verify it"), "the same screen stays");
                    expected_entries[second.unwrap_or(3)] += 1;
                    continue;
                }
                if markup == Markup::Ambiguous {
                    assert_eq!(inputs_of(&page), [6, 6, 0, 0, 0, 0, 0], "{what}");
                    assert!(
                        !page.contains("TOTP") && !page.contains("PIN for"),
                        "{what}"
                    );
                } else if second.is_some() {
                    assert_eq!(inputs_of(&page), expected_inputs(markup, false), "{what}");
                } else {
                    assert_eq!(inputs_of(&page), expected_inputs(markup, true), "{what}");
                }
                match (totp_screen, second_factor, markup) {
                    (_, _, Markup::Ambiguous) => {}
                    (false, _, _) => assert!(page.contains("Enter PIN for your Account")),
                    (true, SecondFactor::Totp, Markup::TelBoxes) => {
                        assert!(page.contains("Authenticator code"), "{what}")
                    }
                    (true, SecondFactor::Totp, _) => assert!(page.contains("Enter TOTP"), "{what}"),
                    (true, SecondFactor::SmsOtp, _) => {
                        assert!(page.contains("OTP sent to ******0042"), "{what}");
                        assert!(page.contains(">Verify</button>"), "{what}");
                    }
                }
                assert!(
                    !page.contains("Verify with TOTP"),
                    "never seen on Dhan's page"
                );

                let r = post_form(&s, &consent, &[("session", &session), (field, &code)]).await;
                expected_entries[second.unwrap_or(3)] += 1;
                let r = if second.is_some() {
                    let page = r.text().await.unwrap();
                    assert_rendered(&page, &what);
                    assert!(page.contains("Enter PIN for your Account"), "{what}");
                    assert!(page.contains(">Continue</button>"), "{what}");
                    assert_eq!(inputs_of(&page), expected_inputs(markup, true), "{what}");
                    expected_entries[3] += 1;
                    post_form(&s, &consent, &[("session", &session), ("pin", &pin)]).await
                } else {
                    r
                };
                assert_eq!(r.status(), StatusCode::FOUND, "{what}");
                assert_eq!(consume(&s, &token_id_of(&r)).await.status(), StatusCode::OK);
            }
        }
    }
    let kinds = [
        EntryKind::Mobile,
        EntryKind::Totp,
        EntryKind::SmsOtp,
        EntryKind::Pin,
    ];
    for (kind, expected) in kinds.into_iter().zip(expected_entries) {
        assert_eq!(s.entries(kind), expected, "{kind:?}");
    }
}

#[tokio::test]
async fn every_single_page_variant_holds_every_screen_in_templates() {
    let s = many_logins_server().await;
    for markup in Markup::ALL {
        for second_factor in [SecondFactor::Totp, SecondFactor::SmsOtp] {
            let variant = PageVariant {
                markup,
                second_factor,
                ..PageVariant::default()
            };
            let what = format!("{variant:?}");
            s.set_page_variant(variant);
            let consent = consent_id(&s).await;
            let page = get_page(&s, &consent).await.text().await.unwrap();
            assert_rendered(&page, &what);
            assert!(
                page.contains("<app-login></app-login>"),
                "{what}: drawn by script"
            );
            let settings = page_settings(&page);
            assert_eq!(settings["mode"], "spa");
            assert_eq!(settings["submission"], "button");
            assert!(settings["session"].as_str().is_some_and(|v| v.len() >= 16));
            for name in ["mobile", "totp", "otp", "pin", "expired"] {
                let marker = format!(r#"<template id="screen-{name}">"#);
                let template = page
                    .split(&marker)
                    .nth(1)
                    .unwrap_or_else(|| panic!("{what}: {name}"));
                let template = template.split("</template>").next().unwrap();
                assert!(!template.contains(r#"name="session""#), "{what}: {name}");
                if name != "expired" {
                    assert!(template.contains("<form"), "{what}: {name}");
                }
            }
        }
    }
    assert_eq!(s.entries(EntryKind::Mobile), 0, "nothing was submitted");
}

#[tokio::test]
async fn submission_mode_reaches_the_page_and_random_varies_per_load() {
    let s = many_logins_server().await;
    for (submission, want) in [(Submission::Auto, "auto"), (Submission::Button, "button")] {
        s.set_page_variant(PageVariant {
            submission,
            ..PageVariant::classic()
        });
        let consent = consent_id(&s).await;
        let page = get_page(&s, &consent).await.text().await.unwrap();
        assert_eq!(page_settings(&page)["submission"], want);
        assert_eq!(page_settings(&page)["screen"], "mobile");
    }
    s.set_page_variant(PageVariant {
        submission: Submission::Random,
        ..PageVariant::classic()
    });
    let consent = consent_id(&s).await;
    let mut seen = std::collections::HashSet::new();
    // 40 loads all alike would happen once in 2^39 runs.
    for _ in 0..40 {
        let page = get_page(&s, &consent).await.text().await.unwrap();
        seen.insert(
            page_settings(&page)["submission"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(seen.len(), 2, "{seen:?}");

    s.set_page_variant(PageVariant {
        submission: Submission::Random,
        ..PageVariant::default()
    });
    let page = get_page(&s, &consent).await.text().await.unwrap();
    assert_eq!(
        page_settings(&page)["submission"],
        "random",
        "a single page decides on each screen"
    );
}

#[tokio::test]
async fn a_double_submission_is_counted_twice() {
    let s = server().await;
    let consent = consent_id(&s).await;
    let session = classic_to_pin(&s, &consent).await;
    assert_eq!(s.entries(EntryKind::Totp), 1);
    // The TOTP sent again after the page moved on (an auto-submit plus a click).
    let code = current_code(&s);
    let page = post_boxes(&s, &consent, &session, "totp", &code)
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(s.entries(EntryKind::Totp), 2);
    assert_eq!(s.entries(EntryKind::Pin), 0, "counted as what it carried");
    assert_eq!(
        error_of(&page).as_deref(),
        Some("Incorrect PIN, please try again"),
        "the server read it as a PIN: what a stray second submit costs"
    );
    // Faulted submissions reached the stand-in too.
    s.set_fault_once(Endpoint::ConsentLoginPage, Fault::Status(503));
    let r = post_boxes(&s, &consent, &session, "pin", "999999").await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(s.entries(EntryKind::Pin), 1);
    assert_eq!(s.entries(EntryKind::Mobile), 1);
}

#[tokio::test]
async fn skip_totp_goes_from_mobile_to_the_pin() {
    let s = server_with(MockOptions {
        page_variant: PageVariant {
            totp_screen: false,
            ..PageVariant::default()
        },
        ..MockOptions::default()
    })
    .await;
    let consent = consent_id(&s).await;
    let page = get_page(&s, &consent).await.text().await.unwrap();
    let session = page_settings(&page)["session"].as_str().unwrap().to_owned();
    let call = |step: &str, body: Value| {
        let u = url(&s.auth_base_url(), &format!("/login/api/{step}"));
        async move { client().post(u).json(&body).send().await.unwrap() }
    };
    let mobile = s.account().mobile.clone();
    let r = call(
        "mobile",
        serde_json::json!({"session": session, "mobileNumber": mobile}),
    )
    .await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({"status": "success", "next": "pin"})
    );
    let pin = s.account().pin.clone();
    let r = call("pin", serde_json::json!({"session": session, "pin": pin})).await;
    let body: Value = r.json().await.unwrap();
    assert!(body["redirect"].as_str().is_some(), "{body}");
    assert_eq!(s.entries(EntryKind::Totp), 0);
    assert_eq!(s.entries(EntryKind::Pin), 1);
}

#[tokio::test]
async fn sms_otp_replaces_the_totp_and_accepts_only_its_code() {
    let s = server_with(MockOptions {
        page_variant: PageVariant {
            second_factor: SecondFactor::SmsOtp,
            spa: false,
            ..PageVariant::default()
        },
        ..MockOptions::default()
    })
    .await;
    let otp = s.sms_otp();
    assert!(
        otp.len() == 6 && otp.chars().all(|c| c.is_ascii_digit()),
        "{otp}"
    );
    assert_eq!(s.describe_json()["sms_otp"], otp.as_str());
    assert_eq!(s.sms_otp(), otp, "fixed per server");

    let consent = consent_id(&s).await;
    let page = get_page(&s, &consent).await.text().await.unwrap();
    let session = session_of(&page);
    let mobile = s.account().mobile.clone();
    let page = post_form(
        &s,
        &consent,
        &[("session", &session), ("mobileNumber", &mobile)],
    )
    .await
    .text()
    .await
    .unwrap();
    assert!(page.contains("OTP sent to ******0042"));
    let wrong = if otp == "000000" { "111111" } else { "000000" };
    // A TOTP is not the OTP, even a right one.
    for (field, code) in [("otp", wrong.to_owned()), ("totp", current_code(&s))] {
        let page = post_form(&s, &consent, &[("session", &session), (field, &code)])
            .await
            .text()
            .await
            .unwrap();
        assert_eq!(
            error_of(&page).as_deref(),
            Some("Invalid OTP, please try again")
        );
        assert!(page.contains("OTP sent to"), "the same screen, boxes empty");
    }
    let page = post_form(&s, &consent, &[("session", &session), ("otp", &otp)])
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("Enter PIN for your Account"));
    assert_eq!(s.entries(EntryKind::SmsOtp), 2);
    assert_eq!(s.entries(EntryKind::Totp), 1);
}

#[tokio::test]
async fn proceed_ignored_once_is_told_to_the_first_document_only() {
    let s = server_with(MockOptions {
        page_variant: PageVariant {
            proceed_ignored_once: true,
            ..PageVariant::classic()
        },
        ..MockOptions::default()
    })
    .await;
    let consent = consent_id(&s).await;
    let page = get_page(&s, &consent).await.text().await.unwrap();
    assert_eq!(page_settings(&page)["ignoreFirstProceed"], true);
    assert!(page.contains("ignoreFirstProceed"), "the script reads it");
    let session = session_of(&page);
    // After a wrong number the page is re-rendered: that Proceed was not the first.
    let page = post_form(
        &s,
        &consent,
        &[("session", &session), ("mobileNumber", "1")],
    )
    .await
    .text()
    .await
    .unwrap();
    assert_eq!(page_settings(&page)["ignoreFirstProceed"], false);

    s.set_page_variant(PageVariant {
        proceed_ignored_once: true,
        ..PageVariant::default()
    });
    let page = get_page(&s, &consent).await.text().await.unwrap();
    assert_eq!(page_settings(&page)["ignoreFirstProceed"], true);

    s.set_page_variant(PageVariant::default());
    let page = get_page(&s, &consent).await.text().await.unwrap();
    assert_eq!(page_settings(&page)["ignoreFirstProceed"], false);
}

#[tokio::test]
async fn the_tracker_carries_a_decoy_token_id_that_consume_refuses() {
    let s = server_with(MockOptions {
        page_variant: PageVariant::default(),
        ..MockOptions::default()
    })
    .await;
    let decoy = s.decoy_token_id();
    let consent = consent_id(&s).await;
    let page = get_page(&s, &consent).await.text().await.unwrap();
    assert!(page.contains(
        r#"<script async src="https://www.googletagmanager.com/gtag/js?id=G-MOCK"></script>"#
    ));
    assert!(page.contains(r#"<iframe src="/analytics/frame""#));
    assert!(!page.contains(&decoy), "only the frame's document knows it");

    let frame = client()
        .get(url(&s.auth_base_url(), "/analytics/frame"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(frame.contains(&format!("/analytics/collect?tokenId={decoy}")));
    assert!(
        frame.contains("location.href"),
        "the frame navigates itself"
    );
    let r = client()
        .get(url(
            &s.auth_base_url(),
            &format!("/analytics/collect?tokenId={decoy}"),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    let loc = location(&r);
    assert!(loc.as_str().starts_with(&s.account().redirect_url), "{loc}");
    assert_eq!(token_id_of(&r), decoy);

    let r = consume(&s, &decoy).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["errorCode"], "INVALID_TOKEN_ID");
    assert_eq!(s.logins(), 0);
    assert_eq!(
        s.calls(Endpoint::ConsentLoginPage),
        1,
        "the tracker is another host's, not the login page's"
    );

    s.set_page_variant(PageVariant {
        tracker_iframe: false,
        ..PageVariant::default()
    });
    let page = get_page(&s, &consent).await.text().await.unwrap();
    assert!(!page.contains("<iframe") && !page.contains("<script async src"));
}

#[tokio::test]
async fn the_unrecognisable_screen_lets_nothing_through_on_a_single_page() {
    let s = server_with(MockOptions {
        page_variant: PageVariant {
            markup: Markup::Unrecognisable,
            ..PageVariant::default()
        },
        ..MockOptions::default()
    })
    .await;
    let consent = consent_id(&s).await;
    let page = get_page(&s, &consent).await.text().await.unwrap();
    let totp_tpl = page.split(r#"<template id="screen-totp">"#).nth(1).unwrap();
    let totp_tpl = totp_tpl.split("</template>").next().unwrap();
    assert!(totp_tpl.contains("Verify it") && totp_tpl.contains(r#"<input type="text""#));
    assert!(!totp_tpl.contains("code-input") && !totp_tpl.contains("Proceed"));
    let session = page_settings(&page)["session"].as_str().unwrap().to_owned();
    let call = |step: &str, body: Value| {
        let u = url(&s.auth_base_url(), &format!("/login/api/{step}"));
        async move { client().post(u).json(&body).send().await.unwrap() }
    };
    let mobile = s.account().mobile.clone();
    call(
        "mobile",
        serde_json::json!({"session": session, "mobileNumber": mobile}),
    )
    .await;
    let r = call(
        "totp",
        serde_json::json!({"session": session, "answer": current_code(&s)}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["message"],
        "We could not verify you. Please try again later."
    );
    assert_eq!(s.entries(EntryKind::Totp), 1);
    assert_eq!(s.entries(EntryKind::Pin), 0);
}

#[tokio::test]
async fn spa_page_draws_late_and_logs_in_through_json_calls() {
    let s = server_with(MockOptions {
        page_variant: PageVariant::spa_classic(),
        spa_render_delay: Duration::from_millis(750),
        ..MockOptions::default()
    })
    .await;
    let consent = consent_id(&s).await;
    let page = get_page(&s, &consent).await.text().await.unwrap();
    let settings = page_settings(&page);
    assert_eq!(settings["renderDelayMs"], 750);
    assert_eq!(settings["submission"], "auto");
    assert!(page.contains("<app-login></app-login>"));
    assert!(page.contains(r#"<template id="screen-totp">"#));
    // Nothing outside the templates until the script runs.
    let outside: String = page
        .split("<template")
        .enumerate()
        .map(|(i, part)| {
            if i == 0 {
                part
            } else {
                part.split("</template>").nth(1).unwrap_or("")
            }
        })
        .collect();
    assert!(!outside.contains("formcontrolname"));
    assert!(!outside.contains("toast-message"));
    // Auto submission keeps the button on screen.
    let totp_tpl = page.split(r#"<template id="screen-totp">"#).nth(1).unwrap();
    let totp_tpl = totp_tpl.split("</template>").next().unwrap();
    assert!(totp_tpl.contains(">Proceed</button>"));

    let session = settings["session"].as_str().unwrap().to_owned();
    let call = |step: &str, body: Value| {
        let u = url(&s.auth_base_url(), &format!("/login/api/{step}"));
        async move { client().post(u).json(&body).send().await.unwrap() }
    };

    let r = call(
        "mobile",
        serde_json::json!({"session": session, "mobileNumber": "1"}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["message"], "Mobile number is not registered");

    let mobile = s.account().mobile.clone();
    let r = call(
        "mobile",
        serde_json::json!({"session": session, "mobileNumber": mobile}),
    )
    .await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({"status": "success", "next": "totp"})
    );

    let r = call(
        "totp",
        serde_json::json!({"session": session, "totp": current_code(&s)}),
    )
    .await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["next"], "pin");

    let pin = s.account().pin.clone();
    let r = call("pin", serde_json::json!({"session": session, "pin": pin})).await;
    let body: Value = r.json().await.unwrap();
    let next = body["redirect"].as_str().unwrap();
    assert_eq!(
        next,
        format!("/login/consentApp-complete?session={session}")
    );

    let r = client()
        .get(url(&s.auth_base_url(), next))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    let token_id = token_id_of(&r);
    assert_eq!(consume(&s, &token_id).await.status(), StatusCode::OK);

    let r = call(
        "pin",
        serde_json::json!({"session": session, "pin": "135790"}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::GONE);
    assert_eq!(s.calls(Endpoint::ConsentLoginPage), 7);
    assert_eq!(s.entries(EntryKind::Mobile), 2);
    assert_eq!(s.entries(EntryKind::Totp), 1);
    assert_eq!(s.entries(EntryKind::Pin), 2, "one too late, still counted");
}

#[tokio::test]
async fn consume_checks_app_credentials_and_accepts_post() {
    let s = server().await;
    let consent = consent_id(&s).await;
    let session = classic_to_pin(&s, &consent).await;
    let pin = s.account().pin.clone();
    let r = post_boxes(&s, &consent, &session, "pin", &pin).await;
    let token_id = token_id_of(&r);

    let r = client()
        .get(url(&s.auth_base_url(), "/app/consumeApp-consent"))
        .query(&[("tokenId", token_id.as_str())])
        .header("app_id", &s.account().api_key)
        .header("app_secret", "wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    let a = s.account();
    let r = client()
        .post(url(&s.auth_base_url(), "/app/consumeApp-consent"))
        .query(&[("tokenId", token_id.as_str())])
        .header("app_id", &a.api_key)
        .header("app_secret", &a.api_secret)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "a refused attempt did not spend the tokenId"
    );
    assert_eq!(s.logins(), 1);
}

#[tokio::test]
async fn renew_extends_a_live_self_token_only() {
    let s = server().await;
    let old = s.issue_token(TokenKind::SelfWeb, Duration::from_secs(600));
    assert_eq!(claims(&old)["tokenConsumerType"], "SELF");

    let r = renew(&s, &old).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    let new = body["accessToken"].as_str().unwrap();
    assert_ne!(new, old);
    assert_eq!(claims(new)["tokenConsumerType"], "SELF");
    let expiry = expiry_utc(&body);
    assert!(expiry > Utc::now() + chrono::TimeDelta::hours(23));
    assert!(s.is_live(new));
    assert!(!s.is_live(&old), "renewal expires the renewed token");
    assert_eq!(s.logins(), 0, "renewal is not a login");

    let r = renew(&s, &old).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["errorCode"], "DH-901");
}

#[tokio::test]
async fn renew_refuses_app_expired_and_post() {
    let s = server().await;
    let app = s.issue_token(TokenKind::App, Duration::from_secs(600));
    let r = renew(&s, &app).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["errorCode"], "DH-905");
    assert!(s.is_live(&app), "a refused renewal leaves the token alone");

    let expired = s.issue_token(TokenKind::SelfWeb, Duration::ZERO);
    assert!(!s.is_live(&expired));
    let r = renew(&s, &expired).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({
            "errorType": "Invalid_Authentication",
            "errorCode": "DH-901",
            "errorMessage": "Client ID or user generated access token is invalid or expired."
        })
    );

    let live = s.issue_token(TokenKind::SelfWeb, Duration::from_secs(600));
    let r = client()
        .get(url(&s.api_base_url(), "/RenewToken"))
        .header("access-token", &live)
        .header("dhanClientId", "someone-else")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    let r = client()
        .post(url(&s.api_base_url(), "/RenewToken"))
        .header("access-token", &live)
        .header("dhanClientId", &s.account().client_id)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["errorCode"], "DH-905");
    assert!(s.is_live(&live));
    assert_eq!(s.calls(Endpoint::RenewToken), 4);
}

#[tokio::test]
async fn profile_reports_validity_in_ist() {
    let s = server().await;
    let token = s.issue_token(TokenKind::App, Duration::from_secs(2 * 3600));
    let r = profile(&s, &token).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["dhanClientId"], s.account().client_id.as_str());
    let validity = body["tokenValidity"].as_str().unwrap();
    let naive = NaiveDateTime::parse_from_str(validity, "%d/%m/%Y %H:%M").unwrap();
    let at = ist()
        .from_local_datetime(&naive)
        .unwrap()
        .with_timezone(&Utc);
    let expected = Utc::now() + chrono::TimeDelta::hours(2);
    assert!((at - expected).num_seconds().abs() <= 61, "{validity}");
    for key in ["activeSegment", "ddpi", "mtf", "dataPlan", "dataValidity"] {
        assert!(body[key].is_string(), "{key}");
    }

    let r = profile(&s, "not-a-token").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["errorCode"], "DH-901");

    let r = client()
        .get(url(&s.api_base_url(), "/profile"))
        .header("access-token", &token)
        .header("dhanClientId", "someone-else")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(s.calls(Endpoint::Profile), 3);
}

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

#[tokio::test]
async fn issue_token_endpoint_serves_out_of_process_clients() {
    let s = server().await;
    let r = client()
        .post(url(&s.auth_base_url(), "/mock/issue-token"))
        .query(&[("kind", "SELF"), ("lifetime_secs", "120")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    let token = body["accessToken"].as_str().unwrap();
    assert_eq!(claims(token)["tokenConsumerType"], "SELF");
    let expiry = expiry_utc(&body);
    assert!(
        (expiry - (Utc::now() + chrono::TimeDelta::seconds(120)))
            .num_seconds()
            .abs()
            <= 3
    );
    assert_eq!(renew(&s, token).await.status(), StatusCode::OK);

    let r = client()
        .post(url(&s.auth_base_url(), "/mock/issue-token"))
        .query(&[("kind", "ROOT")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(s.logins(), 0);
}

#[tokio::test]
async fn single_page_steps_honour_faults_and_spend_each_totp_once() {
    let s = server_with(MockOptions {
        page_variant: PageVariant::default(),
        ..MockOptions::default()
    })
    .await;
    let call = |step: &str, body: Value| {
        let u = url(&s.auth_base_url(), &format!("/login/api/{step}"));
        async move { client().post(u).json(&body).send().await.unwrap() }
    };
    let mobile = s.account().mobile.clone();
    let code = current_code(&s);
    let mut sessions = Vec::new();
    for _ in 0..2 {
        let consent = consent_id(&s).await;
        let page = get_page(&s, &consent).await.text().await.unwrap();
        let session = page_settings(&page)["session"].as_str().unwrap().to_owned();
        call(
            "mobile",
            serde_json::json!({"session": session, "mobileNumber": mobile}),
        )
        .await;
        sessions.push(session);
    }
    // A right code refused by the fault, then accepted, then refused as spent.
    s.set_fault_once(Endpoint::ConsentLoginPage, Fault::WrongCredential);
    let r = call(
        "totp",
        serde_json::json!({"session": sessions[0], "totp": code}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["message"], "Invalid Totp entered");
    let r = call(
        "totp",
        serde_json::json!({"session": sessions[0], "totp": code}),
    )
    .await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["next"], "pin");
    let r = call(
        "totp",
        serde_json::json!({"session": sessions[1], "totp": code}),
    )
    .await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["message"], "Invalid Totp entered",
        "the same code in another login is a reuse"
    );
    assert_eq!(s.entries(EntryKind::Totp), 3);
    // Page load, mobile and TOTP calls for both sessions: every one counted.
    assert_eq!(s.calls(Endpoint::ConsentLoginPage), 2 + 2 + 3);
}

/// `dhan-login mock-server --accounts 3`: its first line lists three accounts, each with
/// its own client id, mobile, PIN and TOTP secret, and each logs in with its own
/// credentials only (`dhan-login token` as a separate process, as scripts would).
#[tokio::test(flavor = "multi_thread")]
async fn mock_server_with_several_accounts_lists_them_and_each_logs_in_alone() {
    use tokio::io::AsyncBufReadExt;

    let bin = env!("CARGO_BIN_EXE_dhan-login");
    let mut child = tokio::process::Command::new(bin)
        .args(["mock-server", "--port", "0", "--accounts", "3"])
        .env_clear()
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start mock-server");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let first = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .expect("mock-server printed nothing within 10 s")
        .expect("read stdout")
        .expect("mock-server closed stdout without a line");
    let d: Value = serde_json::from_str(&first).unwrap();
    let accounts = d["accounts"].as_array().expect("an accounts array");
    assert_eq!(accounts.len(), 3, "{d}");
    // The top level stays the first account's, for single-account scripts.
    for key in [
        "client_id",
        "mobile",
        "pin",
        "totp_secret",
        "api_key",
        "api_secret",
    ] {
        assert_eq!(accounts[0][key], d[key], "{key}");
        let distinct: std::collections::HashSet<_> =
            accounts.iter().map(|a| a[key].as_str().unwrap()).collect();
        assert_eq!(distinct.len(), 3, "{key} is shared between accounts: {d}");
    }

    let run = |account: &Value, pin: &Value| {
        let state = tempfile::tempdir().unwrap();
        std::fs::write(state.path().join("none.toml"), "").unwrap();
        let out = std::process::Command::new(bin)
            .args(["token", "--json"])
            .env_clear()
            .env("DHAN_LOGIN_STATE_DIR", state.path())
            .env("DHAN_LOGIN_CONFIG", state.path().join("none.toml"))
            .env("DHAN_AUTH_BASE_URL", d["auth_base_url"].as_str().unwrap())
            .env("DHAN_API_BASE_URL", d["api_base_url"].as_str().unwrap())
            .env("DHAN_CLIENT_ID", account["client_id"].as_str().unwrap())
            .env("DHAN_PIN", pin.as_str().unwrap())
            .env("DHAN_TOTP_SECRET", account["totp_secret"].as_str().unwrap())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.code(), stdout, stderr)
    };
    let mut tokens = std::collections::HashSet::new();
    for a in accounts {
        let (code, out, err) = tokio::task::block_in_place(|| run(a, &a["pin"]));
        assert_eq!(code, Some(0), "{}: {err}", a["client_id"]);
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["client_id"], a["client_id"], "{out}");
        tokens.insert(v["access_token"].as_str().unwrap().to_owned());
    }
    assert_eq!(tokens.len(), 3, "each account has its own token");
    // Another account's PIN is a wrong PIN here: exit 3 (credentials rejected).
    let (code, _, err) = tokio::task::block_in_place(|| run(&accounts[1], &accounts[2]["pin"]));
    assert_eq!(code, Some(3), "{err}");
    child.kill().await.expect("stop mock-server");
}

/// Several accounts in one stand-in keep their state apart: logins, the consent cap and
/// the one live token are per account, and one app cannot act for another's client.
#[tokio::test]
async fn accounts_of_one_stand_in_keep_logins_consents_and_tokens_apart() {
    let s = server_with(MockOptions {
        accounts: 2,
        consent_cap: 1,
        ..MockOptions::default()
    })
    .await;
    let [a, b] = s.accounts() else {
        panic!("two accounts: {:?}", s.accounts())
    };
    assert_eq!(a, &MockAccount::demo());
    let http = client();
    let login = |acct: &MockAccount| {
        let q = [
            ("dhanClientId", acct.client_id.clone()),
            ("pin", acct.pin.clone()),
            ("totp", code_at(&acct.totp_secret, unix_now())),
        ];
        http.post(url(&s.auth_base_url(), "/app/generateAccessToken"))
            .query(&q)
            .send()
    };
    let ta: Value = login(a).await.unwrap().json().await.unwrap();
    let tb: Value = login(b).await.unwrap().json().await.unwrap();
    assert_eq!(tb["dhanClientId"], b.client_id.as_str(), "{tb}");
    let (ta, tb) = (
        ta["accessToken"].as_str().unwrap(),
        tb["accessToken"].as_str().unwrap(),
    );
    // B's login did not end A's token: one live token per account, not per stand-in.
    assert!(s.is_live(ta) && s.is_live(tb));
    assert_eq!(
        (s.logins_of(&a.client_id), s.logins_of(&b.client_id)),
        (1, 1)
    );
    assert_eq!(s.logins(), 2);

    let consent = |app: &MockAccount, client_id: &str| {
        http.post(url(&s.auth_base_url(), "/app/generate-consent"))
            .query(&[("client_id", client_id)])
            .header("app_id", &app.api_key)
            .header("app_secret", &app.api_secret)
            .send()
    };
    // A's app cannot ask for B's client.
    let r = consent(a, &b.client_id).await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("INVALID_CLIENT_ID"));
    // Each account has its own cap of 1.
    for acct in [a, b] {
        assert_eq!(consent(acct, &acct.client_id).await.unwrap().status(), 200);
        let r = consent(acct, &acct.client_id).await.unwrap();
        assert!(r.text().await.unwrap().contains("CONSENT_LIMIT_EXCEED"));
    }
    assert_eq!(s.consents_today_of(&b.client_id), 1);
    assert_eq!(s.consents_today(), 2);
}
