//! One login for many processes, and state that survives a crash: twenty processes at
//! once cause one login, `kill -9` mid-write never tears the token store or the consent
//! ledger nor leaves a stale lock, and `logout` waits for whoever holds the profile.

use crate::common;

use std::time::Duration;

use common::{Stand, run};
use dhan_login::mock::Endpoint;
use dhan_login::{
    SourceKind, Token,
    store::{ProfileState, StateBackend, StoreError},
};

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
    let store = StateBackend::files(&dir);
    let ledger = store.ledger(25);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut i = 0usize;
    while std::time::Instant::now() < deadline {
        let owner = store.own("p", Duration::from_secs(5)).await.unwrap();
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
                Some(&owner),
            )
            .await
            .unwrap();
        let now = chrono::Utc::now();
        ledger
            .set_pending("1", &format!("consent-{i}"), now)
            .await
            .unwrap();
        let _ = ledger.reserve("1", now).await;
        owner.release().await;
        i += 1;
    }
}

#[tokio::test]
async fn kill_9_never_tears_state_nor_leaves_a_stale_lock() {
    use rand::Rng;
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let store = StateBackend::files(dir.path());
    let ledger = store.ledger(25);
    // The harness names a test by its path below the crate root (`it`), which is this
    // module's: the child runs the writer alone whichever file holds the two.
    let (_, module) = module_path!()
        .split_once("::")
        .expect("a module of the crate");
    let writer = format!("{module}::crash_writer_child");
    let mut rng = rand::rng();
    let runs = 200;
    let (mut parsed, mut corrupt, mut with_token) = (0, 0, 0usize);
    for _ in 0..runs {
        let mut child = tokio::process::Command::new(&exe)
            .args(["--exact", &writer, "--test-threads", "1", "-q"])
            .env(CRASH_DIR, dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(rng.random_range(2..40))).await;
        child.kill().await.unwrap(); // SIGKILL
        match store.load("p").await {
            Ok(state) => {
                parsed += 1;
                with_token += usize::from(state.token.is_some());
            }
            Err(StoreError::Corrupt { .. }) => corrupt += 1,
            Err(e) => panic!("store unreadable after kill -9: {e}"),
        }
        ledger
            .today("1", chrono::Utc::now())
            .await
            .expect("ledger readable after kill -9");
        // The lock of a killed holder is free at once.
        store
            .own("p", Duration::from_millis(500))
            .await
            .expect("no stale lock after kill -9")
            .release()
            .await;
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

#[tokio::test(flavor = "multi_thread")]
async fn logout_waits_for_whoever_holds_the_profile() {
    // A logout writing under a login in progress would put back the state it read before
    // that login saved its token and spent TOTP step.
    let stand = Stand::start().await;
    let r = stand.run(["token"]).await;
    r.assert_ok();
    let token = r.out().to_owned();
    let stored = || std::fs::read_to_string(stand.sandbox.token_file("default")).unwrap();
    let lock = StateBackend::files(&stand.sandbox.state_dir())
        .own("default", Duration::from_secs(5))
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
