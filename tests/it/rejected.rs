//! A consumer reports that Dhan refused its token (`token --rejected`, serve's
//! `POST /v1/profiles/{name}/token/rejected`): the token is checked with Dhan's `profile`
//! endpoint; a dead one (ended by a login elsewhere) is replaced, a live one comes back
//! unchanged. Beside a running daemon, `token --verify` and `--rejected` ask the daemon and
//! never log in themselves. `examples/token.rs`, through the library alone, decides as
//! `token --verify` does.

use std::time::Duration;

use dhan_login::mock::{Endpoint, MockOptions, MockServer};
use reqwest::StatusCode;
use serde_json::Value;

use common::serve::{Daemon, Login, configured, key_of, profile, serve_table};
use common::stand_in::{current_code, direct_login};
use common::{BIN, Run, Sandbox, Stand, run};

use crate::common;

/// Another program logs in with the same credentials: every earlier token dies.
async fn login_elsewhere(s: &MockServer) -> String {
    let r = direct_login(s, &s.account().pin.clone(), &current_code(s)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    body["accessToken"].as_str().unwrap().to_owned()
}

async fn reusable_stand() -> Stand {
    let stand = Stand::start_with(MockOptions::default()).await;
    // Three logins within a minute: the stand-in would refuse a TOTP step used twice.
    stand.server.set_totp_reuse_allowed(true);
    stand
}

#[tokio::test(flavor = "multi_thread")]
async fn a_live_token_reported_rejected_comes_back_unchanged() {
    let stand = reusable_stand().await;
    let first = stand.run(["token"]).await;
    let token = first.assert_ok().out().to_owned();
    let again = stand.run(["token", "--rejected"]).await;
    assert_eq!(again.assert_ok().out(), token);
    assert!(again.stderr.contains("unchanged"), "{again}");
    assert_eq!(stand.server.logins(), 1, "a live token was replaced");
    assert_eq!(stand.server.calls(Endpoint::Profile), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_ended_by_a_login_elsewhere_is_replaced() {
    let stand = reusable_stand().await;
    let s = &stand.server;
    let first = stand.run(["token"]).await;
    let ended = first.assert_ok().out().to_owned();
    let other = login_elsewhere(s).await;

    let replaced = stand.run(["token", "--rejected"]).await;
    let new = replaced.assert_ok().out().to_owned();
    assert_ne!(new, ended);
    assert_ne!(new, other);
    assert!(replaced.stderr.contains("this is a new one"), "{replaced}");
    assert!(!replaced.stderr.contains(&ended), "the token leaked");
    assert_eq!(s.logins(), 3);
    assert_eq!(
        common::stand_in::profile(s, &new).await.status(),
        StatusCode::OK,
        "the new token is live"
    );
    // The next plain `token` hands out the new one, no login.
    assert_eq!(stand.run(["token"]).await.assert_ok().out(), new);
    assert_eq!(s.logins(), 3);
}

/// The daemon's route, with the daemon's key: a live token comes back unchanged; after a
/// login elsewhere the daemon replaces the dead one at once and answers the new one.
#[tokio::test(flavor = "multi_thread")]
async fn the_serve_route_replaces_a_dead_token_and_keeps_a_live_one() {
    let server = MockServer::start(MockOptions::default()).await.unwrap();
    server.set_totp_reuse_allowed(true);
    let sandbox = configured(&(serve_table(3600.0) + &profile("p", &server, Login::Totp)));
    let d = Daemon::with_tokens(&sandbox, &["p"]).await;
    let key = key_of(&sandbox);
    let first = d.served_token("p", &key, Duration::from_secs(10)).await;
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let report = |key: Option<String>| {
        let mut req = http.post(format!("http://{}/v1/profiles/p/token/rejected", d.addr));
        if let Some(k) = key {
            req = req.header("Authorization", k);
        }
        async move {
            let r = req.send().await.unwrap();
            let status = r.status();
            (status, r.text().await.unwrap())
        }
    };
    let (status, body) = report(None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(!body.contains(&first));

    let (status, body) = report(Some(key.clone())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["verdict"], "alive", "{v}");
    assert_eq!(v["access_token"], first.as_str());
    assert_eq!(server.logins(), 1);

    let other = login_elsewhere(&server).await;
    let (status, body) = report(Some(key.clone())).await;
    assert_eq!(status, StatusCode::OK, "{body}\n{}", d.log());
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["verdict"], "replaced", "{v}");
    let new = v["access_token"].as_str().unwrap().to_owned();
    assert_ne!(new, first);
    assert_ne!(new, other);
    assert_eq!(server.logins(), 3, "{}", d.log());
    assert_eq!(d.token("p", &key).await.unwrap(), new);
    d.stop().await;
}

/// `token --verify` and `token --rejected` from another state folder, with nothing stored
/// there: they go to the daemon's route and never log in themselves, so the daemon's
/// token is never ended by them.
#[tokio::test(flavor = "multi_thread")]
async fn verify_and_rejected_beside_a_daemon_start_no_login_of_their_own() {
    let server = MockServer::start(MockOptions::default()).await.unwrap();
    server.set_totp_reuse_allowed(true);
    let toml = serve_table(3600.0) + &profile("p", &server, Login::Totp);
    let sandbox = configured(&toml);
    let d = Daemon::with_tokens(&sandbox, &["p"]).await;
    let key = key_of(&sandbox);
    let first = d.served_token("p", &key, Duration::from_secs(10)).await;
    let key_file = sandbox.state_dir().join("serve.key");
    let elsewhere = configured(&toml);
    let ask = |args: &[&str]| d.consumer(&elsewhere, &key_file, "p", args);

    let verified = run(ask(&["token", "--verify"]), None).await;
    assert_eq!(verified.assert_ok().out(), first);
    assert_eq!(server.logins(), 1, "{verified}");

    login_elsewhere(&server).await;
    let verified = run(ask(&["token", "--verify"]), None).await;
    let new = verified.assert_ok().out().to_owned();
    assert_ne!(new, first);
    assert_eq!(
        d.token("p", &key).await.unwrap(),
        new,
        "not the daemon's token"
    );
    assert_eq!(server.logins(), 3, "{verified}\n{}", d.log());

    let rejected = run(ask(&["token", "--rejected"]), None).await;
    assert_eq!(rejected.assert_ok().out(), new);
    assert_eq!(server.logins(), 3, "{rejected}");
    assert!(
        !elsewhere.state_dir().join("tokens").exists(),
        "a token was stored where only the daemon's is used"
    );
    d.stop().await;
}

/// A consumer of profile `p` beside the daemon whose margin is a whole day: a 24-hour
/// token is inside it once minted.
fn eager_consumer(server: &MockServer) -> Sandbox {
    configured(
        &(serve_table(3600.0)
            + &profile("p", server, Login::Totp)
                .replace("margin_minutes = 0.02", "margin_minutes = 1440")),
    )
}

/// The daemon keeps the token on its own schedule: a consumer whose own refresh margin
/// the token is already inside takes it all the same, rather than logging in itself and
/// ending the token the daemon hands everyone else.
#[tokio::test(flavor = "multi_thread")]
async fn token_beside_a_daemon_takes_its_token_even_inside_this_hosts_margin() {
    let server = MockServer::start(MockOptions::default()).await.unwrap();
    server.set_totp_reuse_allowed(true);
    let sandbox = configured(&(serve_table(3600.0) + &profile("p", &server, Login::Totp)));
    let d = Daemon::with_tokens(&sandbox, &["p"]).await;
    let key = key_of(&sandbox);
    let served = d.served_token("p", &key, Duration::from_secs(10)).await;
    let eager = eager_consumer(&server);
    let key_file = sandbox.state_dir().join("serve.key");
    let got = run(d.consumer(&eager, &key_file, "p", &["token"]), None).await;
    assert_eq!(got.assert_ok().out(), served);
    assert_eq!(server.logins(), 1, "{got}\n{}", d.log());
    d.stop().await;
}

/// Dhan's `profile` endpoint answering 503, or not answering at all, says nothing about
/// the token: the daemon's route hands the same token back ("unverified") and starts no
/// login.
#[tokio::test(flavor = "multi_thread")]
async fn the_serve_route_keeps_the_token_when_dhan_answers_503_or_not_at_all() {
    use dhan_login::mock::Fault;
    let server = MockServer::start(MockOptions::default()).await.unwrap();
    let sandbox = configured(&(serve_table(3600.0) + &profile("p", &server, Login::Totp)));
    let d = Daemon::with_tokens(&sandbox, &["p"]).await;
    let key = key_of(&sandbox);
    let first = d.served_token("p", &key, Duration::from_secs(10)).await;
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    // Longer than the 30 s request timeout: no answer at all.
    for fault in [Fault::Status(503), Fault::Delay(Duration::from_secs(45))] {
        server.set_fault(Endpoint::Profile, fault);
        let r = http
            .post(format!("http://{}/v1/profiles/p/token/rejected", d.addr))
            .header("Authorization", &key)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let body = r.text().await.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["verdict"], "unverified", "{v}");
        assert_eq!(v["access_token"], first.as_str(), "{v}");
    }
    assert_eq!(server.logins(), 1, "{}", d.log());
    assert!(server.is_live(&first));
    assert_eq!(d.token("p", &key).await.unwrap(), first);
    d.stop().await;
}

/// `cmd` (a sandboxed `dhan-login`, its arguments aside) as `examples/token.rs` for
/// `profile`: the same environment and folder.
fn token_example(cmd: &std::process::Command, profile: &str) -> std::process::Command {
    let exe = example_binary();
    let mut example = std::process::Command::new(exe);
    example.env_clear().arg(profile);
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => example.env(k, v),
            None => example.env_remove(k),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        example.current_dir(dir);
    }
    example
}

/// `examples/token.rs` built as a program beside the binary, with this build's profile and
/// features (`cargo test --all-targets` builds examples only as tests). Cargo does not
/// hold its build lock while tests run.
fn example_binary() -> std::path::PathBuf {
    static BUILT: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let profile_dir = std::path::Path::new(BIN).parent().unwrap();
            let mut cargo = std::process::Command::new(env!("CARGO"));
            cargo
                .args(["build", "--locked", "--quiet", "--example", "token"])
                .arg("--manifest-path")
                .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
                .arg("--target-dir")
                .arg(profile_dir.parent().unwrap());
            if !cfg!(debug_assertions) {
                cargo.arg("--release");
            }
            if !cfg!(feature = "browser") {
                cargo.arg("--no-default-features");
            }
            let built = cargo.status().expect("run cargo build --example token");
            assert!(built.success(), "cargo build --example token failed");
            profile_dir.join("examples/token")
        })
        .clone()
}

