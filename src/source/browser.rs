//! The consent flow with headless Chromium filling the login page.

use secrecy::ExposeSecret;

use super::context::{BoxFuture, Context, Outcome, TokenSource, outcome_of};
use super::exchange::{self, App};
use super::otp::{CommandOtp, ConsoleOtp};
use super::{consent, needs};
use crate::browser::{
    BrowserError, Captured, ConsentLogin, OtpSource, PageReport, StartedBrowser,
    capture_token_id_in, inspect_consent_page, start_browser,
};
use crate::error::Error;
use crate::redact::Scrubber;
use crate::secret::Secret;
use crate::token::{SourceKind, Token};

pub(super) struct BrowserSource;

impl TokenSource for BrowserSource {
    fn kind(&self) -> SourceKind {
        SourceKind::Browser
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

async fn login(cx: &Context<'_>) -> Result<Token, Error> {
    cx.preflight().await?;
    let p = cx.profile;
    let app = App::of(p).await?;
    let App {
        client_id,
        api_key,
        api_secret,
    } = app;
    if let Some(done) = exchange::kept(cx, SourceKind::Browser, &app).await {
        return done;
    }

    // Chromium starts while Dhan answers generate-consent (and the server-time probe for
    // the TOTP runs): nothing waits for what it does not need. Should either request
    // fail, dropping the started browser kills it.
    let (browser, consent, totp) = tokio::join!(
        start_browser(&p.browser),
        consent::obtain(cx, client_id, api_key, api_secret),
        async {
            // An account without TOTP (otp_command) has no generator to prepare.
            match p.get(Secret::TotpSecret) {
                Some(_) => cx.totp().await.map(Some),
                None => Ok(None),
            }
        },
    );
    let mut consent = consent?;
    totp?;
    let token_id = match fill_page(cx, &consent.id, Some(browser)).await {
        // A reused consent may have expired meanwhile: that costs one fresh consent,
        // never a loop.
        Err(Error::Browser(BrowserError::ConsentExpired { .. })) if consent.reused => {
            tracing::info!("the pending consent has expired; generating a new one");
            consent::spent(cx, client_id, &consent.id).await;
            consent = consent::obtain(cx, client_id, api_key, api_secret).await?;
            fill_page(cx, &consent.id, None).await
        }
        other => other,
    };
    if matches!(
        &token_id,
        Ok(_) | Err(Error::Browser(BrowserError::ConsentExpired { .. }))
    ) {
        consent::spent(cx, client_id, &consent.id).await;
    }
    let Captured { token_id, end } = token_id?;

    // The tokenId is spent the moment Chromium is told to end, not after it has.
    let consume = exchange::exchange(cx, SourceKind::Browser, &app, token_id);
    let (token, ()) = tokio::join!(consume, end.gone(cx.progress));
    token
}

/// Logs in on the consent page, in `browser` if one was started ahead.
async fn fill_page(
    cx: &Context<'_>,
    consent_id: &str,
    browser: Option<StartedBrowser>,
) -> Result<Captured, Error> {
    let p = cx.profile;
    let mobile = p.require(Secret::Mobile).await?;
    let pin = p.require(Secret::Pin).await?;
    // Without a TOTP secret the page must not show a TOTP screen; if it does, the login
    // stops there with a configuration error.
    let totp = match p.get(Secret::TotpSecret) {
        Some(_) => Some(cx.totp().await?),
        None => None,
    };
    let command_otp = p.otp_command.clone().map(|command| CommandOtp { command });
    let console_otp = cx.console.map(ConsoleOtp);
    let otp: Option<&dyn OtpSource> = match (&command_otp, &console_otp) {
        (Some(c), _) => Some(c),
        (None, Some(c)) => Some(c),
        (None, None) => None,
    };
    let mut scrubber = Scrubber::new()
        .with(mobile.expose_secret())
        .with(pin.expose_secret())
        .with(consent_id);
    if let Some(s) = p.get(Secret::ApiSecret)
        && let Ok(secret) = s.load().await
    {
        scrubber.add(secret.expose_secret());
    }
    let browser = match browser {
        Some(b) => b,
        None => start_browser(&p.browser).await,
    };
    Ok(capture_token_id_in(
        browser,
        &p.browser,
        ConsentLogin {
            consent_url: cx.api.consent_login_url(consent_id),
            redirect_url: p.redirect_url.as_ref(),
            mobile,
            pin,
            totp,
            otp,
            scrubber,
            progress: cx.progress,
            record_dir: cx.record_dir.as_deref(),
        },
    )
    .await?)
}

/// What `dhan-login doctor` found: the API key works (a consent was had) and which
/// screen the consent page shows.
#[derive(Debug, Clone)]
pub struct Inspection {
    /// The consent was the pending one of an earlier attempt (none was spent).
    pub consent_reused: bool,
    /// Which screen the page showed and why, with artifacts when it was not the
    /// mobile screen.
    pub report: PageReport,
}

/// Checks the API key with generate-consent (reusing a pending consentAppId), opens the
/// consent page and types nothing: at most one consent, no credential sent. The consent
/// stays pending for the next login.
pub(crate) async fn inspect(cx: &Context<'_>) -> Result<Inspection, Error> {
    let p = cx.profile;
    let App {
        client_id,
        api_key,
        api_secret,
    } = App::of(p).await?;
    let consent = consent::obtain(cx, client_id, api_key, api_secret).await?;
    let scrubber = Scrubber::new()
        .with(&consent.id)
        .with(api_secret.expose_secret());
    let report = inspect_consent_page(
        &p.browser,
        cx.api.consent_login_url(&consent.id),
        scrubber,
        cx.progress,
    )
    .await?;
    if report.screen == "expired" {
        // Dhan says this consent is spent: the next login must not reuse it.
        consent::spent(cx, client_id, &consent.id).await;
    }
    Ok(Inspection {
        consent_reused: consent.reused,
        report,
    })
}
