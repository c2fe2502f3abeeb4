//! Issue #4's guarantees, against the stand-in, which counts what reaches it: the consent
//! budget, the lockout guard, one login for many processes, and crash safety.

use crate::common;

use std::time::Duration;

use common::{Stand, run, run_within};
use dhan_login::ErrorClass;
use dhan_login::mock::{Endpoint, MockOptions};
use dhan_login::{ConsentLedger, ProfileState, SourceKind, StoreError, Token, TokenStore};

/// A manual login whose pasted tokenId Dhan does not know: the consent is spent (a
/// tokenId was produced from it) and the exchange fails. Each run needs a new consent.
async fn manual_attempt(stand: &Stand) -> common::Run {
    run(manual(stand), Some(b"not-a-real-token-id\n")).await
}

/// `login --via manual` reading stdin only: with a loopback redirect URL it would also
/// listen there and keep waiting after stdin closes.
fn manual(stand: &Stand) -> std::process::Command {
    let mut cmd = stand.cli(["login", "--via", "manual"]);
    cmd.env_remove("DHAN_REDIRECT_URL");
    cmd
}

#[tokio::test(flavor = "multi_thread")]
async fn twenty_six_consents_in_a_day_reach_dhan_only_twenty_five_times() {
    let stand = Stand::start().await;
    for i in 0..25 {
        let r = manual_attempt(&stand).await;
        assert_eq!(
            r.code,
            Some(1),
            "attempt {i}: the bogus tokenId is refused:\n{r}"
        );
    }
    assert_eq!(stand.server.calls(Endpoint::GenerateConsent), 25);
    let r = manual_attempt(&stand).await;
    r.assert_class(ErrorClass::ConsentLimit);
    assert_eq!(
        stand.server.calls(Endpoint::GenerateConsent),
        25,
        "the 26th was refused locally"
    );
    assert!(r.stderr.contains("25 of 25 consents used today"), "{r}");
    assert!(r.stderr.contains("00:00 IST"), "names the reset time:\n{r}");
    let status = stand.run(["status", "--json"]).await;
    assert_eq!(status.json()["consents"]["used_today"], 25);
}

