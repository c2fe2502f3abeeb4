//! A consumer asks a running daemon first (`TokenManager::token`, `rejected`), so it never
//! starts a login that competes with the daemon's.

use std::time::Duration;

use chrono::Utc;
use serde::Deserialize;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::DaemonAddr;
use super::challenge;
use super::key::ApiKey;
use crate::api::{BodyError, MAX_BODY, read_capped};
use crate::decide::Verdict;
use crate::error::Error;
use crate::error_class::ErrorClass;
use crate::token::{Token, TokenJson};

/// Longer than the daemon's own wait for a refresh under way.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);
/// The daemon asks Dhan's `profile` endpoint (up to 30 s) before it may wait for a
/// refresh.
const REJECTED_TIMEOUT: Duration = Duration::from_secs(90);
/// The daemon answers the challenge at once.
const CHALLENGE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Deserialize)]
struct Challenge {
    daemon_nonce: String,
    proof: String,
}

#[derive(Deserialize)]
struct Sealed {
    sealed: String,
}

#[derive(Deserialize)]
struct Refusal {
    error: Option<String>,
    class: Option<ErrorClass>,
    message: Option<String>,
}

/// The daemon's check of a token a consumer reports Dhan refused.
#[derive(Debug)]
pub(crate) struct Recheck {
    /// The token to use now.
    pub(crate) token: Token,
    /// Whether it is the reported one, and why.
    pub(crate) verdict: Verdict,
    /// Why it could not be checked, or why it was dead.
    pub(crate) detail: Option<String>,
}

/// The profile's token from the daemon at `daemon`. `None` when no daemon is configured
/// (`serve.listen` unset), none answers, or it does not serve this profile: then the
/// caller logs in itself, under the same file lock the daemon uses.
///
/// The key never leaves this process: whatever answers must first prove it holds the key
/// (`challenge.rs`); one that cannot is refused as a configuration error (exit 2), and
/// the client does not log in itself either, since a daemon with another key may be
/// running.
pub(crate) async fn ask_token(
    daemon: Option<&DaemonAddr>,
    profile: &str,
) -> Result<Option<Token>, Error> {
    let route = format!("/v1/profiles/{profile}/token");
    let Some((plain, addr)) = ask(daemon, reqwest::Method::GET, &route, ANSWER_TIMEOUT).await?
    else {
        return Ok(None);
    };
    let token = checked(readable(&plain, addr)?, addr)?;
    tracing::debug!(profile, "token from the daemon at {addr}");
    Ok(Some(token))
}

/// Tells the daemon at `daemon` that Dhan refused the profile's token: the daemon
/// checks it with Dhan's `profile` endpoint and answers a new one only if it is dead
/// (`token --rejected`, and `token --verify` beside a daemon). `None` as for
/// [`ask_token`]: then the caller checks the token itself.
pub(crate) async fn report_rejected(
    daemon: Option<&DaemonAddr>,
    profile: &str,
) -> Result<Option<Recheck>, Error> {
    #[derive(Deserialize)]
    struct Answer {
        #[serde(flatten)]
        token: TokenJson,
        verdict: Verdict,
        detail: Option<String>,
    }
    let route = format!("/v1/profiles/{profile}/token/rejected");
    let Some((plain, addr)) = ask(daemon, reqwest::Method::POST, &route, REJECTED_TIMEOUT).await?
    else {
        return Ok(None);
    };
    let a: Answer = readable(&plain, addr)?;
    Ok(Some(Recheck {
        token: checked(a.token, addr)?,
        verdict: a.verdict,
        detail: a.detail,
    }))
}

/// The daemon's opened answer as `T`.
fn readable<T: serde::de::DeserializeOwned>(
    plain: &[u8],
    addr: std::net::SocketAddr,
) -> Result<T, Error> {
    serde_json::from_slice(plain).map_err(|e| {
        refused(
            ErrorClass::UnexpectedBody,
            format!("the daemon at {addr} answered an unreadable token ({e})"),
        )
    })
}

/// Sealed by the key holder, yet still only a token-shaped, live token is taken.
fn checked(b: TokenJson, addr: std::net::SocketAddr) -> Result<Token, Error> {
    let token = b.into_token(Utc::now());
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
    Ok(token)
}

