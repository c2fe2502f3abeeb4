//! Issue #11: hostile answers, careless input and failing disks, against the stand-in,
//! which counts what reaches it. Each test names the failure it guards against.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::cli::exit_of;
use common::{Stand, run};
use dhan_login::ErrorClass;
use dhan_login::mock::{Endpoint, Fault};

const RATE_LIMIT: &str =
    r#"{"status":"error","message":"Token can be generated once every 2 minutes."}"#;

fn respond(status: u16, body: &str, content_type: &str) -> Fault {
    Fault::Respond {
        status,
        body: body.to_owned(),
        content_type: content_type.to_owned(),
    }
}

/// Dhan's one-token-per-2-minutes answer, at HTTP 200 and at 400: a rate limit (exit 5,
/// "after 125 s": the window counts from this attempt, plus a margin for the clocks), no
/// lockout, and no fall-through to a consent.
#[tokio::test(flavor = "multi_thread")]
async fn the_two_minute_answer_is_a_rate_limit_and_stops_the_chain() {
    for status in [200, 400] {
        let stand = Stand::start().await;
        stand.server.set_fault_once(
            Endpoint::GenerateAccessToken,
            respond(status, RATE_LIMIT, "application/json"),
        );
        let r = stand.run(["token"]).await;
        r.assert_class(ErrorClass::Transient);
        assert!(r.stderr.contains("after 125 s"), "HTTP {status}:\n{r}");
        assert_eq!(
            stand.server.calls(Endpoint::GenerateConsent),
            0,
            "HTTP {status}: no consent spent to get round a rate limit:\n{r}"
        );
        // Not a lockout: the next run logs in.
        let again = stand.run(["token"]).await;
        again.assert_ok();
        assert_eq!(stand.server.calls(Endpoint::GenerateAccessToken), 2);
    }
}

/// A CDN's "you have been blocked" page is no verdict on the PIN: no lockout.
#[tokio::test(flavor = "multi_thread")]
async fn an_html_error_page_is_not_a_credential_rejection() {
    let stand = Stand::start().await;
    let page = "<html><body><h1>Sorry, you have been blocked</h1><p>This attempt was logged. \
                Check your PIN, OTP and secret.</p></body></html>";
    stand.server.set_fault_once(
        Endpoint::GenerateAccessToken,
        respond(403, page, "text/html"),
    );
    let r = stand.run(["login", "--via", "totp"]).await;
    assert_ne!(
        r.code,
        Some(exit_of(ErrorClass::CredentialRejected)),
        "a proxy page is not Dhan saying no:\n{r}"
    );
    let again = stand.run(["login", "--via", "totp"]).await;
    again.assert_ok();
}

/// After a wrong PIN, neither a failing `api_secret_command` (which the PIN+TOTP path
/// does not send) nor a corrupt state file lets the same PIN reach Dhan again; a corrupt
/// lockout file counts as locked.
#[tokio::test(flavor = "multi_thread")]
async fn a_lockout_survives_a_failing_secret_command_and_corrupt_files() {
    let stand = Stand::start().await;
    run(stand.cli_wrong_pin(["login", "--via", "totp"]), None)
        .await
        .assert_class(ErrorClass::CredentialRejected);
    assert_eq!(stand.server.calls(Endpoint::GenerateAccessToken), 1);

    let config = stand
        .sandbox
        .write_config("[profiles.default]\napi_secret_command = \"exit 1\"\n");
    let mut failing = stand.cli_wrong_pin(["token"]);
    failing
        .env_remove("DHAN_API_SECRET")
        .env("DHAN_LOGIN_CONFIG", &config);
    let r = run(failing, None).await;
    r.assert_class(ErrorClass::CredentialRejected);
    assert!(r.stderr.contains("dhan-login unlock"), "{r}");

    std::fs::write(stand.sandbox.token_file("default"), b"{\"token\": nul").unwrap();
    run(stand.cli_wrong_pin(["token"]), None)
        .await
        .assert_class(ErrorClass::CredentialRejected);

    let lockouts = stand.sandbox.state_dir().join("lockouts/default.json");
    std::fs::write(&lockouts, b"\x00garbage").unwrap();
    let r = run(stand.cli_wrong_pin(["token"]), None).await;
    r.assert_class(ErrorClass::CredentialRejected);
    assert!(r.stderr.contains("cannot be read"), "{r}");
    assert_eq!(
        stand.server.calls(Endpoint::GenerateAccessToken),
        1,
        "the rejected PIN reached Dhan once"
    );
    // `unlock` is the way out of a corrupt lockout file too.
    stand.run(["unlock"]).await.assert_ok();
    assert!(!lockouts.exists());
}