/// The token `examples/token.rs` printed, and where it said it came from.
fn example_token(r: &Run) -> (String, String) {
    r.assert_ok();
    let line = |label: &str| {
        r.stdout
            .lines()
            .find_map(|l| l.strip_prefix(label))
            .unwrap_or_else(|| panic!("no `{label}` line:\n{r}"))
            .to_owned()
    };
    (line("token (library): "), line("came from: "))
}

/// Beside a daemon, the library (a manager from the config file, and `examples/token.rs`)
/// and `dhan-login token` (with and without `--verify`) all take the daemon's token, even
/// inside this host's margin, and have the daemon replace a token a login elsewhere
/// ended: none logs in itself, and all hand out what the daemon hands out.
#[tokio::test(flavor = "multi_thread")]
async fn the_library_and_the_cli_take_and_replace_the_daemons_token_alike() {
    let server = MockServer::start(MockOptions::default()).await.unwrap();
    server.set_totp_reuse_allowed(true);
    let sandbox = configured(&(serve_table(3600.0) + &profile("p", &server, Login::Totp)));
    let d = Daemon::with_tokens(&sandbox, &["p"]).await;
    let key = key_of(&sandbox);
    let served = d.served_token("p", &key, Duration::from_secs(10)).await;
    let eager = eager_consumer(&server);
    let key_file = sandbox.state_dir().join("serve.key");
    let cli = |args: &[&str]| d.consumer(&eager, &key_file, "p", args);

    // Without a check: a library user's manager, from the same file and variables, and
    // plain `dhan-login token`.
    let vars: Vec<(String, String)> = cli(&[])
        .get_envs()
        .filter_map(|(k, v)| Some((k.to_str()?.to_owned(), v?.to_str()?.to_owned())))
        .collect();
    let env = |k: &str| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let config = dhan_login::Config::load(&dhan_login::Paths::from_env(&env).unwrap()).unwrap();
    let m = dhan_login::TokenManager::from_config(&config, "p", &env).unwrap();
    let got = m
        .token(&dhan_login::Request::default(), &dhan_login::NoProgress)
        .await
        .unwrap();
    assert!(got.cached);
    assert_eq!(got.token.access_token.secret(), served);
    assert_eq!(run(cli(&["token"]), None).await.assert_ok().out(), served);

    let by_cli = run(cli(&["token", "--verify"]), None).await;
    assert_eq!(by_cli.assert_ok().out(), served);
    let by_lib = run(token_example(&cli(&[]), "p"), None).await;
    assert_eq!(
        example_token(&by_lib),
        (served.clone(), "the daemon".into())
    );
    assert_eq!(server.logins(), 1, "{by_cli}\n{by_lib}\n{}", d.log());

    login_elsewhere(&server).await;
    let by_lib = run(token_example(&cli(&[]), "p"), None).await;
    let (new, from) = example_token(&by_lib);
    assert_ne!(new, served);
    assert_eq!(from, "the daemon");
    assert_eq!(
        d.token("p", &key).await.unwrap(),
        new,
        "not the daemon's token"
    );
    assert_eq!(server.logins(), 3, "{by_lib}\n{}", d.log());
    login_elsewhere(&server).await;
    let by_cli = run(cli(&["token", "--verify"]), None).await;
    let newer = by_cli.assert_ok().out().to_owned();
    assert_ne!(newer, new);
    assert_eq!(
        d.token("p", &key).await.unwrap(),
        newer,
        "not the daemon's token"
    );
    assert_eq!(server.logins(), 5, "{by_cli}\n{}", d.log());
    assert!(
        !eager.state_dir().join("tokens").exists(),
        "a token was stored where only the daemon's is used"
    );
    d.stop().await;
}

