//! The Dhan HTTP client: the five calls a login makes (generateAccessToken,
//! generate-consent, consumeApp-consent, RenewToken, profile) and the static IP calls,
//! base URLs injectable.

mod body;
mod error;
mod static_ip;
mod wire;

use std::fmt;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

pub(crate) use body::{BodyError, MAX_BODY, read_capped};
pub use error::ApiError;
use error::{Kind, classify};
pub use static_ip::{IpFlag, StaticIps};

pub use crate::dhan::MINT_INTERVAL;

use crate::redact::Scrubber;
use crate::sync::lock;
use crate::token::{SourceKind, Token, TokenError};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A token as Dhan handed it out, before it becomes a [`Token`]. Debug shows the
/// access token redacted.
#[derive(Debug)]
pub struct Grant {
    /// The JWT Dhan issued, to send as the `access-token` header.
    pub access_token: SecretString,
    /// The `dhanClientId` Dhan named in the answer, when it did.
    pub client_id: Option<String>,
    /// The account holder's name (`dhanClientName`), when Dhan gave it.
    pub client_name: Option<String>,
    /// `expiryTime` as Dhan wrote it (IST, no offset). The token expires at the earlier
    /// of this and its own `exp` claim.
    pub expiry_time: Option<String>,
}

impl Grant {
    /// The grant as a [`Token`] obtained by `source` at `now`. `client_id` is the one the
    /// login used, taken when Dhan's answer names none. Fails when the access token is
    /// not JWT-shaped, has no readable expiry, or has already expired.
    pub fn into_token(
        self,
        client_id: &str,
        source: SourceKind,
        now: DateTime<Utc>,
    ) -> Result<Token, TokenError> {
        let id = self.client_id.as_deref().unwrap_or(client_id);
        Token::from_grant(
            self.access_token.expose_secret(),
            Some(id),
            self.expiry_time.as_deref(),
            source,
            now,
        )
    }
}

/// What Dhan's `profile` endpoint says about a token ([`DhanApi::profile`]).
#[derive(Debug, Clone)]
pub struct ProfileInfo {
    /// The client id the token belongs to.
    pub client_id: Option<String>,
    /// When Dhan will stop accepting the token (`tokenValidity`, read as IST).
    pub token_validity: Option<DateTime<Utc>>,
    /// The segments the account trades in, as Dhan lists them (`activeSegment`).
    pub active_segment: Option<String>,
    /// Whether the data API subscription is active, in Dhan's words (`dataPlan`).
    pub data_plan: Option<String>,
}

/// A client for Dhan's auth host and API. Every call is one HTTP request with a
/// per-request timeout (30 s unless [`DhanApi::with_timeout`] says otherwise); redirects
/// are not followed, and secrets never appear in its errors or logs. The TLS client is
/// built on the first request, so making one costs nothing.
pub struct DhanApi {
    http: OnceLock<reqwest::Client>,
    timeout: Duration,
    auth_base: Url,
    api_base: Url,
    /// The last server `Date` seen and the local instant it arrived.
    server_time: Mutex<Option<(DateTime<Utc>, DateTime<Utc>)>>,
}

impl fmt::Debug for DhanApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DhanApi")
            .field("auth_base", &self.auth_base.as_str())
            .field("api_base", &self.api_base.as_str())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// The HTTP client every [`DhanApi`] builds for itself, for a caller that runs many
/// profiles (the daemon) to build once and share: each client is its own connection pool
/// and TLS configuration, with the system's root certificates parsed again.
#[cfg(feature = "serve")]
pub(crate) fn http_client() -> Result<reqwest::Client, ApiError> {
    build_client(REQUEST_TIMEOUT)
}

fn build_client(timeout: Duration) -> Result<reqwest::Client, ApiError> {
    reqwest::Client::builder()
        // Dhan answers every call directly; a redirect would only leak headers.
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(timeout)
        .user_agent(concat!("dhan-login/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| ApiError::Transient {
            endpoint: "client",
            detail: e.without_url().to_string(),
        })
}