/// A generate-consent 401 (the API key pair) holds the consent paths, not PIN+TOTP.
#[tokio::test(flavor = "multi_thread")]
async fn a_rejected_api_secret_does_not_block_the_pin_totp_path() {
    let stand = Stand::start().await;
    stand
        .server
        .set_fault_once(Endpoint::GenerateConsent, Fault::WrongCredential);
    stand
        .run(["login", "--via", "browser"])
        .await
        .assert_class(ErrorClass::CredentialRejected);
    stand.run(["login", "--via", "totp"]).await.assert_ok();
    // The consent path stays held: the same key pair is not sent again.
    stand
        .run(["login", "--via", "browser"])
        .await
        .assert_class(ErrorClass::CredentialRejected);
    assert_eq!(stand.server.calls(Endpoint::GenerateConsent), 1);
}

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

/// A server that answers every request with a body that never ends (HEAD excepted).
async fn endless_server() -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut head = vec![0u8; 8192];
                let n = stream.read(&mut head).await.unwrap_or(0);
                if head[..n].starts_with(b"HEAD") {
                    let _ = stream
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                        )
                        .await;
                    return;
                }
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n{\"message\":\"")
                    .await;
                let chunk = vec![b'a'; 64 * 1024];
                while stream.write_all(&chunk).await.is_ok() {}
            });
        }
    });
    addr
}

/// An endless answer is cut at 1 MiB: the login ends at once with a bounded read
/// instead of eating memory until the request times out.
#[tokio::test(flavor = "multi_thread")]
async fn an_endless_answer_is_cut_at_one_mebibyte() {
    let stand = Stand::start().await;
    let addr = endless_server().await;
    let mut cmd = stand.cli(["login", "--via", "totp"]);
    cmd.env("DHAN_AUTH_BASE_URL", format!("http://{addr}"));
    let r = run(cmd, None).await;
    assert_eq!(r.code, Some(1), "{r}");
    assert!(r.stderr.contains("larger than 1024 KiB"), "{r}");
    assert!(
        r.elapsed < std::time::Duration::from_secs(15),
        "not read until the 30 s timeout: {r}"
    );
}

/// `token` asking a "daemon" that streams forever on `[serve] listen` stops at 1 MiB.
#[tokio::test(flavor = "multi_thread")]
async fn an_endless_daemon_answer_is_cut_at_one_mebibyte() {
    let stand = Stand::start().await;
    let addr = endless_server().await;
    let key = stand.sandbox.path().join("serve.key");
    std::fs::write(&key, "k3y-for-the-test").unwrap();
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let config = stand.sandbox.write_config(&format!(
        "[serve]\nlisten = \"{addr}\"\nkey_file = \"{}\"\n",
        key.display()
    ));
    let mut cmd = stand.cli(["token"]);
    cmd.env("DHAN_LOGIN_CONFIG", &config);
    let r = run(cmd, None).await;
    assert_eq!(r.code, Some(1), "{r}");
    assert!(r.stderr.contains("larger than 1024 KiB"), "{r}");
    assert!(r.elapsed < std::time::Duration::from_secs(15), "{r}");
}

