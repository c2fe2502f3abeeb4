//! The consent login pages (`/login/...`): server-rendered screens for the Classic
//! variants, one scripted page plus JSON calls for the Spa variant.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State as Extract};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;

use super::routes::{Gate, Shared, counted, gate, json_response, query_map};
use super::state::{Entry, Stage, StepOutcome};
use super::{Endpoint, PageVariant};

const SHELL: &str = include_str!("../../fixtures/consent-login/shell.html");
const STYLE: &str = include_str!("../../fixtures/consent-login/style.css");
const DIGITS_JS: &str = include_str!("../../fixtures/consent-login/digits.js");
const CLASSIC_JS: &str = include_str!("../../fixtures/consent-login/classic.js");
const SPA_JS: &str = include_str!("../../fixtures/consent-login/spa.js");
const SPA: &str = include_str!("../../fixtures/consent-login/spa.html");
const MOBILE: &str = include_str!("../../fixtures/consent-login/mobile.html");
const TOTP: &str = include_str!("../../fixtures/consent-login/totp.html");
const TOTP_SINGLE: &str = include_str!("../../fixtures/consent-login/totp-single.html");
const PIN: &str = include_str!("../../fixtures/consent-login/pin.html");
const PIN_MISSING_BOXES: &str = include_str!("../../fixtures/consent-login/pin-missing-boxes.html");
const EXPIRED: &str = include_str!("../../fixtures/consent-login/expired.html");

const PROCEED_BUTTON: &str = r#"<button type="submit">Proceed</button>"#;
const COMPLETE_PATH: &str = "/login/consentApp-complete";

pub(crate) fn router() -> Router<Shared> {
    let ep = Endpoint::ConsentLoginPage;
    Router::new()
        .route(
            "/login/consentApp-login",
            counted(ep, get(login_page).post(login_form)),
        )
        .route("/login/api/{step}", counted(ep, post(spa_step)))
        .route(COMPLETE_PATH, counted(ep, get(spa_complete)))
}

