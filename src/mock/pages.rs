//! The consent login pages (`/login/...`) and the tracker they embed (`/analytics/...`):
//! one document per screen posting real forms, or one scripted page plus JSON calls.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State as Extract};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rand::Rng;
use serde::Deserialize;
use serde_json::json;

use super::gate::{Gate, Shared, counted, gate, json_response, query_map};
use super::generator::{self, Layout};
use super::screens::{EXPIRED, escape, fill, screen, session_field};
use super::state::{Entry, Stage, StepOutcome};
use super::{Endpoint, PageVariant, Submission};

const SHELL: &str = include_str!("../../fixtures/consent-login/shell.html");
const STYLE: &str = include_str!("../../fixtures/consent-login/style.css");
const CODE_INPUT_JS: &str = include_str!("../../fixtures/consent-login/code-input.js");
const LOGIN_JS: &str = include_str!("../../fixtures/consent-login/login.js");
const ANALYTICS_FRAME: &str = include_str!("../../fixtures/consent-login/analytics-frame.html");

const COMPLETE_PATH: &str = "/login/consentApp-complete";
const ANALYTICS_FRAME_PATH: &str = "/analytics/frame";
const ANALYTICS_COLLECT_PATH: &str = "/analytics/collect";
/// Fails on a closed network, as a real tag manager would on one.
const GTAG: &str =
    r#"<script async src="https://www.googletagmanager.com/gtag/js?id=G-MOCK"></script>"#;
const TITLE: &str = "Login via Dhan";

pub(crate) fn router() -> Router<Shared> {
    let ep = Endpoint::ConsentLoginPage;
    Router::new()
        .route(
            "/login/consentApp-login",
            counted(ep, get(login_page).post(login_form)),
        )
        .route("/login/api/{step}", counted(ep, post(spa_step)))
        .route(COMPLETE_PATH, counted(ep, get(spa_complete)))
        // Not counted as login page calls: they stand for a third party's host.
        .route(ANALYTICS_FRAME_PATH, get(analytics_frame))
        .route(ANALYTICS_COLLECT_PATH, get(analytics_collect))
}

/// An ngx-toastr error toast, as the page script also builds it.
fn toast_html(error: Option<&str>) -> String {
    error
        .map(|e| {
            let e = escape(e);
            format!(
                r#"<div class="ngx-toastr toast-error" role="alert" aria-live="assertive"><div class="toast-message" aria-label="{e}">{e}</div></div>"#
            )
        })
        .unwrap_or_default()
}

struct Document<'a> {
    variant: PageVariant,
    content: &'a str,
    templates: &'a str,
    error: Option<&'a str>,
    page: serde_json::Value,
}

fn document(d: Document<'_>) -> String {
    let tracker = d.variant.tracker_iframe;
    let iframe = if tracker {
        format!(
            r#"<iframe src="{ANALYTICS_FRAME_PATH}" title="analytics" width="0" height="0" style="display:none;visibility:hidden" aria-hidden="true"></iframe>"#
        )
    } else {
        String::new()
    };
    // `</` cannot occur in serde_json output of our values, but a session or message
    // must never be able to close the script element.
    let page_json = d.page.to_string().replace("</", "<\\/");
    let script = format!("{CODE_INPUT_JS}\n{LOGIN_JS}");
    let toast = toast_html(d.error);
    fill(
        SHELL,
        &[
            ("title", TITLE),
            ("head_scripts", if tracker { GTAG } else { "" }),
            ("style", STYLE),
            ("content", d.content),
            ("templates", d.templates),
            ("toast", &toast),
            ("tracker", &iframe),
            ("page_json", &page_json),
            ("script", &script),
        ],
    )
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

fn stage_name(stage: Stage) -> &'static str {
    match stage {
        Stage::Mobile => "mobile",
        Stage::Totp => "totp",
        Stage::SmsOtp => "otp",
        Stage::Pin | Stage::Authorized => "pin",
    }
}

/// How one screen sends, as the page script names it; Random picks Auto or Button anew
/// on every load (server-rendered) or, with `per_screen`, leaves the pick to the page.
fn submission_name(submission: Submission, per_screen: bool) -> &'static str {
    match submission {
        Submission::Auto => "auto",
        Submission::Button => "button",
        Submission::Random if per_screen => "random",
        Submission::Random if rand::rng().random_bool(0.5) => "auto",
        Submission::Random => "button",
        Submission::Deferred => "deferred",
        Submission::OnKey => "on-key",
        Submission::BusyButton => "busy-button",
    }
}

/// How long the code boxes wait before moving the focus on (see
/// [`PageVariant::slow_focus`]).
fn focus_delay_ms(variant: PageVariant) -> u64 {
    if variant.slow_focus { 40 } else { 0 }
}