/// A listener that records every byte it receives and answers each request with `answer`.
async fn squatter(answer: String) -> (std::net::SocketAddr, Arc<Mutex<Vec<u8>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let (log, answer) = (log.clone(), answer.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                // Everything the client sends within a moment, whatever its framing.
                while let Ok(Ok(n)) =
                    tokio::time::timeout(Duration::from_millis(300), stream.read(&mut buf)).await
                {
                    if n == 0 {
                        break;
                    }
                    log.lock().unwrap().extend_from_slice(&buf[..n]);
                }
                let _ = stream.write_all(answer.as_bytes()).await;
            });
        }
    });
    (addr, seen)
}

fn http_answer(status: &str, extra: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\n{extra}content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// `token` and `exec` on a `[serve] listen` port held by something else: the key, its
/// digest (the HMAC key) and any request MAC that could be replayed never reach it; only
/// a random nonce does. The client stops with exit 2 naming the key file, and does not
/// log in itself.
#[tokio::test(flavor = "multi_thread")]
async fn a_squatter_on_the_serve_port_gets_neither_the_key_nor_a_mac() {
    use base64::Engine;
    use sha2::Digest;
    let stand = Stand::start().await;
    let key_text = "b1e55edb1e55edb1e55edb1e55edb1e55edb1e55edb1e55edb1e55edb1e55ed0";
    let key = stand.sandbox.path().join("serve.key");
    std::fs::write(&key, format!("{key_text}\n")).unwrap();
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let digest = sha2::Sha256::digest(key_text.as_bytes());
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let forbidden = [
        key_text.to_owned(),
        b64.encode(key_text),
        b64.encode(digest),
        base64::engine::general_purpose::STANDARD.encode(digest),
        digest.iter().map(|b| format!("{b:02x}")).collect(),
    ];
    let token = jwt(serde_json::json!({"exp": 4102444800u64, "dhanClientId": "1100000001"}));
    let answers = [
        // What a Bearer-only server says.
        http_answer(
            "401 Unauthorized",
            "www-authenticate: Bearer realm=\"dhan-login\"\r\n",
            r#"{"error":"send the key"}"#,
        ),
        // A forged proof.
        http_answer(
            "200 OK",
            "",
            &format!(
                r#"{{"daemon_nonce":"{}","proof":"{}"}}"#,
                b64.encode([1u8; 32]),
                b64.encode([2u8; 32])
            ),
        ),
        // A server that answers everything with a token.
        http_answer(
            "200 OK",
            "",
            &format!(
                r#"{{"access_token":"{token}","client_id":"1100000001","expires_at":"2099-12-31T00:00:00Z","kind":"SELF","source":"renew"}}"#
            ),
        ),
    ];
    for (i, answer) in answers.into_iter().enumerate() {
        let (addr, seen) = squatter(answer).await;
        let config = stand.sandbox.write_config(&format!(
            "[serve]\nlisten = \"{addr}\"\nkey_file = \"{}\"\n",
            key.display()
        ));
        let args: &[&str] = if i == 0 {
            &["exec", "--", "true"]
        } else {
            &["token"]
        };
        let mut cmd = stand.cli(args);
        cmd.env("DHAN_LOGIN_CONFIG", &config);
        let r = run(cmd, None).await;
        let seen = String::from_utf8_lossy(&seen.lock().unwrap()).into_owned();
        for f in &forbidden {
            assert!(!seen.contains(f.as_str()), "answer {i}: the key reached it");
        }
        assert!(
            seen.starts_with("POST /v1/challenge "),
            "answer {i}: {seen}"
        );
        assert_eq!(
            seen.matches("HTTP/1.1\r\n").count(),
            1,
            "one request: {seen}"
        );
        let lower = seen.to_ascii_lowercase();
        assert!(
            !lower.contains("authorization") && !lower.contains("bearer"),
            "answer {i}: {seen}"
        );
        assert_eq!(r.code, Some(exit_of(ErrorClass::Config)), "answer {i}: {r}");
        assert!(
            r.stderr.contains("did not prove it holds the key")
                && r.stderr.contains(&*key.to_string_lossy()),
            "answer {i}: {r}"
        );
        assert!(!r.stdout.contains(&token), "answer {i}: {r}");
    }
    assert_eq!(stand.server.logins(), 0, "no login of its own");
}

/// A JWT-shaped value with these claims (unsigned: nobody here checks the signature).
fn jwt(claims: serde_json::Value) -> String {
    use base64::Engine;
    let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!(
        "{}.{}.c2ln",
        e.encode(br#"{"alg":"HS512","typ":"JWT"}"#),
        e.encode(claims.to_string())
    )
}

fn grant_body(token: &str, client_id: &str, expiry: &str) -> String {
    serde_json::json!({
        "dhanClientId": client_id, "dhanClientName": "X", "dhanClientUcc": "U",
        "givenPowerOfAttorney": true, "accessToken": token, "expiryTime": expiry,
    })
    .to_string()
}

/// A token or client id carrying a newline never becomes a second line of `--env`: the
/// grant is refused (exit 1), nothing is printed and nothing stored.
#[tokio::test(flavor = "multi_thread")]
async fn a_token_with_a_newline_is_never_printed_nor_stored() {
    let stand = Stand::start().await;
    let id = stand.server.account().client_id.clone();
    let exp = common::unix_now() + 3600;
    let good = jwt(serde_json::json!({"dhanClientId": id, "exp": exp}));
    for (token, client) in [
        (format!("{good}\nLD_PRELOAD=/tmp/evil.so"), id.clone()),
        (good.clone(), format!("{id}\nLD_PRELOAD=/tmp/evil.so")),
    ] {
        stand.server.set_fault_once(
            Endpoint::GenerateAccessToken,
            respond(
                200,
                &grant_body(&token, &client, "2099-01-01T00:00:00"),
                "application/json",
            ),
        );
        let r = stand.run(["login", "--via", "totp", "--env"]).await;
        assert_eq!(r.code, Some(1), "{r}");
        assert!(r.stdout.is_empty(), "{r}");
        assert!(!r.stderr.contains("LD_PRELOAD"), "{r}");
        assert!(
            !stand.sandbox.token_file("default").exists() || {
                let state = std::fs::read_to_string(stand.sandbox.token_file("default")).unwrap();
                !state.contains("LD_PRELOAD")
            }
        );
        // The next login must not reuse this run's TOTP step: start from a fresh one.
        stand.server.set_totp_reuse_allowed(true);
    }
}

/// A state file edited to hold a token with a newline is not handed out: `token --env`
/// logs in anew and prints exactly two lines.
#[tokio::test(flavor = "multi_thread")]
async fn a_tampered_stored_token_is_not_printed() {
    let stand = Stand::start().await;
    stand.run(["token"]).await.assert_ok();
    let path = stand.sandbox.token_file("default");
    let mut state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let good = state["token"]["access_token"].as_str().unwrap().to_owned();
    state["token"]["access_token"] = format!("{good}\nLD_PRELOAD=/tmp/evil.so").into();
    std::fs::write(&path, state.to_string()).unwrap();
    let r = common::run_within(
        stand.cli(["token", "--env"]),
        None,
        std::time::Duration::from_secs(70),
    )
    .await;
    r.assert_ok();
    assert_eq!(r.stdout.lines().count(), 2, "{r}");
    assert!(!r.stdout.contains("LD_PRELOAD"), "{r}");
}

/// An expired grant is refused (not stored, not printed), and an `expiryTime` later than
/// the JWT's `exp` does not win.
#[tokio::test(flavor = "multi_thread")]
async fn expired_grants_are_refused_and_the_earlier_expiry_wins() {
    let stand = Stand::start().await;
    stand.server.set_totp_reuse_allowed(true);
    let id = stand.server.account().client_id.clone();
    let past = jwt(serde_json::json!({"dhanClientId": id, "exp": common::unix_now() - 60}));
    stand.server.set_fault_once(
        Endpoint::GenerateAccessToken,
        respond(
            200,
            &grant_body(&past, &id, "2020-01-01T00:00:00"),
            "application/json",
        ),
    );
    let r = stand.run(["login", "--via", "totp"]).await;
    assert_eq!(r.code, Some(1), "{r}");
    assert!(r.stdout.is_empty(), "{r}");
    assert!(r.stderr.contains("expired"), "{r}");
    let status = stand.run(["status", "--json"]).await;
    assert!(status.json()["token"].is_null(), "{status}");

    let exp = common::unix_now() + 3600;
    let soon = jwt(serde_json::json!({"dhanClientId": id, "exp": exp}));
    stand.server.set_fault_once(
        Endpoint::GenerateAccessToken,
        respond(
            200,
            &grant_body(&soon, &id, "2099-01-01T00:00:00"),
            "application/json",
        ),
    );
    let r = common::run_within(
        stand.cli(["login", "--via", "totp", "--json"]),
        None,
        std::time::Duration::from_secs(70),
    )
    .await;
    r.assert_ok();
    let at =
        chrono::DateTime::parse_from_rfc3339(r.json()["expires_at"].as_str().unwrap()).unwrap();
    assert_eq!(at.timestamp() as u64, exp, "{r}");
}

/// The binary with writes to regular files failing past `limit` bytes (RLIMIT_FSIZE, as
/// on a full disk; root is not exempt, unlike a read-only folder). Reads, renames and
/// pipes still work.
fn disk_full(mut cmd: std::process::Command, limit: u64) -> std::process::Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            // Ignored, so a write past the limit fails with EFBIG instead of killing us.
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let small = libc::rlimit {
                rlim_cur: limit as libc::rlim_t,
                rlim_max: libc::RLIM_INFINITY,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &small) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd
}

/// Disk full during a login: the minted token is printed for this run with a loud
/// failure (exit 1), and no later run prints the token it replaced.
#[tokio::test(flavor = "multi_thread")]
async fn a_token_that_cannot_be_saved_is_printed_once_and_the_dead_one_never() {
    let stand = Stand::start().await;
    let first = stand.run(["login", "--via", "totp"]).await;
    first.assert_ok();
    let old = first.out().to_owned();

    let long = std::time::Duration::from_secs(70);
    // Room for the mint window's record of the attempt (written before the request, which
    // is not sent without it), none for the state file with the token.
    let cmd = disk_full(stand.cli(["login", "--via", "totp"]), 256);
    let r = common::run_within(cmd, None, long).await;
    assert_eq!(r.code, Some(1), "{r}");
    let minted = r.out().to_owned();
    assert!(
        common::jwt_claims(&minted).is_some(),
        "the new token is printed:\n{r}"
    );
    assert_ne!(minted, old);
    assert!(r.stderr.contains("could not be saved"), "{r}");
    assert!(!stand.server.is_live(&old), "Dhan replaced the old token");

    let next = common::run_within(stand.cli(["token"]), None, long).await;
    next.assert_ok();
    assert_ne!(next.out(), old, "the dead token is never printed:\n{next}");
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

/// `cmd` run in a mount namespace of its own where `dir` is a read-only bind mount:
/// root writes there fail with EROFS, which mode bits would not make them do. Nothing
/// outside the child sees the mount. `None` (and a note) only when
/// DHAN_LOGIN_SKIP_READONLY_TESTS=1 says `unshare` is not available.
fn read_only(dir: &std::path::Path, cmd: &std::process::Command) -> Option<std::process::Command> {
    if std::env::var_os("DHAN_LOGIN_SKIP_READONLY_TESTS").is_some_and(|v| v == "1") {
        eprintln!("skipped: DHAN_LOGIN_SKIP_READONLY_TESTS=1 (no read-only mount available)");
        return None;
    }
    let probe = std::process::Command::new("unshare")
        .args(["-m", "sh", "-c"])
        .arg("mount --bind \"$1\" \"$1\" && mount -o remount,bind,ro \"$1\" && ! touch \"$1/probe\" 2>/dev/null")
        .args(["sh", &*dir.to_string_lossy()])
        .status();
    assert!(
        probe.as_ref().is_ok_and(|s| s.success()),
        "cannot make {} read-only with `unshare -m` + a read-only bind mount ({probe:?}); \
         this test needs CAP_SYS_ADMIN: set DHAN_LOGIN_SKIP_READONLY_TESTS=1 to skip it",
        dir.display()
    );
    let mut ro = std::process::Command::new("unshare");
    ro.env_clear();
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            ro.env(k, v);
        }
    }
    if let Some(d) = cmd.get_current_dir() {
        ro.current_dir(d);
    }
    ro.args(["-m", "sh", "-c"])
        .arg(
            "mount --bind \"$1\" \"$1\" && mount -o remount,bind,ro \"$1\" && shift && exec \"$@\"",
        )
        .arg("sh")
        .arg(dir)
        .arg(cmd.get_program())
        .args(cmd.get_args());
    Some(ro)
}

