//! The loopback endpoint: the token (behind the key), status, health and metrics.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Utc;
use serde_json::{Value, json};
use tokio::sync::watch;

use super::metrics;
use super::plan::MAX_NAP;
use super::scheduler::stopped;
use super::status::{AWAITING, Phase, Slot, health, view};
use crate::daemon::challenge::{self, Challenges, RawNonce};
use crate::daemon::key::ApiKey;
use crate::decide::Logins;
use crate::decide::Verdict;
use crate::error_class::ErrorClass;
use crate::token::{Token, TokenJson};

/// How long a token request waits for a refresh under way (the first login after start
/// included) before answering 503. A TOTP login may wait up to 30 s for a fresh code.
const TOKEN_WAIT: Duration = Duration::from_secs(40);

/// How long a report of a dead token waits for the token of the replica (or host) that
/// replaces it, before a 503 saying when to ask again.
const REPORT_WAIT: Duration = Duration::from_secs(10);

/// When to ask again after that 503: the holder reads the report on its next look (at
/// most `MAX_NAP` away), then logs in.
const REPORT_RETRY_AFTER: Duration = Duration::from_secs(MAX_NAP.as_secs() + 15);

/// How often a waiting token request reads the store again on its own.
const STORE_LOOK: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub(crate) struct App {
    pub(crate) slots: Arc<BTreeMap<String, Arc<Slot>>>,
    pub(crate) key: Arc<ApiKey>,
    pub(crate) challenges: Arc<Challenges>,
    pub(crate) stop: watch::Receiver<bool>,
}

/// How long a request's body may take to arrive once its headers have. The header
/// timeout alone let a body sent a byte at a time hold its connection, and so a place
/// under the connection cap, for ever: a few thousand of them stalled the daemon.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest body a route reads (a challenge is under 100 bytes).
const BODY_LIMIT: usize = 64 * 1024;

pub(crate) fn router(app: App) -> Router {
    Router::new()
        .route("/v1/challenge", post(challenge))
        .route("/v1/profiles/{name}/token", get(token))
        .route("/v1/profiles/{name}/token/rejected", post(rejected))
        .route("/v1/profiles", get(profiles))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .layer(axum::middleware::from_fn(body_in_time))
        .with_state(app)
}

/// Reads the whole body within `BODY_TIMEOUT` before the route runs; a body that is late
/// or too large ends the connection (`Connection: close`, and hyper cannot reuse a
/// connection whose body was not read).
async fn body_in_time(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let (parts, body) = req.into_parts();
    let read = tokio::time::timeout(BODY_TIMEOUT, axum::body::to_bytes(body, BODY_LIMIT)).await;
    let refused = match read {
        Ok(Ok(bytes)) => {
            let req = axum::extract::Request::from_parts(parts, axum::body::Body::from(bytes));
            return next.run(req).await;
        }
        Ok(Err(_)) => (
            StatusCode::PAYLOAD_TOO_LARGE,
            "request body too large or cut off\n",
        ),
        Err(_) => (StatusCode::REQUEST_TIMEOUT, "request body too slow\n"),
    };
    let mut answer = refused.into_response();
    answer
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    answer
}

/// Who asked: a plain client with the key itself, or our own client through the
/// challenge, whose answer is sealed for that exchange.
enum Caller {
    Bearer,
    Challenged {
        client: RawNonce,
        daemon: RawNonce,
        line: String,
    },
}

/// The caller of the request `line` (`GET /v1/profiles/NAME/token`): the challenge's
/// answer is bound to it, so it cannot be replayed on another route.
fn caller(app: &App, line: String, headers: &HeaderMap) -> Option<Caller> {
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())?;
    if let Some((daemon, mac)) = challenge::parse_authorization(value) {
        let client = headers
            .get(challenge::CLIENT_NONCE_HEADER)
            .and_then(|v| challenge::decode_nonce(v.to_str().ok()?))?;
        if !app
            .challenges
            .redeem(&app.key, &daemon, &client, &mac, &line)
        {
            return None;
        }
        return Some(Caller::Challenged {
            client,
            daemon,
            line,
        });
    }
    let (scheme, presented) = value.trim().split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && app.key.matches(presented.trim()))
        .then_some(Caller::Bearer)
}