impl DhanApi {
    /// A client for the auth host at `auth_base` (`https://auth.dhan.co`) and the API at
    /// `api_base` (`https://api.dhan.co/v2`); a test points both at the stand-in.
    pub fn new(auth_base: Url, api_base: Url) -> Self {
        Self::with_timeout(auth_base, api_base, REQUEST_TIMEOUT)
    }

    /// As `new`, with another per-request timeout (tests, slow networks).
    pub fn with_timeout(auth_base: Url, api_base: Url, timeout: Duration) -> Self {
        Self {
            http: OnceLock::new(),
            timeout,
            auth_base,
            api_base,
            server_time: Mutex::new(None),
        }
    }

    /// As `new`, on `client` (from [`http_client`]) instead of a client of its own.
    pub(crate) fn with_client(auth_base: Url, api_base: Url, client: reqwest::Client) -> Self {
        Self {
            http: OnceLock::from(client),
            ..Self::new(auth_base, api_base)
        }
    }

    /// The HTTP client, built on first use: a cached token needs no request, and
    /// building a TLS client (reading the system's certificates) is most of what
    /// `dhan-login token` would otherwise cost.
    fn http(&self) -> Result<&reqwest::Client, ApiError> {
        if let Some(client) = self.http.get() {
            return Ok(client);
        }
        let client = build_client(self.timeout)?;
        Ok(self.http.get_or_init(|| client))
    }

    /// The auth host's base URL, where the login and consent calls go.
    pub fn auth_base(&self) -> &Url {
        &self.auth_base
    }

    /// `POST {auth}/app/generateAccessToken?dhanClientId&pin&totp`.
    pub async fn generate_access_token(
        &self,
        client_id: &str,
        pin: &SecretString,
        totp: &SecretString,
    ) -> Result<Grant, ApiError> {
        let url = join(&self.auth_base, "app/generateAccessToken");
        let req = self.http()?.post(url).query(&[
            ("dhanClientId", client_id),
            ("pin", pin.expose_secret()),
            ("totp", totp.expose_secret()),
        ]);
        let scrub = Scrubber::new()
            .with(pin.expose_secret())
            .with(totp.expose_secret());
        let body: wire::GrantBody = self
            .send("generateAccessToken", Kind::Credentials, req, &scrub)
            .await?;
        grant("generateAccessToken", body)
    }

    /// `POST {auth}/app/generate-consent?client_id=`: returns the consentAppId.
    pub async fn generate_consent(
        &self,
        client_id: &str,
        api_key: &SecretString,
        api_secret: &SecretString,
    ) -> Result<String, ApiError> {
        const EP: &str = "generate-consent";
        let url = join(&self.auth_base, "app/generate-consent");
        let req = self
            .http()?
            .post(url)
            .query(&[("client_id", client_id)])
            .header("app_id", api_key.expose_secret())
            .header("app_secret", api_secret.expose_secret());
        let scrub = Scrubber::new().with(api_secret.expose_secret());
        let body: wire::ConsentBody = self.send(EP, Kind::Credentials, req, &scrub).await?;
        match (body.status.as_deref(), body.consent_app_id) {
            (Some(s), Some(id)) if s.eq_ignore_ascii_case("success") && !id.is_empty() => Ok(id),
            (status, _) => Err(ApiError::UnexpectedBody {
                endpoint: EP,
                status: 200,
                detail: format!("status is {status:?}, not \"success\" with a consentAppId"),
                body: String::new(),
            }),
        }
    }

    /// The page a person (or the headless browser) logs in on for a consent.
    pub fn consent_login_url(&self, consent_app_id: &str) -> Url {
        let mut url = join(&self.auth_base, "login/consentApp-login");
        url.query_pairs_mut()
            .append_pair("consentAppId", consent_app_id);
        url
    }

    /// `GET {auth}/app/consumeApp-consent?tokenId=`: exchanges a tokenId for a token.
    pub async fn consume_consent(
        &self,
        token_id: &SecretString,
        api_key: &SecretString,
        api_secret: &SecretString,
    ) -> Result<Grant, ApiError> {
        let url = join(&self.auth_base, "app/consumeApp-consent");
        let req = self
            .http()?
            .get(url)
            .query(&[("tokenId", token_id.expose_secret())])
            .header("app_id", api_key.expose_secret())
            .header("app_secret", api_secret.expose_secret());
        let scrub = Scrubber::new()
            .with(token_id.expose_secret())
            .with(api_secret.expose_secret());
        let body: wire::GrantBody = self
            .send("consumeApp-consent", Kind::Other, req, &scrub)
            .await?;
        grant("consumeApp-consent", body)
    }

