//! `dhan-login init` (in a pseudo-terminal and without one), `status`'s per-path answer
//! to "will tomorrow work?", and the generated man pages and completions.

use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::pty::Pty;
use common::{Sandbox, Stand, run, run_blocking};
use dhan_login::ErrorClass;
use dhan_login::mock::TokenKind;

/// A config another tool (or the user) wrote: comments and another profile to keep.
const EXISTING: &str = "\
# my trading accounts
[profiles.work]
client_id = \"1100000099\"   # the office account
pin_command = \"pass show work/pin\"

[serve]
# listen = \"127.0.0.1:7787\"
";

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).expect("stat").permissions().mode() & 0o777
}

/// The demo account's secrets, which no output of `init` may show.
fn secrets(stand: &Stand) -> Vec<(&'static str, String)> {
    let a = stand.server.account();
    vec![
        ("PIN", a.pin.clone()),
        ("TOTP secret", a.totp_secret.clone()),
        ("API secret", a.api_secret.clone()),
        ("API key", a.api_key.clone()),
        ("mobile", a.mobile.clone()),
    ]
}

#[track_caller]
fn assert_no_secret(stand: &Stand, what: &str, text: &str) {
    for (kind, value) in secrets(stand) {
        assert!(!text.contains(&value), "the {kind} appears in {what}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn init_without_a_terminal_writes_the_profile_from_env_and_keeps_the_rest() {
    let s = Stand::start().await;
    let config = s.sandbox.write_config(EXISTING);
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let mut cmd = s.command();
    // Trace logging on: nothing init logs may hold a secret either.
    cmd.env("DHAN_LOGIN_CONFIG", &config)
        .env("DHAN_LOGIN_LOG", "trace")
        .args(["-vvv", "--profile", "demo", "init"]);
    let r = run(cmd, None).await;
    assert_eq!(r.code, Some(0), "init failed: {}", r.stderr);
    assert_no_secret(&s, "init's stdout", &r.stdout);
    assert_no_secret(&s, "init's stderr", &r.stderr);
    assert!(r.stdout.contains("totp     ready"), "{}", r.stdout);
    assert!(r.stdout.contains("browser  ready"), "{}", r.stdout);
    assert!(
        r.stdout.contains("next: dhan-login --profile demo token"),
        "{}",
        r.stdout
    );
    // Not asked without a terminal: proposed, with why, in one line.
    assert!(
        r.stdout
            .contains("tip: add login_at = \"08:00\" to the profile (before the 09:15 open"),
        "{}",
        r.stdout
    );

    let text = std::fs::read_to_string(&config).expect("read the config");
    for kept in EXISTING.split("\n\n") {
        assert!(
            text.contains(kept),
            "the existing file is kept as written:\n{text}"
        );
    }
    assert!(text.contains("[profiles.demo]"), "{text}");
    let parsed: toml::Table = toml::from_str(&text).expect("valid TOML");
    let demo = &parsed["profiles"]["demo"];
    let a = s.server.account();
    assert_eq!(demo["client_id"].as_str(), Some(a.client_id.as_str()));
    assert_eq!(demo["pin"].as_str(), Some(a.pin.as_str()));
    assert_eq!(
        demo["auth_base_url"].as_str(),
        Some(s.server.auth_base_url().as_str().trim_end_matches('/'))
    );
    assert_eq!(mode(&config), 0o600, "inline secrets: the file is private");

    let mut cmd = s.sandbox.command();
    cmd.env("DHAN_LOGIN_CONFIG", &config)
        .args(["--profile", "demo", "token"]);
    let t = run(cmd, None).await;
    t.assert_ok();
    assert!(
        s.server.is_live(t.out()),
        "a live token from the file alone"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn init_names_every_bad_value_and_writes_nothing() {
    let s = Stand::start().await;
    let config = s.sandbox.config_path();
    let mut cmd = s.command();
    cmd.env("DHAN_LOGIN_CONFIG", &config)
        .env("DHAN_PIN", "13579")
        .env("DHAN_MOBILE", "99999")
        .env_remove("DHAN_API_SECRET")
        .arg("init");
    let r = run(cmd, None).await;
    r.assert_class(ErrorClass::Config);
    for field in ["pin", "mobile", "api_secret"] {
        assert!(r.stderr.contains(field), "names {field}:\n{r}");
    }
    assert!(r.stderr.contains("DHAN_PIN"), "names the variable:\n{r}");
    assert!(
        !r.stderr.contains("13579") && !r.stderr.contains("99999"),
        "{r}"
    );
    assert!(!config.exists(), "nothing written");

    // No client id anywhere: says which variable or flag gives it.
    let mut cmd = s.sandbox.command();
    cmd.env("DHAN_LOGIN_CONFIG", &config).arg("init");
    let r = run(cmd, None).await;
    r.assert_class(ErrorClass::Config);
    assert!(
        r.stderr.contains("DHAN_CLIENT_ID") && r.stderr.contains("--client-id"),
        "{r}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn init_refuses_a_totp_uri_dhan_would_not_accept() {
    let s = Stand::start().await;
    let a = s.server.account();
    let uri = format!(
        "otpauth://totp/Dhan:{}?secret={}&digits=8",
        a.client_id, a.totp_secret
    );
    let mut cmd = s.command();
    cmd.env("DHAN_LOGIN_CONFIG", s.sandbox.config_path())
        .env("DHAN_TOTP_SECRET", &uri)
        .arg("init");
    let r = run(cmd, None).await;
    r.assert_class(ErrorClass::Config);
    assert!(r.stderr.contains("8 digits"), "{r}");
    assert!(
        !r.stderr.contains(&a.totp_secret),
        "the secret is not shown"
    );
}

/// A stand-in for `pass`: keeps each entry in a file under `store`.
fn fake_pass(bin: &Path, store: &Path) {
    std::fs::create_dir_all(bin).expect("bin folder");
    let script = format!(
        "#!/bin/sh\nstore='{}'\ncmd=$1; shift\nwhile [ $# -gt 1 ]; do shift; done\n\
         case $cmd in\n  insert) mkdir -p \"$store/$(dirname \"$1\")\"; cat > \"$store/$1\" ;;\n  \
         show) cat \"$store/$1\" ;;\n  *) exit 1 ;;\nesac\n",
        store.display()
    );
    let path = bin.join("pass");
    std::fs::write(&path, script).expect("write fake pass");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

#[tokio::test(flavor = "multi_thread")]
async fn init_in_a_terminal_asks_checks_hides_and_keeps_secrets_in_pass() {
    let s = Stand::start().await;
    let a = s.server.account().clone();
    let bin = s.sandbox.path().join("bin");
    let store = s.sandbox.path().join("pass-store");
    fake_pass(&bin, &store);
    let config = s.sandbox.config_path();
    let mut cmd = s.sandbox.command();
    cmd.env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
        .env("DHAN_LOGIN_CONFIG", &config)
        .env("DHAN_AUTH_BASE_URL", s.server.auth_base_url().as_str())
        .env("DHAN_API_BASE_URL", s.server.api_base_url().as_str())
        .arg("init");
    let answers = a.clone();
    let (seen, code) = tokio::task::spawn_blocking(move || {
        let mut p = Pty::spawn(cmd);
        p.expect("Where should the secrets be kept?");
        p.expect("1) pass");
        p.expect("Choice [1]: ");
        p.answer("");
        p.expect("Client id");
        p.answer("not-a-number");
        p.expect("must hold digits only");
        p.expect("Client id");
        p.answer(&answers.client_id);
        p.expect("Mobile number");
        p.answer(&answers.mobile);
        p.expect("PIN, 6 digits");
        p.answer("1234");
        p.expect("pin: must be exactly 6 digits");
        p.expect("PIN, 6 digits");
        p.answer(&answers.pin);
        p.expect("TOTP secret");
        p.answer(&answers.totp_secret);
        p.expect("API key");
        p.answer(&answers.api_key);
        p.expect("API secret");
        p.answer(&answers.api_secret);
        p.expect("Redirect URL");
        p.answer("");
        p.expect("08:00 proposed: before the 09:15 open");
        p.answer("08:00");
        p.expect("next: dhan-login token");
        p.finish()
    })
    .await
    .expect("the pty session");
    assert_eq!(code, 0, "init failed:\n{seen}");
    assert!(
        !seen.contains("tip: add login_at"),
        "no tip once it is set:\n{seen}"
    );
    assert!(
        seen.contains("1100000042"),
        "typed non-secrets echo:\n{seen}"
    );
    // Echo is off for secrets: not even the rejected PIN shows.
    for hidden in [&a.pin, &a.totp_secret, &a.api_key, &a.api_secret, &a.mobile] {
        assert!(
            !seen.contains(hidden.as_str()),
            "a secret was shown:\n{seen}"
        );
    }
    assert!(!seen.contains("1234\r"), "the rejected PIN was shown");
    assert!(
        seen.contains("pin, totp_secret, api_key, api_secret in pass"),
        "{seen}"
    );

    let text = std::fs::read_to_string(&config).expect("config written");
    for (kind, value) in secrets(&s) {
        assert!(!text.contains(&value), "the {kind} is inline in the file");
    }
    assert!(
        text.contains("pin_command = \"pass show 'dhan-login/default/pin'\""),
        "{text}"
    );
    assert!(text.contains("login_at = \"08:00\""), "{text}");
    let stored = std::fs::read_to_string(store.join("dhan-login/default/pin")).expect("in pass");
    assert_eq!(stored.trim(), a.pin);

    let mut cmd = s.sandbox.command();
    cmd.env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
        .env("DHAN_LOGIN_CONFIG", &config)
        .arg("token");
    let t = run(cmd, None).await;
    t.assert_ok();
    assert!(
        s.server.is_live(t.out()),
        "logged in with the secrets from pass"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn init_in_a_terminal_asks_before_touching_an_existing_profile() {
    let s = Stand::start().await;
    let config = s.sandbox.write_config(EXISTING);
    let mut cmd = s.sandbox.command();
    cmd.env("PATH", "/usr/bin:/bin")
        .env("DHAN_LOGIN_CONFIG", &config)
        .args(["--profile", "work", "init"]);
    let (seen, code) = tokio::task::spawn_blocking(move || {
        let mut p = Pty::spawn(cmd);
        p.expect("Profile `work` exists");
        p.answer("n");
        p.expect("Nothing written.");
        p.finish()
    })
    .await
    .expect("the pty session");
    assert_eq!(code, 0, "{seen}");
    let text = std::fs::read_to_string(&config).expect("config");
    assert_eq!(text, EXISTING, "unchanged");
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_while_a_secret_is_typed_writes_nothing_and_exits_130() {
    let s = Stand::start().await;
    let config = s.sandbox.config_path();
    let mut cmd = s.sandbox.command();
    cmd.env("PATH", "/usr/bin:/bin")
        .env("DHAN_LOGIN_CONFIG", &config)
        .env("DHAN_CLIENT_ID", "1100000042")
        .arg("init");
    let (seen, code) = tokio::task::spawn_blocking(move || {
        let mut p = Pty::spawn(cmd);
        p.expect("Mobile number");
        p.session.send("99999").expect("type");
        p.session.send_control('c').expect("Ctrl-C");
        p.expect("init interrupted: nothing written");
        p.finish()
    })
    .await
    .expect("the pty session");
    assert_eq!(code, 130, "{seen}");
    assert!(!seen.contains("99999"), "the half-typed secret was shown");
    assert!(!config.exists(), "nothing written");
}

#[tokio::test(flavor = "multi_thread")]
async fn init_without_a_terminal_can_keep_the_secrets_in_pass() {
    let s = Stand::start().await;
    let bin = s.sandbox.path().join("bin");
    let store = s.sandbox.path().join("pass-store");
    fake_pass(&bin, &store);
    let config = s.sandbox.config_path();
    let path = format!("{}:/usr/bin:/bin", bin.display());
    let mut cmd = s.command();
    cmd.env("PATH", &path)
        .env("DHAN_LOGIN_CONFIG", &config)
        .args(["init", "--secrets", "pass"]);
    let r = run(cmd, None).await;
    r.assert_ok();
    let text = std::fs::read_to_string(&config).expect("config written");
    for (kind, value) in secrets(&s) {
        assert!(!text.contains(&value), "the {kind} is inline in the file");
    }
    assert!(text.contains("totp_secret_command = "), "{text}");
    let mut cmd = s.sandbox.command();
    cmd.env("PATH", &path)
        .env("DHAN_LOGIN_CONFIG", &config)
        .arg("token");
    let t = run(cmd, None).await;
    t.assert_ok();
    assert!(s.server.is_live(t.out()));

    // op takes references, which only a person at a terminal can give.
    let mut cmd = s.command();
    cmd.env("DHAN_LOGIN_CONFIG", s.sandbox.path().join("other.toml"))
        .args(["init", "--secrets", "op"]);
    let r = run(cmd, None).await;
    r.assert_class(ErrorClass::Config);
    assert!(r.stderr.contains("op://"), "{r}");
}

#[tokio::test(flavor = "multi_thread")]
async fn status_says_which_paths_work_tomorrow_and_what_each_lacks() {
    let s = Stand::start().await;
    // PIN + TOTP only: the totp path, nothing for the consent paths.
    let mut cmd = s.command();
    cmd.env_remove("DHAN_API_KEY")
        .env_remove("DHAN_API_SECRET")
        .env_remove("DHAN_MOBILE")
        .args(["status", "--json"]);
    let v = run(cmd, None).await.json();
    assert_eq!(v["paths"]["totp"]["ready"], true, "{v}");
    assert_eq!(v["paths"]["renew"]["ready"], false, "{v}");
    let browser = v["paths"]["browser"]["detail"].as_str().expect("detail");
    assert!(
        browser.contains("missing mobile, api_key, api_secret"),
        "{v}"
    );
    assert_eq!(v["paths"]["manual"]["ready"], false, "{v}");
    assert!(
        v["tomorrow"].as_str().expect("verdict").starts_with("yes"),
        "{v}"
    );

    // Nothing but a client id: no path, and the text says so.
    let mut cmd = s.sandbox.command();
    cmd.env("DHAN_CLIENT_ID", "1100000042").arg("status");
    let r = run(cmd, None).await;
    r.assert_ok();
    assert!(r.stdout.contains("tomorrow:   no"), "{r}");
    assert!(
        r.stdout
            .contains("totp     no     missing pin, totp_secret"),
        "{r}"
    );

    // A token made on Dhan Web: renew is ready, and says until when.
    let web = s
        .server
        .issue_token(TokenKind::SelfWeb, Duration::from_secs(24 * 3600));
    run(s.cli(["import"]), Some(web.as_bytes()))
        .await
        .assert_ok();
    let v = s.run(["status", "--json"]).await.json();
    assert_eq!(v["paths"]["renew"]["ready"], true, "{v}");
    assert!(
        v["tomorrow"].as_str().expect("verdict").contains("renew"),
        "{v}"
    );
    assert!(
        !v.to_string().contains(&web),
        "status never shows the token"
    );

    // A PIN Dhan rejected: the paths that send it are not ready until it changes.
    let b = Sandbox::new();
    let mut cmd = s.command_in(&b);
    cmd.env("DHAN_PIN", "000000")
        .args(["login", "--via", "totp"]);
    run(cmd, None)
        .await
        .assert_class(ErrorClass::CredentialRejected);
    let mut cmd = s.command_in(&b);
    cmd.env("DHAN_PIN", "000000").args(["status", "--json"]);
    let v = run(cmd, None).await.json();
    assert_eq!(v["paths"]["totp"]["ready"], false, "{v}");
    let why = v["paths"]["totp"]["detail"].as_str().expect("detail");
    assert!(why.contains("Dhan rejected") && why.contains("pin"), "{v}");
    assert_eq!(
        v["paths"]["manual"]["ready"], true,
        "manual sends no PIN: {v}"
    );

    // Every browser field set but no Chromium where it is said to be.
    let mut cmd = s.command();
    cmd.env("DHAN_LOGIN_CHROME", "/nonexistent/chromium")
        .args(["status", "--json"]);
    let v = run(cmd, None).await.json();
    assert_eq!(v["paths"]["browser"]["ready"], false, "{v}");
    let why = v["paths"]["browser"]["detail"].as_str().expect("detail");
    assert!(why.contains("/nonexistent/chromium"), "{v}");
}

#[test]
fn man_pages_and_completions_are_generated_for_every_command() {
    let sandbox = Sandbox::new();
    let dir: PathBuf = sandbox.path().join("man1");
    let mut cmd = sandbox.command();
    cmd.arg("man").arg("--out").arg(&dir);
    run_blocking(cmd).assert_ok();
    for page in [
        "dhan-login.1",
        "dhan-login-init.1",
        "dhan-login-token.1",
        "dhan-login-serve.1",
    ] {
        let text = std::fs::read_to_string(dir.join(page))
            .unwrap_or_else(|e| panic!("{page} was not written: {e}"));
        assert!(text.contains(".TH"), "{page} is not a man page");
    }
    let mut cmd = sandbox.command();
    cmd.arg("man");
    let top = run_blocking(cmd);
    top.assert_ok();
    assert!(
        top.stdout.contains(".SH SUBCOMMANDS") || top.stdout.contains("init"),
        "{top}"
    );

    for shell in ["bash", "zsh", "fish"] {
        let mut cmd = sandbox.command();
        cmd.args(["completions", shell]);
        let r = run_blocking(cmd);
        r.assert_ok();
        assert!(r.stdout.contains("init"), "{shell} completes init");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ten_inits_at_once_leave_ten_profiles() {
    let s = Stand::start().await;
    let config = s.sandbox.write_config(EXISTING);
    let mut runs = tokio::task::JoinSet::new();
    for i in 0..10 {
        let mut cmd = s.command();
        cmd.env("DHAN_LOGIN_CONFIG", &config).args([
            "--profile",
            &format!("p{i}"),
            "init",
            "--no-input",
        ]);
        runs.spawn(run(cmd, None));
    }
    while let Some(r) = runs.join_next().await {
        r.expect("init ran").assert_ok();
    }
    let text = std::fs::read_to_string(&config).expect("read the config");
    let parsed: toml::Table = toml::from_str(&text).expect("valid TOML");
    let profiles = parsed["profiles"].as_table().expect("profiles");
    for i in 0..10 {
        assert!(
            profiles.contains_key(&format!("p{i}")),
            "p{i} lost:\n{text}"
        );
    }
    assert!(profiles.contains_key("work"), "{text}");
    assert_eq!(profiles.len(), 11, "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn init_writes_through_a_symlink_and_keeps_the_files_mode_owner_and_group() {
    use std::os::unix::fs::MetadataExt;
    let s = Stand::start().await;
    let real_dir = s.sandbox.path().join("etc-dhan-login");
    std::fs::create_dir(&real_dir).expect("mkdir");
    let real = real_dir.join("config.toml");
    std::fs::write(&real, EXISTING).expect("write");
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    // The documented service layout: root's file, readable by the service's group.
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if root {
        std::os::unix::fs::chown(&real, Some(0), Some(65534)).expect("chown");
    }
    let before = std::fs::metadata(&real).expect("stat");
    let link = s.sandbox.path().join("config-link.toml");
    std::os::unix::fs::symlink(&real, &link).expect("symlink");

    let mut cmd = s.command();
    cmd.env("DHAN_LOGIN_CONFIG", &link)
        .args(["--profile", "demo", "init", "--no-input"]);
    let r = run(cmd, None).await;
    r.assert_ok();
    assert!(r.stdout.contains("mode 0640"), "{r}");

    let meta = std::fs::symlink_metadata(&link).expect("lstat");
    assert!(meta.file_type().is_symlink(), "the link was replaced");
    let text = std::fs::read_to_string(&real).expect("read the target");
    assert!(
        text.contains("[profiles.demo]") && text.contains("[profiles.work]"),
        "{text}"
    );
    let after = std::fs::metadata(&real).expect("stat");
    assert_eq!(mode(&real), 0o640);
    assert_eq!((after.uid(), after.gid()), (before.uid(), before.gid()));
    if root {
        assert_eq!(after.gid(), 65534);
    }
    // Nothing was left beside the target (no temporary file, no second config).
    let names: Vec<String> = std::fs::read_dir(&real_dir)
        .expect("ls")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["config.toml"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn init_refuses_a_profile_name_no_command_takes_and_a_secret_with_a_line_break() {
    let s = Stand::start().await;
    let config = s.sandbox.config_path();
    for name in ["../evil", "a b", ".hidden"] {
        let mut cmd = s.command();
        cmd.env("DHAN_LOGIN_CONFIG", &config)
            .args(["--profile", name, "init", "--no-input"]);
        let r = run(cmd, None).await;
        r.assert_class(ErrorClass::Config);
        assert!(r.stderr.contains("profile"), "{r}");
        assert!(!config.exists(), "nothing written for `{name}`");
    }
    // On macOS the secret goes to `security -i` as one command line: a line break would
    // start a second command.
    let injected = "s3cret-value\nadd-generic-password -a x -s y -w z";
    let mut cmd = s.command();
    cmd.env("DHAN_LOGIN_CONFIG", &config)
        .env("DHAN_API_SECRET", injected)
        .args(["init", "--no-input"]);
    let r = run(cmd, None).await;
    r.assert_class(ErrorClass::Config);
    assert!(
        r.stderr.contains("api_secret") && r.stderr.contains("line break"),
        "{r}"
    );
    assert!(!r.stderr.contains("s3cret-value"), "{r}");
    assert!(!config.exists(), "nothing written");
}
