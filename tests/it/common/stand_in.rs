//! Talking to the stand-in of Dhan over plain HTTP: a server, a client that follows no
//! redirect, the calls and pages by name, TOTP codes and the answers' fields.

use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone, Utc};
use dhan_login::mock::{MockAccount, MockOptions, MockServer, PageVariant};
use reqwest::StatusCode;
use serde_json::Value;

use super::{jwt_claims, totp_code_at, unix_now};

pub const BLOCKED: &str = "Your account is temporarily blocked";

/// A stand-in whose screens are server-rendered forms, which these tests post to.
pub async fn server() -> MockServer {
    server_with(MockOptions {
        page_variant: PageVariant::classic(),
        ..MockOptions::default()
    })
    .await
}

pub async fn server_with(opts: MockOptions) -> MockServer {
    MockServer::start(opts).await.expect("mock server starts")
}

/// A stand-in whose login page is `variant`, everything else default.
pub async fn serving(variant: PageVariant) -> MockServer {
    server_with(MockOptions {
        page_variant: variant,
        ..MockOptions::default()
    })
    .await
}

/// A fresh consent, and the login page's HTML for it.
pub async fn opened_page(s: &MockServer) -> (String, String) {
    let consent = consent_id(s).await;
    let page = get_page(s, &consent).await.text().await.unwrap();
    (consent, page)
}

/// Redirects must stay visible: the tokenId lives in the 302's Location.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub fn current_code(s: &MockServer) -> String {
    totp_code_at(&s.account().totp_secret, unix_now())
}

/// The code of the following 30 s step: still inside the server's ±1 window, and a
/// step of its own, so a second login in one test is not a reuse.
pub fn next_code(s: &MockServer) -> String {
    totp_code_at(&s.account().totp_secret, unix_now() + 30)
}

pub fn ist() -> FixedOffset {
    FixedOffset::east_opt(19800).unwrap()
}

pub fn claims(token: &str) -> Value {
    jwt_claims(token).expect("a JWT-shaped token")
}

pub fn url(base: &url::Url, path: &str) -> String {
    format!("{}{}", base.as_str().trim_end_matches('/'), path)
}

pub async fn direct_login(s: &MockServer, pin: &str, totp: &str) -> reqwest::Response {
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

pub async fn generate_consent(s: &MockServer) -> reqwest::Response {
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

pub async fn consent_id(s: &MockServer) -> String {
    let r = generate_consent(s).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    body["consentAppId"].as_str().unwrap().to_owned()
}

pub async fn consume(s: &MockServer, token_id: &str) -> reqwest::Response {
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

pub async fn renew(s: &MockServer, token: &str) -> reqwest::Response {
    client()
        .get(url(&s.api_base_url(), "/RenewToken"))
        .header("access-token", token)
        .header("dhanClientId", &s.account().client_id)
        .send()
        .await
        .unwrap()
}

pub async fn profile(s: &MockServer, token: &str) -> reqwest::Response {
    client()
        .get(url(&s.api_base_url(), "/profile"))
        .header("access-token", token)
        .send()
        .await
        .unwrap()
}

pub async fn get_page(s: &MockServer, consent: &str) -> reqwest::Response {
    client()
        .get(s.consent_login_url(consent).as_str())
        .send()
        .await
        .unwrap()
}

/// Posts a Classic screen's form the way a browser would: to the page's own URL.
pub async fn post_form(
    s: &MockServer,
    consent: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
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

pub fn session_of(html: &str) -> String {
    let marker = r#"name="session" value=""#;
    let start = html.find(marker).expect("hidden session field") + marker.len();
    let len = html[start..].find('"').unwrap();
    html[start..start + len].to_owned()
}

/// The text of the page's error: an ngx-toastr toast, or the expired page's alert.
pub fn error_of(html: &str) -> Option<String> {
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
pub fn page_settings(html: &str) -> Value {
    let marker = "window.PAGE = ";
    let start = html.find(marker).expect("page settings") + marker.len();
    let len = html[start..].find(";</script>").unwrap();
    serde_json::from_str(&html[start..start + len]).unwrap()
}

/// Digits as the six one-character boxes post them: the same name six times.
pub fn boxes(name: &'static str, digits: &str) -> Vec<(&'static str, String)> {
    digits.chars().map(|c| (name, c.to_string())).collect()
}

pub async fn post_boxes(
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
pub async fn classic_to_pin(s: &MockServer, consent: &str) -> String {
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

pub fn location(r: &reqwest::Response) -> url::Url {
    let loc = r.headers()["location"].to_str().unwrap();
    url::Url::parse(loc).unwrap()
}

pub fn token_id_of(r: &reqwest::Response) -> String {
    location(r)
        .query_pairs()
        .find(|(k, _)| k == "tokenId")
        .map(|(_, v)| v.into_owned())
        .expect("tokenId in Location")
}

pub fn assert_six_fields(body: &Value, account: &MockAccount) {
    assert_eq!(body["dhanClientId"], account.client_id.as_str());
    assert_eq!(body["dhanClientName"], account.client_name.as_str());
    assert_eq!(body["dhanClientUcc"], account.ucc.as_str());
    assert_eq!(body["givenPowerOfAttorney"], true);
    assert!(body["accessToken"].as_str().is_some());
    assert!(body["expiryTime"].as_str().is_some());
    assert_eq!(body.as_object().unwrap().len(), 6, "{body}");
}

/// `expiryTime` read as Dhan means it: IST wall-clock time.
pub fn expiry_utc(body: &Value) -> DateTime<Utc> {
    let text = body["expiryTime"].as_str().unwrap();
    assert!(!text.ends_with('Z') && !text.contains('+'), "{text}");
    let naive = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.3f").unwrap();
    assert_eq!(text.len(), "2026-01-01T00:00:00.000".len());
    ist()
        .from_local_datetime(&naive)
        .unwrap()
        .with_timezone(&Utc)
}
