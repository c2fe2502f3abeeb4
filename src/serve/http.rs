//! The loopback endpoint: the token (behind the key), status, health and metrics.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{SecondsFormat, Utc};
use serde_json::{Value, json};
use tokio::sync::watch;

use super::key::ApiKey;
use super::metrics;
use super::scheduler::stopped;
use super::status::{Phase, Slot, health, view};
use crate::token::Token;

/// How long a token request waits for a refresh under way (the first login after start
/// included) before answering 503. A TOTP login may wait up to 30 s for a fresh code.
const TOKEN_WAIT: Duration = Duration::from_secs(40);

#[derive(Clone)]
pub(crate) struct App {
    pub(crate) slots: Arc<BTreeMap<String, Arc<Slot>>>,
    pub(crate) key: Arc<ApiKey>,
    pub(crate) stop: watch::Receiver<bool>,
}

pub(crate) fn router(app: App) -> Router {
    Router::new()
        .route("/v1/profiles/{name}/token", get(token))
        .route("/v1/profiles", get(profiles))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(app)
}

/// The body of `dhan-login token --json`.
pub(crate) fn token_json(token: &Token) -> Value {
    json!({
        "access_token": token.access_token.secret(),
        "client_id": token.client_id,
        "expires_at": token.expires_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        "kind": token.kind.as_str(),
        "source": token.source.as_str(),
    })
}

fn authorized(key: &ApiKey, headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some((scheme, presented)) = value.trim().split_once(' ') else {
        return false;
    };
    scheme.eq_ignore_ascii_case("bearer") && key.matches(presented.trim())
}

fn error(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

async fn token(
    State(mut app): State<App>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !authorized(&app.key, &headers) {
        let mut r = error(
            StatusCode::UNAUTHORIZED,
            json!({"error": "send the key of the daemon's key file as `Authorization: Bearer <key>`"}),
        );
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"dhan-login\""),
        );
        return r;
    }
    let Some(slot) = app.slots.get(&name).cloned() else {
        return error(
            StatusCode::NOT_FOUND,
            json!({"error": format!("profile `{name}` is not served by this daemon")}),
        );
    };
    let deadline = tokio::time::Instant::now() + TOKEN_WAIT;
    let mut rx = slot.status.subscribe();
    loop {
        let (manager, busy) = {
            let s = rx.borrow_and_update();
            (s.manager.clone(), s.phase.busy())
        };
        match manager.cached().await {
            Ok(Some(t)) => {
                let mut r = axum::Json(token_json(&t)).into_response();
                r.headers_mut()
                    .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                return r;
            }
            Ok(None) => {}
            Err(e) => {
                return error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({"error": e.to_string(), "class": e.class()}),
                );
            }
        }
        if !busy {
            return unavailable(&slot);
        }
        tokio::select! {
            changed = tokio::time::timeout_at(deadline, rx.changed()) => {
                if !matches!(changed, Ok(Ok(()))) {
                    return unavailable(&slot);
                }
            }
            _ = stopped(&mut app.stop) => return unavailable(&slot),
        }
    }
}

/// 503 saying why there is no token and when the daemon tries again.
fn unavailable(slot: &Slot) -> Response {
    let s = slot.status.borrow();
    let failure = s.last_failure.as_ref();
    // A hold may predate this daemon (a lockout stored by a CLI login): it still decides
    // the class, which becomes the client's exit code.
    let (class, message) = match &s.phase {
        Phase::Held(h) => (
            Some(h.class()),
            failure
                .map(|f| f.message.clone())
                .or_else(|| Some(format!("held until {}", h.lifted_by()))),
        ),
        _ => (failure.map(|f| f.class), failure.map(|f| f.message.clone())),
    };
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        json!({
            "error": format!(
                "profile `{}` has no token valid beyond the margin ({})",
                slot.name,
                s.phase.as_str()
            ),
            "profile": slot.name,
            "state": s.phase.as_str(),
            "class": class,
            "message": message,
            "next_at": s.next_at,
        }),
    )
}

async fn profiles(State(app): State<App>) -> Response {
    let now = Utc::now();
    let mut list: Vec<Value> = Vec::with_capacity(app.slots.len());
    for slot in app.slots.values() {
        list.push(view(slot, now).await);
    }
    axum::Json(json!({ "profiles": list })).into_response()
}

async fn healthz(State(app): State<App>) -> Response {
    let mut ok = true;
    let mut each = serde_json::Map::new();
    for (name, slot) in app.slots.iter() {
        let s = slot.status.borrow().clone();
        let verdict = health(&s).await;
        ok &= verdict.is_ok();
        each.insert(
            name.clone(),
            json!({
                "ok": verdict.is_ok(),
                "state": s.phase.as_str(),
                "problem": verdict.err(),
            }),
        );
    }
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(json!({"ok": ok, "profiles": each}))).into_response()
}

async fn metrics(State(app): State<App>) -> Response {
    let body = metrics::render(app.slots.values().map(|s| s.as_ref()), Utc::now()).await;
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}
