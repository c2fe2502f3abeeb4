//! Getting a consentAppId without wasting one: reuse the pending one, respect the daily
//! budget, and remember when Dhan says the day is used up.

use secrecy::SecretString;

use super::context::Context;
use crate::error::Error;
use crate::error_class::ErrorClass;

/// A consent to log in with, and whether it was reused from an earlier attempt.
pub(super) struct Consent {
    pub(super) id: String,
    pub(super) reused: bool,
}

pub(super) async fn obtain(
    cx: &Context<'_>,
    client_id: &str,
    api_key: &SecretString,
    api_secret: &SecretString,
) -> Result<Consent, Error> {
    let now = cx.clock.now();
    if let Some(pending) = cx.ledger.today(client_id, now).await?.pending {
        tracing::info!(
            "reusing the pending consent from an earlier attempt (no new consent spent)"
        );
        return Ok(Consent {
            id: pending.consent_app_id,
            reused: true,
        });
    }
    cx.ledger.reserve(client_id, now).await?;
    cx.progress.step_started("generate consent");
    let started = std::time::Instant::now();
    let result = cx
        .api
        .generate_consent(client_id, api_key, api_secret)
        .await;
    cx.progress
        .step_finished("generate consent", started.elapsed());
    match result {
        Ok(id) => {
            cx.ledger
                .set_pending(client_id, &id, cx.clock.now())
                .await?;
            Ok(Consent { id, reused: false })
        }
        Err(e @ crate::api::ApiError::Unsent { .. }) => {
            cx.ledger.unreserve(client_id, now).await?;
            Err(e.into())
        }
        Err(e) => {
            if e.class() == ErrorClass::ConsentLimit {
                cx.ledger.mark_exhausted(client_id, cx.clock.now()).await?;
            }
            Err(e.into())
        }
    }
}

/// The consent produced a tokenId (or Dhan rejected it): it cannot be used again.
pub(super) async fn spent(cx: &Context<'_>, client_id: &str, id: &str) {
    if let Err(e) = cx.ledger.clear_pending(client_id, id, cx.clock.now()).await {
        tracing::warn!("could not update the consent ledger: {e}");
    }
}
