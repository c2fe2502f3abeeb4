//! What every stand-in handler shares: the state handle, request counting and the fault
//! gate each request passes before the endpoint answers.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::State as Extract;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;

use super::state::State;
use super::{Endpoint, Fault};

pub(crate) type Shared = Arc<State>;

/// Requests with a method the route does not serve still count, then get 405.
pub(crate) fn counted(ep: Endpoint, route: MethodRouter<Shared>) -> MethodRouter<Shared> {
    route.fallback(move |Extract(state): Extract<Shared>| async move {
        state.enter(ep);
        (StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed\n").into_response()
    })
}

/// How a handler goes on after the fault gate.
pub(crate) enum Gate {
    Proceed { wrong_credential: bool },
    Answer(Response),
}

/// Counts the request and applies the endpoint's fault, if one is armed.
pub(crate) async fn gate(state: &State, ep: Endpoint) -> Gate {
    let Some(fault) = state.enter(ep) else {
        return Gate::Proceed {
            wrong_credential: false,
        };
    };
    match fault {
        Fault::Delay(d) => {
            tokio::time::sleep(d).await;
            Gate::Proceed {
                wrong_credential: false,
            }
        }
        Fault::WrongCredential => Gate::Proceed {
            wrong_credential: true,
        },
        Fault::Status(code) => {
            let status = status_or_500(code);
            let text = format!(
                "{} {}\n",
                status.as_u16(),
                status.canonical_reason().unwrap_or("Error")
            );
            Gate::Answer(with_type(status, "text/plain; charset=utf-8", text))
        }
        Fault::MalformedBody => Gate::Answer(if ep == Endpoint::ConsentLoginPage {
            with_type(
                StatusCode::OK,
                "text/html; charset=utf-8",
                "<!doctype html><html><body><main class=\"card\"><section data-scr".into(),
            )
        } else {
            with_type(
                StatusCode::OK,
                "application/json",
                "{\"dhanClientId\":\"1100\",\"accessToken\":\"eyJhbGciOi".into(),
            )
        }),
        Fault::Respond {
            status,
            body,
            content_type,
        } => Gate::Answer(with_type(status_or_500(status), &content_type, body)),
    }
}

fn status_or_500(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

fn with_type(status: StatusCode, content_type: &str, body: String) -> Response {
    let value = HeaderValue::from_str(content_type)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    (status, [(header::CONTENT_TYPE, value)], body).into_response()
}

pub(crate) fn json_response(status: StatusCode, body: serde_json::Value) -> Response {
    (status, axum::Json(body)).into_response()
}

pub(crate) fn query_map(raw: Option<String>) -> HashMap<String, String> {
    url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}
