//! Careless input is refused before anything reaches Dhan: malformed values, a profile
//! name that is a path, a variable that is not UTF-8, a secret pasted where a key goes,
//! and a `pin_command` that hangs or is interrupted. Against the stand-in, which counts
//! what reaches it; each test names the mistake it guards against.

use crate::common;

use std::time::Duration;

use common::cli::exit_of;
use common::{Stand, run};
use dhan_login::ErrorClass;
use dhan_login::mock::Endpoint;

/// A profile name that climbs out of the state folder is refused before any file is
/// made for it (it used to leave `<state>/evil.lock` behind), as a usage error.
#[tokio::test(flavor = "multi_thread")]
async fn a_profile_name_with_dot_dot_creates_no_file() {
    let stand = Stand::start().await;
    let r = stand
        .run(["--profile", "../evil", "login", "--via", "totp"])
        .await;
    r.assert_class(ErrorClass::Config);
    assert!(r.stderr.contains("profile name"), "{r}");
    assert!(!stand.sandbox.state_dir().join("evil.lock").exists());
    assert_eq!(stand.server.calls(Endpoint::GenerateAccessToken), 0);
}

/// A PIN of 5 or 7 digits, a mobile number with letters and an otpauth:// URI Dhan cannot
/// accept are refused before any request (exit 2, the field named, the value not shown).
#[tokio::test(flavor = "multi_thread")]
async fn malformed_inputs_are_refused_before_any_request() {
    let stand = Stand::start().await;
    let secret = stand.server.account().totp_secret.clone();
    let cases: Vec<(&str, String, &[&str], &str)> = vec![
        ("DHAN_PIN", "13579".into(), &["token"], "pin"),
        ("DHAN_PIN", "1357901".into(), &["token"], "pin"),
        (
            "DHAN_MOBILE",
            "99999OOO42".into(),
            &["login", "--via", "browser"],
            "mobile",
        ),
        (
            "DHAN_TOTP_SECRET",
            format!("otpauth://totp/Dhan:1?secret={secret}&digits=8"),
            &["token"],
            "totp_secret",
        ),
        (
            "DHAN_TOTP_SECRET",
            format!("otpauth://totp/Dhan:1?secret={secret}&algorithm=SHA256"),
            &["token"],
            "totp_secret",
        ),
        (
            "DHAN_TOTP_SECRET",
            format!("otpauth://totp/Dhan:1?secret={secret}&period=60"),
            &["token"],
            "totp_secret",
        ),
        (
            "DHAN_CLIENT_ID",
            "11000x0042".into(),
            &["token"],
            "client_id",
        ),
    ];
    for (var, value, args, field) in cases {
        let mut cmd = stand.cli(args);
        cmd.env(var, &value);
        let r = run(cmd, None).await;
        assert_eq!(
            r.code,
            Some(exit_of(ErrorClass::Config)),
            "{var}: exit {:?}",
            r.code
        );
        assert!(
            r.stderr.contains(&format!("{field}: ")),
            "{var}: the field is named"
        );
        assert!(
            !r.stderr.contains(&value) && !r.stdout.contains(&value),
            "{var}: the value is not shown"
        );
        for ep in Endpoint::ALL {
            assert_eq!(stand.server.calls(ep), 0, "{var}: nothing reached {ep:?}");
        }
    }
}

/// A DHAN_* value that is not UTF-8 is an error naming the variable (exit 2), never a
/// fall-back to the real auth.dhan.co or to the default state folder.
#[tokio::test(flavor = "multi_thread")]
async fn a_non_utf8_env_value_is_an_error_naming_the_variable() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    let stand = Stand::start().await;
    for var in [
        "DHAN_AUTH_BASE_URL",
        "DHAN_LOGIN_STATE_DIR",
        "DHAN_PIN",
        "DHAN_LOGIN_CONFIG",
    ] {
        let mut cmd = stand.cli(["token"]);
        cmd.env(var, OsStr::from_bytes(b"http://127.0.0.1:9/\xff\xfe"));
        let r = run(cmd, None).await;
        assert_eq!(r.code, Some(exit_of(ErrorClass::Config)), "{var}:\n{r}");
        assert!(r.stderr.contains(var), "{var} is named:\n{r}");
        assert_eq!(stand.server.calls(Endpoint::GenerateAccessToken), 0);
    }
    assert!(
        !stand.sandbox.path().join("xdg/state/dhan-login").exists(),
        "no default state folder was made"
    );
}