/// Replaces each `{{name}}` in one pass, so a value can never be read as a placeholder.
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 256);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let replaced = after.find("}}").and_then(|end| {
            let name = &after[..end];
            values
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v, &after[end + 2..]))
        });
        match replaced {
            Some((value, tail)) => {
                out.push_str(value);
                rest = tail;
            }
            None => {
                out.push_str("{{");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn error_html(error: Option<&str>) -> String {
    error
        .map(|e| {
            format!(
                r#"<div class="error-message" role="alert">{}</div>"#,
                escape(e)
            )
        })
        .unwrap_or_default()
}

fn document(title: &str, content: &str, script: &str) -> String {
    fill(
        SHELL,
        &[
            ("title", title),
            ("style", STYLE),
            ("content", content),
            ("script", script),
        ],
    )
}

/// The fragment for one screen. `spa` drops the TOTP button: that screen submits itself.
fn screen(
    stage: Stage,
    variant: PageVariant,
    session: &str,
    error: Option<&str>,
    spa: bool,
) -> String {
    let session = escape(session);
    let error = error_html(error);
    let base = [("session", session.as_str()), ("error", error.as_str())];
    match stage {
        Stage::Mobile => fill(MOBILE, &base),
        Stage::Totp if variant == PageVariant::SingleTotpField => fill(TOTP_SINGLE, &base),
        Stage::Totp => {
            let (autosubmit, submit) = if spa {
                (" data-autosubmit", "")
            } else {
                ("", PROCEED_BUTTON)
            };
            fill(
                TOTP,
                &[
                    base[0],
                    base[1],
                    ("autosubmit", autosubmit),
                    ("submit", submit),
                ],
            )
        }
        Stage::Pin if variant == PageVariant::MissingPinBoxes => fill(PIN_MISSING_BOXES, &base),
        Stage::Pin | Stage::Authorized => fill(PIN, &base),
    }
}

fn title(stage: Stage) -> &'static str {
    match stage {
        Stage::Mobile => "Log in",
        Stage::Totp => "Verify with TOTP",
        Stage::Pin | Stage::Authorized => "Enter PIN",
    }
}

fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            // Each screen belongs to one login session; a cached copy would replay it.
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

fn classic_screen(
    stage: Stage,
    variant: PageVariant,
    session: &str,
    error: Option<&str>,
) -> Response {
    let content = screen(stage, variant, session, error, false);
    let script = format!("{DIGITS_JS}\n{CLASSIC_JS}");
    html(StatusCode::OK, document(title(stage), &content, &script))
}

fn expired_page() -> Response {
    html(
        StatusCode::OK,
        document("Session expired", EXPIRED, DIGITS_JS),
    )
}

fn spa_page(state: &Shared, session: &str) -> Response {
    let delay = state.spa_render_delay.as_millis().to_string();
    let variant = PageVariant::Spa;
    let mobile = screen(Stage::Mobile, variant, session, None, true);
    let totp = screen(Stage::Totp, variant, session, None, true);
    let pin = screen(Stage::Pin, variant, session, None, true);
    let content = fill(
        SPA,
        &[
            ("session", session),
            ("render_delay_ms", &delay),
            ("mobile", &mobile),
            ("totp", &totp),
            ("pin", &pin),
            ("expired", EXPIRED),
        ],
    );
    let script = format!("{DIGITS_JS}\n{SPA_JS}");
    html(StatusCode::OK, document("Log in", &content, &script))
}

/// The redirect that ends a login: the registered URL, its own query kept, plus tokenId.
fn redirect_with_token_id(redirect_url: &str, token_id: &str) -> Response {
    let location = match url::Url::parse(redirect_url) {
        Ok(mut url) => {
            url.query_pairs_mut().append_pair("tokenId", token_id);
            url.to_string()
        }
        // State::new checked the URL; a plain join is the answer to the impossible.
        Err(_) => format!("{redirect_url}?tokenId={token_id}"),
    };
    match HeaderValue::from_str(&location) {
        Ok(value) => (
            StatusCode::FOUND,
            [
                (header::LOCATION, value),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
        )
            .into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "bad redirect URL\n").into_response(),
    }
}

async fn login_page(Extract(state): Extract<Shared>, RawQuery(q): RawQuery) -> Response {
    if let Gate::Answer(r) = gate(&state, Endpoint::ConsentLoginPage).await {
        return r;
    }
    let q = query_map(q);
    let consent = q.get("consentAppId").map(|s| s.trim()).unwrap_or_default();
    let Some(session) = state.open_session(consent) else {
        return expired_page();
    };
    match state.page_variant() {
        PageVariant::Spa => spa_page(&state, &session),
        variant => classic_screen(Stage::Mobile, variant, &session, None),
    }
}

fn joined(pairs: &[(String, String)], name: &str) -> Option<String> {
    let mut values = pairs.iter().filter(|(k, _)| k == name).peekable();
    values.peek()?;
    Some(values.map(|(_, v)| v.trim()).collect())
}

async fn login_form(Extract(state): Extract<Shared>, body: Bytes) -> Response {
    let wrong = match gate(&state, Endpoint::ConsentLoginPage).await {
        Gate::Answer(r) => return r,
        Gate::Proceed { wrong_credential } => wrong_credential,
    };
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let session = joined(&pairs, "session").unwrap_or_default();
    let entry = Entry {
        mobile: joined(&pairs, "mobileNumber"),
        totp: joined(&pairs, "totp"),
        pin: joined(&pairs, "pin"),
    };
    // A Spa page switched to mid-login still gets server-rendered screens here.
    let variant = match state.page_variant() {
        PageVariant::Spa => PageVariant::Classic,
        v => v,
    };
    match state.submit(&session, entry, wrong) {
        StepOutcome::Show { stage, error } => classic_screen(stage, variant, &session, error),
        StepOutcome::Authorized => match state.finish(&session) {
            Some(token_id) => redirect_with_token_id(&state.account.redirect_url, &token_id),
            None => expired_page(),
        },
        StepOutcome::Expired => expired_page(),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SpaEntry {
    #[serde(default)]
    session: String,
    mobile_number: Option<String>,
    totp: Option<String>,
    pin: Option<String>,
}

fn stage_name(stage: Stage) -> &'static str {
    match stage {
        Stage::Mobile => "mobile",
        Stage::Totp => "totp",
        Stage::Pin | Stage::Authorized => "pin",
    }
}

async fn spa_step(
    Extract(state): Extract<Shared>,
    Path(step): Path<String>,
    body: Bytes,
) -> Response {
    let wrong = match gate(&state, Endpoint::ConsentLoginPage).await {
        Gate::Answer(r) => return r,
        Gate::Proceed { wrong_credential } => wrong_credential,
    };
    let Ok(entry) = serde_json::from_slice::<SpaEntry>(&body) else {
        return json_response(
            StatusCode::BAD_REQUEST,
            json!({"status": "error", "message": "Malformed request"}),
        );
    };
    let expired = || json_response(StatusCode::GONE, json!({"status": "expired"}));
    let Some(stage) = state.session_stage(&entry.session) else {
        return expired();
    };
    if stage_name(stage) != step {
        // Out of step (a double submit, a stale tab): put the page back on the real screen.
        return json_response(
            StatusCode::CONFLICT,
            json!({"status": "success", "next": stage_name(stage)}),
        );
    }
    let session = entry.session.clone();
    let outcome = state.submit(
        &session,
        Entry {
            mobile: entry.mobile_number,
            totp: entry.totp,
            pin: entry.pin,
        },
        wrong,
    );
    match outcome {
        StepOutcome::Show { stage, error: None } => json_response(
            StatusCode::OK,
            json!({"status": "success", "next": stage_name(stage)}),
        ),
        StepOutcome::Show {
            error: Some(message),
            ..
        } => json_response(
            StatusCode::BAD_REQUEST,
            json!({"status": "error", "message": message}),
        ),
        StepOutcome::Authorized => {
            let mut next = url::form_urlencoded::Serializer::new(format!("{COMPLETE_PATH}?"));
            next.append_pair("session", &session);
            json_response(
                StatusCode::OK,
                json!({"status": "success", "redirect": next.finish()}),
            )
        }
        StepOutcome::Expired => expired(),
    }
}

async fn spa_complete(Extract(state): Extract<Shared>, RawQuery(q): RawQuery) -> Response {
    if let Gate::Answer(r) = gate(&state, Endpoint::ConsentLoginPage).await {
        return r;
    }
    let q = query_map(q);
    let session = q.get("session").map(String::as_str).unwrap_or_default();
    match state.finish(session) {
        Some(token_id) => redirect_with_token_id(&state.account.redirect_url, &token_id),
        None => expired_page(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_is_single_pass() {
        let out = fill("a{{x}}b{{y}}c{{z}}", &[("x", "{{y}}"), ("y", "Y")]);
        assert_eq!(out, "a{{y}}bYc{{z}}");
    }

    #[test]
    fn every_screen_is_fully_filled() {
        let variants = [
            PageVariant::Classic,
            PageVariant::SingleTotpField,
            PageVariant::MissingPinBoxes,
        ];
        for variant in variants {
            for stage in [Stage::Mobile, Stage::Totp, Stage::Pin] {
                for spa in [false, true] {
                    let s = screen(stage, variant, "abc", Some("<oops>"), spa);
                    assert!(!s.contains("{{"), "{variant:?} {stage:?}: {s}");
                    assert!(s.contains("&lt;oops&gt;"));
                }
            }
        }
    }

    #[test]
    fn redirect_keeps_existing_query() {
        let r = redirect_with_token_id("http://127.0.0.1:9/cb?state=x", "T1");
        assert_eq!(r.status(), StatusCode::FOUND);
        assert_eq!(
            r.headers()[header::LOCATION],
            "http://127.0.0.1:9/cb?state=x&tokenId=T1"
        );
    }
}
