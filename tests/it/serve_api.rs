//! The daemon's own surface: the token route and its key, the Unix socket, the hand-off
//! files, connections that never send a request, and what a SIGTERM leaves behind.

use crate::common;

use std::collections::BTreeSet;
#[cfg(feature = "browser")]
use std::path::Path;
use std::time::{Duration, Instant};

#[cfg(feature = "browser")]
use common::serve::eventually;
use common::serve::{
    Daemon, Login, cli, configured, handoff_files, import, key_of, mode, profile, serve_table,
    short_lived,
};
use common::{Sandbox, jwt_claims, run};
use dhan_login::ErrorClass;
#[cfg(feature = "browser")]
use dhan_login::mock::{Endpoint, Fault};
use dhan_login::mock::{MockOptions, MockServer, TokenKind};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread")]
async fn the_token_route_needs_the_key_and_token_and_exec_ask_the_daemon() {
    let server = MockServer::start(MockOptions::default()).await.unwrap();
    let toml = serve_table(3600.0) + &profile("p", &server, Login::Totp);
    let sandbox = configured(&toml);
    let socket = sandbox.path().join("serve.sock");
    let d = Daemon::with_tokens(&sandbox, &["p", "--socket", socket.to_str().unwrap()]).await;
    let key_file = sandbox.state_dir().join("serve.key");
    assert_eq!(mode(&key_file), 0o600);
    let key = key_of(&sandbox);

    let route = "/v1/profiles/p/token";
    for wrong in [
        None,
        Some("Bearer nope"),
        Some("Basic abc"),
        Some(&key[..key.len() - 1]),
    ] {
        let (code, body) = d.get(route, wrong).await;
        assert_eq!(code, 401, "{wrong:?}: {body}");
        assert!(!body.contains("eyJ"), "{body}");
    }
    assert_eq!(d.get("/v1/profiles/other/token", Some(&key)).await.0, 404);
    let (code, body) = d.get(route, Some(&key)).await;
    assert_eq!(code, 200, "{body}");
    let served: Value = serde_json::from_str(&body).unwrap();
    let mut local = cli(&sandbox);
    local.args(["--profile", "p", "token", "--json"]);
    let local = run(local, None).await;
    assert_eq!(served, local.json(), "the route answers as `token --json`");
    let token = served["access_token"].as_str().unwrap().to_owned();
    for path in ["/v1/profiles", "/healthz", "/metrics"] {
        assert!(
            !d.get(path, None).await.1.contains(&token),
            "{path} shows the token"
        );
    }

    // Another state folder, nothing stored there: the token can only come from the daemon.
    let elsewhere = configured(&toml);
    let ask = |args: &[&str]| d.consumer(&elsewhere, &key_file, "p", args);
    let printed = run(ask(&["token"]), None).await;
    assert_eq!(printed.assert_ok().out(), token);
    let exec = run(
        ask(&["exec", "--", "sh", "-c", "printf %s \"$DHAN_ACCESS_TOKEN\""]),
        None,
    )
    .await;
    assert_eq!(exec.assert_ok().out(), token);
    assert_eq!(server.logins(), 1, "neither client logged in");
    assert!(!elsewhere.token_file("p").exists());

    // The same routes on the Unix socket, which only its owner may open.
    assert_eq!(mode(&socket), 0o600);
    let mut conn = tokio::net::UnixStream::connect(&socket).await.unwrap();
    conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    d.stop().await;
    assert!(!socket.exists(), "the socket is removed on shutdown");
}

