//! `dhan-login token`, `exec`, `status`, `import`, `renew` and `logout` end to end, as child
//! processes against the local stand-in of Dhan (see tests/it/common/mod.rs).

use crate::common;

use std::time::Duration;

use chrono::{DateTime, Utc};
use common::cli::exit_of;
use common::cli::printed_token;
use common::{Stand, ist_time_of_day as ist_time, jwt_claims, run};
use dhan_login::ErrorClass;
use dhan_login::mock::{Endpoint, Fault, TokenKind};
use serde_json::Value;

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
async fn renew_of_an_api_token_sends_no_request() {
    let s = Stand::start().await;
    let token = printed_token(&s.run(["token"]).await);

    // Dhan renews only Dhan Web (SELF) tokens; the JWT says this one is APP.
    let r = s.run(["renew"]).await;
    assert!(!r.success(), "an APP token is not renewable:\n{r}");
    assert!(r.stderr.contains("APP"), "{r}");
    assert_eq!(
        s.server.calls(Endpoint::RenewToken),
        0,
        "no RenewToken request for an APP token"
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
    run(cmd, None)
        .await
        .assert_class(ErrorClass::CredentialRejected);
    assert_eq!(s.server.calls(Endpoint::GenerateAccessToken), 1);

    s.run(["logout"]).await.assert_ok();
    let cmd = s.cli_wrong_pin(["token"]);
    let r = run(cmd, None).await;
    r.assert_class(ErrorClass::CredentialRejected);
    assert_eq!(
        s.server.calls(Endpoint::GenerateAccessToken),
        1,
        "after logout the rejected PIN was sent to Dhan again:\n{r}"
    );
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

/// An APP token for the stand-in's account, imported as if an earlier login made it.
async fn imported_app_token(s: &Stand, life: Duration) -> String {
    let token = s.server.issue_token(TokenKind::App, life);
    run(s.cli(["import"]), Some(token.as_bytes()))
        .await
        .assert_ok();
    token
}

#[tokio::test(flavor = "multi_thread")]
async fn login_at_keeps_a_live_token_whatever_the_margin_and_replaces_an_older_one_once() {
    let s = Stand::start().await;
    // An hour left, a two-hour margin: without login_at this token would be replaced.
    let old = imported_app_token(&s, Duration::from_secs(3600)).await;
    let before = Utc::now() - chrono::Duration::seconds(60);
    let mut cmd = s.cli(["token"]);
    cmd.env("DHAN_LOGIN_MARGIN_MINUTES", "120")
        .env("DHAN_LOGIN_AT", ist_time(before));
    assert_eq!(printed_token(&run(cmd, None).await), old);
    assert_eq!(s.server.logins(), 0, "obtained after login_at: kept");

    // The daily time passes: the first caller after it replaces the token, once.
    let at = Utc::now() + chrono::Duration::seconds(2);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let daily = |args: &[&str]| {
        let mut cmd = s.cli(args);
        cmd.env("DHAN_LOGIN_MARGIN_MINUTES", "120")
            .env("DHAN_LOGIN_AT", ist_time(at));
        cmd
    };
    let new = printed_token(&run(daily(&["token"]), None).await);
    assert_ne!(new, old);
    assert!(s.server.is_live(&new));
    assert!(!s.server.is_live(&old), "one live token per client");
    assert_eq!(s.server.calls(Endpoint::RenewToken), 0, "an APP token");
    assert_eq!(s.server.logins(), 1);
    for _ in 0..2 {
        assert_eq!(printed_token(&run(daily(&["token"]), None).await), new);
    }
    assert_eq!(s.server.logins(), 1, "replaced once, not at every call");

    let v = run(daily(&["status", "--json"]), None).await.json();
    let next: DateTime<Utc> = v["next_daily_login_at"].as_str().unwrap().parse().unwrap();
    assert!(
        (next - (at + chrono::Duration::days(1)))
            .num_seconds()
            .abs()
            <= 1,
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_self_token_is_renewed_at_login_at_not_re_minted() {
    let s = Stand::start().await;
    let web = s
        .server
        .issue_token(TokenKind::SelfWeb, Duration::from_secs(24 * 3600));
    run(s.cli(["import"]), Some(web.as_bytes()))
        .await
        .assert_ok();
    let at = Utc::now() + chrono::Duration::seconds(2);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut cmd = s.cli(["token", "--json"]);
    cmd.env("DHAN_LOGIN_AT", ist_time(at));
    let v = run(cmd, None).await.json();
    assert_eq!(v["source"], "renew", "{v}");
    assert_eq!(v["kind"], "SELF", "{v}");
    assert_eq!(s.server.calls(Endpoint::RenewToken), 1);
    assert_eq!(s.server.logins(), 0);
    assert!(!s.server.is_live(&web));
}

#[tokio::test(flavor = "multi_thread")]
async fn valid_until_replaces_a_token_that_dies_before_that_time() {
    let s = Stand::start().await;
    let old = imported_app_token(&s, Duration::from_secs(3600)).await;
    let soon = ist_time(Utc::now() + chrono::Duration::minutes(20));
    assert_eq!(
        printed_token(&s.run(["token", "--valid-until", &soon]).await),
        old
    );
    assert_eq!(s.server.logins(), 0);
    let later = ist_time(Utc::now() + chrono::Duration::minutes(90));
    let new = printed_token(&s.run(["token", "--valid-until", &later]).await);
    assert_ne!(new, old);
    assert_eq!(s.server.logins(), 1);
    let r = s.run(["token", "--valid-until", "25:00"]).await;
    assert_eq!(r.code, Some(exit_of(ErrorClass::Config)), "{r}");
}

#[tokio::test(flavor = "multi_thread")]
async fn logins_off_exits_6_without_a_minting_request_and_prints_a_live_token() {
    let s = Stand::start().await;
    let mut cmd = s.cli(["token"]);
    cmd.env("DHAN_LOGIN_NO_LOGIN", "1");
    let r = run(cmd, None).await;
    assert_eq!(r.code, Some(exit_of(ErrorClass::LoginsOff)), "{r}");
    assert!(
        r.stderr
            .contains("no live token, and logins are off on this host"),
        "{r}"
    );
    // The same from the config file, for `exec` and a forced `login` too.
    let config = s
        .sandbox
        .write_config("[profiles.default]\nlogin = \"never\"\n");
    let never = |args: &[&str]| {
        let mut cmd = s.cli(args);
        cmd.env("DHAN_LOGIN_CONFIG", &config);
        cmd
    };
    for args in [&["exec", "--", "true"][..], &["login"][..], &["token"][..]] {
        let r = run(never(args), None).await;
        assert_eq!(
            r.code,
            Some(exit_of(ErrorClass::LoginsOff)),
            "{args:?}: {r}"
        );
    }
    for ep in [
        Endpoint::GenerateAccessToken,
        Endpoint::GenerateConsent,
        Endpoint::RenewToken,
    ] {
        assert_eq!(s.server.calls(ep), 0, "{ep:?}");
    }
    // A live token made elsewhere is handed out, even past its margin.
    let live = s
        .server
        .issue_token(TokenKind::App, Duration::from_secs(600));
    run(never(&["import"]), Some(live.as_bytes()))
        .await
        .assert_ok();
    assert_eq!(printed_token(&run(never(&["token"]), None).await), live);
    assert_eq!(s.server.logins(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_keeps_the_token_when_dhan_answers_503_or_does_not_answer() {
    let s = Stand::start().await;
    let token = printed_token(&s.run(["token"]).await);
    s.server
        .set_fault(Endpoint::Profile, dhan_login::mock::Fault::Status(503));
    let r = s.run(["token", "--verify"]).await;
    assert_eq!(printed_token(&r), token, "{r}");
    assert!(r.stderr.contains("kept unverified"), "{r}");
    // Longer than the 30 s request timeout.
    s.server.set_fault(
        Endpoint::Profile,
        dhan_login::mock::Fault::Delay(Duration::from_secs(45)),
    );
    let r = s.run(["token", "--verify"]).await;
    assert_eq!(printed_token(&r), token, "{r}");
    assert_eq!(s.server.logins(), 1, "no login for an unreachable Dhan");
    assert!(s.server.is_live(&token));

    // A token ended by a login elsewhere is replaced at once.
    s.server.clear_faults();
    let elsewhere = s
        .server
        .issue_token(TokenKind::App, Duration::from_secs(3600));
    assert!(!s.server.is_live(&token));
    let new = printed_token(&s.run(["token", "--verify"]).await);
    assert_ne!(new, token);
    assert_ne!(new, elsewhere);
    assert!(s.server.is_live(&new));
    assert_eq!(s.server.logins(), 2);
}

/// A token inside its refresh margin (10 minutes left, the margin is 30) is replaced by
/// `token`, cheapest path first. While Dhan cannot be reached it is still printed, since
/// it lives, with a warning saying how long it has left; a rejection is not hidden so.
#[tokio::test(flavor = "multi_thread")]
async fn a_token_inside_the_margin_is_replaced_or_printed_with_a_warning_while_it_cannot_be() {
    let s = Stand::start().await;
    let web = s
        .server
        .issue_token(TokenKind::SelfWeb, Duration::from_secs(10 * 60));
    run(s.cli(["import"]), Some(format!("{web}\n").as_bytes()))
        .await
        .assert_ok();
    // No mobile number: the browser path does not apply, so no Chromium is started.
    let token = |s: &Stand| {
        let mut cmd = s.cli(["token"]);
        cmd.env_remove("DHAN_MOBILE");
        run(cmd, None)
    };

    for ep in [
        Endpoint::RenewToken,
        Endpoint::GenerateAccessToken,
        Endpoint::GenerateConsent,
    ] {
        s.server.set_fault(ep, Fault::Status(503));
    }
    let r = token(&s).await;
    r.assert_ok();
    assert_eq!(printed_token(&r), web);
    assert!(s.server.calls(Endpoint::RenewToken) >= 1, "{r}");
    assert!(
        r.stderr.contains("warning") && r.stderr.contains(" min left"),
        "{r}"
    );
    assert!(!r.stderr.contains(&web));
    // `exec` alike: the program gets the live token, and the warning is said.
    let mut cmd = s.cli(["exec", "--", "sh", "-c", "printf %s \"$DHAN_ACCESS_TOKEN\""]);
    cmd.env_remove("DHAN_MOBILE");
    let r = run(cmd, None).await;
    r.assert_ok();
    assert_eq!(r.out(), web);
    assert!(r.stderr.contains(" min left"), "{r}");

    // A rejection is the user's to see: no token hides it.
    s.server.clear_faults();
    s.server.set_fault(Endpoint::RenewToken, Fault::Status(503));
    let mut wrong_pin = s.cli_wrong_pin(["token"]);
    wrong_pin.env_remove("DHAN_MOBILE");
    let r = run(wrong_pin, None).await;
    r.assert_class(ErrorClass::CredentialRejected);
    assert!(!r.stdout.contains(&web), "{r}");
    s.run(["unlock"]).await.assert_ok();

    // Dhan answers again: the same call replaces it, by RenewToken (no login).
    s.server.clear_faults();
    let logins = s.server.logins();
    let r = token(&s).await;
    r.assert_ok();
    let renewed = printed_token(&r);
    assert_ne!(renewed, web);
    assert!(s.server.is_live(&renewed));
    assert!(!r.stderr.contains("warning"), "{r}");
    assert_eq!(s.server.logins(), logins, "renewed, not logged in");
}

/// One `token` reads and parses the config file once, `[serve]` (a daemon to ask first)
/// and `--verify` included: the kernel counts the opens of the file (inotify).
#[tokio::test(flavor = "multi_thread")]
async fn one_token_call_reads_the_config_file_once() {
    let stand = Stand::start().await;
    // Nothing listens there, and there is no key: the daemon is not asked, but its
    // address is read from the file.
    let file = stand
        .sandbox
        .write_config("[serve]\nlisten = \"127.0.0.1:9\"\n");
    for args in [&["token"][..], &["token", "--verify"]] {
        let opens = Opens::watch(&file);
        let mut cmd = stand.cli(args);
        cmd.env("DHAN_LOGIN_CONFIG", &file);
        let r = run(cmd, None).await;
        printed_token(&r);
        assert_eq!(opens.count(), 1, "{args:?}: {r}");
    }
}

/// The opens of one file from now on, as inotify reports them.
struct Opens(std::os::fd::OwnedFd);

impl Opens {
    fn watch(path: &std::path::Path) -> Opens {
        use std::os::fd::FromRawFd;
        use std::os::unix::ffi::OsStrExt;
        let name = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
        // SAFETY: plain syscalls; the descriptor is owned from here on, the name is a
        // valid C string that outlives the call.
        unsafe {
            let fd = libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC);
            assert!(
                fd >= 0,
                "inotify_init1: {}",
                std::io::Error::last_os_error()
            );
            let fd = std::os::fd::OwnedFd::from_raw_fd(fd);
            // Opens and closes alternate, so the kernel never merges two opens into one
            // event.
            let mask = libc::IN_OPEN | libc::IN_CLOSE_NOWRITE | libc::IN_CLOSE_WRITE;
            let wd =
                libc::inotify_add_watch(std::os::fd::AsRawFd::as_raw_fd(&fd), name.as_ptr(), mask);
            assert!(
                wd >= 0,
                "inotify_add_watch: {}",
                std::io::Error::last_os_error()
            );
            Opens(fd)
        }
    }

    fn count(&self) -> usize {
        let mut buf = vec![0u8; 64 * 1024];
        // SAFETY: reads into a buffer of the length given.
        let n = unsafe {
            libc::read(
                std::os::fd::AsRawFd::as_raw_fd(&self.0),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        let n = usize::try_from(n).unwrap_or(0);
        let (mut at, mut opens) = (0, 0);
        // struct inotify_event: wd, mask, cookie, len (4 bytes each), then len bytes.
        while at + 16 <= n {
            let word = |i: usize| u32::from_ne_bytes(buf[at + i..at + i + 4].try_into().unwrap());
            if word(4) & libc::IN_OPEN != 0 {
                opens += 1;
            }
            at += 16 + word(12) as usize;
        }
        opens
    }
}
