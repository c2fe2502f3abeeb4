//! Ways out that an adversarial pass found, each closed: a device in place of the token
//! file, a stalled daemon, a token of another client id, endless files and chatty
//! commands, and secrets reaching a child process, a world-readable file or stderr.

use crate::common;

use base64::Engine;
use common::{Stand, run};
use dhan_login::ErrorClass;

/// `[serve] token_file` naming a FIFO (or `/dev/null`, a socket): the rename that replaces
/// the token file would replace it. `serve` refuses to start, naming the path, and the
/// FIFO is still a FIFO.
#[tokio::test(flavor = "multi_thread")]
async fn serve_refuses_a_token_file_that_is_not_a_regular_file() {
    use std::os::unix::fs::FileTypeExt;
    let server = dhan_login::mock::MockServer::start(Default::default())
        .await
        .unwrap();
    let sandbox = common::Sandbox::new();
    let fifo = sandbox.path().join("consumer.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    sandbox.write_config(&format!(
        "[serve]\ntoken_file = \"{}\"\n{}",
        fifo.display(),
        common::serve::profile("main", &server, common::serve::Login::Totp)
    ));
    let r = run(
        {
            let mut cmd = common::serve::cli(&sandbox);
            cmd.args(["serve", "--listen", "127.0.0.1:0", "main"]);
            cmd
        },
        None,
    )
    .await;
    r.assert_class(ErrorClass::Config);
    assert!(r.stderr.contains("serve.token_file"), "{r}");
    assert!(r.stderr.contains(&fifo.display().to_string()), "{r}");
    assert!(r.stderr.contains("not a regular file"), "{r}");
    assert!(
        std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo()
    );
}