    /// `GET {api}/RenewToken`: a new 24 h token for a live Dhan Web token.
    pub async fn renew(&self, token: &Token) -> Result<Grant, ApiError> {
        let url = join(&self.api_base, "RenewToken");
        let req = self
            .http()?
            .request(Method::GET, url)
            .header("access-token", token.access_token.secret())
            .header("dhanClientId", &token.client_id);
        let scrub = Scrubber::new().with(token.access_token.secret());
        let body: wire::GrantBody = self.send("RenewToken", Kind::Token, req, &scrub).await?;
        grant("RenewToken", body)
    }

    /// `GET {api}/profile`: costs a request, so only used when asked to verify.
    pub async fn profile(&self, access_token: &str) -> Result<ProfileInfo, ApiError> {
        let url = join(&self.api_base, "profile");
        let req = self.http()?.get(url).header("access-token", access_token);
        let scrub = Scrubber::new().with(access_token);
        let body: wire::ProfileBody = self.send("profile", Kind::Token, req, &scrub).await?;
        Ok(ProfileInfo {
            client_id: body.client_id,
            token_validity: body.token_validity.as_deref().and_then(parse_validity),
            active_segment: body.active_segment,
            data_plan: body.data_plan,
        })
    }

    /// Reads the server's clock with a bare HEAD on the auth host, for TOTP skew. Any
    /// answer carries a `Date`; failures just mean we trust the local clock.
    pub async fn probe_server_time(&self) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        if let Some(seen) = self.last_server_time() {
            return Some(seen);
        }
        let sent = Utc::now();
        let resp = self
            .http()
            .ok()?
            .head(self.auth_base.clone())
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .ok()?;
        self.note_date(&resp, sent);
        self.last_server_time()
    }

    /// The server's clock as last read from an answer's `Date` header, paired with the
    /// local time it was read at; `None` before any answer.
    pub fn last_server_time(&self) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        *lock(&self.server_time)
    }

    fn note_date(&self, resp: &reqwest::Response, sent: DateTime<Utc>) {
        let Some(date) = resp
            .headers()
            .get(reqwest::header::DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| DateTime::parse_from_rfc2822(v).ok())
        else {
            return;
        };
        // The server stamped the answer somewhere in the round trip: take its middle.
        let now = Utc::now();
        let local = sent + (now - sent) / 2;
        *lock(&self.server_time) = Some((date.with_timezone(&Utc), local));
    }

    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        endpoint: &'static str,
        kind: Kind,
        req: reqwest::RequestBuilder,
        scrub: &Scrubber,
    ) -> Result<T, ApiError> {
        let sent = Utc::now();
        let deadline = tokio::time::Instant::now() + self.timeout;
        // Never log the URL: generateAccessToken carries the PIN in its query.
        tracing::debug!(endpoint, "calling Dhan");
        let resp = req.send().await.map_err(|e| transport(endpoint, e))?;
        self.note_date(&resp, sent);
        let status = resp.status();
        let text = match read_capped(resp, MAX_BODY, deadline).await {
            Ok(text) => text,
            Err(BodyError::Transport(e)) => return Err(transport(endpoint, e)),
            Err(e @ BodyError::Deadline(_)) => {
                return Err(ApiError::Transient {
                    endpoint,
                    detail: e.to_string(),
                });
            }
            Err(e @ BodyError::TooLarge(_)) => {
                return Err(ApiError::UnexpectedBody {
                    endpoint,
                    status: status.as_u16(),
                    detail: e.to_string(),
                    body: String::new(),
                });
            }
        };
        let body = scrub.scrub(&text);
        tracing::debug!(endpoint, status = status.as_u16(), "Dhan answered");
        if status != StatusCode::OK {
            return Err(classify(endpoint, kind, status.as_u16(), &body));
        }
        // A 200 that says "error" is still an error.
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text)
            && (v.get("status").and_then(|s| s.as_str()) == Some("error")
                || v.get("errorCode").is_some())
        {
            return Err(classify(endpoint, kind, status.as_u16(), &body));
        }
        serde_json::from_str(&text).map_err(|e| ApiError::UnexpectedBody {
            endpoint,
            status: status.as_u16(),
            detail: e.to_string(),
            body: error::shorten(&body),
        })
    }
}

