//! The auth.dhan.co and api.dhan.co endpoints.

use axum::Router;
use axum::extract::{RawQuery, State as Extract};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::Serialize;
use serde_json::json;

use super::gate::{Gate, Shared, counted, gate, json_response, query_map};
use super::jwt;
use super::state::{Acct, Minted, RenewRefusal, State, TotpVerdict};
use super::{Endpoint, TokenKind, pages};

pub(crate) fn router(state: Shared) -> Router {
    Router::new()
        .route(
            "/app/generateAccessToken",
            counted(Endpoint::GenerateAccessToken, post(generate_access_token)),
        )
        .route(
            "/app/generate-consent",
            counted(Endpoint::GenerateConsent, post(generate_consent)),
        )
        // The official curl uses GET; at least one public client POSTs: take both.
        .route(
            "/app/consumeApp-consent",
            counted(
                Endpoint::ConsumeConsent,
                get(consume_consent).post(consume_consent),
            ),
        )
        .route(
            "/v2/RenewToken",
            counted(
                Endpoint::RenewToken,
                get(renew_token).post(renew_token_post),
            ),
        )
        .route("/v2/profile", counted(Endpoint::Profile, get(profile)))
        .route("/v2/ip/getIP", counted(Endpoint::StaticIp, get(get_ip)))
        .route("/v2/ip/setIP", counted(Endpoint::StaticIp, post(set_ip)))
        .route(
            "/v2/ip/modifyIP",
            counted(Endpoint::StaticIp, put(modify_ip)),
        )
        // Not Dhan's: lets a client in another process get the token `issue_token` gives
        // in-process tests, e.g. a SELF token for `dhan-login mock-server` to renew.
        .route("/mock/issue-token", post(mock_issue_token))
        .merge(pages::router())
        .with_state(state)
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

// auth.dhan.co's error bodies are undocumented; the stand-in uses two of the shapes
// clients must accept (fixtures/README.md says which endpoint uses which).

fn auth_status_error(status: StatusCode, message: &str) -> Response {
    json_response(status, json!({"status": "error", "message": message}))
}

fn auth_coded_error(status: StatusCode, kind: &str, code: &str, message: &str) -> Response {
    json_response(
        status,
        json!({"errorType": kind, "errorCode": code, "errorMessage": message}),
    )
}

fn bad_app_credentials() -> Response {
    auth_coded_error(
        StatusCode::UNAUTHORIZED,
        "Invalid_Authentication",
        "INVALID_APP_CREDENTIALS",
        "Invalid app_id or app_secret",
    )
}

/// The six-field body of generateAccessToken and consumeApp-consent.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Grant<'a> {
    dhan_client_id: &'a str,
    dhan_client_name: &'a str,
    dhan_client_ucc: &'a str,
    given_power_of_attorney: bool,
    access_token: String,
    expiry_time: String,
}

fn grant(state: &State, acct: Acct, minted: Minted) -> Response {
    let a = &state.accounts[acct];
    (
        StatusCode::OK,
        axum::Json(Grant {
            dhan_client_id: &a.client_id,
            dhan_client_name: &a.client_name,
            dhan_client_ucc: &a.ucc,
            given_power_of_attorney: true,
            access_token: minted.token,
            expiry_time: jwt::expiry_time(minted.expires),
        }),
    )
        .into_response()
}

/// Dhan's answer to a token asked for within 2 minutes of the last attempt (its v2 docs;
/// HTTP 200, seen live in 2026).
const MINT_THROTTLED: &str = "Token can be generated once every 2 minutes.";

async fn generate_access_token(Extract(state): Extract<Shared>, RawQuery(q): RawQuery) -> Response {
    let wrong = match gate(&state, Endpoint::GenerateAccessToken).await {
        Gate::Answer(r) => return r,
        Gate::Proceed { wrong_credential } => wrong_credential,
    };
    let q = query_map(q);
    for name in ["dhanClientId", "pin", "totp"] {
        if q.get(name).is_none_or(|v| v.trim().is_empty()) {
            return auth_status_error(
                StatusCode::BAD_REQUEST,
                &format!("Missing required parameter: {name}"),
            );
        }
    }
    let client_id = q.get("dhanClientId").map(|s| s.trim()).unwrap_or_default();
    let Some(acct) = state.account_by_client_id(client_id) else {
        return auth_status_error(StatusCode::UNAUTHORIZED, "Invalid dhanClientId");
    };
    if !state.mint_attempt(acct) {
        return auth_status_error(StatusCode::OK, MINT_THROTTLED);
    }
    let pin = q.get("pin").map(String::as_str).unwrap_or_default();
    if wrong || !state.pin_matches(acct, pin) {
        return auth_status_error(StatusCode::UNAUTHORIZED, "Invalid PIN");
    }
    match state.check_totp(acct, q.get("totp").map(String::as_str).unwrap_or_default()) {
        TotpVerdict::Accepted => grant(&state, acct, state.login(acct)),
        TotpVerdict::Invalid => auth_status_error(StatusCode::UNAUTHORIZED, "Invalid TOTP"),
        TotpVerdict::Reused => auth_status_error(
            StatusCode::UNAUTHORIZED,
            "TOTP already used, wait for the next code",
        ),
    }
}

