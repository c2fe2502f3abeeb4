//! The chain's decisions and the manager's decision table, against the stand-in.

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use chrono::Utc;
use dhan_login::mock::{Endpoint, Fault, MockOptions, MockServer, TokenKind as MockKind};
use dhan_login::{
    Error, ErrorClass, NoProgress, Paths, Profile, Request, SourceKind, Token, TokenManager,
    api::DhanApi,
    error::AttemptResult,
    source::{Context, Outcome, TokenSource, run_chain},
    totp::SystemClock,
};

type Env = Vec<(&'static str, String)>;

fn env_of(s: &MockServer, state: &std::path::Path) -> Env {
    let a = s.account();
    vec![
        ("DHAN_CLIENT_ID", a.client_id.clone()),
        ("DHAN_PIN", a.pin.clone()),
        ("DHAN_TOTP_SECRET", a.totp_secret.clone()),
        ("DHAN_AUTH_BASE_URL", s.auth_base_url().to_string()),
        ("DHAN_API_BASE_URL", s.api_base_url().to_string()),
        ("DHAN_LOGIN_STATE_DIR", state.to_string_lossy().into_owned()),
        (
            "DHAN_LOGIN_CONFIG",
            state.join("absent.toml").to_string_lossy().into_owned(),
        ),
    ]
}

fn profile(env: &Env) -> Profile {
    let lookup = |k: &str| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
    let mut paths = Paths::from_env(&lookup).unwrap();
    paths.config_explicit = false;
    Profile::load("default", &paths, &lookup).unwrap()
}

fn without(mut env: Env, name: &str) -> Env {
    env.retain(|(n, _)| *n != name);
    env
}

/// A source that answers what it is told and counts its calls.
struct Scripted {
    kind: SourceKind,
    answer: fn() -> Outcome,
    calls: Arc<AtomicU32>,
}

impl TokenSource for Scripted {
    fn kind(&self) -> SourceKind {
        self.kind
    }
    fn obtain<'a>(&'a self, _cx: &'a Context<'a>) -> dhan_login::source::BoxFuture<'a, Outcome> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let out = (self.answer)();
        Box::pin(async move { out })
    }
}

fn fake_token() -> Token {
    Token::from_grant(
        "opaque.fake.token",
        Some("1"),
        Some("2030-01-01T00:00:00"),
        SourceKind::Totp,
        Utc::now(),
    )
    .unwrap()
}

fn refused(class: ErrorClass) -> Error {
    Error::Refused {
        class,
        message: format!("scripted {class}"),
    }
}

async fn run(
    script: Vec<(SourceKind, fn() -> Outcome)>,
) -> (Result<Token, dhan_login::error::ChainFailure>, Vec<u32>) {
    let dir = tempfile::tempdir().unwrap();
    let env: Env = vec![(
        "DHAN_LOGIN_STATE_DIR",
        dir.path().to_string_lossy().into_owned(),
    )];
    let p = profile(&env);
    let api = DhanApi::new(p.auth_base_url.clone(), p.api_base_url.clone());
    let counters: Vec<Arc<AtomicU32>> =
        script.iter().map(|_| Arc::new(AtomicU32::new(0))).collect();
    let sources: Vec<Box<dyn TokenSource>> = script
        .iter()
        .zip(&counters)
        .map(|((kind, answer), calls)| {
            Box::new(Scripted {
                kind: *kind,
                answer: *answer,
                calls: calls.clone(),
            }) as Box<dyn TokenSource>
        })
        .collect();
    let cx = Context::new(&p, &api, &NoProgress, Arc::new(SystemClock));
    let result = run_chain(&sources, &cx).await.map(|(t, _)| t);
    (
        result,
        counters.iter().map(|c| c.load(Ordering::SeqCst)).collect(),
    )
}

#[tokio::test]
async fn not_applicable_is_skipped_and_failed_falls_back() {
    let (result, calls) = run(vec![
        (SourceKind::Renew, || {
            Outcome::NotApplicable("no token".into())
        }),
        (SourceKind::Totp, || {
            Outcome::Failed(refused(ErrorClass::Transient))
        }),
        (SourceKind::Browser, || Outcome::Obtained(fake_token())),
        (SourceKind::Manual, || Outcome::Obtained(fake_token())),
    ])
    .await;
    assert!(result.is_ok());
    assert_eq!(calls, vec![1, 1, 1, 0]);
}

#[tokio::test]
async fn fatal_stops_the_chain() {
    let (result, calls) = run(vec![
        (SourceKind::Totp, || {
            Outcome::Fatal(refused(ErrorClass::CredentialRejected))
        }),
        (SourceKind::Browser, || Outcome::Obtained(fake_token())),
    ])
    .await;
    let failure = result.err().unwrap();
    assert_eq!(calls, vec![1, 0]);
    assert_eq!(failure.class(), ErrorClass::CredentialRejected);
    assert!(matches!(
        failure.attempts[0].result,
        AttemptResult::Fatal(_)
    ));
}