fn grant(endpoint: &'static str, body: wire::GrantBody) -> Result<Grant, ApiError> {
    let access_token =
        body.access_token
            .filter(|t| !t.is_empty())
            .ok_or(ApiError::UnexpectedBody {
                endpoint,
                status: 200,
                detail: "no accessToken (or token) field".into(),
                body: String::new(),
            })?;
    Ok(Grant {
        access_token: SecretString::from(access_token),
        client_id: body.client_id,
        client_name: body.client_name,
        expiry_time: body.expiry_time,
    })
}

fn transport(endpoint: &'static str, e: reqwest::Error) -> ApiError {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "transport error"
    };
    // without_url: the URL may hold the PIN or a tokenId.
    let unsent = e.is_connect();
    let e = e.without_url();
    let mut detail = format!("{what}: {e}");
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        detail.push_str(&format!(": {s}"));
        source = s.source();
    }
    if unsent {
        ApiError::Unsent { endpoint, detail }
    } else {
        ApiError::Transient { endpoint, detail }
    }
}

/// Appends a path to a base that may or may not end in a slash (`/v2` vs `/v2/`).
fn join(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    let joined = format!("{}/{}", base.path().trim_end_matches('/'), path);
    url.set_path(&joined);
    url.set_query(None);
    url
}

/// `tokenValidity` is `DD/MM/YYYY HH:MM` in IST.
fn parse_validity(s: &str) -> Option<DateTime<Utc>> {
    let naive = chrono::NaiveDateTime::parse_from_str(s.trim(), "%d/%m/%Y %H:%M").ok()?;
    use chrono::TimeZone;
    crate::token::ist()
        .from_local_datetime(&naive)
        .single()
        .map(|d| d.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_keeps_the_base_path() {
        let base = Url::parse("http://127.0.0.1:1/v2").unwrap();
        assert_eq!(
            join(&base, "profile").as_str(),
            "http://127.0.0.1:1/v2/profile"
        );
        let base = Url::parse("http://127.0.0.1:1/").unwrap();
        assert_eq!(join(&base, "app/x").as_str(), "http://127.0.0.1:1/app/x");
    }

    /// The daemon's managers share one client: one pool, so one connection where each
    /// client of its own would open another.
    #[cfg(feature = "serve")]
    #[tokio::test]
    async fn apis_given_one_client_share_its_connections() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                counter.fetch_add(1, SeqCst);
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    // A bare HEAD fits one read; answer each with a Date and keep the
                    // connection open.
                    while let Ok(n) = sock.read(&mut buf).await {
                        let reply = "HTTP/1.1 200 OK\r\ndate: Sun, 06 Dec 2026 10:00:00 GMT\r\ncontent-length: 0\r\n\r\n";
                        if n == 0 || sock.write_all(reply.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        let ask_each = |apis: [DhanApi; 2]| async move {
            for api in &apis {
                assert!(api.probe_server_time().await.is_some());
            }
        };
        let shared = http_client().unwrap();
        let on_shared = || DhanApi::with_client(base.clone(), base.clone(), shared.clone());
        ask_each([on_shared(), on_shared()]).await;
        assert_eq!(accepted.load(SeqCst), 1);
        ask_each([
            DhanApi::new(base.clone(), base.clone()),
            DhanApi::new(base.clone(), base.clone()),
        ])
        .await;
        assert_eq!(accepted.load(SeqCst), 3);
    }

    #[test]
    fn token_validity_is_ist() {
        let t = parse_validity("30/03/2025 15:37").unwrap();
        assert_eq!(t.to_rfc3339(), "2025-03-30T10:07:00+00:00");
    }
}