/// A secret pasted as a TOML key is not echoed by the parse error; a misspelt field
/// name still is (it helps, and it is no secret).
#[test]
fn a_secret_pasted_as_a_toml_key_is_not_echoed() {
    let sandbox = common::Sandbox::new();
    for (key, shown) in [
        ("135790", false),
        ("MOCKDHANDEMOTOTPSECRETMOCKDHAN23", false),
        ("pinn", true),
    ] {
        let config = sandbox.write_config(&format!("[profiles.default]\n{key} = \"x\"\n"));
        let mut cmd = sandbox.command();
        cmd.env("DHAN_LOGIN_CONFIG", &config)
            .args(["config", "check"]);
        let r = common::run_blocking(cmd);
        assert_eq!(r.code, Some(exit_of(ErrorClass::Config)), "{key}");
        assert!(
            r.stderr.contains("unknown field"),
            "{key}: {}",
            r.stderr.len()
        );
        assert_eq!(
            r.stderr.contains(key) || r.stdout.contains(key),
            shown,
            "{key}"
        );
    }
}

/// A `pin_command` that never answers is killed after 20 s (exit 2, the field named)
/// instead of hanging the login for ever.
#[tokio::test(flavor = "multi_thread")]
async fn a_hanging_pin_command_times_out() {
    let stand = Stand::start().await;
    let marker = stand.sandbox.path().join("still-running");
    let config = stand.sandbox.write_config(&format!(
        "[profiles.default]\npin_command = \"sleep 600; touch {}\"\n",
        marker.display()
    ));
    let mut cmd = stand.cli(["login", "--via", "totp"]);
    cmd.env_remove("DHAN_PIN").env("DHAN_LOGIN_CONFIG", &config);
    let r = run(cmd, None).await;
    assert_eq!(r.code, Some(exit_of(ErrorClass::Config)), "{r}");
    assert!(
        r.stderr.contains("pin_command: no answer within 20 s"),
        "{r}"
    );
    assert!(r.elapsed < std::time::Duration::from_secs(40), "{r}");
    assert_eq!(stand.server.calls(Endpoint::GenerateAccessToken), 0);
    // The whole group was killed: no shell waiting to run the rest is left behind.
    let left = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
        .any(|c| String::from_utf8_lossy(&c).contains(&*marker.to_string_lossy()));
    assert!(!left, "the pin_command's shell is still running");
}

/// SIGTERM (or Ctrl-C's SIGINT) while a `pin_command` runs ends dhan-login at once, exit
/// 130, instead of after the command's 20 s; the command's whole process group goes with
/// it, and no token, lockout or request comes of it.
#[tokio::test(flavor = "multi_thread")]
async fn a_signal_during_a_pin_command_ends_it_and_its_group() {
    for signal in [libc::SIGTERM, libc::SIGINT] {
        let stand = Stand::start().await;
        let pid_file = stand.sandbox.path().join("sleep.pid");
        // The shell waits for a grandchild: killing the shell alone would leave it.
        let config = stand.sandbox.write_config(&format!(
            "[profiles.default]\npin_command = \"sleep 60 & echo $! > {}; wait; echo 123456\"\n",
            pid_file.display()
        ));
        let mut cmd = stand.cli(["login", "--via", "totp"]);
        cmd.env_remove("DHAN_PIN").env("DHAN_LOGIN_CONFIG", &config);
        let child = common::spawn_piped(cmd);
        let mut sleep_pid = None;
        for _ in 0..400 {
            if let Some(pid) = std::fs::read_to_string(&pid_file)
                .ok()
                .and_then(|t| t.trim().parse::<i32>().ok())
            {
                sleep_pid = Some(pid);
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let sleep_pid = sleep_pid.expect("the pin_command started within 20 s");
        tokio::time::sleep(Duration::from_secs(1)).await;
        let sent = std::time::Instant::now();
        // SAFETY: signals the child this test started and still owns.
        unsafe { libc::kill(child.id().unwrap() as i32, signal) };
        let out = tokio::time::timeout(Duration::from_secs(40), child.wait_with_output())
            .await
            .expect("dhan-login ended")
            .unwrap();
        let took = sent.elapsed();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            took < Duration::from_secs(10),
            "signal {signal}: dhan-login took {took:?} to end: {stderr}"
        );
        assert_eq!(out.status.code(), Some(130), "signal {signal}: {stderr}");
        let mut gone = false;
        for _ in 0..100 {
            let stat =
                std::fs::read_to_string(format!("/proc/{sleep_pid}/stat")).unwrap_or_default();
            // Killed and reparented, it may show as a zombie until init reaps it.
            if stat.is_empty() || stat.split(' ').nth(2) == Some("Z") {
                gone = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            gone,
            "signal {signal}: the pin_command's sleep outlived dhan-login"
        );
        assert_eq!(stand.server.calls(Endpoint::GenerateAccessToken), 0);
        assert!(!stand.sandbox.token_file("default").exists());
        let lockouts = stand.sandbox.state_dir().join("lockouts");
        assert!(
            std::fs::read_dir(&lockouts).map_or(true, |mut d| d.next().is_none()),
            "signal {signal}: a lockout was written"
        );
    }
}
