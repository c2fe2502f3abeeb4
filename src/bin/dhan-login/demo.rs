//! `demo` and `mock-server`: the whole program against the built-in stand-in of Dhan.

use std::time::Duration;

use anyhow::{Context as _, Result};
use dhan_login::mock::{Markup, MockOptions, MockServer, PageVariant, SecondFactor, Submission};
use dhan_login::{NoProgress, Paths, Profile, Progress, Request, SourceKind, TokenManager};

use crate::cli::{MarkupArg, MockArgs, PageArgs, SubmissionArg};
use crate::interrupt::interruptible;
use crate::output::StepPrinter;

fn page_variant(page: &PageArgs) -> PageVariant {
    if let Some(seed) = page.page_seed {
        return PageVariant::generated(seed);
    }
    PageVariant {
        markup: match page.markup {
            MarkupArg::CodeInput => Markup::CodeInput,
            MarkupArg::TelBoxes => Markup::TelBoxes,
            MarkupArg::PasswordPin => Markup::PasswordPin,
            MarkupArg::SingleField => Markup::SingleField,
            MarkupArg::MissingPinBoxes => Markup::MissingPinBoxes,
            MarkupArg::Ambiguous => Markup::Ambiguous,
            MarkupArg::Unrecognisable => Markup::Unrecognisable,
        },
        submission: match page.submission {
            SubmissionArg::Auto => Submission::Auto,
            SubmissionArg::Button => Submission::Button,
            SubmissionArg::Random => Submission::Random,
            SubmissionArg::Deferred => Submission::Deferred,
            SubmissionArg::OnKey => Submission::OnKey,
            SubmissionArg::BusyButton => Submission::BusyButton,
        },
        totp_screen: !page.skip_totp,
        spa: !page.server_rendered,
        second_factor: if page.sms_otp {
            SecondFactor::SmsOtp
        } else {
            SecondFactor::Totp
        },
        proceed_ignored_once: page.proceed_ignored_once,
        tracker_iframe: !page.no_tracker,
        slow_focus: false,
        keys_ignored: false,
        seed: None,
    }
}

pub async fn mock_server(args: MockArgs) -> Result<u8> {
    let opts = MockOptions {
        port: args.port,
        accounts: args.accounts,
        consent_cap: args.consent_cap,
        token_lifetime: Duration::from_secs(args.token_lifetime_secs.max(1)),
        page_variant: page_variant(&args.page),
        mint_interval: Duration::from_secs(args.mint_interval_secs),
        ..MockOptions::default()
    };
    let server = MockServer::start(opts)
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{}", args.port))?;
    server.set_totp_reuse_allowed(args.allow_totp_reuse);
    // The first line is the contract for other programs: one JSON object.
    println!("{}", server.describe_json());
    eprintln!(
        "stand-in of Dhan listening: auth {} api {} (Ctrl-C to stop)",
        server.auth_base_url(),
        server.api_base_url()
    );
    let _ = interruptible(std::future::pending::<()>()).await;
    server.shutdown().await;
    Ok(0)
}

pub async fn demo(via_totp: bool, page: &PageArgs, quiet: bool) -> Result<u8> {
    let started = std::time::Instant::now();
    let server = MockServer::start(MockOptions {
        page_variant: page_variant(page),
        ..MockOptions::default()
    })
    .await
    .context("cannot start the local stand-in of Dhan")?;
    let state = tempfile::Builder::new()
        .prefix("dhan-login-demo-")
        .tempdir()
        .context("cannot create a temporary state folder")?;
    let a = server.account().clone();
    let auth = server.auth_base_url().to_string();
    let api = server.api_base_url().to_string();
    let state_dir = state.path().to_string_lossy().into_owned();
    // The demo account stands in for every DHAN_* variable; only the browser location
    // comes from the real environment.
    let env = |k: &str| -> Option<String> {
        Some(match k {
            "DHAN_CLIENT_ID" => a.client_id.clone(),
            "DHAN_MOBILE" => a.mobile.clone(),
            "DHAN_PIN" => a.pin.clone(),
            "DHAN_TOTP_SECRET" => a.totp_secret.clone(),
            "DHAN_API_KEY" => a.api_key.clone(),
            "DHAN_API_SECRET" => a.api_secret.clone(),
            "DHAN_REDIRECT_URL" => a.redirect_url.clone(),
            "DHAN_AUTH_BASE_URL" => auth.clone(),
            "DHAN_API_BASE_URL" => api.clone(),
            "DHAN_LOGIN_STATE_DIR" => state_dir.clone(),
            "DHAN_LOGIN_CONFIG" => state
                .path()
                .join("none.toml")
                .to_string_lossy()
                .into_owned(),
            "DHAN_LOGIN_CHROME" => std::env::var(k).ok()?,
            _ => return None,
        })
    };
    let mut paths = Paths::from_env(&env)?;
    paths.config_explicit = false;
    let profile = Profile::load("demo", &paths, &env)?;
    let manager = TokenManager::new(profile);

    let via = if via_totp || !cfg!(feature = "browser") {
        SourceKind::Totp
    } else {
        SourceKind::Browser
    };
    let progress: Box<dyn Progress> = if quiet {
        Box::new(NoProgress)
    } else {
        Box::new(StepPrinter::new())
    };
    if !quiet {
        eprintln!(
            "dhan-login demo: {via} login against a local stand-in of Dhan at {}",
            server.auth_base_url()
        );
    }
    let req = Request {
        force: true,
        via: Some(via),
        ..Request::default()
    };
    let got = interruptible(manager.token(&req, progress.as_ref())).await??;
    let t = &got.token;
    let left = t.expires_at - chrono::Utc::now();
    println!("access token: {}", t.access_token.secret());
    println!(
        "client {} · kind {} · source {} · expires {} (in {} h {} min) · total {} ms",
        t.client_id,
        t.kind,
        t.source,
        t.expires_at.to_rfc3339(),
        left.num_hours(),
        left.num_minutes() % 60,
        started.elapsed().as_millis()
    );
    server.shutdown().await;
    Ok(0)
}
