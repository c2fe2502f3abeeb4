//! PIN + TOTP straight to generateAccessToken: no browser, one request.

use super::{BoxFuture, Context, Outcome, TokenSource, needs, outcome_of};
use crate::error::Error;
use crate::secret::Secret;
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
    let pin = cx.profile.require(Secret::Pin).await?;
    let totp = cx.totp().await?;
    cx.progress.step_started("totp login");
    let started = std::time::Instant::now();
    let code = totp.next_code().await;
    let grant = cx.api.generate_access_token(client_id, pin, &code).await;
    cx.progress.step_finished("totp login", started.elapsed());
    Ok(grant?.into_token(client_id, SourceKind::Totp, cx.clock.now())?)
}