/// Bodies sent a byte at a time used to hold their connections for ever: with the
/// daemon's connection cap at 32 (a small descriptor limit), 40 of them stalled
/// `/healthz`. Now each is cut once its body is late, and `/healthz` answers.
#[tokio::test(flavor = "multi_thread")]
async fn slow_request_bodies_are_cut_and_healthz_still_answers() {
    use std::os::unix::process::CommandExt;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let server = dhan_login::mock::MockServer::start(Default::default())
        .await
        .unwrap();
    let sandbox = common::serve::configured(
        &(common::serve::serve_table(3600.0)
            + &common::serve::profile("main", &server, common::serve::Login::Totp)),
    );
    let mut cmd = common::serve::cli(&sandbox);
    // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            // 160 descriptors: the daemon keeps 128 for itself and serves 32 connections.
            let limit = libc::rlimit {
                rlim_cur: 160,
                rlim_max: 160,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let d = common::serve::Daemon::start(cmd, &["main"]).await;

    let mut slow = tokio::task::JoinSet::new();
    for _ in 0..40 {
        let mut conn = tokio::net::TcpStream::connect(&d.addr).await.unwrap();
        slow.spawn(async move {
            let head = "POST /v1/challenge HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                        Content-Length: 4000\r\n\r\n{";
            if conn.write_all(head.as_bytes()).await.is_err() {
                return true;
            }
            let started = std::time::Instant::now();
            // A byte every half second, for longer than any timeout of the daemon's.
            while started.elapsed() < Duration::from_secs(120) {
                tokio::time::sleep(Duration::from_millis(500)).await;
                if conn.write_all(b" ").await.is_err() {
                    return true;
                }
                let mut buf = [0u8; 256];
                match tokio::time::timeout(Duration::from_millis(1), conn.read(&mut buf)).await {
                    Ok(Ok(0)) | Ok(Err(_)) => return true,
                    // A 408 answer; the close follows (the next write or read sees it).
                    Ok(Ok(_)) | Err(_) => {}
                }
            }
            false
        });
    }
    let health = tokio::time::timeout(Duration::from_secs(90), d.health())
        .await
        .unwrap_or_else(|_| panic!("/healthz stalled behind slow bodies:\n{}", d.log()));
    assert!(health == 200 || health == 503, "{health}");
    while let Some(cut) = slow.join_next().await {
        assert!(
            cut.unwrap(),
            "a slow body kept its connection for 2 minutes"
        );
    }
    d.stop().await;
}

/// `exec` hands the program the token, the client id and the DHAN_* variables named with
/// `--pass-env`, nothing else of dhan-login's: not the database URL (with its password),
/// the webhook (a bot token), the OTP command, nor any login secret. Other variables
/// (PATH, the program's own settings) pass as they are.
#[tokio::test(flavor = "multi_thread")]
async fn exec_passes_only_the_token_the_client_id_and_what_is_named() {
    let stand = Stand::start().await;
    let mut cmd = stand.cli([
        "exec",
        "--pass-env",
        "DHAN_API_BASE_URL",
        "--",
        "sh",
        "-c",
        "env | grep -E '^(DHAN_|BOT_SETTING=)' | sort",
    ]);
    cmd.env(
        "DHAN_LOGIN_NOTIFY_WEBHOOK",
        "https://api.telegram.org/botSECRETBOT/sendMessage",
    )
    .env("DHAN_OTP_COMMAND", "cat /secret/otp")
    .env("DHAN_LOGIN_LOG", "info")
    .env("DHAN_SOMETHING_NEW", "x")
    .env("BOT_SETTING", "kept");
    let r = run(cmd, None).await;
    r.assert_ok();
    let names: Vec<&str> = r
        .stdout
        .lines()
        .filter_map(|l| l.split_once('=').map(|(n, _)| n))
        .collect();
    assert_eq!(
        names,
        [
            "BOT_SETTING",
            "DHAN_ACCESS_TOKEN",
            "DHAN_API_BASE_URL",
            "DHAN_CLIENT_ID"
        ],
        "{r}"
    );
    assert!(!r.stdout.contains("SECRETBOT"));

    // A login secret cannot be named: refused before any login.
    let r = stand
        .run(["exec", "--pass-env", "DHAN_PIN", "--", "true"])
        .await;
    r.assert_class(ErrorClass::Config);
    assert!(r.stderr.contains("login secret"), "{r}");
}

/// Files and commands whose size the user controls are read up to a cap: `--config
/// /dev/zero` and `pin_file = "/dev/zero"` used to grow to gigabytes, and a command
/// printing more than 64 KiB died of SIGPIPE (exit 141). Each is a configuration error
/// naming what is wrong.
#[tokio::test(flavor = "multi_thread")]
async fn endless_files_and_chatty_commands_are_bounded_config_errors() {
    let sandbox = common::Sandbox::new();
    let mut cmd = sandbox.command();
    cmd.args(["--config", "/dev/zero", "config", "check"]);
    let r = run(cmd, None).await;
    r.assert_class(ErrorClass::Config);
    assert!(r.stderr.contains("more than 1024 KiB"), "{r}");

    for (field, line) in [
        ("pin_file", "pin_file = \"/dev/zero\""),
        (
            "pin_command",
            "pin_command = \"head -c 300000 /dev/zero | tr '\\\\\\\\0' 7\"",
        ),
    ] {
        let config = sandbox.write_config(&format!(
            "[profiles.default]\nclient_id = \"1100000042\"\n{line}\n"
        ));
        let mut cmd = sandbox.command();
        cmd.env("DHAN_LOGIN_CONFIG", &config)
            .args(["config", "check"]);
        let r = run(cmd, None).await;
        r.assert_class(ErrorClass::Config);
        assert!(
            r.stdout.contains("more than 64 KiB") || r.stderr.contains("more than 64 KiB"),
            "{field}: {r}"
        );
        assert!(
            !r.stderr.contains("141") && !r.stdout.contains("141"),
            "{field}: {r}"
        );
    }
}

/// An API key with a line break in it passed `config check`, then every login failed as
/// "temporary" (exit 5, retried for ever). It is now a configuration error naming the
/// field, never the value.
#[tokio::test(flavor = "multi_thread")]
async fn an_api_key_with_a_line_break_fails_config_check() {
    let sandbox = common::Sandbox::new();
    let config = sandbox.write_config(
        "[profiles.default]\nclient_id = \"1100000042\"\npin = \"135790\"\n\
         totp_secret = \"MOCKDHANDEMOTOTPSECRETMOCKDHAN23\"\n\
         api_key = \"keyfirsthalf\\nkeysecondhalf\"\napi_secret = \"apisecretvalue\"\n",
    );
    let mut cmd = sandbox.command();
    cmd.env("DHAN_LOGIN_CONFIG", &config)
        .args(["config", "check"]);
    let r = run(cmd, None).await;
    r.assert_class(ErrorClass::Config);
    let all = format!("{}{}", r.stdout, r.stderr);
    assert!(all.contains("api_key"), "{r}");
    assert!(all.contains("line break"), "{r}");
    assert!(!all.contains("keyfirsthalf"), "the value is shown: {r}");
    assert!(!all.contains("api_secret:"), "the secret is fine: {r}");
}

/// `import` of a token of another account (another client id than the profile's) is
/// refused: it used to be stored without a word, then handed out as this account's.
#[tokio::test(flavor = "multi_thread")]
async fn import_refuses_a_token_of_another_client_id() {
    let stand = Stand::start_with(dhan_login::mock::MockOptions {
        accounts: 2,
        ..Default::default()
    })
    .await;
    let other = stand.server.accounts()[1].client_id.clone();
    let theirs = stand
        .server
        .issue_token_for(
            &other,
            dhan_login::mock::TokenKind::SelfWeb,
            std::time::Duration::from_secs(3600),
        )
        .unwrap();
    let r = run(stand.cli(["import"]), Some(theirs.as_bytes())).await;
    r.assert_class(ErrorClass::Config);
    assert!(r.stderr.contains(&other), "{r}");
    assert!(!r.stderr.contains(&theirs), "the token is shown: {r}");
    let status = stand.run(["status", "--json"]).await;
    assert!(
        !status.stdout.contains("\"import\""),
        "it was stored: {status}"
    );
    // The profile's own account still imports.
    let mine = stand.server.issue_token(
        dhan_login::mock::TokenKind::SelfWeb,
        std::time::Duration::from_secs(3600),
    );
    run(stand.cli(["import"]), Some(mine.as_bytes()))
        .await
        .assert_ok();
}

/// A store key readable by every user opens every stored token, and a config readable by
/// every user may hold the database's password: both are warned about (a group-readable
/// config, the documented service layout, is not).
#[tokio::test(flavor = "multi_thread")]
async fn world_readable_store_key_and_database_password_are_warned_about() {
    use std::os::unix::fs::PermissionsExt;
    let sandbox = common::Sandbox::new();
    let key = sandbox.path().join("store.key");
    std::fs::write(
        &key,
        base64::engine::general_purpose::STANDARD.encode([5u8; 32]),
    )
    .unwrap();
    let config = sandbox.write_config(&format!(
        "[store]\nurl = \"postgres://dhan:Pw0rdInConfig@127.0.0.1:9/dhan\"\nkey_file = \"{}\"\n\
         [profiles.default]\nclient_id = \"1100000042\"\npin = \"135790\"\n\
         totp_secret = \"MOCKDHANDEMOTOTPSECRETMOCKDHAN23\"\n",
        key.display()
    ));
    let check = |mode_config: u32, mode_key: u32| {
        std::fs::set_permissions(&config, std::fs::Permissions::from_mode(mode_config)).unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(mode_key)).unwrap();
        let mut cmd = sandbox.command();
        cmd.env("DHAN_LOGIN_CONFIG", &config)
            .args(["config", "check"]);
        cmd
    };
    let r = run(check(0o644, 0o644), None).await;
    assert!(
        r.stderr
            .contains("database's password and is readable by every user"),
        "{r}"
    );
    assert!(
        r.stderr.contains("store key") && r.stderr.contains("chmod 600"),
        "{r}"
    );
    assert!(!r.stderr.contains("Pw0rdInConfig"), "{r}");
    let r = run(check(0o640, 0o600), None).await;
    assert!(!r.stderr.contains("readable by every user"), "{r}");
}