/// Connections that never send a request (a port scanner, a stuck client, a flood) neither
/// stall `/healthz` nor stay open: the daemon closes them after its header timeout (10 s).
#[tokio::test(flavor = "multi_thread")]
async fn idle_connections_neither_stall_healthz_nor_stay_open() {
    let server = MockServer::start(MockOptions::default()).await.unwrap();
    let sandbox = configured(&(serve_table(3600.0) + &profile("main", &server, Login::Totp)));
    let d = Daemon::with_tokens(&sandbox, &["main"]).await;

    let mut idle = Vec::new();
    for _ in 0..2000 {
        idle.push(
            tokio::net::TcpStream::connect(&d.addr)
                .await
                .expect("connect"),
        );
    }
    let asked = Instant::now();
    let health = tokio::time::timeout(Duration::from_secs(20), d.health())
        .await
        .unwrap_or_else(|_| panic!("/healthz stalled behind 2000 idle connections"));
    assert_eq!(health, 200, "{}", d.log());
    assert!(asked.elapsed() < Duration::from_secs(20));

    // Each idle connection sees the daemon close it (EOF or reset), well after 10 s.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    for mut conn in idle {
        let mut buf = [0u8; 64];
        match tokio::time::timeout_at(deadline, conn.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {}
            Ok(Ok(n)) => {
                // hyper may answer 408 before closing; the close must still follow.
                let rest =
                    tokio::time::timeout_at(deadline, conn.read_to_end(&mut Vec::new())).await;
                assert!(rest.is_ok(), "answered {n} bytes but stayed open");
            }
            Err(_) => panic!("an idle connection was still open 60 s later"),
        }
    }
    assert_eq!(d.health().await, 200);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_public_address_is_refused_without_allow_remote() {
    let sandbox = Sandbox::new();
    let mut cmd = sandbox.command();
    cmd.args(["serve", "--listen", "0.0.0.0:0"]);
    let r = run(cmd, None).await;
    r.assert_class(ErrorClass::Config);
    assert!(r.stderr.contains("--allow-remote"), "{r}");
    assert!(r.stdout.is_empty(), "{r}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_token_and_env_files_change_atomically_and_stay_private() {
    let server = MockServer::start(short_lived(4)).await.unwrap();
    let sandbox = configured(&(serve_table(3.0) + &profile("p", &server, Login::RenewOnly)));
    import(
        &sandbox,
        "p",
        &server.issue_token(TokenKind::SelfWeb, Duration::from_secs(4)),
    )
    .await;
    let client_id = server.account().client_id.clone();
    let (token_file, env_file) = handoff_files(&sandbox, "p");
    let d = Daemon::start(cli(&sandbox), &["p"]).await;

    // Readers in tight loops while the daemon renews every two seconds.
    let until = Instant::now() + Duration::from_secs(7);
    let token_reader = {
        let (path, id) = (token_file.clone(), client_id.clone());
        std::thread::spawn(move || {
            let mut seen = BTreeSet::new();
            let mut reads = 0u64;
            while Instant::now() < until {
                match std::fs::read_to_string(&path) {
                    Ok(t) => {
                        let claims =
                            jwt_claims(&t).unwrap_or_else(|| panic!("a partial token file: {t:?}"));
                        assert_eq!(claims["dhanClientId"], id.as_str());
                        seen.insert(t);
                        reads += 1;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound && seen.is_empty() => {}
                    Err(e) => panic!("the token file went away: {e}"),
                }
            }
            (seen, reads)
        })
    };
    let env_reader = {
        let (path, id) = (env_file.clone(), client_id.clone());
        std::thread::spawn(move || {
            let mut seen = BTreeSet::new();
            while Instant::now() < until {
                match std::fs::read_to_string(&path) {
                    Ok(text) => {
                        let token = text
                            .strip_prefix("DHAN_ACCESS_TOKEN=")
                            .and_then(|r| r.strip_suffix(&format!("\nDHAN_CLIENT_ID={id}\n")))
                            .unwrap_or_else(|| panic!("a partial env file: {text:?}"));
                        assert!(jwt_claims(token).is_some(), "{text:?}");
                        seen.insert(token.to_owned());
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound && seen.is_empty() => {}
                    Err(e) => panic!("the env file went away: {e}"),
                }
            }
            seen
        })
    };
    let (tokens, reads) = token_reader.join().expect("token reader");
    let env_tokens = env_reader.join().expect("env reader");
    assert!(
        tokens.len() >= 3,
        "{} tokens in {reads} reads:\n{}",
        tokens.len(),
        d.log()
    );
    assert!(env_tokens.len() >= 3, "{}", env_tokens.len());
    assert_eq!(mode(&token_file), 0o600);
    assert_eq!(mode(&env_file), 0o600);
    assert_eq!(server.logins(), 0);
}

/// Chromium processes (or anything) whose command line names `dir`.
#[cfg(feature = "browser")]
fn processes_naming(dir: &Path) -> Vec<String> {
    let needle = dir.to_string_lossy().into_owned();
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        if !entry
            .file_name()
            .to_string_lossy()
            .bytes()
            .all(|b| b.is_ascii_digit())
        {
            continue;
        }
        let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&raw).replace('\0', " ");
        if cmdline.contains(&needle) {
            out.push(format!(
                "{}: {cmdline}",
                entry.file_name().to_string_lossy()
            ));
        }
    }
    out
}

#[cfg(feature = "browser")]
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_during_a_browser_login_leaves_no_chromium() {
    if std::env::var("DHAN_LOGIN_SKIP_BROWSER_TESTS").is_ok_and(|v| v == "1") {
        eprintln!("skipped: DHAN_LOGIN_SKIP_BROWSER_TESTS=1");
        return;
    }
    let server = MockServer::start(MockOptions::default()).await.unwrap();
    // PIN + TOTP fails as if Dhan were down, so the chain goes on to the browser, whose
    // consent page then takes its time.
    server.set_fault(Endpoint::GenerateAccessToken, Fault::Status(503));
    server.set_fault(
        Endpoint::ConsentLoginPage,
        Fault::Delay(Duration::from_secs(30)),
    );
    let sandbox = configured(&(serve_table(3600.0) + &profile("p", &server, Login::Browser)));
    let tmp = sandbox.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let mut cmd = cli(&sandbox);
    cmd.env("TMPDIR", &tmp);
    let d = Daemon::start(cmd, &["p"]).await;
    eventually(
        Duration::from_secs(30),
        "Chromium on the slow consent page",
        || async {
            server.calls(Endpoint::ConsentLoginPage) >= 1 && !processes_naming(&tmp).is_empty()
        },
    )
    .await;
    d.stop().await;
    eventually(
        Duration::from_secs(3),
        "every Chromium process gone",
        || async { processes_naming(&tmp).is_empty() },
    )
    .await;
    // Chromium's own scratch folder (org.chromium.Chromium.*, its singleton socket) is
    // left by any killed Chromium; the profile with cookies and storage must be gone.
    let profiles: Vec<_> = std::fs::read_dir(&tmp)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("dhan-login-chromium-"))
        .collect();
    assert!(
        profiles.is_empty(),
        "the browser profile is removed: {profiles:?}"
    );
}

