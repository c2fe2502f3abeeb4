//! `dhan-login config check` and how the binary reads its configuration: files, named
//! profiles, secrets from files and commands, the environment.

use crate::common;

use common::{Run, Sandbox, Stand, run, run_blocking};
use dhan_login::ErrorClass;
use dhan_login::mock::Endpoint;

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
    r.assert_class(ErrorClass::Config);
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
    r.assert_class(ErrorClass::Config);
    assert!(r.stderr.contains("colour"), "unknown key not named:\n{r}");

    // Unknown keys are caught in every table, including the nested browser one and a
    // misspelled top-level table.
    let r = config_check(
        "[profiles.default]\nclient_id = \"1\"\n[profiles.default.browser]\nheadless = true\n",
    )
    .await;
    r.assert_class(ErrorClass::Config);
    assert!(r.stderr.contains("headless"), "{r}");

    let r = config_check("[profile.default]\nclient_id = \"1100000042\"\n").await;
    r.assert_class(ErrorClass::Config);
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
    r.assert_class(ErrorClass::Config);
    assert!(
        r.stderr.contains("nope.toml"),
        "the file is not named:\n{r}"
    );
    assert_eq!(s.server.logins(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_client_id_is_a_config_error() {
    let s = Stand::start().await;
    let mut cmd = s.cli(["token"]);
    cmd.env_remove("DHAN_CLIENT_ID");
    let r = run(cmd, None).await;
    r.assert_class(ErrorClass::Config);
    assert!(
        r.stderr.contains("no way to obtain a token is configured"),
        "{r}"
    );
    assert_eq!(s.server.calls(Endpoint::GenerateAccessToken), 0);

    let mut cmd = s.cli(["config", "check"]);
    cmd.env_remove("DHAN_CLIENT_ID");
    let r = run(cmd, None).await;
    r.assert_class(ErrorClass::Config);
    assert!(r.stderr.contains("client_id"), "{r}");
}

#[tokio::test(flavor = "multi_thread")]
async fn config_check_names_every_bad_field_at_once() {
    let s = Stand::start().await;
    let mut cmd = s.cli(["config", "check"]);
    cmd.env("DHAN_PIN", "12ab")
        .env("DHAN_REDIRECT_URL", "not a url")
        .env("DHAN_LOGIN_MARGIN_MINUTES", "soon");
    let r = run(cmd, None).await;
    r.assert_class(ErrorClass::Config);
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