/// Without a daemon, the library (`examples/token.rs`) and `dhan-login token --verify`
/// hand out a stored token Dhan accepts without a login, and replace one Dhan refuses
/// (ended by a login elsewhere) with one new login each.
#[tokio::test(flavor = "multi_thread")]
async fn the_library_and_the_cli_verify_and_replace_a_refused_token_alike() {
    let stand = reusable_stand().await;
    let s = &stand.server;
    let first = stand.run(["token"]).await.assert_ok().out().to_owned();
    let example = || token_example(&stand.command(), "default");

    let by_lib = run(example(), None).await;
    assert_eq!(example_token(&by_lib), (first.clone(), "the store".into()));
    assert_eq!(
        stand.run(["token", "--verify"]).await.assert_ok().out(),
        first
    );
    assert_eq!(s.logins(), 1, "{by_lib}");

    login_elsewhere(s).await;
    let by_cli = stand.run(["token", "--verify"]).await;
    let second = by_cli.assert_ok().out().to_owned();
    assert_ne!(second, first);
    assert_eq!(s.logins(), 3, "{by_cli}");

    login_elsewhere(s).await;
    let by_lib = run(example(), None).await;
    let (third, from) = example_token(&by_lib);
    assert_ne!(third, second);
    assert_eq!(from, "a login (totp)");
    assert_eq!(s.logins(), 5, "{by_lib}");
    // Both stored what they got: the next plain `token` hands it out.
    assert_eq!(stand.run(["token"]).await.assert_ok().out(), third);
    assert_eq!(s.logins(), 5);
}