/// The challenge as `token` speaks it, written out here from README's description so that
/// the test can pause between its two steps: a slow client.
fn hmac(key_text: &str, label: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(key_text.trim().as_bytes());
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &digest);
    let mut ctx = aws_lc_rs::hmac::Context::with_key(&key);
    ctx.update(label);
    for p in parts {
        ctx.update(p);
    }
    ctx.sign().as_ref().to_vec()
}

/// Any local user can ask for challenges. A flood of them used to push a slow client's
/// challenge out of the daemon's 256-entry table (its token request then got 401); the
/// daemon keeps nothing per challenge now.
#[tokio::test(flavor = "multi_thread")]
async fn a_flood_of_challenges_does_not_break_a_slow_clients_login() {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    let server = MockServer::start(MockOptions::default()).await.unwrap();
    let sandbox = configured(&(serve_table(3600.0) + &profile("main", &server, Login::Totp)));
    let d = Daemon::with_tokens(&sandbox, &["main"]).await;
    let key = std::fs::read_to_string(sandbox.state_dir().join("serve.key")).expect("serve.key");
    let http = reqwest::Client::new();
    let ask = |client: [u8; 32]| {
        http.post(format!("http://{}/v1/challenge", d.addr))
            .json(&serde_json::json!({ "client_nonce": URL_SAFE_NO_PAD.encode(client) }))
            .send()
    };

    let client: [u8; 32] = rand::random();
    let answer: Value = ask(client).await.unwrap().json().await.unwrap();
    let daemon = URL_SAFE_NO_PAD
        .decode(answer["daemon_nonce"].as_str().unwrap())
        .unwrap();
    let proof = URL_SAFE_NO_PAD
        .decode(answer["proof"].as_str().unwrap())
        .unwrap();
    assert_eq!(
        proof,
        hmac(
            &key,
            b"dhan-login serve v1: daemon proof",
            &[&client, &daemon]
        ),
        "the daemon proves it holds the key"
    );

    // 1,000 challenges from someone else while the slow client thinks.
    for i in 0..1000 {
        assert_eq!(
            ask(rand::random()).await.unwrap().status(),
            200,
            "challenge {i}"
        );
    }

    let line = "GET /v1/profiles/main/token";
    let mac = hmac(
        &key,
        b"dhan-login serve v1: client request",
        &[&daemon, &client, line.as_bytes()],
    );
    let got = http
        .get(format!("http://{}/v1/profiles/main/token", d.addr))
        .header(
            "authorization",
            format!(
                "DhanLogin-HMAC {}.{}",
                URL_SAFE_NO_PAD.encode(&daemon),
                URL_SAFE_NO_PAD.encode(&mac)
            ),
        )
        .header("x-dhan-login-client-nonce", URL_SAFE_NO_PAD.encode(client))
        .send()
        .await
        .unwrap();
    let status = got.status();
    let body: Value = got.json().await.unwrap_or(Value::Null);
    assert_eq!(status, 200, "{body}\n{}", d.log());
    assert!(body["sealed"].is_string(), "{body}");
    d.stop().await;
}