/// A `BusyButton` page's server takes its time over each entry: long enough that a
/// second press while the first is in flight would reach it.
async fn busy(state: &Shared) {
    if state.page_variant().submission == Submission::BusyButton {
        let ms = rand::rng().random_range(300..=800u64);
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
}

/// One server-rendered screen. `first_load`: the document the consent link opened, the
/// only one where the page may swallow a Proceed.
fn form_screen(
    state: &Shared,
    stage: Stage,
    session: &str,
    error: Option<&str>,
    first_load: bool,
) -> Response {
    let variant = state.page_variant();
    let mobile = &state.session_account(session).mobile;
    let layout = variant.seed.map(Layout::draw);
    let mut content = match &layout {
        Some(l) => generator::render(stage, l, &session_field(session), mobile, ""),
        None => screen(stage, variant, &session_field(session), mobile),
    };
    let mut page = json!({
        "mode": "form",
        "screen": stage_name(stage),
        "submission": submission_name(variant.submission, false),
        "ignoreFirstProceed": first_load && variant.proceed_ignored_once,
        "focusDelayMs": focus_delay_ms(variant),
        "ignoreKeys": variant.keys_ignored,
    });
    let mut templates = String::new();
    if let Some(l) = &layout {
        page["gen"] = l.behaviour();
        templates = l.hidden_copy(mobile);
        if l.render_delay_ms > 0 {
            // Drawn by the page script after its delay, as a client-side app would.
            templates.push_str(&format!(
                r#"<template id="screen-deferred">{content}</template>"#
            ));
            content.clear();
        }
    }
    html(
        StatusCode::OK,
        document(Document {
            variant,
            content: &content,
            templates: &templates,
            error,
            page,
        }),
    )
}

fn expired_page(state: &Shared) -> Response {
    let variant = state.page_variant();
    html(
        StatusCode::OK,
        document(Document {
            variant,
            content: EXPIRED,
            templates: "",
            error: None,
            page: json!({"mode": "form", "screen": "expired"}),
        }),
    )
}

/// The single-page variant: an empty `<app-login>` and one inert `<template>` per screen.
fn spa_page(state: &Shared, session: &str) -> Response {
    let variant = state.page_variant();
    let mobile = &state.session_account(session).mobile;
    let layout = variant.seed.map(Layout::draw);
    let mut templates = String::new();
    for stage in [Stage::Mobile, Stage::Totp, Stage::SmsOtp, Stage::Pin] {
        let body = match &layout {
            Some(l) => generator::render(stage, l, "", mobile, ""),
            None => screen(stage, variant, "", mobile),
        };
        templates.push_str(&format!(
            r#"<template id="screen-{}">{body}</template>"#,
            stage_name(stage)
        ));
    }
    templates.push_str(&format!(
        r#"<template id="screen-expired">{EXPIRED}</template>"#
    ));
    let submission = submission_name(variant.submission, true);
    let mut page = json!({
        "mode": "spa",
        "session": session,
        "renderDelayMs": u64::try_from(state.spa_render_delay.as_millis()).unwrap_or(u64::MAX),
        "submission": submission,
        "ignoreFirstProceed": variant.proceed_ignored_once,
        "focusDelayMs": focus_delay_ms(variant),
        "ignoreKeys": variant.keys_ignored,
    });
    if let Some(l) = &layout {
        page["gen"] = l.behaviour();
        page["renderDelayMs"] = l.render_delay_ms.into();
        templates.push_str(&l.hidden_copy(mobile));
    }
    html(
        StatusCode::OK,
        document(Document {
            variant,
            content: "",
            templates: &templates,
            error: None,
            page,
        }),
    )
}

/// `url` with `tokenId` appended, its own query kept.
fn with_token_id(url: &str, token_id: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            u.query_pairs_mut().append_pair("tokenId", token_id);
            u.to_string()
        }
        // State::new checked the URL; a plain join is the answer to the impossible.
        Err(_) => format!("{url}?tokenId={token_id}"),
    }
}

