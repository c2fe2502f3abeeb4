//! Answers not to be trusted, from Dhan, a proxy or whatever listens where the daemon
//! should: rate limits and error pages are no verdict on the credentials, endless bodies
//! are cut, a squatter on the serve port learns nothing, and malformed, tampered or
//! expired tokens are never printed. Against the stand-in, which counts what reaches it.

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
