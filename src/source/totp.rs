//! PIN + TOTP straight to generateAccessToken: no browser, one request.

use super::context::{BoxFuture, Context, Outcome, TokenSource, outcome_of};
use super::needs;
use crate::api::ApiError;
use crate::error::Error;
use crate::error_class::ErrorClass;
use crate::secret::Secret;
use crate::store::MintOutcome;
use crate::token::SourceKind;

pub(super) struct TotpSource;

impl TokenSource for TotpSource {
    fn kind(&self) -> SourceKind {
        SourceKind::Totp
    }

    fn obtain<'a>(&'a self, cx: &'a Context<'a>) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            if let Err(missing) = needs(self.kind(), cx.profile) {
                return Outcome::NotApplicable(missing.to_string());
            }
            match login(cx).await {
                Ok(token) => Outcome::Obtained(token),
                Err(e) => outcome_of(e),
            }
        })
    }
}

async fn login(cx: &Context<'_>) -> Result<crate::token::Token, Error> {
    cx.preflight().await?;
    let client_id = cx.profile.require_client_id()?;
    // Before waiting up to 30 s for a fresh code only to be refused.
    cx.mint.check(client_id, cx.clock.now()).await?;
    let pin = cx.profile.require(Secret::Pin).await?;
    let totp = cx.totp().await?;
    cx.progress.step_started("totp login");
    let started = std::time::Instant::now();
    let code = totp.next_code().await;
    // Written down before the request goes out, so that no other process or replica
    // sends one inside Dhan's window, even if this one dies waiting for the answer.
    let attempt = cx.mint.reserve(client_id, cx.clock.now()).await?;
    let grant = cx.api.generate_access_token(client_id, pin, &code).await;
    cx.progress.step_finished("totp login", started.elapsed());
    if let Err(e) = cx
        .mint
        .record(client_id, attempt, mint_outcome(grant.as_ref().err()))
        .await
    {
        // The attempt itself is recorded: the window holds whatever its outcome says.
        tracing::warn!("cannot record how the generateAccessToken attempt ended: {e}");
    }
    Ok(grant?.into_token(client_id, SourceKind::Totp, cx.clock.now())?)
}

fn mint_outcome(e: Option<&ApiError>) -> MintOutcome {
    match e.map(ApiError::class) {
        None => MintOutcome::Minted,
        Some(ErrorClass::RateLimited) => MintOutcome::Throttled,
        Some(ErrorClass::CredentialRejected) => MintOutcome::Rejected,
        Some(_) => MintOutcome::Failed,
    }
}