#[tokio::test]
async fn all_failed_lists_every_attempt() {
    let (result, _) = run(vec![
        (SourceKind::Renew, || {
            Outcome::NotApplicable("no stored token".into())
        }),
        (SourceKind::Totp, || {
            Outcome::Failed(refused(ErrorClass::Transient))
        }),
        (SourceKind::Browser, || {
            Outcome::Failed(refused(ErrorClass::Other))
        }),
    ])
    .await;
    let failure = result.err().unwrap();
    let text = failure.to_string();
    for want in [
        "renew: skipped (no stored token)",
        "totp: failed: scripted transient",
        "browser: failed: scripted other",
    ] {
        assert!(text.contains(want), "{want} missing from:\n{text}");
    }
    assert_eq!(failure.attempts.len(), 3);
}

#[tokio::test]
async fn a_cached_token_is_returned_without_any_call() {
    let s = MockServer::start(MockOptions::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let m = TokenManager::new(profile(&env_of(&s, dir.path())));
    let first = m.token(&Request::default(), &NoProgress).await.unwrap();
    assert!(!first.cached);
    assert_eq!(first.token.source, SourceKind::Totp);
    let second = m.token(&Request::default(), &NoProgress).await.unwrap();
    assert!(second.cached);
    assert_eq!(second.token, first.token);
    assert_eq!(s.logins(), 1);
    assert_eq!(s.calls(Endpoint::GenerateAccessToken), 1);
}

#[tokio::test]
async fn a_token_inside_the_margin_is_renewed_not_re_minted() {
    let s = MockServer::start(MockOptions::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let m = TokenManager::new(profile(&env_of(&s, dir.path())));
    // 10 minutes left: inside the default 30 minute margin.
    let web = s.issue_token(MockKind::SelfWeb, Duration::from_secs(600));
    m.import(&web).await.unwrap();
    let got = m.token(&Request::default(), &NoProgress).await.unwrap();
    assert_eq!(got.token.source, SourceKind::Renew);
    assert_eq!(s.calls(Endpoint::RenewToken), 1);
    assert_eq!(s.calls(Endpoint::GenerateAccessToken), 0);
    assert!(!s.is_live(&web));
}

#[tokio::test]
async fn an_app_token_is_never_sent_to_renew_token_and_a_login_replaces_it() {
    let s = MockServer::start(MockOptions::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    // No TOTP secret: after renew, nothing else applies.
    let env = without(env_of(&s, dir.path()), "DHAN_TOTP_SECRET");
    let m = TokenManager::new(profile(&env));
    let app = s.issue_token(MockKind::App, Duration::from_secs(600));
    m.import(&app).await.unwrap();
    let err = m
        .token(&Request::default(), &NoProgress)
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("renew: skipped"), "{err}");
    assert!(err.to_string().contains("APP"), "{err}");
    assert_eq!(s.calls(Endpoint::RenewToken), 0, "decided from the JWT");

    // With TOTP configured the chain goes to it.
    let m = TokenManager::new(profile(&env_of(&s, dir.path())));
    let got = m.token(&Request::default(), &NoProgress).await.unwrap();
    assert_eq!(got.token.source, SourceKind::Totp);
    assert_eq!(s.calls(Endpoint::RenewToken), 0);
}

#[tokio::test]
async fn dh905_on_renew_marks_the_token_not_renewable_never_a_credential_verdict() {
    let s = MockServer::start(MockOptions::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let env = without(env_of(&s, dir.path()), "DHAN_TOTP_SECRET");
    let m = TokenManager::new(profile(&env));
    let web = s.issue_token(MockKind::SelfWeb, Duration::from_secs(600));
    m.import(&web).await.unwrap();
    // Dhan's answer for a token type it does not renew, as seen live in 2026.
    s.set_fault(
        Endpoint::RenewToken,
        Fault::Respond {
            status: 500,
            body: r#"{"errorType":"INVALID_REQUEST","errorCode":"DH-905","errorMessage":"Renewal of token not allowed for this token type"}"#.into(),
            content_type: "application/json".into(),
        },
    );
    let err = m
        .token(&Request::default(), &NoProgress)
        .await
        .err()
        .unwrap();
    assert_ne!(err.class(), ErrorClass::CredentialRejected, "{err}");
    assert_ne!(err.class(), ErrorClass::Transient, "{err}");
    let state = m.state().await.unwrap();
    assert!(!state.renewable);
    assert!(m.lockouts(&state).await.unwrap().is_empty(), "no lockout");
    let _ = m.token(&Request::default(), &NoProgress).await;
    assert_eq!(s.calls(Endpoint::RenewToken), 1, "not asked again");
}

#[tokio::test]
async fn a_wrong_pin_stops_the_chain_as_fatal() {
    let s = MockServer::start(MockOptions::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut env = without(env_of(&s, dir.path()), "DHAN_PIN");
    env.push(("DHAN_PIN", "000000".into()));
    let m = TokenManager::new(profile(&env));
    let err = m
        .token(&Request::default(), &NoProgress)
        .await
        .err()
        .unwrap();
    assert_eq!(err.class(), ErrorClass::CredentialRejected, "{err}");
    assert_eq!(s.calls(Endpoint::GenerateAccessToken), 1);
}

#[tokio::test]
async fn nothing_configured_says_so() {
    let s = MockServer::start(MockOptions::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let env = without(
        without(env_of(&s, dir.path()), "DHAN_PIN"),
        "DHAN_TOTP_SECRET",
    );
    let m = TokenManager::new(profile(&env));
    let err = m
        .token(&Request::default(), &NoProgress)
        .await
        .err()
        .unwrap();
    assert!(
        err.to_string()
            .starts_with("no way to obtain a token is configured"),
        "{err}"
    );
    assert_eq!(err.class(), ErrorClass::Config);
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_callers_in_one_process_share_one_login() {
    let s = MockServer::start(MockOptions::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let m = TokenManager::new(profile(&env_of(&s, dir.path())));
    let req = Request::default();
    let (a, b, c) = tokio::join!(
        m.token(&req, &NoProgress),
        m.token(&req, &NoProgress),
        m.token(&req, &NoProgress)
    );
    let (a, b, c) = (a.unwrap(), b.unwrap(), c.unwrap());
    assert_eq!(s.logins(), 1);
    assert_eq!(a.token, b.token);
    assert_eq!(b.token, c.token);
    assert_eq!(
        [a.cached, b.cached, c.cached]
            .iter()
            .filter(|x| !**x)
            .count(),
        1
    );
}

/// A clock standing still at one instant.
struct At(chrono::DateTime<Utc>);

impl dhan_login::Clock for At {
    fn now(&self) -> chrono::DateTime<Utc> {
        self.0
    }
}

#[tokio::test]
async fn the_builder_swaps_the_clock_and_debug_shows_no_secret() {
    let s = MockServer::start(MockOptions::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let m = TokenManager::new(profile(&env_of(&s, dir.path())));
    let token = m
        .token(&Request::default(), &NoProgress)
        .await
        .unwrap()
        .token;
    assert!(m.cached().await.unwrap().is_some());

    // The same store read by a manager whose clock stands past the token's expiry.
    let later = TokenManager::builder(profile(&env_of(&s, dir.path())))
        .clock(Arc::new(
            At(token.expires_at + chrono::Duration::minutes(1)),
        ))
        .lock_wait(Duration::from_millis(300))
        .build();
    assert!(
        later.cached().await.unwrap().is_none(),
        "an expired token was handed out"
    );

    let shown = format!(
        "{later:?} {:?}",
        TokenManager::builder(profile(&env_of(&s, dir.path())))
    );
    assert!(shown.contains("\"default\""), "{shown}");
    assert!(shown.contains("300ms"), "{shown}");
    let a = s.account();
    for secret in [a.pin.as_str(), &a.totp_secret, token.access_token.secret()] {
        assert!(!shown.contains(secret), "a secret in Debug: {shown}");
    }
}

#[tokio::test]
async fn a_profile_made_in_code_logs_in_and_its_errors_name_the_field() {
    let s = MockServer::start(MockOptions::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let a = s.account();
    let totp_file = dir.path().join("totp");
    std::fs::write(&totp_file, format!("{}\n", a.totp_secret)).unwrap();
    let profile = Profile::builder("default", dir.path())
        .client_id(a.client_id.clone())
        .pin(dhan_login::SecretRef::inline(a.pin.clone()))
        .totp_secret(dhan_login::SecretRef::file(&totp_file))
        .auth_base_url(s.auth_base_url())
        .api_base_url(s.api_base_url())
        .build()
        .unwrap();
    let got = TokenManager::new(profile)
        .token(&Request::default(), &NoProgress)
        .await
        .unwrap();
    assert_eq!(got.token.source, SourceKind::Totp);
    assert!(s.is_live(got.token.access_token.secret()));

    let broken = Profile::builder("other", dir.path())
        .pin(dhan_login::SecretRef::file(dir.path().join("absent")))
        .build()
        .unwrap();
    let e = broken
        .get(dhan_login::Secret::Pin)
        .unwrap()
        .get()
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("pin: cannot read pin_file"), "{e}");
    let e = Profile::builder("other", dir.path())
        .client_id("12ab")
        .consent_cap(26)
        .build()
        .unwrap_err()
        .to_string();
    assert!(e.contains("client_id") && e.contains("consent_cap"), "{e}");
}

/// A clock the test moves.
struct Moved(std::sync::Mutex<chrono::DateTime<Utc>>);

impl dhan_login::Clock for Moved {
    fn now(&self) -> chrono::DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

/// The manager on an injected clock under `login_at`: a live token is kept before that
/// time whatever the margin says, replaced once after it (a SELF token by RenewToken, no
/// login), and the new one kept until the next; a token Dhan refused is replaced at once.
#[tokio::test]
async fn the_manager_follows_login_at_on_its_clock() {
    let s = MockServer::start(MockOptions::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let t0 = Utc::now();
    let login_at = t0 + chrono::Duration::hours(1);
    let mut env = without(env_of(&s, dir.path()), "DHAN_TOTP_SECRET");
    env.push(("DHAN_LOGIN_AT", common::ist_time_of_day(login_at)));
    // A margin longer than the token's life: only login_at keeps it.
    env.push(("DHAN_LOGIN_MARGIN_MINUTES", "1440".into()));
    let clock = Arc::new(Moved(std::sync::Mutex::new(t0)));
    let m = TokenManager::builder(profile(&env))
        .clock(clock.clone())
        .build();
    let web = s.issue_token(MockKind::SelfWeb, Duration::from_secs(24 * 3600));
    m.import(&web).await.unwrap();
    let set = |at: chrono::DateTime<Utc>| *clock.0.lock().unwrap() = at;

    set(login_at - chrono::Duration::seconds(5));
    let got = m.token(&Request::default(), &NoProgress).await.unwrap();
    assert!(got.cached);
    assert_eq!(got.token.access_token.secret(), web);

    set(login_at + chrono::Duration::seconds(5));
    let got = m.token(&Request::default(), &NoProgress).await.unwrap();
    assert!(!got.cached);
    assert_eq!(got.token.source, SourceKind::Renew);
    assert_eq!(s.calls(Endpoint::RenewToken), 1);
    assert_eq!(s.logins(), 0);
    let renewed = got.token;

    set(login_at + chrono::Duration::hours(20));
    let got = m.token(&Request::default(), &NoProgress).await.unwrap();
    assert!(got.cached, "kept until the next login_at");
    assert_eq!(got.token, renewed);
    assert_eq!(s.calls(Endpoint::RenewToken), 1);

    // Refused by Dhan between two login times: replaced at once.
    let refused = Request {
        refused: Some(renewed.clone()),
        ..Request::default()
    };
    let got = m.token(&refused, &NoProgress).await.unwrap();
    assert!(!got.cached);
    assert_ne!(got.token, renewed);
    assert_eq!(s.calls(Endpoint::RenewToken), 2);
}

/// A browser profile answering an SMS/e-mail code screen (`otp_command`, no TOTP) is
/// a configured login path for the daemon's lockout hold as for the chain: with its API
/// key refused, the daemon holds it instead of trying a login that would be refused.
#[tokio::test]
async fn a_refused_browser_profile_without_totp_is_held_like_the_chain_refuses_it() {
    use dhan_login::{
        SecretRef,
        source::needs,
        store::{Lockout, ProfileState, StateBackend},
    };
    let dir = tempfile::tempdir().unwrap();
    let profile = Profile::builder("sms", dir.path())
        .client_id("1100000042")
        .mobile(SecretRef::inline("9999900042"))
        .pin(SecretRef::inline("135790"))
        .api_key(SecretRef::inline("key-1"))
        .api_secret(SecretRef::inline("secret-1"))
        .otp_command("echo 123456")
        .build()
        .unwrap();
    assert_eq!(needs(SourceKind::Browser, &profile), Ok(()));
    assert!(needs(SourceKind::Totp, &profile).is_err());
    let manager = TokenManager::new(profile);
    let state = ProfileState::default();
    assert_eq!(manager.lockout_hold(&state).await.unwrap(), None);

    let at = chrono::Utc::now();
    StateBackend::files(dir.path())
        .add_lockout(
            "sms",
            Lockout {
                secrets: vec!["api_key".into(), "api_secret".into()],
                fingerprint: String::new(),
                at,
                message: "manual: refused".into(),
            },
        )
        .await
        .unwrap();
    let (since, why) = manager
        .lockout_hold(&state)
        .await
        .unwrap()
        .expect("held: its only path would resend the refused API key");
    assert_eq!(since, at);
    assert!(why.contains("api_key, api_secret"), "{why}");
}