/// The account whose app sent these headers.
fn app_account(state: &State, headers: &HeaderMap) -> Option<Acct> {
    state.account_by_app(
        header_str(headers, "app_id")?,
        header_str(headers, "app_secret")?,
    )
}

async fn generate_consent(
    Extract(state): Extract<Shared>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    let wrong = match gate(&state, Endpoint::GenerateConsent).await {
        Gate::Answer(r) => return r,
        Gate::Proceed { wrong_credential } => wrong_credential,
    };
    let Some(acct) = app_account(&state, &headers).filter(|_| !wrong) else {
        return bad_app_credentials();
    };
    let q = query_map(q);
    if q.get("client_id").map(|s| s.trim()) != Some(state.accounts[acct].client_id.as_str()) {
        return auth_coded_error(
            StatusCode::BAD_REQUEST,
            "Invalid_Request",
            "INVALID_CLIENT_ID",
            "client_id does not match the app",
        );
    }
    match state.generate_consent(acct) {
        Some(id) => json_response(
            StatusCode::OK,
            json!({"consentAppId": id, "consentAppStatus": "GENERATED", "status": "success"}),
        ),
        // 400, not 429: this is a daily quota, and a client that retries 429s would only
        // hammer it. Clients must read errorCode, not the status.
        None => auth_coded_error(
            StatusCode::BAD_REQUEST,
            "Consent_Limit",
            "CONSENT_LIMIT_EXCEED",
            "Consent limit Exceeded",
        ),
    }
}

async fn consume_consent(
    Extract(state): Extract<Shared>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    let wrong = match gate(&state, Endpoint::ConsumeConsent).await {
        Gate::Answer(r) => return r,
        Gate::Proceed { wrong_credential } => wrong_credential,
    };
    let Some(acct) = app_account(&state, &headers).filter(|_| !wrong) else {
        return bad_app_credentials();
    };
    let q = query_map(q);
    let token_id = q.get("tokenId").map(|s| s.trim()).unwrap_or_default();
    match state.consume_token_id(acct, token_id) {
        Some(minted) => grant(&state, acct, minted),
        None => auth_coded_error(
            StatusCode::BAD_REQUEST,
            "Invalid_Request",
            "INVALID_TOKEN_ID",
            "tokenId is invalid or has already been used",
        ),
    }
}

fn dh901() -> Response {
    json_response(StatusCode::UNAUTHORIZED, dh901_body())
}

fn dh901_body() -> serde_json::Value {
    json!({
        "errorType": "Invalid_Authentication",
        "errorCode": "DH-901",
        "errorMessage": "Client ID or user generated access token is invalid or expired."
    })
}

fn dh905(message: &str) -> Response {
    json_response(
        StatusCode::BAD_REQUEST,
        json!({"errorType": "Input_Exception", "errorCode": "DH-905", "errorMessage": message}),
    )
}

async fn renew_token(Extract(state): Extract<Shared>, headers: HeaderMap) -> Response {
    let wrong = match gate(&state, Endpoint::RenewToken).await {
        Gate::Answer(r) => return r,
        Gate::Proceed { wrong_credential } => wrong_credential,
    };
    let (Some(token), Some(client_id)) = (
        header_str(&headers, "access-token"),
        header_str(&headers, "dhanclientid"),
    ) else {
        return dh905("Missing required fields, bad values for parameters etc.");
    };
    if wrong {
        return dh901();
    }
    // The answers live Dhan gave in 2026 (docs/DHAN_TOKENS.md): `token` and
    // `createTime` on success, an error body under HTTP 200 for an expired token, and
    // HTTP 500 DH-905 for a token an API login made.
    match state.renew(token, client_id) {
        Ok(minted) => json_response(
            StatusCode::OK,
            json!({
                "token": minted.token,
                "createTime": jwt::expiry_time(chrono::Utc::now()),
            }),
        ),
        Err(RenewRefusal::Invalid) => dh901(),
        Err(RenewRefusal::Expired) => json_response(StatusCode::OK, dh901_body()),
        Err(RenewRefusal::NotRenewable) => json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({
                "errorType": "INVALID_REQUEST",
                "errorCode": "DH-905",
                "errorMessage": "Renewal of token not allowed for this token type"
            }),
        ),
    }
}

async fn renew_token_post(Extract(state): Extract<Shared>) -> Response {
    if let Gate::Answer(r) = gate(&state, Endpoint::RenewToken).await {
        return r;
    }
    dh905("Missing required fields, bad values for parameters etc.")
}