/// A `*_command`'s stderr reached the terminal and the journal as it was: `echo "pin is
/// 135790" >&2` showed the PIN. It is relayed to the log with digit runs and key-like
/// words masked, in `config check` (blocking) and in a login (on the runtime).
#[tokio::test(flavor = "multi_thread")]
async fn a_secret_command_s_stderr_is_masked() {
    let stand = Stand::start().await;
    let account = stand.server.account().clone();
    let config = stand.sandbox.write_config(&format!(
        "[profiles.default]\npin_command = \"echo 'pin is {pin}' >&2; echo 'totp {totp}' >&2; echo {pin}\"\n",
        pin = account.pin,
        totp = account.totp_secret
    ));
    for args in [&["config", "check"][..], &["login", "--via", "totp"][..]] {
        let mut cmd = stand.cli(args);
        cmd.env_remove("DHAN_PIN").env("DHAN_LOGIN_CONFIG", &config);
        let r = run(cmd, None).await;
        r.assert_ok();
        assert!(r.stderr.contains("pin is ****"), "{args:?}: {r}");
        assert!(r.stderr.contains("totp ****"), "{args:?}: {r}");
        assert!(
            !r.stderr.contains(&account.pin),
            "{args:?}: the PIN is shown"
        );
        assert!(
            !r.stderr.contains(&account.totp_secret),
            "{args:?}: the secret is shown"
        );
    }
}