/// One request to `route` of the daemon, through the challenge: the opened answer of a
/// 200, `None` when no daemon is configured or answers or it does not serve the profile.
async fn ask(
    daemon: Option<&DaemonAddr>,
    method: reqwest::Method,
    route: &str,
    limit: Duration,
) -> Result<Option<(Vec<u8>, std::net::SocketAddr)>, Error> {
    let Some(at) = daemon else {
        return Ok(None);
    };
    let addr = at.addr;
    let key = match super::key::read(&at.key_file) {
        Ok(k) => ApiKey::from_text(&k),
        Err(e) => {
            tracing::debug!("not asking the daemon at {addr}: {e}");
            return Ok(None);
        }
    };
    let http = reqwest::Client::builder()
        // A loopback endpoint: nothing of it is for an HTTP(S)_PROXY of the environment.
        .no_proxy()
        .connect_timeout(Duration::from_secs(2))
        .build()
        .map_err(|e| refused(ErrorClass::Other, format!("HTTP client: {e}")))?;

    let client = challenge::fresh_nonce();
    let hello = http
        .post(format!("http://{addr}/v1/challenge"))
        .json(&serde_json::json!({ "client_nonce": challenge::encode(&client) }))
        .timeout(CHALLENGE_TIMEOUT);
    let Some((status, text)) = exchange(hello, CHALLENGE_TIMEOUT, addr).await? else {
        tracing::debug!("no daemon answers at {addr}; obtaining the token here");
        return Ok(None);
    };
    let daemon = (status == 200)
        .then(|| serde_json::from_str::<Challenge>(&text).ok())
        .flatten()
        .and_then(|c| {
            let daemon = challenge::decode_nonce(&c.daemon_nonce)?;
            let proof = URL_SAFE_NO_PAD.decode(c.proof).ok()?;
            challenge::proof_holds(&key, &client, &daemon, &proof).then_some(daemon)
        });
    let Some(daemon) = daemon else {
        return Err(refused(
            ErrorClass::Config,
            format!(
                "what answers at {addr} did not prove it holds the key in {} (HTTP {status}): \
                 not dhan-login's daemon, one older than this client (restart it), or one with \
                 another key (set serve.key_file); nothing derived from the key was sent",
                at.key_file.display()
            ),
        ));
    };

    let line = format!("{method} {route}");
    let mac = challenge::request_mac(&key, &client, &daemon, &line);
    let request = http
        .request(method, format!("http://{addr}{route}"))
        .header(
            reqwest::header::AUTHORIZATION,
            challenge::authorization(&daemon, &mac),
        )
        .header(challenge::CLIENT_NONCE_HEADER, challenge::encode(&client))
        .timeout(limit);
    let Some((status, text)) = exchange(request, limit, addr).await? else {
        return Err(refused(
            ErrorClass::Transient,
            format!("the daemon at {addr} went away between two requests"),
        ));
    };
    match status {
        200 => {
            let plain = serde_json::from_str::<Sealed>(&text)
                .ok()
                .and_then(|s| challenge::open(&key, &client, &daemon, &line, &s.sealed))
                .ok_or_else(|| {
                    refused(
                        ErrorClass::UnexpectedBody,
                        format!(
                            "the daemon at {addr} answered a token not sealed for this request"
                        ),
                    )
                })?;
            Ok(Some((plain, addr)))
        }
        404 => Ok(None),
        401 => Err(refused(
            ErrorClass::Config,
            format!(
                "the daemon at {addr} refused the request signed with the key in {} after proving it holds it (its clock or a restart between two requests?)",
                at.key_file.display()
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

/// Sends `req` and reads its answer within `limit` and 1 MiB: `None` when nothing
/// listens at `addr`.
async fn exchange(
    req: reqwest::RequestBuilder,
    limit: Duration,
    addr: std::net::SocketAddr,
) -> Result<Option<(u16, String)>, Error> {
    let deadline = tokio::time::Instant::now() + limit;
    let resp = match req.send().await {
        Ok(r) => r,
        Err(e) if e.is_connect() => return Ok(None),
        Err(e) => {
            return Err(refused(
                ErrorClass::Transient,
                format!("the daemon at {addr} did not answer: {e}"),
            ));
        }
    };
    let status = resp.status().as_u16();
    let text = read_capped(resp, MAX_BODY, deadline).await.map_err(|e| {
        let class = match e {
            BodyError::TooLarge(_) => ErrorClass::UnexpectedBody,
            _ => ErrorClass::Transient,
        };
        refused(class, format!("the daemon at {addr}: {e}"))
    })?;
    Ok(Some((status, text)))
}

fn refused(class: ErrorClass, message: String) -> Error {
    Error::Refused { class, message }
}