#[tokio::test(flavor = "multi_thread")]
async fn dhan_saying_the_limit_is_reached_stops_every_call_that_day() {
    let stand = Stand::start_with(MockOptions {
        consent_cap: 3,
        ..MockOptions::default()
    })
    .await;
    for _ in 0..3 {
        assert_eq!(manual_attempt(&stand).await.code, Some(1));
    }
    let fourth = manual_attempt(&stand).await;
    fourth.assert_class(ErrorClass::ConsentLimit);
    assert!(fourth.stderr.contains("consent limit"), "{fourth}");
    assert_eq!(stand.server.calls(Endpoint::GenerateConsent), 4);
    let fifth = manual_attempt(&stand).await;
    fifth.assert_class(ErrorClass::ConsentLimit);
    assert_eq!(
        stand.server.calls(Endpoint::GenerateConsent),
        4,
        "no call after CONSENT_LIMIT_EXCEED"
    );
    assert!(
        fifth
            .stderr
            .contains("Dhan said the daily consent limit is reached"),
        "{fifth}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pending_consent_is_reused_by_the_next_attempt() {
    let stand = Stand::start().await;
    // stdin closes without a tokenId: the consent stays pending.
    let r = run(manual(&stand), Some(b"")).await;
    assert_eq!(r.code, Some(1), "{r}");
    let status = stand.run(["status", "--json"]).await;
    assert_eq!(status.json()["consents"]["pending"], true);
    let r = run(manual(&stand), Some(b"")).await;
    assert_eq!(r.code, Some(1), "{r}");
    assert_eq!(
        stand.server.calls(Endpoint::GenerateConsent),
        1,
        "the second attempt reused the consent"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rejected_pin_is_never_retried_automatically() {
    let stand = Stand::start().await;
    let wrong = |args: &[&str]| stand.cli_wrong_pin(args);
    run(wrong(&["login", "--via", "totp"]), None)
        .await
        .assert_class(ErrorClass::CredentialRejected);
    assert_eq!(stand.server.calls(Endpoint::GenerateAccessToken), 1);

    let again = run(wrong(&["token"]), None).await;
    again.assert_class(ErrorClass::CredentialRejected);
    assert_eq!(
        stand.server.calls(Endpoint::GenerateAccessToken),
        1,
        "0 calls while locked"
    );
    assert!(again.stderr.contains("dhan-login unlock"), "{again}");
    let status = stand.run(["status"]).await;
    assert!(status.stdout.contains("locked:"), "{status}");

    // unlock allows one more try of the same credentials. Each try waits for a TOTP
    // step no earlier run used: up to 35 s.
    let fresh_step = Duration::from_secs(70);
    run(wrong(&["unlock"]), None).await.assert_ok();
    run_within(wrong(&["token"]), None, fresh_step)
        .await
        .assert_class(ErrorClass::CredentialRejected);
    assert_eq!(stand.server.calls(Endpoint::GenerateAccessToken), 2);

    // A changed PIN is another set of credentials: allowed without unlock.
    let fixed = run_within(stand.cli(["token"]), None, fresh_step).await;
    fixed.assert_ok();
    assert_eq!(stand.server.calls(Endpoint::GenerateAccessToken), 3);
    let status = stand.run(["status"]).await;
    assert!(
        !status.stdout.contains("locked:"),
        "a success clears the lockout:\n{status}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn twenty_processes_at_once_cause_one_login() {
    let stand = Stand::start().await;
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let cmd = stand.cli(["token"]);
        set.spawn(async move { run(cmd, None).await });
    }
    let mut tokens = Vec::new();
    while let Some(r) = set.join_next().await {
        let r = r.unwrap();
        r.assert_ok();
        tokens.push(r.out().to_owned());
    }
    assert_eq!(tokens.len(), 20);
    assert!(
        tokens.iter().all(|t| t == &tokens[0]),
        "all print the same token"
    );
    assert_eq!(stand.server.logins(), 1);
    assert_eq!(stand.server.calls(Endpoint::GenerateAccessToken), 1);
}

const CRASH_DIR: &str = "DHAN_LOGIN_TEST_CRASH_DIR";

/// Not a test on its own: the child that `kill_9_never_tears_state` starts and kills.
/// It rewrites the token store and the consent ledger as fast as it can, under the
/// profile lock, like a login does.
#[tokio::test]
async fn crash_writer_child() {
    let Some(dir) = std::env::var_os(CRASH_DIR) else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    let store = TokenStore::new(&dir);
    let ledger = ConsentLedger::new(&dir, 25);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut i = 0usize;
    while std::time::Instant::now() < deadline {
        let _lock =
            dhan_login::ProfileLock::acquire(&dir.join("locks"), "p", Duration::from_secs(5))
                .await
                .unwrap();
        let value = format!("h.p.{}", "t".repeat(1 + i % 300));
        let token = Token::from_grant(
            &value,
            Some("1"),
            Some("2030-01-01T00:00:00"),
            SourceKind::Totp,
            chrono::Utc::now(),
        )
        .unwrap();
        store
            .save(
                "p",
                &ProfileState {
                    token: Some(token),
                    renewable: true,
                    ..Default::default()
                },
            )
            .unwrap();
        let now = chrono::Utc::now();
        ledger
            .set_pending("1", &format!("consent-{i}"), now)
            .unwrap();
        let _ = ledger.reserve("1", now);
        i += 1;
    }
}

#[tokio::test]
async fn kill_9_never_tears_state_nor_leaves_a_stale_lock() {
    use rand::Rng;
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let store = TokenStore::new(dir.path());
    let ledger = ConsentLedger::new(dir.path(), 25);
    let mut rng = rand::rng();
    let runs = 200;
    let (mut parsed, mut corrupt, mut with_token) = (0, 0, 0usize);
    for _ in 0..runs {
        let mut child = tokio::process::Command::new(&exe)
            .args(["--exact", "crash_writer_child", "--test-threads", "1", "-q"])
            .env(CRASH_DIR, dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(rng.random_range(2..40))).await;
        child.kill().await.unwrap(); // SIGKILL
        match store.load("p") {
            Ok(state) => {
                parsed += 1;
                with_token += usize::from(state.token.is_some());
            }
            Err(StoreError::Corrupt { .. }) => corrupt += 1,
            Err(e) => panic!("store unreadable after kill -9: {e}"),
        }
        ledger
            .today("1", chrono::Utc::now())
            .expect("ledger readable after kill -9");
        // The lock of a killed holder is free at once.
        dhan_login::ProfileLock::acquire(
            &dir.path().join("locks"),
            "p",
            Duration::from_millis(500),
        )
        .await
        .expect("no stale lock after kill -9");
    }
    assert_eq!(
        parsed, runs,
        "every run left a parseable store ({corrupt} corrupt)"
    );
    assert!(
        with_token * 2 >= runs,
        "the writer was killed before writing too often: {with_token} of {runs} runs found a token"
    );
    let leftovers = std::fs::read_dir(dir.path().join("consents"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("corrupt"))
        .count();
    assert_eq!(leftovers, 0, "no ledger was ever corrupt");
}

#[cfg(feature = "browser")]
#[tokio::test(flavor = "multi_thread")]
async fn a_browser_retry_reuses_the_pending_consent() {
    if common::browser_tests_skipped("a_browser_retry_reuses_the_pending_consent") {
        return;
    }
    use dhan_login::mock::{Markup, PageVariant};
    let stand = Stand::start_with(MockOptions {
        page_variant: PageVariant {
            markup: Markup::MissingPinBoxes,
            ..PageVariant::classic()
        },
        ..MockOptions::default()
    })
    .await;
    let first = run(stand.cli(["login", "--via", "browser"]), None).await;
    assert_eq!(first.code, Some(1), "the PIN boxes are missing:\n{first}");
    assert_eq!(stand.server.calls(Endpoint::GenerateConsent), 1);

    stand.server.set_page_variant(PageVariant::classic());
    // The retry waits for a TOTP step the first attempt did not use: up to 35 s.
    let retry = run_within(
        stand.cli(["login", "--via", "browser", "--json"]),
        None,
        Duration::from_secs(70),
    )
    .await;
    retry.assert_ok();
    assert_eq!(retry.json()["source"], "browser");
    assert_eq!(
        stand.server.calls(Endpoint::GenerateConsent),
        1,
        "the retry used the pending consentAppId"
    );
    let status = stand.run(["status", "--json"]).await;
    assert_eq!(
        status.json()["consents"]["pending"],
        false,
        "consumed, so dropped"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn logout_waits_for_whoever_holds_the_profile() {
    // A logout writing under a login in progress would put back the state it read before
    // that login saved its token and spent TOTP step.
    let stand = Stand::start().await;
    let r = stand.run(["token"]).await;
    r.assert_ok();
    let token = r.out().to_owned();
    let stored = || std::fs::read_to_string(stand.sandbox.token_file("default")).unwrap();
    let lock = dhan_login::ProfileLock::acquire(
        &stand.sandbox.state_dir().join("locks"),
        "default",
        Duration::from_secs(5),
    )
    .await
    .expect("the profile is free");

    let mut cmd = stand.cli(["logout"]);
    cmd.env("DHAN_LOGIN_LOCK_WAIT_SECS", "1");
    let r = run(cmd, None).await;
    assert!(
        !r.success(),
        "logout wrote the state while another process held the profile:\n{r}"
    );
    assert!(stored().contains(&token), "the token was forgotten anyway");

    drop(lock);
    stand.run(["logout"]).await.assert_ok();
    assert!(!stored().contains(&token), "the token is still stored");
}

/// A running dhan-login cannot be read by another process of its user (ptrace, /proc
/// mem and environ are root's alone once it is not dumpable) and writes no core file.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_running_dhan_login_is_not_dumpable_and_makes_no_core_file() {
    use std::os::unix::fs::MetadataExt;
    use std::os::unix::process::CommandExt;
    use tokio::io::AsyncBufReadExt;

    let mut cmd = std::process::Command::new(common::BIN);
    cmd.args(["mock-server", "--port", "0"]).current_dir("/");
    // As root the test could not tell root's /proc entries from anyone's: run as nobody.
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        cmd.uid(65534).gid(65534);
    }
    let mut child = common::spawn_piped(cmd);
    let stdout = child.stdout.take().unwrap();
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let first = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .expect("the stand-in starts")
        .unwrap();
    assert!(first.is_some(), "the stand-in printed its addresses");
    let pid = child.id().unwrap();

    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid: u32 = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|u| u.split_whitespace().nth(1)?.parse().ok())
        .unwrap();
    assert_ne!(uid, 0, "{status}");
    // The kernel gives a non-dumpable process's private /proc files to root (the
    // directory itself keeps showing the process's own user).
    let owner = std::fs::metadata(format!("/proc/{pid}/environ"))
        .unwrap()
        .uid();
    assert_eq!(
        owner, 0,
        "a dumpable process's /proc files are its own user's"
    );

    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap();
    let soft = core.split_whitespace().nth(4).unwrap();
    assert_eq!(soft, "0", "{core}");
    child.kill().await.unwrap();
}

/// The program `exec` runs holds none of dhan-login's secrets: it gets the core-file
/// limit dhan-login itself was given, not the zero dhan-login sets for itself.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread")]
async fn exec_gives_the_program_the_core_limit_dhan_login_was_given() {
    use std::os::unix::process::CommandExt;
    const GIVEN: libc::rlim_t = 4 << 20;
    let stand = Stand::start().await;
    let mut cmd = stand.cli([
        "exec",
        "--",
        "grep",
        "Max core file size",
        "/proc/self/limits",
    ]);
    // SAFETY: getrlimit and setrlimit are async-signal-safe and allocate nothing.
    unsafe {
        cmd.pre_exec(|| {
            let mut limit = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            libc::getrlimit(libc::RLIMIT_CORE, &mut limit);
            limit.rlim_cur = GIVEN.min(limit.rlim_max);
            libc::setrlimit(libc::RLIMIT_CORE, &limit);
            Ok(())
        });
    }
    let r = run(cmd, None).await;
    r.assert_code(0);
    let soft = r
        .out()
        .split_whitespace()
        .nth(4)
        .unwrap_or_default()
        .to_owned();
    assert_eq!(soft, GIVEN.to_string(), "{r}");
}
