//! The daemon's scheduler against stand-ins issuing tokens that live a few seconds, so
//! renewals, retries, holds and warnings happen while the test watches: what it refreshes
//! and when, what it stops retrying, and what it tells the webhook. Each test has its own
//! stand-ins, sandbox and daemon, so they run in parallel.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::cli::printed_token;
use common::serve::{
    Daemon, Login, WRONG_PIN, cli, configured, eventually, handoff_files, import, key_of, profile,
    serve_table, short_lived,
};
use common::{Sandbox, ist_time_of_day, run};
use dhan_login::ErrorClass;
use dhan_login::mock::{Endpoint, Fault, MockOptions, MockServer, TokenKind};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread")]
async fn two_profiles_are_renewed_before_expiry_without_a_login() {
    let (a, b) = (
        MockServer::start(short_lived(6)).await.unwrap(),
        MockServer::start(short_lived(6)).await.unwrap(),
    );
    let sandbox = configured(
        &(serve_table(3.0) + &profile("a", &a, Login::Totp) + &profile("b", &b, Login::Totp)),
    );
    // SELF tokens, as made on Dhan Web: RenewToken extends them, no login needed.
    import(
        &sandbox,
        "a",
        &a.issue_token(TokenKind::SelfWeb, Duration::from_secs(6)),
    )
    .await;
    import(
        &sandbox,
        "b",
        &b.issue_token(TokenKind::SelfWeb, Duration::from_secs(6)),
    )
    .await;

    let d = Daemon::start(cli(&sandbox), &["a", "b"]).await;
    let watched = Instant::now();
    let mut unhealthy = Vec::new();
    while watched.elapsed() < Duration::from_secs(9) {
        let code = d.health().await;
        if code != 200 {
            unhealthy.push((watched.elapsed(), code));
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let log = d.log();
    assert!(unhealthy.is_empty(), "a token lapsed: {unhealthy:?}\n{log}");
    for (name, server) in [("a", &a), ("b", &b)] {
        assert!(
            server.calls(Endpoint::RenewToken) >= 2,
            "{name}: renewed {} times in 9 s of 6 s tokens\n{log}",
            server.calls(Endpoint::RenewToken)
        );
        assert_eq!(server.calls(Endpoint::GenerateAccessToken), 0, "{name}");
        assert_eq!(
            server.logins(),
            0,
            "{name}: a SELF token is renewed, never re-minted"
        );
        let p = d.profile(name).await;
        assert_eq!(p["failures"], serde_json::json!({}), "{name}: {p}");
        assert_eq!(p["token"]["kind"], "SELF", "{p}");
        assert_eq!(p["token"]["source"], "renew", "{p}");
        let token = std::fs::read_to_string(handoff_files(&sandbox, name).0).unwrap();
        assert!(
            server.is_live(&token),
            "{name}: the handed-off token is live"
        );
    }
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_reuses_the_stored_token_without_logging_in() {
    let server = MockServer::start(MockOptions::default()).await.unwrap();
    let sandbox = configured(&(serve_table(3600.0) + &profile("main", &server, Login::Totp)));
    let d = Daemon::with_tokens(&sandbox, &["main"]).await;
    assert_eq!(server.logins(), 1);
    d.stop().await;

    let again = Daemon::start(cli(&sandbox), &["main"]).await;
    assert_eq!(again.health().await, 200, "{}", again.log());
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(server.logins(), 1, "no login after the restart");
    assert_eq!(server.calls(Endpoint::GenerateAccessToken), 1);
    assert_eq!(server.calls(Endpoint::RenewToken), 0);
    let p = again.profile("main").await;
    assert_eq!(p["state"], "ok", "{p}");
    assert_eq!(p["attempts"], 0, "{p}");
    again.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_transient_failure_is_retried_and_recovers() {
    let server = MockServer::start(short_lived(6)).await.unwrap();
    let sandbox = configured(&(serve_table(3.0) + &profile("p", &server, Login::RenewOnly)));
    let first = server.issue_token(TokenKind::SelfWeb, Duration::from_secs(6));
    import(&sandbox, "p", &first).await;
    server.set_fault_times(Endpoint::RenewToken, Fault::Status(503), 2);

    let d = Daemon::start(cli(&sandbox), &["p"]).await;
    eventually(
        Duration::from_secs(8),
        "a renewal after two 503s",
        || async { d.profile("p").await["last_success_at"].is_string() },
    )
    .await;
    assert_eq!(server.calls(Endpoint::RenewToken), 3, "{}", d.log());
    let p = d.profile("p").await;
    assert_eq!(p["failures"]["transient"], 2, "{p}");
    assert_eq!(p["obtained"]["renew"], 1, "{p}");
    assert_eq!(p["state"], "ok", "{p}");
    assert_eq!(d.health().await, 200);
    let token = std::fs::read_to_string(handoff_files(&sandbox, "p").0).unwrap();
    assert_ne!(token, first);
    assert!(server.is_live(&token));
    let metrics = d.get("/metrics", None).await.1;
    assert!(
        metrics.contains("dhan_login_refresh_failures_total{profile=\"p\",class=\"transient\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("dhan_login_logins_total{profile=\"p\",source=\"renew\"} 1"),
        "{metrics}"
    );
}

/// `token` of profile `p` asks the daemon, which holds it: the refusal's exit code.
async fn refused_through(d: &Daemon, sandbox: &Sandbox) {
    let mut token = cli(sandbox);
    token
        .args(["--profile", "p", "token"])
        .env("DHAN_LOGIN_SERVE_LISTEN", &d.addr);
    run(token, None)
        .await
        .assert_class(ErrorClass::CredentialRejected);
}

/// Waits until the daemon holds `name` after Dhan rejected its PIN.
async fn held(d: &Daemon, name: &str) -> Value {
    eventually(Duration::from_secs(40), "the profile held", || async {
        d.profile(name).await["state"] == "held"
    })
    .await;
    d.profile(name).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rejected_pin_stops_retries_shows_in_health_and_a_fixed_config_recovers() {
    let server = MockServer::start(MockOptions::default()).await.unwrap();
    let config = |login| serve_table(3600.0) + &profile("p", &server, login);
    let sandbox = configured(&config(Login::WrongPin));
    let d = Daemon::start(cli(&sandbox), &["p"]).await;

    let p = held(&d, "p").await;
    assert_eq!(p["held"]["class"], "credential_rejected", "{p}");
    assert_eq!(p["last_error"]["class"], "credential_rejected", "{p}");
    assert_eq!(d.health().await, 503);
    let health = d.json("/healthz").await;
    assert_eq!(health["profiles"]["p"]["state"], "held", "{health}");
    // With 0.2 s retries, two seconds would be ten attempts if the hold did not hold.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        server.calls(Endpoint::GenerateAccessToken),
        1,
        "{}",
        d.log()
    );
    assert_eq!(d.profile("p").await["attempts"], 1);

    // A client asking the daemon gets the refusal's exit code, and no login of its own.
    refused_through(&d, &sandbox).await;
    assert_eq!(server.calls(Endpoint::GenerateAccessToken), 1);

    sandbox.write_config(&config(Login::Totp));
    eventually(
        Duration::from_secs(5),
        "the hold lifted by the new PIN",
        || async { d.profile("p").await["state"] != "held" },
    )
    .await;
    // The next login waits for a TOTP step the rejected attempt did not use.
    eventually(
        Duration::from_secs(40),
        "a token with the fixed PIN",
        || async { d.health().await == 200 },
    )
    .await;
    assert_eq!(server.logins(), 1);
    assert_eq!(d.profile("p").await["held"], Value::Null);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lockout_left_by_a_cli_login_holds_the_daemon_until_unlock() {
    let server = MockServer::start(MockOptions::default()).await.unwrap();
    let sandbox = configured(&(serve_table(3600.0) + &profile("p", &server, Login::WrongPin)));
    let mut login = cli(&sandbox);
    login.args(["--profile", "p", "token"]);
    run(login, None)
        .await
        .assert_class(ErrorClass::CredentialRejected);
    assert_eq!(server.calls(Endpoint::GenerateAccessToken), 1);

    let d = Daemon::start(cli(&sandbox), &["p"]).await;
    let p = held(&d, "p").await;
    assert_eq!(
        p["attempts"], 0,
        "the daemon never tries rejected credentials: {p}"
    );
    assert_eq!(d.health().await, 503);
    refused_through(&d, &sandbox).await;
    assert_eq!(server.calls(Endpoint::GenerateAccessToken), 1);

    let mut unlock = cli(&sandbox);
    unlock.args(["--profile", "p", "unlock"]);
    run(unlock, None).await.assert_ok();
    eventually(
        Duration::from_secs(5),
        "an attempt after unlock",
        || async { d.profile("p").await["attempts"] == 1 },
    )
    .await;
}

/// Each request's path and body.
type Seen = Arc<Mutex<Vec<(String, String)>>>;

/// A webhook receiver on loopback keeping every request.
async fn receiver() -> (String, Seen) {
    use axum::extract::State;
    let seen: Seen = Arc::default();
    let app = axum::Router::new()
        .fallback(
            |State(seen): State<Seen>, uri: axum::http::Uri, body: String| async move {
                seen.lock().unwrap().push((uri.to_string(), body));
                "{\"ok\":true}"
            },
        )
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), seen)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_webhook_gets_fatal_and_expiring_events_without_secrets() {
    let (base, seen) = receiver().await;
    let bot_token = "123456:SECRET-BOT-TOKEN";
    let webhook = format!("{base}/bot{bot_token}/sendMessage?chat_id=42");
    let bad = MockServer::start(MockOptions::default()).await.unwrap();
    let fading = MockServer::start(short_lived(8)).await.unwrap();
    let sandbox = Sandbox::new();
    sandbox.write_config(&format!(
        "{}[notify]\nwebhook = \"{webhook}\"\nwarn_before_minutes = 0.1\n{}{}",
        serve_table(6.0),
        profile("bad", &bad, Login::WrongPin),
        profile("fading", &fading, Login::RenewOnly)
    ));
    let self_token = fading.issue_token(TokenKind::SelfWeb, Duration::from_secs(8));
    import(&sandbox, "fading", &self_token).await;
    fading.set_fault(Endpoint::RenewToken, Fault::Status(503));

    let d = Daemon::start(cli(&sandbox), &["bad", "fading"]).await;
    let events = || -> Vec<Value> {
        seen.lock()
            .unwrap()
            .iter()
            .map(|(_, body)| serde_json::from_str(body).expect("an event is JSON"))
            .collect()
    };
    let has = |event: &str, profile: &str| {
        events()
            .iter()
            .any(|e| e["event"] == event && e["profile"] == profile)
    };
    eventually(Duration::from_secs(40), "both events", || async {
        has("fatal", "bad") && has("expiring", "fading")
    })
    .await;

    let all = events();
    let fatal = all.iter().find(|e| e["event"] == "fatal").unwrap();
    assert_eq!(fatal["class"], "credential_rejected", "{fatal}");
    assert_eq!(
        fatal["next_retry"],
        Value::Null,
        "only a person unblocks it: {fatal}"
    );
    assert!(fatal["text"].as_str().unwrap().contains("`bad`"), "{fatal}");
    let expiring = all.iter().find(|e| e["event"] == "expiring").unwrap();
    assert_eq!(expiring["class"], "transient", "{expiring}");
    assert!(expiring["expires_at"].is_string(), "{expiring}");
    assert!(
        expiring["text"].as_str().unwrap().contains("expires"),
        "{expiring}"
    );
    assert_eq!(
        all.iter().filter(|e| e["event"] == "expiring").count(),
        1,
        "one warning per token: {all:?}"
    );
    for (path, _) in seen.lock().unwrap().iter() {
        assert!(
            path.contains("chat_id=42"),
            "Telegram's chat id stays in the URL: {path}"
        );
    }

    let a = bad.account();
    let mut secrets = vec![
        WRONG_PIN.to_owned(),
        a.pin.clone(),
        a.totp_secret.clone(),
        a.api_secret.clone(),
        a.mobile.clone(),
        self_token.clone(),
        key_of(&sandbox).trim_start_matches("Bearer ").to_owned(),
        bot_token.to_owned(),
    ];
    for name in ["bad", "fading"] {
        let state = std::fs::read_to_string(sandbox.token_file(name)).unwrap_or_default();
        let state: Value = serde_json::from_str(&state).unwrap_or_default();
        if let Some(t) = state["token"]["access_token"].as_str() {
            secrets.push(t.to_owned());
        }
    }
    for (_, body) in seen.lock().unwrap().iter() {
        for s in &secrets {
            assert!(
                !body.contains(s.as_str()),
                "an event holds a secret: {body}"
            );
        }
    }
    assert!(
        !d.log().contains("SECRET-BOT-TOKEN"),
        "the log names the webhook's host only"
    );
}

/// Under `login_at` the daemon keeps a live token until that time whatever
/// `refresh_ahead` says, replaces it then, once, and says when the next daily login is
/// due; a CLI reading the same state gets the new token without a login of its own.
#[tokio::test(flavor = "multi_thread")]
async fn serve_wakes_at_login_at_replaces_the_token_once_and_says_when_the_next_is_due() {
    let server = MockServer::start(MockOptions::default()).await.unwrap();
    let sandbox = configured(&(serve_table(60.0) + &profile("p", &server, Login::Totp)));
    let old = server.issue_token(TokenKind::App, Duration::from_secs(24 * 3600));
    import(&sandbox, "p", &old).await;
    // Whole seconds, as login_at holds them.
    let at =
        chrono::SubsecRound::trunc_subsecs(chrono::Utc::now() + chrono::Duration::seconds(8), 0);
    let daily = || {
        let mut cmd = cli(&sandbox);
        // With the 125 s mint window of a real run, for /v1/profiles to show it closed.
        cmd.env("DHAN_LOGIN_AT", ist_time_of_day(at))
            .env("DHAN_LOGIN_MINT_INTERVAL_SECS", "125");
        cmd
    };
    // Dhan's profile endpoint down all along: not a reason to log in.
    server.set_fault(Endpoint::Profile, Fault::Status(503));
    let d = Daemon::start(daily(), &["p"]).await;
    let key = key_of(&sandbox);
    assert_eq!(
        d.served_token("p", &key, Duration::from_secs(10)).await,
        old
    );
    let seen_at = |v: &Value, field: &str| -> chrono::DateTime<chrono::Utc> {
        v[field]
            .as_str()
            .unwrap_or_else(|| panic!("no {field} in {v}"))
            .parse()
            .unwrap()
    };
    // Once the scheduler has looked (it starts while the stored token is served).
    eventually(Duration::from_secs(10), "a planned wake-up", || async {
        d.profile("p").await["next_at"].is_string()
    })
    .await;
    let p = d.profile("p").await;
    let off_by = |t: chrono::DateTime<chrono::Utc>, want: chrono::DateTime<chrono::Utc>| {
        (t - want).num_milliseconds().abs()
    };
    assert!(off_by(seen_at(&p, "next_daily_login_at"), at) < 1000, "{p}");
    assert!(
        off_by(seen_at(&p, "next_at"), at) < 1000,
        "wakes at login_at: {p}"
    );

    eventually(Duration::from_secs(30), "the daily login", || async {
        d.token("p", &key).await.is_ok_and(|t| t != old)
    })
    .await;
    assert!(chrono::Utc::now() >= at, "replaced before login_at");
    let new = d.served_token("p", &key, Duration::from_secs(5)).await;
    assert!(!server.is_live(&old), "one live token per client");
    let mut consumer = daily();
    consumer.args(["--profile", "p", "token"]);
    assert_eq!(printed_token(&run(consumer, None).await), new);
    // No rotation after it: the next is due tomorrow.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(server.logins(), 1, "{}", d.log());
    assert_eq!(server.calls(Endpoint::RenewToken), 0, "an APP token");
    assert_eq!(d.served_token("p", &key, Duration::from_secs(5)).await, new);
    let p = d.profile("p").await;
    assert!(
        off_by(
            seen_at(&p, "next_daily_login_at"),
            at + chrono::Duration::days(1)
        ) < 1000,
        "{p}"
    );
    assert_eq!(p["logins"], "auto", "{p}");
    // The login just made closes the mint window for 125 s, to the second in IST too.
    let closed = seen_at(&p["mint_window"], "closed_until");
    assert!(
        closed >= at + chrono::Duration::seconds(124)
            && closed <= chrono::Utc::now() + chrono::Duration::seconds(125),
        "{p}"
    );
    assert!(
        p["mint_window"]["closed_until_ist"]
            .as_str()
            .is_some_and(|s| s.ends_with(" IST")),
        "{p}"
    );
    d.stop().await;
}

/// `serve` on a host that never logs in holds while no live token is stored: it says so
/// in `/healthz`, `/v1/profiles` and `status`, answers a token request at once with the
/// logins-off class, counts and logs no failure and sends nothing to Dhan; a token
/// another host stores is served as soon as it is there.
#[tokio::test(flavor = "multi_thread")]
async fn serve_on_a_host_that_never_logs_in_waits_for_a_token_from_another_host() {
    let server = MockServer::start(MockOptions::default()).await.unwrap();
    let sandbox = configured(
        &(serve_table(60.0) + &profile("p", &server, Login::Totp) + "login = \"never\"\n"),
    );
    let d = Daemon::start(cli(&sandbox), &["p"]).await;
    let key = key_of(&sandbox);
    eventually(
        Duration::from_secs(10),
        "the profile awaiting a token",
        || async { d.profile("p").await["state"] == "awaiting" },
    )
    .await;
    let (status, body) = d.get("/healthz", None).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("waiting for a token from another host"),
        "{body}"
    );
    let asked = Instant::now();
    let (status, body) = d.token("p", &key).await.unwrap_err();
    assert_eq!(status, 503, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["class"], "logins_off", "{v}");
    assert!(
        asked.elapsed() < Duration::from_secs(20),
        "a token request waited {:?} for a login that never comes",
        asked.elapsed()
    );
    let mut status = cli(&sandbox);
    status.args(["--profile", "p", "status"]);
    let r = run(status, None).await;
    assert!(
        r.stdout.contains("waiting for one from another host"),
        "{r}"
    );
    // Holding is not failing.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let p = d.profile("p").await;
    assert_eq!(p["attempts"], 0, "{p}");
    assert_eq!(p["failures"], serde_json::json!({}), "{p}");
    assert!(p["last_error"].is_null(), "{p}");
    for ep in [
        Endpoint::GenerateAccessToken,
        Endpoint::GenerateConsent,
        Endpoint::RenewToken,
    ] {
        assert_eq!(server.calls(ep), 0, "{ep:?}");
    }
    assert!(!d.log().contains("refresh failed"), "{}", d.log());

    // Another host's token lands in the store.
    let live = server.issue_token(TokenKind::App, Duration::from_secs(24 * 3600));
    import(&sandbox, "p", &live).await;
    assert_eq!(
        d.served_token("p", &key, Duration::from_secs(10)).await,
        live
    );
    assert_eq!(d.health().await, 200);
    assert_eq!(server.logins(), 0);
    d.stop().await;
}
