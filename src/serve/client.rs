//! `dhan-login token` and `exec` ask a running daemon first, so they never start a login
//! that competes with it.

use std::time::Duration;

use chrono::Utc;
use serde::Deserialize;

use super::settings::ServeSettings;
use crate::api::{BodyError, MAX_BODY, read_capped};
use crate::error::Error;
use crate::error_class::ErrorClass;
use crate::token::{AccessToken, SourceKind, Token, TokenKind};

/// Longer than the daemon's own wait for a refresh under way.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Deserialize)]
struct TokenBody {
    access_token: String,
    client_id: String,
    expires_at: chrono::DateTime<Utc>,
    kind: TokenKind,
    source: SourceKind,
}

#[derive(Deserialize)]
struct Refusal {
    error: Option<String>,
    class: Option<ErrorClass>,
    message: Option<String>,
}

/// The profile's token from the daemon of `settings`. `None` when no daemon is configured
/// (`serve.listen` unset), none answers, or it does not serve this profile: then the
/// caller logs in itself, under the same file lock the daemon uses.
pub async fn ask_daemon(settings: &ServeSettings, profile: &str) -> Result<Option<Token>, Error> {
    if !settings.listen_configured {
        return Ok(None);
    }
    let addr = settings.client_addr();
    let key = match super::key::read(&settings.key_file) {
        Ok(k) => k,
        Err(e) => {
            tracing::debug!("not asking the daemon at {addr}: {e}");
            return Ok(None);
        }
    };
    let http = reqwest::Client::builder()
        // A loopback endpoint: an HTTP(S)_PROXY of the environment must not get the key.
        .no_proxy()
        .connect_timeout(Duration::from_secs(2))
        .timeout(ANSWER_TIMEOUT)
        .build()
        .map_err(|e| refused(ErrorClass::Other, format!("HTTP client: {e}")))?;
    let url = format!("http://{addr}/v1/profiles/{profile}/token");
    let deadline = tokio::time::Instant::now() + ANSWER_TIMEOUT;
    let resp = match http.get(&url).bearer_auth(&key).send().await {
        Ok(r) => r,
        Err(e) if e.is_connect() => {
            tracing::debug!("no daemon answers at {addr}; obtaining the token here");
            return Ok(None);
        }
        Err(e) => {
            return Err(refused(
                ErrorClass::Transient,
                format!("the daemon at {addr} did not answer: {e}"),
            ));
        }
    };
    let status = resp.status();
    let text = read_capped(resp, MAX_BODY, deadline).await.map_err(|e| {
        let class = match e {
            BodyError::TooLarge(_) => ErrorClass::UnexpectedBody,
            _ => ErrorClass::Transient,
        };
        refused(class, format!("the daemon at {addr}: {e}"))
    })?;
    match status.as_u16() {
        200 => {
            let b: TokenBody = serde_json::from_str(&text).map_err(|e| {
                refused(
                    ErrorClass::UnexpectedBody,
                    format!("the daemon at {addr} answered an unreadable token ({e})"),
                )
            })?;
            let token = Token {
                access_token: AccessToken::new(b.access_token),
                client_id: b.client_id,
                expires_at: b.expires_at,
                kind: b.kind,
                source: b.source,
                obtained_at: Utc::now(),
            };
            // Whatever listens on that port answered: take only a token-shaped token.
            token.check().map_err(|e| {
                refused(
                    ErrorClass::UnexpectedBody,
                    format!("the daemon at {addr} answered something that is not a token: {e}"),
                )
            })?;
            if !token.is_live(Utc::now()) {
                return Err(refused(
                    ErrorClass::UnexpectedBody,
                    format!("the daemon at {addr} answered an expired token"),
                ));
            }
            tracing::debug!(profile, "token from the daemon at {addr}");
            Ok(Some(token))
        }
        404 => Ok(None),
        401 => Err(refused(
            ErrorClass::Config,
            format!(
                "the daemon at {addr} does not accept the key in {} (another state folder? set serve.key_file)",
                settings.key_file.display()
            ),
        )),
        code => {
            let r: Option<Refusal> = serde_json::from_str(&text).ok();
            let class = r
                .as_ref()
                .and_then(|r| r.class)
                .unwrap_or(ErrorClass::Transient);
            let why = r
                .map(|r| {
                    let mut s = r.error.unwrap_or_default();
                    if let Some(m) = r.message {
                        s = format!("{s}: {m}");
                    }
                    s
                })
                .unwrap_or_else(|| format!("HTTP {code}"));
            Err(refused(class, format!("the daemon at {addr}: {why}")))
        }
    }
}

fn refused(class: ErrorClass, message: String) -> Error {
    Error::Refused { class, message }
}
