//! Turning a tokenId into a token (consumeApp-consent), and keeping one whose exchange
//! failed on the way so that the next run does not pay for it again.
//!
//! A tokenId costs a consent (25 a day) and a login on the page with the PIN. When Dhan
//! answers its exchange with a 5xx, a timeout or a refused connection, it has not said
//! the tokenId is spent: it is kept (a secret, stored like the token) and the next run
//! exchanges it first, while it may still be good ([`TOKEN_ID_LIFETIME`]).

use secrecy::SecretString;

use super::context::Context;
use crate::api::{ApiError, Grant};
use crate::config::{ConfigError, Profile};
use crate::dhan::TOKEN_ID_LIFETIME;
use crate::error::Error;
use crate::error_class::ErrorClass;
use crate::secret::Secret;
use crate::store::KeptTokenId;
use crate::token::{SourceKind, Token};

/// The app credentials a tokenId is exchanged with.
#[derive(Clone, Copy)]
pub(super) struct App<'a> {
    pub(super) client_id: &'a str,
    pub(super) api_key: &'a SecretString,
    pub(super) api_secret: &'a SecretString,
}

impl<'a> App<'a> {
    /// The profile's app credentials, each named when missing: what a consent and the
    /// exchange of its tokenId both need.
    pub(super) async fn of(p: &'a Profile) -> Result<Self, ConfigError> {
        Ok(Self {
            client_id: p.require_client_id()?,
            api_key: p.require(Secret::ApiKey).await?,
            api_secret: p.require(Secret::ApiSecret).await?,
        })
    }
}

/// Exchanges a tokenId captured just now; one that may still be good after a failure
/// is kept for the next run.
pub(super) async fn exchange(
    cx: &Context<'_>,
    kind: SourceKind,
    app: &App<'_>,
    token_id: SecretString,
) -> Result<Token, Error> {
    let kept = KeptTokenId::new(token_id, app.client_id, cx.clock.now());
    match consume(cx, app, kept.value()).await {
        Ok(grant) => Ok(grant.into_token(app.client_id, kind, cx.clock.now())?),
        Err(e) => {
            if may_still_be_good(&e) {
                tracing::warn!(
                    "Dhan did not exchange the tokenId ({e}); it is kept, and the next login exchanges it without a new consent"
                );
                cx.keep_token_id(kept);
            }
            Err(e.into())
        }
    }
}

/// The tokenId an earlier run kept, exchanged before anything else is spent: `None`
/// when there is none to try (none kept, another client id's, too old, or refused now),
/// and the login goes on as usual.
pub(super) async fn kept(
    cx: &Context<'_>,
    kind: SourceKind,
    app: &App<'_>,
) -> Option<Result<Token, Error>> {
    let kept = cx.take_kept_token_id()?;
    if kept.client_id != app.client_id {
        return None;
    }
    let age = cx.clock.now() - kept.captured_at;
    if age < chrono::Duration::zero() || age.to_std().is_ok_and(|age| age > TOKEN_ID_LIFETIME) {
        tracing::info!("the tokenId kept from an earlier login is too old to exchange: dropped");
        return None;
    }
    tracing::info!(
        "exchanging the tokenId an earlier login could not (no consent spent, nothing typed)"
    );
    match consume(cx, app, kept.value()).await {
        Ok(grant) => Some(
            grant
                .into_token(app.client_id, kind, cx.clock.now())
                .map_err(Error::from),
        ),
        Err(e) if may_still_be_good(&e) => {
            cx.keep_token_id(kept);
            Some(Err(e.into()))
        }
        // Spent after all (the earlier exchange reached Dhan) or expired: it says
        // nothing about the app's credentials, which the login now checks afresh.
        Err(e) => {
            tracing::info!("Dhan refused the kept tokenId ({e}); logging in again");
            None
        }
    }
}

async fn consume(
    cx: &Context<'_>,
    app: &App<'_>,
    token_id: &SecretString,
) -> Result<Grant, ApiError> {
    let started = std::time::Instant::now();
    cx.progress.step_started("consume consent");
    let grant = cx
        .api
        .consume_consent(token_id, app.api_key, app.api_secret)
        .await;
    cx.progress
        .step_finished("consume consent", started.elapsed());
    grant
}

/// Dhan did not say the tokenId is spent: it was unreachable, answered 5xx, or asked
/// for a pause.
fn may_still_be_good(e: &ApiError) -> bool {
    matches!(e.class(), ErrorClass::Transient | ErrorClass::RateLimited)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use url::Url;

    use super::*;
    use crate::api::DhanApi;
    use crate::config::Profile;
    use crate::progress::NoProgress;
    use crate::totp::SystemClock;

    const CLIENT: &str = "1100000042";

    /// A port nothing listens on: every request fails before it leaves the machine,
    /// the way it does while Dhan is unreachable.
    fn closed_port() -> Url {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap()
    }

    #[tokio::test]
    async fn a_kept_token_id_is_tried_once_while_young_and_only_for_its_client_id() {
        let dir = tempfile::tempdir().unwrap();
        let profile = Profile::builder("p", dir.path())
            .client_id(CLIENT)
            .build()
            .unwrap();
        let api = DhanApi::new(closed_port(), closed_port());
        let key = SecretString::from("key-1");
        let secret = SecretString::from("secret-1");
        let app = App {
            client_id: CLIENT,
            api_key: &key,
            api_secret: &secret,
        };
        let minutes = |m: i64| chrono::Utc::now() - chrono::Duration::minutes(m);
        // (captured, for which client id, tried)
        let cases = [
            (minutes(1), CLIENT, true),
            (minutes(9), CLIENT, true),
            (minutes(11), CLIENT, false),
            (minutes(-1), CLIENT, false),
            (minutes(1), "1100000043", false),
        ];
        for (captured_at, client_id, tried) in cases {
            let mut cx = Context::new(&profile, &api, &NoProgress, Arc::new(SystemClock));
            cx.set_kept_token_id(Some(KeptTokenId::new(
                SecretString::from("tid-1"),
                client_id,
                captured_at,
            )));
            let got = kept(&cx, SourceKind::Browser, &app).await;
            let case = format!("{captured_at} {client_id}");
            assert_eq!(got.is_some(), tried, "{case}");
            if let Some(got) = got {
                // Unreachable: kept for the next run, which tries it again.
                let e = got.err().unwrap();
                assert_eq!(e.class(), ErrorClass::Transient, "{case}: {e}");
                assert_eq!(
                    cx.kept_token_id().map(|k| k.captured_at),
                    Some(captured_at),
                    "{case}"
                );
                // Once per run: the next source of this run does not send it again.
                assert!(kept(&cx, SourceKind::Manual, &app).await.is_none());
            } else {
                assert!(cx.kept_token_id().is_none(), "{case}: dropped");
            }
        }
    }
}
