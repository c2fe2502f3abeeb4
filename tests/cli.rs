//! The `dhan-login` binary end to end: every command run as a child process with a clean
//! environment against a local stand-in of Dhan (see tests/common/mod.rs).

mod common;

use std::time::Duration;

use chrono::{DateTime, Utc};
use common::{Run, Sandbox, Stand, jwt_claims, run, run_blocking, run_manual_login};
use dhan_login::mock::{Endpoint, Fault, TokenKind};
use serde_json::Value;

/// Exit codes documented in `dhan-login --help` and README.
const EXIT_CONFIG: i32 = 2;
const EXIT_CREDENTIALS: i32 = 3;
#[cfg_attr(not(feature = "browser"), allow(dead_code))]
const EXIT_CONSENT_LIMIT: i32 = 4;
const EXIT_TRANSIENT: i32 = 5;

/// The single token line `token` / `login` / `renew` print, checked to be JWT-shaped.
#[track_caller]
fn printed_token(run: &Run) -> String {
    run.assert_ok();
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "expected exactly one line (the token):\n{run}"
    );
    let token = lines[0].to_owned();
    assert!(
        jwt_claims(&token).is_some(),
        "stdout is not a JWT-shaped token:\n{run}"
    );
    token
}

/// A loopback port nobody listens on: bound, then released.
fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    let port = listener.local_addr().expect("its address").port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

