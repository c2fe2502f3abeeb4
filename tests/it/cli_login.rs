//! `dhan-login login` and `record` through the browser and by hand: the manual login's
//! redirect, recorded screens, and Chromium's end when the binary is killed.

use crate::common;

use std::time::Duration;

use common::cli::printed_token;
use common::{Stand, run_manual_login};
#[cfg(feature = "browser")]
use dhan_login::ErrorClass;
use dhan_login::mock::Endpoint;
#[cfg(feature = "browser")]
use dhan_login::mock::Fault;
use serde_json::Value;

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
    // stdin at EOF: with a listener, that must not end the wait.
    let mut child = common::spawn_piped(cmd);
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

/// The live processes of one browser session (see [`browser_sessions`]).
#[cfg(all(feature = "browser", target_os = "linux"))]
fn session_pids(session: &str) -> Vec<u32> {
    browser_sessions()
        .into_iter()
        .filter(|(_, _, s)| s == session)
        .map(|(pid, _, _)| pid)
        .collect()
}

/// The Chromium profiles dhan-login made in `tmp` (a run's own TMPDIR).
#[cfg(all(feature = "browser", target_os = "linux"))]
fn profiles_in(tmp: &std::path::Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(tmp)
        .expect("the temp folder")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().contains("dhan-login-chromium-"))
        .collect()
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
    let profiles = profiles_in(&tmp);
    assert_eq!(profiles.len(), 1, "{profiles:?}");
    let profile = profiles[0].clone();

    child.start_kill().expect("SIGKILL dhan-login");
    child.wait().await.expect("reap dhan-login");
    let killed = std::time::Instant::now();
    let mut left = session_pids(&session);
    while !left.is_empty() && killed.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        left = session_pids(&session);
    }
    assert!(
        left.is_empty(),
        "Chromium outlived the dhan-login that was killed: {left:?}"
    );
    assert!(
        profile.exists(),
        "nobody but the next run should have removed the profile"
    );

    // The next run (the page answers again) clears the dead run's profile. It may wait
    // up to 30 s for a fresh TOTP step before a browser login on a loaded machine.
    let mut cmd = s.cli(["login", "--via", "browser"]);
    cmd.env("DHAN_LOGIN_CONFIG", &config).env("TMPDIR", &tmp);
    common::run_within(cmd, None, Duration::from_secs(120))
        .await
        .assert_ok();
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
    let child = common::spawn_piped(s.cli(["login", "--via", "browser"]));
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

/// A 503 from consumeApp-consent after the page gave its tokenId: the tokenId is kept
/// (in the 0600 state file, never in the output) and the next run exchanges it without
/// a consent or the login page, so nothing is typed again.
#[cfg(feature = "browser")]
#[tokio::test(flavor = "multi_thread")]
async fn a_token_id_dhan_did_not_exchange_is_exchanged_by_the_next_run() {
    if common::browser_tests_skipped(
        "a_token_id_dhan_did_not_exchange_is_exchanged_by_the_next_run",
    ) {
        return;
    }
    let s = Stand::start().await;
    s.server
        .set_fault_once(Endpoint::ConsumeConsent, Fault::Status(503));
    let failed = s.run(["-vv", "login", "--via", "browser"]).await;
    failed.assert_class(ErrorClass::Transient);
    assert_eq!(s.server.calls(Endpoint::GenerateConsent), 1);
    assert_eq!(s.server.calls(Endpoint::ConsumeConsent), 1);
    let pages = s.server.calls(Endpoint::ConsentLoginPage);
    assert!(pages > 0);

    let state: Value = serde_json::from_str(
        &std::fs::read_to_string(s.sandbox.token_file("default")).expect("the state file"),
    )
    .expect("the state file is JSON");
    let kept = state["kept_token_id"]["value"]
        .as_str()
        .expect("the tokenId is kept")
        .to_owned();
    assert!(!kept.is_empty());
    assert!(
        !failed.stdout.contains(&kept) && !failed.stderr.contains(&kept),
        "the kept tokenId appears in the failed run's output"
    );

    let again = s.run(["-vv", "login", "--via", "browser"]).await;
    again.assert_ok();
    let token = printed_token(&again);
    assert!(s.server.is_live(&token));
    assert_eq!(
        s.server.calls(Endpoint::GenerateConsent),
        1,
        "no second consent"
    );
    assert_eq!(
        s.server.calls(Endpoint::ConsentLoginPage),
        pages,
        "the login page is not opened again"
    );
    assert_eq!(s.server.calls(Endpoint::ConsumeConsent), 2);
    assert!(!again.stderr.contains(&kept));
    let state = std::fs::read_to_string(s.sandbox.token_file("default")).expect("state");
    assert!(!state.contains(&kept), "an exchanged tokenId is forgotten");
}

/// A Chromium started ahead of its login (on a task of its own) goes with a SIGTERM that
/// comes while generate-consent is still out: every process of its session is gone and
/// its profile removed by the time dhan-login has exited, with 130.
#[cfg(all(feature = "browser", target_os = "linux"))]
#[tokio::test(flavor = "multi_thread")]
async fn a_signal_while_chromium_starts_ahead_ends_it_and_its_profile() {
    if common::browser_tests_skipped("a_signal_while_chromium_starts_ahead_ends_it_and_its_profile")
    {
        return;
    }
    let s = Stand::start().await;
    let held = Duration::from_secs(60);
    s.server
        .set_fault_once(Endpoint::GenerateConsent, Fault::Delay(held));
    // A temp folder of its own: the profile of this run is the only one there.
    let tmp = s.sandbox.path().join("tmp");
    std::fs::create_dir(&tmp).expect("temp folder");
    let mut cmd = s.cli(["login", "--via", "browser"]);
    cmd.env("TMPDIR", &tmp);
    let child = common::spawn_piped(cmd);
    let me = child.id().expect("a pid");
    let started = std::time::Instant::now();
    let session = loop {
        if let Some((_, _, session)) = browser_sessions()
            .into_iter()
            .find(|(_, ppid, _)| *ppid == me)
        {
            break session;
        }
        assert!(
            started.elapsed() < held - Duration::from_secs(5),
            "no Chromium while generate-consent was held"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        profiles_in(&tmp).len(),
        1,
        "the run's profile exists while Chromium runs"
    );
    // SAFETY: signals the child this test started and still owns.
    unsafe { libc::kill(me as i32, libc::SIGTERM) };
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("dhan-login ended")
        .expect("reap dhan-login");
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let left = session_pids(&session);
    assert!(left.is_empty(), "Chromium outlived dhan-login: {left:?}");
    let left = profiles_in(&tmp);
    assert!(left.is_empty(), "profile left behind: {left:?}");
}