/// The redirect that ends a login: the registered URL plus tokenId.
fn redirect_with_token_id(redirect_url: &str, token_id: &str) -> Response {
    let location = with_token_id(redirect_url, token_id);
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

async fn login_page(
    Extract(state): Extract<Shared>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    if let Gate::Answer(r) = gate(&state, Endpoint::ConsentLoginPage).await {
        return r;
    }
    if let Some(to) = second_origin(&state, q.as_deref(), &headers) {
        return to;
    }
    let q = query_map(q);
    let consent = q.get("consentAppId").map(|s| s.trim()).unwrap_or_default();
    let Some(session) = state.open_session(consent) else {
        return expired_page(&state);
    };
    if state.page_variant().spa {
        spa_page(&state, &session)
    } else {
        form_screen(&state, Stage::Mobile, &session, None, true)
    }
}

/// On a generated page drawn "redirected", the consent URL on 127.0.0.1 answers 302 to
/// the same path on `localhost`: another origin on the same listener, as a login may be
/// handed from one host to a partner's.
fn second_origin(state: &Shared, query: Option<&str>, headers: &HeaderMap) -> Option<Response> {
    let layout = Layout::draw(state.page_variant().seed?);
    if layout.origin != "redirected" {
        return None;
    }
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let port = host.strip_prefix("127.0.0.1:")?;
    let location = format!(
        "http://localhost:{port}/login/consentApp-login?{}",
        query.unwrap_or_default()
    );
    let value = HeaderValue::from_str(&location).ok()?;
    Some(
        (
            StatusCode::FOUND,
            [
                (header::LOCATION, value),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
        )
            .into_response(),
    )
}

fn joined(pairs: &[(String, String)], name: &str) -> Option<String> {
    let mut values = pairs.iter().filter(|(k, _)| k == name).peekable();
    values.peek()?;
    Some(values.map(|(_, v)| v.trim()).collect())
}

async fn login_form(Extract(state): Extract<Shared>, body: Bytes) -> Response {
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let session = joined(&pairs, "session").unwrap_or_default();
    let entry = Entry {
        mobile: joined(&pairs, "mobileNumber"),
        totp: joined(&pairs, "totp"),
        otp: joined(&pairs, "otp"),
        pin: joined(&pairs, "pin"),
        answer: joined(&pairs, "answer"),
    };
    // Counted before any fault: the entry reached the stand-in either way.
    state.count_entry(&entry, state.session_stage(&session));
    busy(&state).await;
    let wrong = match gate(&state, Endpoint::ConsentLoginPage).await {
        Gate::Answer(r) => return r,
        Gate::Proceed { wrong_credential } => wrong_credential,
    };
    // `finish` forgets the session: its account is looked up before.
    let account = state.session_account(&session).clone();
    // A page switched to the single-page variant mid-login still gets documents here.
    match state.submit(&session, entry, wrong) {
        StepOutcome::Show { stage, error } => form_screen(&state, stage, &session, error, false),
        StepOutcome::Authorized => match state.finish(&session) {
            Some(token_id) => redirect_with_token_id(&account.redirect_url, &token_id),
            None => expired_page(&state),
        },
        StepOutcome::Expired => expired_page(&state),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SpaEntry {
    #[serde(default)]
    session: String,
    mobile_number: Option<String>,
    totp: Option<String>,
    otp: Option<String>,
    pin: Option<String>,
    answer: Option<String>,
}

fn step_stage(step: &str) -> Option<Stage> {
    [Stage::Mobile, Stage::Totp, Stage::SmsOtp, Stage::Pin]
        .into_iter()
        .find(|s| stage_name(*s) == step)
}

async fn spa_step(
    Extract(state): Extract<Shared>,
    Path(step): Path<String>,
    body: Bytes,
) -> Response {
    let parsed = serde_json::from_slice::<SpaEntry>(&body);
    if let Ok(e) = &parsed {
        let entry = Entry {
            mobile: e.mobile_number.clone(),
            totp: e.totp.clone(),
            otp: e.otp.clone(),
            pin: e.pin.clone(),
            answer: e.answer.clone(),
        };
        state.count_entry(&entry, step_stage(&step));
    }
    busy(&state).await;
    let wrong = match gate(&state, Endpoint::ConsentLoginPage).await {
        Gate::Answer(r) => return r,
        Gate::Proceed { wrong_credential } => wrong_credential,
    };
    let Ok(entry) = parsed else {
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
            otp: entry.otp,
            pin: entry.pin,
            answer: entry.answer,
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
            let query = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("session", &session)
                .finish();
            json_response(
                StatusCode::OK,
                json!({"status": "success", "redirect": format!("{COMPLETE_PATH}?{query}")}),
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
    let account = state.session_account(session).clone();
    match state.finish(session) {
        Some(token_id) => redirect_with_token_id(&account.redirect_url, &token_id),
        None => expired_page(&state),
    }
}

/// The tracker's frame: after a moment it navigates itself to the collector.
async fn analytics_frame(Extract(state): Extract<Shared>) -> Response {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("tokenId", &state.decoy_token_id)
        .finish();
    let collect = format!("{ANALYTICS_COLLECT_PATH}?{query}");
    let collect_json = serde_json::Value::from(collect)
        .to_string()
        .replace("</", "<\\/");
    let delay = rand::rng().random_range(100..=600u32).to_string();
    html(
        StatusCode::OK,
        fill(
            ANALYTICS_FRAME,
            &[("collect_json", &collect_json), ("delay_ms", &delay)],
        ),
    )
}

/// The collector bounces the frame on to the app's redirect URL with the decoy tokenId,
/// the way ad trackers chain redirects.
async fn analytics_collect(Extract(state): Extract<Shared>) -> Response {
    redirect_with_token_id(&state.account().redirect_url, &state.decoy_token_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_keeps_existing_query() {
        let r = redirect_with_token_id("http://127.0.0.1:9/cb?state=x", "T1");
        assert_eq!(r.status(), StatusCode::FOUND);
        assert_eq!(
            r.headers()[header::LOCATION],
            "http://127.0.0.1:9/cb?state=x&tokenId=T1"
        );
    }

    #[test]
    fn toasts_escape_their_message() {
        let t = toast_html(Some("<b>"));
        assert!(t.contains("&lt;b&gt;") && !t.contains("<b>"));
        assert!(t.contains(r#"class="ngx-toastr toast-error" role="alert""#));
        assert_eq!(toast_html(None), "");
    }
}