async fn profile(Extract(state): Extract<Shared>, headers: HeaderMap) -> Response {
    let wrong = match gate(&state, Endpoint::Profile).await {
        Gate::Answer(r) => return r,
        Gate::Proceed { wrong_credential } => wrong_credential,
    };
    let live = header_str(&headers, "access-token").and_then(|t| state.live_token(t));
    let Some(live) = live.filter(|_| !wrong) else {
        return dh901();
    };
    // The header is optional here (DhanHQ-py sends it, curl examples do not), but a
    // client id that names someone else cannot pass.
    let client_id = &state.accounts[live.acct].client_id;
    if header_str(&headers, "dhanclientid").is_some_and(|id| id != client_id) {
        return dh901();
    }
    let data_validity = chrono::Utc::now() + chrono::TimeDelta::days(30);
    json_response(
        StatusCode::OK,
        json!({
            "dhanClientId": client_id,
            "tokenValidity": jwt::token_validity(live.expires),
            "activeSegment": "Equity, Derivative, Currency, Commodity",
            "ddpi": "Active",
            "mtf": "Active",
            "dataPlan": "Active",
            "dataValidity": jwt::data_validity(data_validity),
        }),
    )
}

/// The account of a live token, after the fault gate; else the answer to give.
async fn token_account(state: &State, headers: &HeaderMap) -> Result<Acct, Response> {
    let wrong = match gate(state, Endpoint::StaticIp).await {
        Gate::Answer(r) => return Err(r),
        Gate::Proceed { wrong_credential } => wrong_credential,
    };
    let live = header_str(headers, "access-token").and_then(|t| state.live_token(t));
    match live.filter(|_| !wrong) {
        Some(live) => Ok(live.acct),
        None => Err(dh901()),
    }
}

async fn get_ip(Extract(state): Extract<Shared>, headers: HeaderMap) -> Response {
    let acct = match token_account(&state, &headers).await {
        Ok(acct) => acct,
        Err(r) => return r,
    };
    let slots = state.ip_book.get(acct);
    let ip = |s: &Option<super::ip_book::Slot>| s.as_ref().map_or(String::new(), |s| s.ip.clone());
    let date = |s: &Option<super::ip_book::Slot>| {
        s.as_ref().map_or(String::new(), |s| {
            s.modify_from.format("%Y-%m-%d").to_string()
        })
    };
    json_response(
        StatusCode::OK,
        json!({
            "primaryIP": ip(&slots.primary),
            "secondaryIP": ip(&slots.secondary),
            "modifyDatePrimary": date(&slots.primary),
            "modifyDateSecondary": date(&slots.secondary),
        }),
    )
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct IpWrite {
    dhan_client_id: Option<String>,
    ip: String,
    ip_flag: String,
}

async fn write_ip(state: &State, headers: &HeaderMap, body: &[u8], modify: bool) -> Response {
    let acct = match token_account(state, headers).await {
        Ok(acct) => acct,
        Err(r) => return r,
    };
    let Ok(req) = serde_json::from_slice::<IpWrite>(body) else {
        return dh905("Missing required fields, bad values for parameters etc.");
    };
    if req
        .dhan_client_id
        .as_deref()
        .is_some_and(|id| id.trim() != state.accounts[acct].client_id)
    {
        return dh901();
    }
    let secondary = match req.ip_flag.as_str() {
        "PRIMARY" => false,
        "SECONDARY" => true,
        _ => return dh905("ipFlag must be PRIMARY or SECONDARY"),
    };
    match state
        .ip_book
        .write(acct, secondary, &req.ip, modify, State::ist_today())
    {
        Ok(()) => json_response(
            StatusCode::OK,
            json!({"status": "SUCCESS", "message": if modify { "IP modified successfully" } else { "IP saved successfully" }}),
        ),
        Err(message) => dh905(&message),
    }
}

async fn set_ip(
    Extract(state): Extract<Shared>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    write_ip(&state, &headers, &body, false).await
}

async fn modify_ip(
    Extract(state): Extract<Shared>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    write_ip(&state, &headers, &body, true).await
}

async fn mock_issue_token(Extract(state): Extract<Shared>, RawQuery(q): RawQuery) -> Response {
    let q = query_map(q);
    let kind = match q.get("kind").map(|k| k.to_ascii_uppercase()).as_deref() {
        None | Some("SELF") => TokenKind::SelfWeb,
        Some("APP") => TokenKind::App,
        Some(_) => return auth_status_error(StatusCode::BAD_REQUEST, "kind must be SELF or APP"),
    };
    let lifetime = match q.get("lifetime_secs").map(|s| s.parse::<u64>()) {
        None => crate::dhan::TOKEN_LIFETIME,
        Some(Ok(secs)) => std::time::Duration::from_secs(secs),
        Some(Err(_)) => {
            return auth_status_error(StatusCode::BAD_REQUEST, "lifetime_secs must be a number");
        }
    };
    let acct = match q.get("client_id") {
        None => 0,
        Some(id) => match state.account_by_client_id(id.trim()) {
            Some(acct) => acct,
            None => return auth_status_error(StatusCode::BAD_REQUEST, "unknown client_id"),
        },
    };
    let token = state.issue_token(acct, kind, lifetime);
    let expires = state
        .live_token(&token)
        .map(|t| jwt::expiry_time(t.expires))
        .unwrap_or_default();
    json_response(
        StatusCode::OK,
        json!({"accessToken": token, "expiryTime": expires, "tokenConsumerType": kind.as_str()}),
    )
}