/// Step 1 of the challenge: the daemon proves it holds the key before the client shows
/// anything derived from it.
async fn challenge(State(app): State<App>, body: axum::body::Bytes) -> Response {
    let client = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| challenge::decode_nonce(v.get("client_nonce")?.as_str()?));
    let Some(client) = client else {
        return error(
            StatusCode::BAD_REQUEST,
            json!({"error": format!("send {{\"client_nonce\": \"<{} random bytes, base64url>\"}}", challenge::NONCE_LEN)}),
        );
    };
    let (daemon, proof) = app.challenges.issue(&app.key, client);
    let mut r = axum::Json(json!({
        "daemon_nonce": challenge::encode(&daemon),
        "proof": challenge::encode(&proof),
    }))
    .into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn error(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

async fn token(
    State(mut app): State<App>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    let line = format!("GET /v1/profiles/{name}/token");
    let (caller, slot) = match authorised(&app, &name, line, &headers) {
        Ok(found) => found,
        Err(r) => return *r,
    };
    match served(&mut app, &slot, None, TOKEN_WAIT).await {
        Ok(t) => answer(&app, &caller, json!(TokenJson::from(&t))),
        Err(r) => *r,
    }
}

/// `POST /v1/profiles/{name}/token/rejected`: a consumer says Dhan refused the token. The
/// token is checked with Dhan's `profile` endpoint: dead → the scheduler replaces it at
/// once and the new one is answered; alive, or Dhan unreachable → the same token, saying
/// so. Never a login because of a timeout.
async fn rejected(
    State(mut app): State<App>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    let line = format!("POST /v1/profiles/{name}/token/rejected");
    let (caller, slot) = match authorised(&app, &name, line, &headers) {
        Ok(found) => found,
        Err(r) => return *r,
    };
    let current = match served(&mut app, &slot, None, TOKEN_WAIT).await {
        Ok(t) => t,
        Err(r) => return *r,
    };
    let manager = slot.status.borrow().manager.clone();
    let (token, verdict, detail) = match manager.verify(&current).await {
        Ok(_) => (current, Verdict::Alive, None),
        Err(e) if e.class() == ErrorClass::TokenInvalid => {
            let (standby, never) = {
                let s = slot.status.borrow();
                (
                    s.phase == Phase::Standby,
                    s.manager.profile().logins == Logins::Never,
                )
            };
            if !standby && !never {
                tracing::warn!(profile = %name, "a consumer reported the token and Dhan's profile endpoint calls it dead: replacing it");
                slot.report_dead(&current);
                match served(&mut app, &slot, Some(&current), TOKEN_WAIT).await {
                    Ok(t) => (t, Verdict::Replaced, Some(e.to_string())),
                    Err(r) => return *r,
                }
            } else {
                // Another replica, or another host, replaces it: the report goes to it
                // through the shared database, and its token is answered if it comes
                // soon; else a 503 saying when to ask again, not a 40 s hang.
                tracing::warn!(profile = %name, "a consumer reported the token and Dhan's profile endpoint calls it dead: passing the report on to whoever replaces it");
                if let Err(e) = manager.backend().report_dead(&name, &current).await {
                    tracing::warn!(profile = %name, "cannot pass the report on: {e}");
                }
                match served(&mut app, &slot, Some(&current), REPORT_WAIT).await {
                    Ok(t) => (t, Verdict::Replaced, Some(e.to_string())),
                    Err(_) => return replaced_elsewhere(&slot, never),
                }
            }
        }
        Err(e) => (current, Verdict::Unverified, Some(e.to_string())),
    };
    let mut body = json!(TokenJson::from(&token));
    body["verdict"] = json!(verdict.as_str());
    body["detail"] = json!(detail);
    answer(&app, &caller, body)
}

/// 503 for a dead token that another replica (or host) replaces: when to ask again.
fn replaced_elsewhere(slot: &Slot, never: bool) -> Response {
    let (class, who) = if never {
        (
            ErrorClass::LoginsOff,
            "another host (logins are off on this one)",
        )
    } else {
        (
            ErrorClass::Transient,
            "the replica holding the profile, told through the shared database",
        )
    };
    let mut r = error(
        StatusCode::SERVICE_UNAVAILABLE,
        json!({
            "error": format!(
                "Dhan's profile endpoint calls the token of profile `{}` dead; {who} replaces it: ask again after {} s",
                slot.name,
                REPORT_RETRY_AFTER.as_secs()
            ),
            "profile": slot.name,
            "state": slot.status.borrow().phase.as_str(),
            "class": class,
            "retry_after_secs": REPORT_RETRY_AFTER.as_secs(),
        }),
    );
    r.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(REPORT_RETRY_AFTER.as_secs()),
    );
    r
}