/// Names, sizes and modification times of everything under `dir`.
fn snapshot(dir: &std::path::Path) -> Vec<(std::path::PathBuf, u64, std::time::SystemTime)> {
    let mut all = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let meta = e.metadata().unwrap();
            if meta.is_dir() {
                todo.push(e.path());
            }
            all.push((e.path(), meta.len(), meta.modified().unwrap()));
        }
    }
    all.sort();
    all
}

/// `status` on a state folder it cannot write (a read-only mount, which stops root too)
/// reports the token, the consents and the paths, exit 0, and changes nothing.
#[tokio::test(flavor = "multi_thread")]
async fn status_reports_from_a_read_only_state_folder() {
    let stand = Stand::start().await;
    stand.run(["login", "--via", "totp"]).await.assert_ok();
    let state = stand.sandbox.state_dir();
    let before = snapshot(&state);
    for args in [&["status"][..], &["status", "--json"]] {
        let Some(cmd) = read_only(&state, &stand.cli(args)) else {
            return;
        };
        let r = run(cmd, None).await;
        assert_eq!(r.code, Some(0), "{r}");
        if args.len() == 1 {
            assert!(r.stdout.contains("source:     totp"), "{r}");
            assert!(r.stdout.contains("consents:   0 of"), "{r}");
        } else {
            let v = r.json();
            assert_eq!(v["token"]["valid"], true, "{r}");
            assert_eq!(v["consents"]["used_today"], 0, "{r}");
        }
    }
    assert_eq!(snapshot(&state), before, "status wrote to the state folder");

    // Corrupt files cannot be moved aside there: each is named, the report still comes.
    let token_file = stand.sandbox.token_file("default");
    std::fs::write(&token_file, b"{\"token\": ").unwrap();
    let consents = state.join("consents");
    std::fs::create_dir_all(&consents).unwrap();
    let ledger = consents.join(format!("{}.json", stand.server.account().client_id));
    std::fs::write(ledger, b"{\"day\": \"2026-").unwrap();
    let before = snapshot(&state);
    let Some(cmd) = read_only(&state, &stand.cli(["status"])) else {
        return;
    };
    let r = run(cmd, None).await;
    assert_eq!(r.code, Some(0), "{r}");
    assert!(r.stdout.contains("token:      none stored"), "{r}");
    assert!(
        r.stderr.contains(&*token_file.to_string_lossy()) && r.stderr.contains("left in place"),
        "{r}"
    );
    assert!(
        r.stdout.contains("consents:   25 of"),
        "a corrupt ledger counts as used up: {r}"
    );
    assert!(r.stderr.contains("consent ledger"), "{r}");
    assert_eq!(snapshot(&state), before, "status wrote to the state folder");
}
