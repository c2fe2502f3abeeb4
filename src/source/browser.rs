//! The consent flow with headless Chromium filling the login page.

use secrecy::ExposeSecret;

use super::{BoxFuture, Context, Outcome, TokenSource, outcome_of};
use crate::browser::{ConsentLogin, capture_token_id};
use crate::config::Profile;
use crate::error::Error;
use crate::redact::Scrubber;
use crate::token::{SourceKind, Token};

pub struct BrowserSource;

impl TokenSource for BrowserSource {
    fn kind(&self) -> SourceKind {
        SourceKind::Browser
    }

    fn obtain<'a>(&'a self, cx: &'a Context<'a>) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let p = cx.profile;
            let configured = p.client_id.is_some()
                && p.api_key.is_some()
                && p.api_secret.is_some()
                && p.mobile.is_some()
                && p.pin.is_some()
                && p.totp_secret.is_some();
            if !configured {
                return Outcome::NotApplicable(
                    "needs client_id, api_key, api_secret, mobile, pin and totp_secret".into(),
                );
            }
            match login(cx).await {
                Ok(token) => Outcome::Obtained(token),
                Err(e) => outcome_of(e),
            }
        })
    }
}

async fn login(cx: &Context<'_>) -> Result<Token, Error> {
    let p = cx.profile;
    let client_id = p.require_client_id()?;
    let api_key = Profile::require(&p.api_key, "api_key", "DHAN_API_KEY")?;
    let api_secret = Profile::require(&p.api_secret, "api_secret", "DHAN_API_SECRET")?;
    let mobile = Profile::require(&p.mobile, "mobile", "DHAN_MOBILE")?;
    let pin = Profile::require(&p.pin, "pin", "DHAN_PIN")?;
    let totp = cx.totp().await?;

    let started = std::time::Instant::now();
    cx.progress.step_started("generate consent");
    let consent = cx
        .api
        .generate_consent(client_id, api_key, api_secret)
        .await;
    cx.progress
        .step_finished("generate consent", started.elapsed());
    let consent = consent?;

    let scrubber = Scrubber::new()
        .with(mobile.expose_secret())
        .with(pin.expose_secret())
        .with(api_secret.expose_secret())
        .with(&consent);
    let token_id = capture_token_id(
        &p.browser,
        ConsentLogin {
            consent_url: cx.api.consent_login_url(&consent),
            redirect_url: p.redirect_url.as_ref(),
            mobile,
            pin,
            totp,
            scrubber,
            progress: cx.progress,
            record_dir: cx.record_dir.as_deref(),
        },
    )
    .await?;

    let started = std::time::Instant::now();
    cx.progress.step_started("consume consent");
    let grant = cx.api.consume_consent(&token_id, api_key, api_secret).await;
    cx.progress
        .step_finished("consume consent", started.elapsed());
    Ok(grant?.into_token(client_id, SourceKind::Browser, cx.clock.now())?)
}