/// The caller and the slot of `name`, or the answer refusing them.
fn authorised(
    app: &App,
    name: &str,
    line: String,
    headers: &HeaderMap,
) -> Result<(Caller, Arc<Slot>), Box<Response>> {
    let Some(caller) = caller(app, line, headers) else {
        let mut r = error(
            StatusCode::UNAUTHORIZED,
            json!({"error": "send the key of the daemon's key file as `Authorization: Bearer <key>`"}),
        );
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"dhan-login\""),
        );
        return Err(Box::new(r));
    };
    let Some(slot) = app.slots.get(name).cloned() else {
        return Err(Box::new(error(
            StatusCode::NOT_FOUND,
            json!({"error": format!("profile `{name}` is not served by this daemon")}),
        )));
    };
    Ok((caller, slot))
}

/// `body` as the caller may read it (sealed for our own client), never cached.
fn answer(app: &App, caller: &Caller, body: Value) -> Response {
    let body = match caller {
        Caller::Bearer => body,
        Caller::Challenged {
            client,
            daemon,
            line,
        } => {
            let plain = body.to_string();
            match challenge::seal(&app.key, client, daemon, line, plain.as_bytes()) {
                Some(sealed) => json!({ "sealed": sealed }),
                None => {
                    return error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        json!({"error": "cannot seal the answer"}),
                    );
                }
            }
        }
    };
    let mut r = axum::Json(body).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// The slot's token valid beyond the margin (other than `not`), waiting up to `wait`
/// for a refresh under way; else the answer saying why there is none.
async fn served(
    app: &mut App,
    slot: &Slot,
    not: Option<&Token>,
    wait: Duration,
) -> Result<Token, Box<Response>> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut rx = slot.status.subscribe();
    loop {
        let (manager, busy) = {
            let s = rx.borrow_and_update();
            (s.manager.clone(), s.phase.busy())
        };
        match manager.cached().await {
            Ok(Some(t))
                if not.is_none_or(|n| n.access_token.secret() != t.access_token.secret()) =>
            {
                return Ok(t);
            }
            Ok(_) => {}
            Err(e) => {
                return Err(Box::new(error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({"error": e.to_string(), "class": e.class()}),
                )));
            }
        }
        // A token reported dead is being replaced, whatever the phase says right now.
        if !busy && not.is_none() {
            return Err(Box::new(unavailable(slot)));
        }
        // Another replica's token shows in the store before this one's scheduler looks.
        let look = (tokio::time::Instant::now() + STORE_LOOK).min(deadline);
        tokio::select! {
            changed = tokio::time::timeout_at(look, rx.changed()) => match changed {
                Ok(Ok(())) => {}
                Err(_) if look < deadline => {}
                _ => return Err(Box::new(unavailable(slot))),
            },
            _ = stopped(&mut app.stop) => return Err(Box::new(unavailable(slot))),
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
        Phase::Awaiting => (Some(ErrorClass::LoginsOff), Some(AWAITING.to_owned())),
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