#[tokio::test(flavor = "multi_thread")]
async fn token_from_env_alone_prints_a_live_jwt_and_the_second_call_uses_the_cache() {
    let s = Stand::start().await;
    assert!(!s.sandbox.config_path().exists(), "no config file in play");

    let first = s.run(["token"]).await;
    let token = printed_token(&first);
    assert!(
        s.server.is_live(&token),
        "the stand-in does not know the printed token as live"
    );
    let claims = jwt_claims(&token).expect("claims");
    assert_eq!(claims["dhanClientId"], s.server.account().client_id);
    assert_eq!(claims["tokenConsumerType"], "APP");
    assert_eq!(s.server.logins(), 1, "one login for the first token");
    assert!(s.sandbox.token_file("default").is_file(), "token stored");

    let second = s.run(["token"]).await;
    assert_eq!(
        printed_token(&second),
        token,
        "the second call must print the cached token"
    );
    assert_eq!(s.server.logins(), 1, "the cached token needs no new login");
    assert_eq!(s.server.calls(Endpoint::GenerateAccessToken), 1);
    assert_eq!(
        s.server.calls(Endpoint::RenewToken),
        0,
        "a valid cached token needs no renewal either"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn token_json_prints_exactly_the_documented_keys() {
    let s = Stand::start().await;
    let r = s.run(["token", "--json"]).await;
    r.assert_ok();
    let v = r.json();
    let obj = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object:\n{r}"));
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["access_token", "client_id", "expires_at", "kind", "source"],
        "{r}"
    );

    let token = v["access_token"]
        .as_str()
        .expect("access_token is a string");
    assert!(s.server.is_live(token), "access_token is not live: {r}");
    assert_eq!(v["client_id"], s.server.account().client_id.as_str());
    assert_eq!(v["kind"], "APP");
    assert_eq!(v["source"], "totp");

    let expires = v["expires_at"].as_str().expect("expires_at is a string");
    assert!(
        expires.ends_with('Z'),
        "expires_at should be RFC 3339 in UTC (Z): {expires}"
    );
    let expires: DateTime<Utc> = DateTime::parse_from_rfc3339(expires)
        .unwrap_or_else(|e| panic!("expires_at is not RFC 3339 ({e}): {expires}"))
        .with_timezone(&Utc);
    let left = expires - Utc::now();
    assert!(
        left > chrono::Duration::hours(23) + chrono::Duration::minutes(50)
            && left <= chrono::Duration::hours(24) + chrono::Duration::minutes(1),
        "expires_at should be ~24 h ahead (an IST/UTC mix-up shows as 5 h 30 off), is {left}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn token_env_prints_shell_assignments() {
    let s = Stand::start().await;
    let r = s.run(["token", "--env"]).await;
    r.assert_ok();
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{r}");
    let token = lines[0]
        .strip_prefix("DHAN_ACCESS_TOKEN=")
        .unwrap_or_else(|| panic!("first line is not DHAN_ACCESS_TOKEN=…:\n{r}"));
    assert!(s.server.is_live(token), "{r}");
    assert_eq!(
        lines[1],
        format!("DHAN_CLIENT_ID={}", s.server.account().client_id)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_gives_the_child_token_and_client_id_and_returns_its_exit_code() {
    let s = Stand::start().await;
    let r = s
        .run([
            "exec",
            "--",
            "sh",
            "-c",
            "echo \"$DHAN_ACCESS_TOKEN:$DHAN_CLIENT_ID\"; exit 7",
        ])
        .await;
    r.assert_code(7);
    let (token, client) = r
        .out()
        .rsplit_once(':')
        .unwrap_or_else(|| panic!("child printed no token:client line:\n{r}"));
    assert!(
        jwt_claims(token).is_some() && s.server.is_live(token),
        "the child's DHAN_ACCESS_TOKEN is not a live token:\n{r}"
    );
    assert_eq!(client, s.server.account().client_id);

    // A missing program is the shell's 127.
    let r = s
        .run(["exec", "--", "/nonexistent/dhan-login-test-program"])
        .await;
    r.assert_code(127);
}

#[tokio::test(flavor = "multi_thread")]
async fn status_shows_profile_expiry_kind_and_source_but_never_the_token() {
    let s = Stand::start().await;
    let token = printed_token(&s.run(["token"]).await);

    let r = s.run(["status"]).await;
    r.assert_ok();
    assert!(!r.stdout.contains(&token), "status printed the token");
    assert!(!r.stderr.contains(&token), "status logged the token");
    for want in [
        "profile:    default",
        "expires:",
        "kind:       APP",
        "source:     totp",
    ] {
        assert!(r.stdout.contains(want), "status lacks `{want}`:\n{r}");
    }

    let r = s.run(["status", "--json"]).await;
    r.assert_ok();
    assert!(
        !r.stdout.contains(&token),
        "status --json printed the token"
    );
    let v = r.json();
    assert_eq!(v["profile"], "default", "{r}");
    let t = &v["token"];
    assert!(
        t.get("access_token").is_none(),
        "status --json has an access_token key:\n{r}"
    );
    assert_eq!(t["kind"], "APP", "{r}");
    assert_eq!(t["source"], "totp", "{r}");
    assert_eq!(t["valid"], true, "{r}");
    let expires = t["expires_at"].as_str().expect("expires_at");
    DateTime::parse_from_rfc3339(expires).expect("expires_at is RFC 3339");
}

#[tokio::test(flavor = "multi_thread")]
async fn import_stores_a_dhan_web_token_read_from_stdin() {
    let s = Stand::start().await;
    let web = s
        .server
        .issue_token(TokenKind::SelfWeb, Duration::from_secs(24 * 3600));
    let r = run(s.cli(["import"]), Some(format!("{web}\n").as_bytes())).await;
    r.assert_ok();
    assert!(!r.stdout.contains(&web) && !r.stderr.contains(&web));
    assert!(
        r.stderr.contains("SELF"),
        "import should say what it stored:\n{r}"
    );
    assert_eq!(
        s.server.calls(Endpoint::Profile),
        1,
        "checked with Dhan once"
    );

    let v = s.run(["status", "--json"]).await.json();
    assert_eq!(v["token"]["kind"], "SELF", "{v}");
    assert_eq!(v["token"]["source"], "import", "{v}");

    // The stored token is what `token` now prints, without a login.
    let printed = printed_token(&s.run(["token"]).await);
    assert_eq!(printed, web);
    assert_eq!(s.server.logins(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn import_rejects_a_garbage_token() {
    let s = Stand::start().await;
    let r = run(s.cli(["import"]), Some(b"not-a-token-at-all\n")).await;
    assert!(!r.success(), "a garbage token must not be accepted:\n{r}");
    assert!(r.stderr.contains("error"), "no message on stderr:\n{r}");
    assert!(
        !s.sandbox.token_file("default").exists(),
        "nothing should be stored"
    );

    let r = run(s.cli(["import"]), Some(b"\n")).await;
    assert!(!r.success(), "an empty stdin must not be accepted:\n{r}");
    assert!(r.stderr.contains("no token"), "{r}");
}

#[tokio::test(flavor = "multi_thread")]
async fn renew_replaces_an_imported_dhan_web_token() {
    let s = Stand::start().await;
    let old = s
        .server
        .issue_token(TokenKind::SelfWeb, Duration::from_secs(24 * 3600));
    run(s.cli(["import"]), Some(old.as_bytes()))
        .await
        .assert_ok();

    let r = s.run(["renew"]).await;
    let new = printed_token(&r);
    assert_ne!(new, old, "renew printed the old token");
    assert!(s.server.is_live(&new), "the renewed token is not live");
    assert!(!s.server.is_live(&old), "the old token is still live");
    assert_eq!(s.server.calls(Endpoint::RenewToken), 1);
    assert_eq!(s.server.logins(), 0, "renewing is not a login");

    let v = s.run(["status", "--json"]).await.json();
    assert_eq!(v["token"]["source"], "renew", "{v}");
    assert_eq!(v["token"]["kind"], "SELF", "{v}");
    assert_eq!(printed_token(&s.run(["token"]).await), new);
}

#[tokio::test(flavor = "multi_thread")]
async fn renew_of_an_api_token_is_refused_once_and_not_asked_again() {
    let s = Stand::start().await;
    let token = printed_token(&s.run(["token"]).await);

    let r = s.run(["renew"]).await;
    assert!(!r.success(), "an APP token is not renewable:\n{r}");
    assert_eq!(s.server.calls(Endpoint::RenewToken), 1);
    let v = s.run(["status", "--json"]).await.json();
    assert_eq!(v["renewable"], false, "{v}");
    assert!(v["last_error"].is_object(), "the refusal is recorded: {v}");

    let r = s.run(["renew"]).await;
    assert!(!r.success(), "{r}");
    assert_eq!(
        s.server.calls(Endpoint::RenewToken),
        1,
        "a refused token must not be sent to RenewToken again"
    );
    // The refusal does not cost the still-valid token.
    assert_eq!(printed_token(&s.run(["token"]).await), token);
}

#[tokio::test(flavor = "multi_thread")]
async fn logout_forgets_the_token() {
    let s = Stand::start().await;
    let token = printed_token(&s.run(["token"]).await);
    assert!(s.sandbox.token_file("default").exists());

    let r = s.run(["logout"]).await;
    r.assert_ok();
    // The state file stays (it remembers the TOTP step and any lockout), the token not.
    let state = std::fs::read_to_string(s.sandbox.token_file("default")).unwrap();
    assert!(!state.contains(&token), "the token is still stored");
    let r = s.run(["status"]).await;
    r.assert_ok();
    assert!(r.stdout.contains("none stored"), "{r}");
    let v = s.run(["status", "--json"]).await.json();
    assert!(v["token"].is_null(), "{v}");

    // Logging out twice is fine and says so.
    let r = s.run(["logout"]).await;
    r.assert_ok();
    assert!(r.stderr.contains("no stored token"), "{r}");
}

#[tokio::test(flavor = "multi_thread")]
async fn login_after_logout_does_not_resubmit_the_spent_totp_code() {
    // `logout` forgets the token; the TOTP step the login spent must stay remembered, or a
    // login right after it resubmits the same code, which Dhan rejects (and the rejection
    // then locks the profile). Once fixed, the second login waits for the next 30 s step.
    let s = Stand::start().await;
    printed_token(&s.run(["login", "--via", "totp"]).await);
    s.run(["logout"]).await.assert_ok();
    let r = s.run(["login", "--via", "totp"]).await;
    assert!(
        r.success(),
        "the login after logout resubmitted the spent TOTP code:\n{r}"
    );
    assert_eq!(s.server.logins(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn logout_does_not_lift_a_credential_lockout() {
    // Only `unlock` or a changed configuration may let rejected credentials reach Dhan
    // again; forgetting the token is not a way around the lockout.
    let s = Stand::start().await;
    let cmd = s.cli_wrong_pin(["login", "--via", "totp"]);
    run(cmd, None).await.assert_code(EXIT_CREDENTIALS);
    assert_eq!(s.server.calls(Endpoint::GenerateAccessToken), 1);

    s.run(["logout"]).await.assert_ok();
    let cmd = s.cli_wrong_pin(["token"]);
    let r = run(cmd, None).await;
    r.assert_code(EXIT_CREDENTIALS);
    assert_eq!(
        s.server.calls(Endpoint::GenerateAccessToken),
        1,
        "after logout the rejected PIN was sent to Dhan again:\n{r}"
    );
}

/// `config check` against a file, with no DHAN_* variable in the environment.
async fn config_check(toml: &str) -> Run {
    let sandbox = Sandbox::new();
    let path = sandbox.write_config(toml);
    let mut cmd = sandbox.command();
    cmd.env("DHAN_LOGIN_CONFIG", &path)
        .args(["config", "check"]);
    run(cmd, None).await
}

#[tokio::test(flavor = "multi_thread")]
async fn config_check_names_a_bad_pin() {
    let r = config_check(
        r#"
[profiles.default]
client_id = "1100000042"
pin = "12ab"
totp_secret = "JBSWY3DPEHPK3PXP"
"#,
    )
    .await;
    r.assert_code(EXIT_CONFIG);
    assert!(
        r.stderr.lines().any(|l| l.trim_start().starts_with("pin:")),
        "the bad pin is not named:\n{r}"
    );
    assert!(!r.stderr.contains("12ab"), "the PIN value was echoed:\n{r}");
}

#[tokio::test(flavor = "multi_thread")]
async fn config_check_names_unknown_fields() {
    // A bad pin and an unknown key together: the unknown key is what stops the read.
    let r = config_check(
        r#"
[profiles.default]
client_id = "1100000042"
pin = "12ab"
totp_secret = "JBSWY3DPEHPK3PXP"
colour = "blue"
"#,
    )
    .await;
    r.assert_code(EXIT_CONFIG);
    assert!(r.stderr.contains("colour"), "unknown key not named:\n{r}");

    // Unknown keys are caught in every table, including the nested browser one and a
    // misspelled top-level table.
    let r = config_check(
        "[profiles.default]\nclient_id = \"1\"\n[profiles.default.browser]\nheadless = true\n",
    )
    .await;
    r.assert_code(EXIT_CONFIG);
    assert!(r.stderr.contains("headless"), "{r}");

    let r = config_check("[profile.default]\nclient_id = \"1100000042\"\n").await;
    r.assert_code(EXIT_CONFIG);
    assert!(r.stderr.contains("profile"), "{r}");
}

#[tokio::test(flavor = "multi_thread")]
async fn config_check_accepts_a_valid_env_only_setup() {
    let s = Stand::start().await;
    let r = s.run(["config", "check"]).await;
    r.assert_ok();
    assert!(r.stdout.contains("valid"), "{r}");
    assert_eq!(
        s.server.logins() + s.server.calls(Endpoint::GenerateAccessToken),
        0,
        "checking the config must not log in"
    );

    // And config path names the sandbox's state folder.
    let r = s.run(["config", "path"]).await;
    r.assert_ok();
    assert!(
        r.stdout
            .contains(&s.sandbox.state_dir().display().to_string()),
        "{r}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_named_config_file_that_does_not_exist_is_a_config_error() {
    let s = Stand::start().await;
    let missing = s.sandbox.path().join("nope.toml");
    let mut cmd = s.cli(["token"]);
    cmd.env("DHAN_LOGIN_CONFIG", &missing);
    let r = run(cmd, None).await;
    r.assert_code(EXIT_CONFIG);
    assert!(
        r.stderr.contains("nope.toml"),
        "the file is not named:\n{r}"
    );
    assert_eq!(s.server.logins(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_pin_exits_3_and_the_same_credentials_are_not_tried_again() {
    let s = Stand::start().await;
    let cmd = s.cli_wrong_pin(["login", "--via", "totp"]);
    let r = run(cmd, None).await;
    r.assert_code(EXIT_CREDENTIALS);
    assert_eq!(
        s.server.calls(Endpoint::GenerateAccessToken),
        1,
        "a rejected PIN must never be retried"
    );
    let v = s.run(["status", "--json"]).await.json();
    assert_eq!(v["last_error"]["class"], "credential_rejected", "{v}");
    assert!(
        v["locked"].is_object(),
        "the rejection locks the profile: {v}"
    );

    // The whole chain with the same rejected credentials: refused locally, still 3, and
    // neither the PIN login nor the consent flow reaches Dhan.
    let cmd = s.cli_wrong_pin(["token"]);
    let r = run(cmd, None).await;
    r.assert_code(EXIT_CREDENTIALS);
    assert!(r.stderr.contains("unlock"), "the way out is named:\n{r}");
    assert_eq!(s.server.calls(Endpoint::GenerateAccessToken), 1);
    assert_eq!(s.server.calls(Endpoint::GenerateConsent), 0);

    let r = s.run(["unlock"]).await;
    r.assert_ok();
    let v = s.run(["status", "--json"]).await.json();
    assert!(v["locked"].is_null(), "{v}");
}

#[cfg(feature = "browser")]
#[tokio::test(flavor = "multi_thread")]
async fn consent_limit_exits_4_before_any_browser_starts() {
    let s = Stand::start().await;
    s.server.set_consent_cap(0);
    let r = s.run(["login", "--via", "browser"]).await;
    r.assert_code(EXIT_CONSENT_LIMIT);
    assert!(
        r.stderr.to_lowercase().contains("consent limit"),
        "the message should say the consent limit is reached:\n{r}"
    );
    assert_eq!(s.server.calls(Endpoint::GenerateConsent), 1);
    assert_eq!(
        s.server.calls(Endpoint::ConsentLoginPage),
        0,
        "no login page may be opened without a consent"
    );

    // The day is marked used up: the next try is refused without asking Dhan.
    let r = s.run(["login", "--via", "browser"]).await;
    r.assert_code(EXIT_CONSENT_LIMIT);
    assert_eq!(s.server.calls(Endpoint::GenerateConsent), 1);

    // Another machine meets the answer given verbatim, as a 200 that says error.
    s.server.set_consent_cap(25);
    s.server.set_fault(
        Endpoint::GenerateConsent,
        Fault::Respond {
            status: 200,
            body: r#"{"errorType":"Consent_Limit","errorCode":"CONSENT_LIMIT_EXCEED","errorMessage":"Consent limit Exceeded"}"#.into(),
            content_type: "application/json".into(),
        },
    );
    let other = Sandbox::new();
    let mut cmd = s.command_in(&other);
    cmd.args(["login", "--via", "browser"]);
    let r = run(cmd, None).await;
    r.assert_code(EXIT_CONSENT_LIMIT);
    assert_eq!(s.server.calls(Endpoint::GenerateConsent), 2);
    assert_eq!(s.server.calls(Endpoint::ConsentLoginPage), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_dhan_exits_5() {
    let s = Stand::start().await;
    let dead = closed_port_url();

    let mut cmd = s.cli(["login", "--via", "totp"]);
    cmd.env("DHAN_AUTH_BASE_URL", &dead);
    let r = run(cmd, None).await;
    r.assert_code(EXIT_TRANSIENT);
    assert!(
        r.stderr.contains("connect"),
        "the message should say the connection failed:\n{r}"
    );

    // The whole chain (renew, totp, browser) against dead hosts: still transient. In a
    // sandbox of its own: the first run spent a TOTP step, and a second run in the same
    // state would (rightly) wait for the next one.
    let other = Sandbox::new();
    let mut cmd = s.command_in(&other);
    cmd.arg("token")
        .env("DHAN_AUTH_BASE_URL", &dead)
        .env("DHAN_API_BASE_URL", format!("{dead}/v2"));
    let r = run(cmd, None).await;
    r.assert_code(EXIT_TRANSIENT);
    assert!(
        r.elapsed < Duration::from_secs(10),
        "a refused connection should fail fast:\n{r}"
    );
    assert_eq!(s.server.logins(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn server_errors_are_transient_and_exit_5() {
    let s = Stand::start().await;
    s.server
        .set_fault(Endpoint::GenerateAccessToken, Fault::Status(503));
    let r = s.run(["login", "--via", "totp"]).await;
    r.assert_code(EXIT_TRANSIENT);
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_client_id_is_a_config_error() {
    let s = Stand::start().await;
    let mut cmd = s.cli(["token"]);
    cmd.env_remove("DHAN_CLIENT_ID");
    let r = run(cmd, None).await;
    r.assert_code(EXIT_CONFIG);
    assert!(
        r.stderr.contains("no way to obtain a token is configured"),
        "{r}"
    );
    assert_eq!(s.server.calls(Endpoint::GenerateAccessToken), 0);

    let mut cmd = s.cli(["config", "check"]);
    cmd.env_remove("DHAN_CLIENT_ID");
    let r = run(cmd, None).await;
    r.assert_code(EXIT_CONFIG);
    assert!(r.stderr.contains("client_id"), "{r}");
}

/// Slow by design (up to one 30 s TOTP step): the second login must wait for a fresh code.
#[tokio::test(flavor = "multi_thread")]
async fn two_logins_in_one_totp_step_both_succeed() {
    // Each `dhan-login login` is a new process. Dhan (and the stand-in, RFC 6238 §5.2)
    // accept each code once, so a second login within the same 30 s step must not submit
    // the code the first one spent: a rejected code counts towards a lockout and exits 3.
    let s = Stand::start().await;
    let a = printed_token(&s.run(["login", "--via", "totp"]).await);
    let second = s.run(["login", "--via", "totp"]).await;
    assert!(
        second.success(),
        "the second login reused the first one's TOTP step:\n{second}"
    );
    let b = printed_token(&second);
    assert_ne!(a, b);
    assert_eq!(s.server.logins(), 2);
    assert_eq!(s.server.calls(Endpoint::GenerateAccessToken), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn corrupt_state_file_is_moved_aside_and_token_still_works() {
    let s = Stand::start().await;
    let file = s.sandbox.token_file("default");
    std::fs::create_dir_all(file.parent().expect("tokens dir")).expect("mkdir tokens");
    std::fs::write(&file, b"{ this is not json \x00\xff").expect("write garbage");

    let r = s.run(["token"]).await;
    let token = printed_token(&r);
    assert!(s.server.is_live(&token));
    assert!(
        r.stderr.contains("corrupt") && r.stderr.contains("moved aside"),
        "stderr should say the state was corrupt and moved aside:\n{r}"
    );
    let dir = file.parent().expect("tokens dir");
    let moved: Vec<String> = std::fs::read_dir(dir)
        .expect("read tokens dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("default.json.corrupt-"))
        .collect();
    assert_eq!(moved.len(), 1, "one *.corrupt-* file expected: {moved:?}");
    let garbage = std::fs::read(dir.join(&moved[0])).expect("read the moved file");
    assert_eq!(
        garbage, b"{ this is not json \x00\xff",
        "kept for inspection"
    );

    let stored: Value =
        serde_json::from_slice(&std::fs::read(&file).expect("new state")).expect("valid JSON");
    assert_eq!(stored["token"]["access_token"], token.as_str());
}

#[tokio::test(flavor = "multi_thread")]
async fn manual_login_takes_the_pasted_redirect_url() {
    let s = Stand::start().await;
    let mut cmd = s.cli(["login", "--via", "manual"]);
    // Not a loopback URL: the source must not try to listen, only read the paste.
    cmd.env(
        "DHAN_REDIRECT_URL",
        "https://redirect.invalid/dhan/callback",
    );
    let (r, location) = run_manual_login(cmd, &s.server).await;
    assert!(location.contains("tokenId="), "{location}");
    let token = printed_token(&r);
    assert!(s.server.is_live(&token));
    assert_eq!(s.server.calls(Endpoint::ConsumeConsent), 1);
    let v = s.run(["status", "--json"]).await.json();
    assert_eq!(v["token"]["source"], "manual", "{v}");
}

/// The subcommands listed under `Commands:` in a help text (without `help`).
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| l.trim() != "Commands:")
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_subcommand_help_has_an_example() {
    let sandbox = Sandbox::new();
    let top = run_blocking({
        let mut c = sandbox.command();
        c.arg("--help");
        c
    });
    top.assert_ok();
    assert!(top.stdout.contains("Example"), "{top}");
    assert!(
        top.stdout.contains("Exit codes"),
        "top-level help documents exit codes"
    );

    let mut pending: Vec<Vec<String>> = subcommands(&top.stdout)
        .into_iter()
        .map(|c| vec![c])
        .collect();
    let expected = [
        "token",
        "login",
        "renew",
        "status",
        "import",
        "unlock",
        "logout",
        "exec",
        "config",
        "completions",
        "mock-server",
        "demo",
        "record",
    ];
    for name in expected {
        assert!(
            pending.iter().any(|p| p[0] == name),
            "`{name}` is not listed in --help"
        );
    }

    let mut missing = Vec::new();
    let mut seen = 0;
    while let Some(path) = pending.pop() {
        seen += 1;
        let mut cmd = sandbox.command();
        cmd.args(&path).arg("--help");
        let r = run_blocking(cmd);
        r.assert_ok();
        if !r.stdout.contains("Example") {
            missing.push(path.join(" "));
        }
        for sub in subcommands(&r.stdout) {
            let mut deeper = path.clone();
            deeper.push(sub);
            pending.push(deeper);
        }
    }
    assert!(
        seen >= expected.len() + 2,
        "config's subcommands were not walked"
    );
    assert!(
        missing.is_empty(),
        "these subcommands have no Example in --help: {missing:?}"
    );
}

#[test]
fn completions_bash_prints_a_script() {
    let sandbox = Sandbox::new();
    let mut cmd = sandbox.command();
    cmd.args(["completions", "bash"]);
    let r = run_blocking(cmd);
    r.assert_ok();
    assert!(r.stdout.contains("dhan-login"), "{r}");
    assert!(
        r.stdout.contains("complete "),
        "not a bash completion script"
    );
    assert!(
        r.stdout.contains("mock-server"),
        "subcommands are completed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn mock_server_prints_the_demo_account_as_its_first_line() {
    use tokio::io::AsyncBufReadExt;

    let sandbox = Sandbox::new();
    let mut cmd = tokio::process::Command::from(sandbox.command());
    cmd.args(["mock-server", "--port", "0"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    let mut child = cmd.spawn().expect("start mock-server");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let first = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .expect("mock-server printed nothing within 10 s")
        .expect("read stdout")
        .expect("mock-server closed stdout without a line");

    let v: Value = serde_json::from_str(&first)
        .unwrap_or_else(|e| panic!("first line is not JSON ({e}): {first}"));
    let obj = v.as_object().expect("one JSON object");
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "api_base_url",
            "api_key",
            "api_secret",
            "auth_base_url",
            "client_id",
            "mobile",
            "pin",
            "redirect_url",
            "sms_otp",
            "totp_secret"
        ]
    );

    // It serves: an unknown token gets Dhan's DH-901 from the advertised API base.
    let api = obj["api_base_url"].as_str().expect("api_base_url");
    let resp = reqwest::Client::new()
        .get(format!("{}/profile", api.trim_end_matches('/')))
        .header("access-token", "nope")
        .send()
        .await
        .expect("the advertised API base answers");
    assert_eq!(resp.status().as_u16(), 401);

    child.kill().await.expect("stop mock-server");
}

#[cfg(feature = "browser")]
#[tokio::test(flavor = "multi_thread")]
async fn record_saves_every_screen_scrubbed() {
    if common::browser_tests_skipped("record_saves_every_screen_scrubbed") {
        return;
    }
    let s = Stand::start().await;
    let out = s.sandbox.path().join("recording");
    let r = s
        .run(["record", "--out", out.to_str().expect("utf-8 temp path")])
        .await;
    r.assert_ok();
    let names: Vec<String> = std::fs::read_dir(&out)
        .expect("the recording folder")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    for want in [
        "01-mobile.html",
        "01-mobile.json",
        "02-totp.html",
        "02-totp.json",
        "03-pin.html",
        "03-pin.json",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "{want} missing from {names:?}"
        );
    }
    let a = s.server.account();
    for name in &names {
        let text = std::fs::read_to_string(out.join(name)).expect("a recorded file");
        for (what, value) in [
            ("mobile", &a.mobile),
            ("PIN", &a.pin),
            ("API secret", &a.api_secret),
        ] {
            assert!(!text.contains(value.as_str()), "{name} holds the {what}");
        }
        assert!(!text.contains("eyJ"), "{name} holds something JWT-shaped");
    }
    // The classifier's verdict and its reasons are recorded for each screen.
    let totp: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("02-totp.json")).unwrap()).unwrap();
    assert!(totp.to_string().contains("totp (six digit boxes"), "{totp}");
}

#[tokio::test(flavor = "multi_thread")]
async fn manual_login_catches_the_redirect_on_a_loopback_url_and_exits() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let s = Stand::start().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd = s.cli(["login", "--via", "manual", "--json"]);
    cmd.env(
        "DHAN_REDIRECT_URL",
        format!("http://127.0.0.1:{port}/dhan/cb"),
    );
    let mut child = tokio::process::Command::from(cmd)
        // stdin at EOF: with a listener, that must not end the wait.
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let consent_url = loop {
        let line = lines
            .next_line()
            .await
            .unwrap()
            .expect("the consent URL is printed");
        if let Some(at) = line.find("http") {
            break line[at..].trim().to_owned();
        }
    };
    // A person logs in; the browser follows the redirect to the loopback URL.
    let redirected = common::complete_consent_login(&s.server, &consent_url).await;
    let token_id = url::Url::parse(&redirected)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "tokenId")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    let page = reqwest::get(format!(
        "http://127.0.0.1:{port}/dhan/cb?tokenId={token_id}"
    ))
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    assert!(page.contains("received the login"), "{page}");
    let out = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output())
        .await
        .expect("the process exits once the redirect arrived")
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["source"], "manual");
    assert!(s.server.is_live(v["access_token"].as_str().unwrap()));
}

#[tokio::test(flavor = "multi_thread")]
async fn config_check_names_every_bad_field_at_once() {
    let s = Stand::start().await;
    let mut cmd = s.cli(["config", "check"]);
    cmd.env("DHAN_PIN", "12ab")
        .env("DHAN_REDIRECT_URL", "not a url")
        .env("DHAN_LOGIN_MARGIN_MINUTES", "soon");
    let r = run(cmd, None).await;
    r.assert_code(EXIT_CONFIG);
    for field in ["pin:", "redirect_url:", "margin_minutes:"] {
        assert!(r.stderr.contains(field), "{field} is not named:\n{r}");
    }
    assert!(!r.stderr.contains("12ab"), "the PIN is echoed:\n{r}");
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_from_a_file_and_a_command_in_a_named_profile_log_in() {
    let s = Stand::start().await;
    let a = s.server.account().clone();
    let pin_file = s.sandbox.path().join("pin.txt");
    std::fs::write(&pin_file, format!("{}\n", a.pin)).unwrap();
    let config = s.sandbox.write_config(&format!(
        r#"
[profiles.default]
client_id = "1000000000"

[profiles.work]
client_id = "{id}"
pin_file = "{pin}"
totp_secret_command = "printf '%s\n' {secret} && echo a second line that is not the secret"
auth_base_url = "{auth}"
api_base_url = "{api}"
"#,
        id = a.client_id,
        pin = pin_file.display(),
        secret = a.totp_secret,
        auth = s.server.auth_base_url(),
        api = s.server.api_base_url(),
    ));
    // No DHAN_* account variables: the file is all there is.
    let mut cmd = s.sandbox.command();
    cmd.env("DHAN_LOGIN_CONFIG", &config)
        .args(["--profile", "work", "token", "--json"]);
    let r = run(cmd, None).await;
    r.assert_ok();
    assert_eq!(r.json()["client_id"], a.client_id.as_str());
    // The profile can also be chosen by DHAN_LOGIN_PROFILE; its token is cached now.
    let mut cmd = s.sandbox.command();
    cmd.env("DHAN_LOGIN_CONFIG", &config)
        .env("DHAN_LOGIN_PROFILE", "work")
        .args(["status", "--json"]);
    let v = run(cmd, None).await.json();
    assert_eq!(v["profile"], "work");
    assert_eq!(v["token"]["source"], "totp");
    assert_eq!(s.server.logins(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn inline_secrets_in_a_config_others_can_read_get_a_warning() {
    use std::os::unix::fs::PermissionsExt;
    let s = Sandbox::new();
    let config =
        s.write_config("[profiles.default]\nclient_id = \"1100000042\"\npin = \"135790\"\n");
    let check = || {
        let mut cmd = s.command();
        cmd.env("DHAN_LOGIN_CONFIG", &config)
            .args(["config", "check"]);
        run_blocking(cmd)
    };
    assert!(
        !check().stderr.contains("chmod 600"),
        "0600 needs no warning"
    );
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let r = check();
    assert!(r.stderr.contains("chmod 600"), "{r}");
    assert!(!r.stderr.contains("135790"), "{r}");
}

/// The live processes whose environment carries a browser session marker, with their
/// parent pid and session id.
#[cfg(all(feature = "browser", target_os = "linux"))]
fn browser_sessions() -> Vec<(u32, u32, String)> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        let Some(session) = env
            .split(|b| *b == 0)
            .find_map(|v| v.strip_prefix(b"DHAN_LOGIN_BROWSER_SESSION="))
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(ppid) = stat
            .rfind(')')
            .and_then(|at| stat[at + 1..].split_whitespace().nth(1))
            .and_then(|p| p.parse().ok())
        else {
            continue;
        };
        out.push((pid, ppid, String::from_utf8_lossy(session).into_owned()));
    }
    out
}

#[cfg(all(feature = "browser", target_os = "linux"))]
#[tokio::test(flavor = "multi_thread")]
async fn kill_9_takes_chromium_down_and_the_next_run_removes_its_profile() {
    if common::browser_tests_skipped(
        "kill_9_takes_chromium_down_and_the_next_run_removes_its_profile",
    ) {
        return;
    }
    let s = Stand::start().await;
    // The login page never answers and the browser waits for it as long as it may.
    s.server.set_fault_once(
        Endpoint::ConsentLoginPage,
        Fault::Delay(Duration::from_secs(600)),
    );
    let config = s.sandbox.write_config(
        "[profiles.default.browser]\nstep_timeout_secs = 600\noverall_timeout_secs = 600\n",
    );
    // A temp folder of its own: the profile this run leaves is the only one there.
    let tmp = s.sandbox.path().join("tmp");
    std::fs::create_dir(&tmp).expect("temp folder");
    let mut cmd = s.cli(["login", "--via", "browser"]);
    cmd.env("DHAN_LOGIN_CONFIG", &config).env("TMPDIR", &tmp);
    let mut child = tokio::process::Command::from(cmd)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start dhan-login");
    let me = child.id().expect("a pid");

    // Chromium is up and has asked for the page.
    let waited = std::time::Instant::now();
    let session = loop {
        let browser = browser_sessions()
            .into_iter()
            .find(|(_, ppid, _)| *ppid == me);
        if let Some((_, _, session)) = browser
            && s.server.calls(Endpoint::ConsentLoginPage) >= 1
        {
            break session;
        }
        assert!(
            waited.elapsed() < Duration::from_secs(60),
            "Chromium never asked for the login page"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let profiles: Vec<_> = std::fs::read_dir(&tmp)
        .expect("the temp folder")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().contains("dhan-login-chromium-"))
        .collect();
    assert_eq!(profiles.len(), 1, "{profiles:?}");
    let profile = profiles[0].clone();

    child.start_kill().expect("SIGKILL dhan-login");
    child.wait().await.expect("reap dhan-login");
    let killed = std::time::Instant::now();
    let of_run = || -> Vec<u32> {
        browser_sessions()
            .into_iter()
            .filter(|(_, _, s)| *s == session)
            .map(|(pid, _, _)| pid)
            .collect()
    };
    let mut left = of_run();
    while !left.is_empty() && killed.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        left = of_run();
    }
    assert!(
        left.is_empty(),
        "Chromium outlived the dhan-login that was killed: {left:?}"
    );
    assert!(
        profile.exists(),
        "nobody but the next run should have removed the profile"
    );

    // The next run (the page answers again) clears the dead run's profile.
    let mut cmd = s.cli(["login", "--via", "browser"]);
    cmd.env("DHAN_LOGIN_CONFIG", &config).env("TMPDIR", &tmp);
    run(cmd, None).await.assert_ok();
    assert!(
        !profile.exists(),
        "the profile of the killed run (its Session file holds the mobile number) is still there"
    );
}

#[cfg(all(feature = "browser", target_os = "linux"))]
#[tokio::test(flavor = "multi_thread")]
async fn chromium_starts_while_generate_consent_is_in_flight() {
    if common::browser_tests_skipped("chromium_starts_while_generate_consent_is_in_flight") {
        return;
    }
    let s = Stand::start().await;
    let held = Duration::from_secs(10);
    s.server
        .set_fault_once(Endpoint::GenerateConsent, Fault::Delay(held));
    let child = tokio::process::Command::from(s.cli(["login", "--via", "browser"]))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start dhan-login");
    let me = child.id().expect("a pid");
    let started = std::time::Instant::now();
    while !browser_sessions().iter().any(|(_, ppid, _)| *ppid == me) {
        assert!(
            started.elapsed() < held - Duration::from_secs(1),
            "no Chromium while generate-consent was held: it waits for the answer"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let out = child.wait_with_output().await.expect("dhan-login ends");
    assert!(out.status.success(), "the login failed after the wait");
    assert_eq!(s.server.calls(Endpoint::GenerateConsent), 1);
    assert!(
        started.elapsed() >= held,
        "the generate-consent answer was not held: the test proves nothing"
    );
}

/// Dhan refusing a TOTP code as already used (another machine, or the user's own app,
/// spent this 30 s step) says nothing about the PIN or the secret: exit 5 with a wait,
/// no lockout stored, and the next run is not held by one.
#[tokio::test(flavor = "multi_thread")]
async fn a_totp_already_used_elsewhere_is_transient_and_locks_nothing() {
    let s = Stand::start().await;
    let a = s.server.account().clone();
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    // Far from the step's end, so that the run below computes the same step.
    if now() % 30 > 22 {
        tokio::time::sleep(Duration::from_secs(30 - now() % 30 + 1)).await;
    }
    let code = totp_rs::Builder::new()
        .with_secret(totp_rs::Secret::try_from_base32(&a.totp_secret).unwrap())
        .build_noncompliant()
        .generate(now())
        .to_string();
    let elsewhere = reqwest::Client::new()
        .post(format!(
            "{}app/generateAccessToken",
            s.server.auth_base_url()
        ))
        .query(&[
            ("dhanClientId", a.client_id.as_str()),
            ("pin", a.pin.as_str()),
            ("totp", code.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(elsewhere.status().as_u16(), 200);

    let r = s.run(["token"]).await;
    r.assert_code(5);
    assert!(r.stderr.contains("already used"), "{r}");
    let lockouts = s.sandbox.state_dir().join("lockouts");
    let stored = std::fs::read_dir(&lockouts).map_or(0, |d| d.count());
    assert_eq!(stored, 0, "a lockout was stored in {}", lockouts.display());
    let again = s.run(["token"]).await;
    assert_ne!(again.code, Some(3), "the next run is held:\n{again}");
}
