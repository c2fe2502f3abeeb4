//! The PostgreSQL state backend against a real server: scripts/with-postgres starts a
//! throwaway cluster and names it in DHAN_LOGIN_TEST_PG_URL; each test makes its own
//! database. Without the variable these tests fail, unless DHAN_LOGIN_SKIP_PG_TESTS=1.

use std::time::{Duration, Instant};

use base64::Engine;
use chrono::Utc;
use dhan_login::mock::{MockOptions, MockServer};
use dhan_login::{
    Error, ErrorClass, Paths, Profile, SourceKind, Token,
    api::DhanApi,
    store::{KeptTokenId, Ownership, ProfileState, StateBackend, StoreError},
};
use secrecy::SecretString;

use common::BIN;

use crate::common;
use common::cli::exit_of;

/// A database of its own for one test, and a key file.
struct Db {
    url: String,
    key_file: std::path::PathBuf,
    state: tempfile::TempDir,
}

async fn fresh_db() -> Option<Db> {
    let url = common::pg::database().await?;
    let state = tempfile::tempdir().unwrap();
    std::fs::write(state.path().join("config.toml"), "").unwrap();
    Some(Db {
        url,
        key_file: common::pg::key_file(state.path()),
        state,
    })
}

impl Db {
    /// The environment of one machine: `replica` names its own connection pool.
    /// [`Self::env`] for a CLI run that logs in to the stand-in `s` with its account and
    /// `pin`, on a 15 s lease.
    fn cli_env(&self, replica: &str, s: &MockServer, pin: &str) -> Vec<(String, String)> {
        let a = s.account();
        let mut env = self.env(replica, 15);
        env.extend([
            ("DHAN_CLIENT_ID".to_owned(), a.client_id.clone()),
            ("DHAN_PIN".to_owned(), pin.to_owned()),
            ("DHAN_TOTP_SECRET".to_owned(), a.totp_secret.clone()),
            (
                "DHAN_AUTH_BASE_URL".to_owned(),
                s.auth_base_url().to_string(),
            ),
            ("DHAN_API_BASE_URL".to_owned(), s.api_base_url().to_string()),
        ]);
        env
    }

    fn env(&self, replica: &str, lease_secs: u32) -> Vec<(String, String)> {
        let mut url = url::Url::parse(&self.url).unwrap();
        url.query_pairs_mut()
            .append_pair("application_name", &format!("dhan-login-{replica}"));
        vec![
            ("DHAN_LOGIN_STORE_URL".into(), url.to_string()),
            (
                "DHAN_LOGIN_STORE_KEY_FILE".into(),
                self.key_file.to_string_lossy().into_owned(),
            ),
            ("DHAN_LOGIN_LEASE_SECS".into(), lease_secs.to_string()),
            (
                "DHAN_LOGIN_STATE_DIR".into(),
                self.state.path().to_string_lossy().into_owned(),
            ),
            (
                "DHAN_LOGIN_CONFIG".into(),
                self.state
                    .path()
                    .join("config.toml")
                    .to_string_lossy()
                    .into_owned(),
            ),
        ]
    }

    fn profile(&self, replica: &str, lease_secs: u32, extra: &[(String, String)]) -> Profile {
        let mut env = self.env(replica, lease_secs);
        env.retain(|(k, _)| !extra.iter().any(|(e, _)| e == k));
        env.extend_from_slice(extra);
        let lookup = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let paths = Paths::from_env(&lookup).unwrap();
        Profile::load("default", &paths, &lookup).unwrap()
    }

    fn backend(&self, replica: &str, lease_secs: u32) -> StateBackend {
        let p = self.profile(replica, lease_secs, &[]);
        StateBackend::for_settings(&p.state_dir, &p.store)
    }

    async fn sql(&self) -> tokio_postgres::Client {
        let (client, conn) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        client
    }
}

fn token(value: &str) -> Token {
    Token::from_grant(
        value,
        Some("1100000001"),
        Some("2099-01-01T00:00:00"),
        SourceKind::Totp,
        Utc::now(),
    )
    .unwrap()
}

fn with_token(value: &str) -> ProfileState {
    ProfileState {
        token: Some(token(value)),
        renewable: true,
        totp_last_step: Some(42),
        ..Default::default()
    }
}

fn lease_epoch(o: &Ownership) -> i64 {
    match o {
        Ownership::Lease(l) => l.epoch(),
        Ownership::File(_) => panic!("a store URL must give a lease, not a file lock"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_consent_cap_holds_exactly_under_40_concurrent_attempts_from_3_replicas() {
    let Some(db) = fresh_db().await else { return };
    // The stand-in would allow far more: only the shared ledger stops at 25.
    let s = MockServer::start(MockOptions {
        consent_cap: 1000,
        ..Default::default()
    })
    .await
    .unwrap();
    let a = s.account().clone();
    let ledgers: Vec<_> = ["r1", "r2", "r3"]
        .iter()
        .map(|r| db.backend(r, 15).ledger(25))
        .collect();
    let mut tasks = Vec::new();
    for i in 0..40 {
        let ledger = ledgers[i % 3].clone();
        let api = DhanApi::new(s.auth_base_url(), s.api_base_url());
        let (client_id, key, secret) = (
            a.client_id.clone(),
            SecretString::from(a.api_key.clone()),
            SecretString::from(a.api_secret.clone()),
        );
        tasks.push(tokio::spawn(async move {
            ledger.reserve(&client_id, Utc::now()).await?;
            api.generate_consent(&client_id, &key, &secret).await?;
            Ok::<_, Error>(())
        }));
    }
    let (mut ok, mut limited) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => ok += 1,
            Err(e) => {
                assert_eq!(e.class(), ErrorClass::ConsentLimit, "{e}");
                assert!(e.to_string().contains("25 of 25"), "{e}");
                limited += 1;
            }
        }
    }
    eprintln!("consents: {ok} reached the stand-in, {limited} refused by the ledger");
    assert_eq!((ok, limited), (25, 15));
    assert_eq!(s.consents_today(), 25);
    let today = ledgers[0].today(&a.client_id, Utc::now()).await.unwrap();
    assert_eq!(today.used, 25);
}

#[tokio::test]
async fn a_write_under_a_stale_epoch_is_refused_and_the_newer_token_stays() {
    let Some(db) = fresh_db().await else { return };
    let (a, b) = (db.backend("a", 15), db.backend("b", 15));
    let first = a.own("p", Duration::from_secs(5)).await.unwrap();
    let old_epoch = lease_epoch(&first);
    // The holder is paused past its lease: the database expires it.
    db.sql()
        .await
        .execute(
            "UPDATE dhan_login_leases SET expires_at = now() - interval '1 second'",
            &[],
        )
        .await
        .unwrap();
    let second = b.own("p", Duration::from_secs(5)).await.unwrap();
    assert_eq!(lease_epoch(&second), old_epoch + 1);
    b.save("p", &with_token("new.token.value"), Some(&second))
        .await
        .unwrap();
    // The paused holder wakes up and writes what it obtained meanwhile.
    let err = a
        .save("p", &with_token("old.token.value"), Some(&first))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Fenced { epoch, .. } if epoch == old_epoch),
        "{err}"
    );
    assert_eq!(Error::from(err).class(), ErrorClass::Transient);
    let stored = a.load("p").await.unwrap();
    assert_eq!(
        stored.token.unwrap().access_token.secret(),
        "new.token.value"
    );
    assert_eq!(stored.totp_last_step, Some(42));
}

#[tokio::test]
async fn a_lease_whose_holder_died_passes_on_after_lease_secs_with_a_higher_epoch() {
    let Some(db) = fresh_db().await else { return };
    const LEASE: u32 = 3;
    // The first holder runs on a runtime of its own that then disappears, renewal and
    // all, without letting go: what kill -9 does to a daemon.
    let dead = db.backend("dead", LEASE);
    let epoch = std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let epoch = rt.block_on(async {
            let owner = dead.own("p", Duration::from_secs(5)).await.unwrap();
            let e = lease_epoch(&owner);
            std::mem::forget(owner);
            e
        });
        rt.shutdown_background();
        epoch
    })
    .join()
    .unwrap();
    let died = Instant::now();

    let next = db.backend("next", LEASE);
    // Within the lease the profile stays with its (dead) holder.
    let early = next.own("p", Duration::from_millis(500)).await.unwrap_err();
    assert!(early.to_string().contains("leased to"), "{early}");
    let owner = next.own("p", Duration::from_secs(20)).await.unwrap();
    let took = died.elapsed();
    eprintln!(
        "lease taken over {:.2} s after its holder died (lease_secs = {LEASE})",
        took.as_secs_f64()
    );
    assert_eq!(lease_epoch(&owner), epoch + 1);
    assert!(owner.waited());
    assert!(owner.took_over(), "a lapsed lease is a takeover");
    assert!(took >= Duration::from_secs(2), "taken after {took:?}");
    assert!(took < Duration::from_secs(10), "taken after {took:?}");
}

#[tokio::test]
async fn a_held_lease_is_renewed_and_let_go_when_dropped() {
    let Some(db) = fresh_db().await else { return };
    let (a, b) = (db.backend("a", 3), db.backend("b", 3));
    let owner = a.own("p", Duration::from_secs(5)).await.unwrap();
    // Twice the lease: only renewal keeps it.
    let refused = b.own("p", Duration::from_secs(6)).await.unwrap_err();
    assert_eq!(refused.class(), ErrorClass::Transient);
    let epoch = lease_epoch(&owner);
    drop(owner);
    let started = Instant::now();
    let next = b.own("p", Duration::from_secs(5)).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(lease_epoch(&next), epoch + 1);
    assert!(!next.took_over(), "a released lease is not a takeover");
}

/// The race behind a rare "a released lease is not a takeover": a release that commits
/// while the next holder's statement waits for the row. The release is held open in a
/// transaction of our own until the next holder is seen waiting for its lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_committing_while_the_next_holder_waits_is_not_a_takeover() {
    let Some(db) = fresh_db().await else { return };
    let (a, b) = (db.backend("a", 30), db.backend("b", 30));
    let owner = a.own("p", Duration::from_secs(5)).await.unwrap();
    let (holder, epoch) = match &owner {
        Ownership::Lease(l) => (l.holder().to_owned(), l.epoch()),
        Ownership::File(_) => panic!("a store URL must give a lease"),
    };
    let mut sql = db.sql().await;
    let release = sql.transaction().await.unwrap();
    // What `Lease::release` runs, not committed yet.
    let n = release
        .execute(
            "UPDATE dhan_login_leases SET expires_at = now(), holder = ''
             WHERE profile = 'p' AND holder = $1 AND epoch = $2",
            &[&holder, &epoch],
        )
        .await
        .unwrap();
    assert_eq!(n, 1);
    let next = tokio::spawn(async move { b.own("p", Duration::from_secs(20)).await });
    let watcher = db.sql().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let waiting: i64 = watcher
            .query_one(
                "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                 WHERE NOT l.granted AND a.application_name = 'dhan-login-b'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if waiting > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the next holder never waited for the row"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    release.commit().await.unwrap();
    let next = next.await.unwrap().unwrap();
    assert_eq!(lease_epoch(&next), epoch + 1);
    assert!(!next.took_over(), "a released lease is not a takeover");
    drop(owner);
}

#[tokio::test]
async fn tokens_and_a_kept_token_id_are_sealed_in_the_database() {
    let Some(db) = fresh_db().await else { return };
    let backend = db.backend("a", 15);
    let owner = backend.own("p", Duration::from_secs(5)).await.unwrap();
    let secret = "eyJhbGciOiJIUzUxMiJ9.c2VjcmV0LXBheWxvYWQ.c2lnbmF0dXJlLXNlY3JldA";
    let token_id = "4f6c1e0a-kept-token-id-3b9d";
    let kept = KeptTokenId::new(SecretString::from(token_id), "1100000042", Utc::now());
    let state = ProfileState {
        kept_token_id: Some(kept.clone()),
        ..with_token(secret)
    };
    backend.save("p", &state, Some(&owner)).await.unwrap();
    let loaded = backend.load("p").await.unwrap();
    assert_eq!(loaded.token.unwrap().access_token.secret(), secret);
    assert_eq!(loaded.kept_token_id, Some(kept));
    // Every row of every table, as a dump would hold it.
    let client = db.sql().await;
    let tables = client
        .query(
            "SELECT tablename FROM pg_tables WHERE tablename LIKE 'dhan_login_%'",
            &[],
        )
        .await
        .unwrap();
    let mut dump = String::new();
    for t in tables {
        let name: String = t.get(0);
        for row in client
            .query(&format!("SELECT t::text FROM {name} t"), &[])
            .await
            .unwrap()
        {
            dump.push_str(&row.get::<_, String>(0));
        }
    }
    assert!(dump.contains("totp_last_step"), "{dump}");
    for part in secret.split('.') {
        assert!(!dump.contains(part), "a piece of the token is in the dump");
    }
    assert!(dump.contains("sealed_token_id"), "{dump}");
    assert!(
        !dump.contains("kept-token-id"),
        "the tokenId is in the dump"
    );
    // Another key cannot open it, and says so without showing anything of it.
    let other_key = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        other_key.path(),
        base64::engine::general_purpose::STANDARD.encode([9u8; 32]),
    )
    .unwrap();
    let p = db.profile(
        "other-key",
        15,
        &[(
            "DHAN_LOGIN_STORE_KEY_FILE".into(),
            other_key.path().to_string_lossy().into_owned(),
        )],
    );
    // A token sealed with another key counts as absent (the next login replaces it):
    // it used to fail every command until the row was deleted by hand.
    let other = StateBackend::for_settings(&p.state_dir, &p.store);
    let state = other.load("p").await.unwrap();
    assert!(state.token.is_none());
    assert!(
        state.kept_token_id.is_none(),
        "another key's tokenId is dropped"
    );
    assert_eq!(
        state.totp_last_step,
        Some(42),
        "the rest of the state stays"
    );
    owner.release().await;
    let owner = other.own("p", Duration::from_secs(5)).await.unwrap();
    other
        .save("p", &with_token("resealed.with.newkey"), Some(&owner))
        .await
        .unwrap();
    let reopened = other.load("p").await.unwrap().token.unwrap();
    assert_eq!(reopened.access_token.secret(), "resealed.with.newkey");
}

/// After README's "point dhan-login at a new key", the CLI logs in again and stores the
/// token under the new key (it used to exit 5 for ever, saying the row does not
/// decrypt). What only the user can fix is a configuration error, exit 2, not exit 5:
/// a missing key file, a user the server does not know, a database that does not exist.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_store_key_means_log_in_again_and_what_the_user_must_fix_is_exit_2() {
    let Some(db) = fresh_db().await else { return };
    let s = MockServer::start(MockOptions::default()).await.unwrap();
    let a = s.account().clone();
    let mut env = db.cli_env("cli", &s, &a.pin);
    // Two logins a few seconds apart on purpose: the mint window is not under test.
    env.push(("DHAN_LOGIN_MINT_INTERVAL_SECS".to_owned(), "0".to_owned()));
    let run = |args: &[&str], over: &[(&str, String)]| {
        let out = std::process::Command::new(BIN)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .envs(over.iter().map(|(k, v)| (*k, v.as_str())))
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).trim().to_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, first, err) = tokio::task::block_in_place(|| run(&["token"], &[]));
    assert_eq!(code, Some(0), "{err}");
    std::fs::write(
        &db.key_file,
        base64::engine::general_purpose::STANDARD.encode([7u8; 32]),
    )
    .unwrap();
    for args in [&["status"][..], &["token"][..]] {
        let (code, out, err) = tokio::task::block_in_place(|| run(args, &[]));
        assert_eq!(code, Some(0), "{args:?}: {out}\n{err}");
        assert!(err.contains("does not decrypt"), "{args:?}: {err}");
        assert!(!err.contains(&first), "the old token leaked");
    }
    assert_eq!(s.logins(), 2, "the new key meant one new login");
    let (code, again, err) = tokio::task::block_in_place(|| run(&["token"], &[]));
    assert_eq!(code, Some(0), "{err}");
    assert!(!err.contains("does not decrypt"), "resealed: {err}");
    assert_eq!(s.logins(), 2, "{again}");

    let missing = db.state.path().join("no-such.key");
    let mut wrong_user = url::Url::parse(&db.url).unwrap();
    wrong_user.set_username("no_such_user").unwrap();
    let mut no_db = url::Url::parse(&db.url).unwrap();
    no_db.set_path("no_such_database");
    for (what, over) in [
        (
            "a missing key file",
            ("DHAN_LOGIN_STORE_KEY_FILE", missing.display().to_string()),
        ),
        (
            "an unknown user",
            ("DHAN_LOGIN_STORE_URL", wrong_user.to_string()),
        ),
        (
            "a missing database",
            ("DHAN_LOGIN_STORE_URL", no_db.to_string()),
        ),
    ] {
        for args in [&["token"][..], &["status"][..]] {
            let (code, out, err) =
                tokio::task::block_in_place(|| run(args, std::slice::from_ref(&over)));
            assert_eq!(
                code,
                Some(exit_of(ErrorClass::Config)),
                "{what}, {args:?}: {out}\n{err}"
            );
            assert!(err.contains("state database"), "{what}: {err}");
        }
    }
}

#[tokio::test]
async fn migrations_apply_once_and_a_newer_schema_is_refused() {
    let Some(db) = fresh_db().await else { return };
    let (a, b) = (db.backend("a", 15), db.backend("b", 15));
    let (x, y) = tokio::join!(a.load("p"), b.load("p"));
    x.unwrap();
    y.unwrap();
    let client = db.sql().await;
    let versions: Vec<i32> = client
        .query(
            "SELECT version FROM dhan_login_schema ORDER BY version",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, [1, 2, 3]);
    client
        .execute("INSERT INTO dhan_login_schema (version) VALUES (99)", &[])
        .await
        .unwrap();
    let err = db.backend("newer", 15).load("p").await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::SchemaTooNew {
                found: 99,
                known: 3
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("upgrade dhan-login"), "{err}");
    assert_eq!(Error::from(err).class(), ErrorClass::Config);
}

/// The CLI with a store URL: the token lands in the database (not in the state folder),
/// the next run uses it, and no login starts while another holder has the lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_shares_the_database_and_never_logs_in_under_another_lease() {
    let Some(db) = fresh_db().await else { return };
    let s = MockServer::start(MockOptions::default()).await.unwrap();
    let a = s.account().clone();
    let mut env = db.cli_env("cli", &s, &a.pin);
    env.push(("DHAN_LOGIN_LOCK_WAIT_SECS".to_owned(), "2".to_owned()));
    let run = |args: &[&str]| {
        let out = std::process::Command::new(BIN)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env.iter().map(|(k, v)| (k, v)))
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).trim().to_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, first, err) = tokio::task::block_in_place(|| run(&["token"]));
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(s.logins(), 1);
    assert!(
        !db.state.path().join("tokens").exists(),
        "the token went to the state folder"
    );
    let (code, again, err) = tokio::task::block_in_place(|| run(&["token"]));
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(again, first);
    assert_eq!(s.logins(), 1, "the second run logged in again");

    // Another machine holds the profile: a login waits, then gives up (exit 5).
    let other = db.backend("other", 15);
    let held = other.own("default", Duration::from_secs(5)).await.unwrap();
    let (code, out, err) = tokio::task::block_in_place(|| run(&["login"]));
    assert_eq!(code, Some(exit_of(ErrorClass::Transient)), "{out}\n{err}");
    assert!(err.contains("leased to"), "{err}");
    assert!(!err.contains(&first), "the token leaked into the error");
    assert_eq!(s.logins(), 1, "a login ran under another holder's lease");
    drop(held);
    let (code, _, err) = tokio::task::block_in_place(|| run(&["status", "--json"]));
    assert_eq!(code, Some(0), "{err}");
}

/// The store URL may carry a password: an unreachable database is a transient failure
/// (exit 5) whose message, at any log level, never shows it, nor the key.
#[test]
fn an_unreachable_database_is_transient_and_its_password_never_shows() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("store.key");
    let key_text = base64::engine::general_purpose::STANDARD.encode([3u8; 32]);
    std::fs::write(&key, &key_text).unwrap();
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let password = "Sup3rS3cretStorePw";
    for args in [&["-vvv", "token"][..], &["status"][..]] {
        let url = format!("postgres://dhan:{password}@127.0.0.1:{port}/dhan");
        let (code, all) = common::pg::run_on_store(args, dir.path(), &url, &key);
        assert_eq!(
            code,
            Some(exit_of(ErrorClass::Transient)),
            "{args:?}: {all}"
        );
        assert!(all.contains("state database"), "{args:?}: {all}");
        assert!(
            !all.contains(password),
            "{args:?} printed the password: {all}"
        );
        assert!(!all.contains(&key_text), "{args:?} printed the key: {all}");
    }
}

/// A store key that cannot be read is the user's to fix (exit 2), and the message names
/// the setting once: it used to say `store.key: store.key: cannot read …`.
#[test]
fn a_missing_store_key_is_exit_2_and_says_its_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("absent-key-file");
    let (code, all) = common::pg::run_on_store(
        &["token"],
        dir.path(),
        "postgres://dhan@127.0.0.1:9/dhan",
        &missing,
    );
    assert_eq!(code, Some(exit_of(ErrorClass::Config)), "{all}");
    assert!(all.contains("absent-key-file"), "{all}");
    assert_eq!(all.matches("store.key:").count(), 1, "{all}");
}

/// A logout that read a token which a successor has since replaced drops nothing: the
/// successor's token stays. A logout of the current token drops it, and only it.
#[tokio::test]
async fn a_logout_never_drops_a_token_stored_after_it_read() {
    let Some(db) = fresh_db().await else { return };
    let (a, b) = (db.backend("a", 15), db.backend("b", 15));
    let owner = a.own("p", Duration::from_secs(5)).await.unwrap();
    a.save("p", &with_token("old.token.value"), Some(&owner))
        .await
        .unwrap();
    owner.release().await;
    // The logout reads the old token...
    let mut read = a.load("p").await.unwrap();
    let old = read.token.take().unwrap();
    // ...while another machine takes the profile and stores its own.
    let next = b.own("p", Duration::from_secs(5)).await.unwrap();
    b.save("p", &with_token("new.token.value"), Some(&next))
        .await
        .unwrap();
    assert!(!a.forget("p", &read, &old).await.unwrap());
    let kept = a.load("p").await.unwrap().token.unwrap();
    assert_eq!(kept.access_token.secret(), "new.token.value");

    let mut current = a.load("p").await.unwrap();
    let token = current.token.take().unwrap();
    assert!(a.forget("p", &current, &token).await.unwrap());
    let after = a.load("p").await.unwrap();
    assert!(after.token.is_none());
    assert_eq!(after.totp_last_step, Some(42), "only the token goes");
}

/// A wrong PIN with the database: the lockout row holds a keyed fingerprint (the unkeyed
/// SHA-256 of the credentials is not in it), and `-vv` does not log the driver's
/// statement parameters (the lockout JSON, lease holders).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lockout_row_is_keyed_and_debug_logs_hold_no_statement_parameters() {
    let Some(db) = fresh_db().await else { return };
    let s = MockServer::start(MockOptions::default()).await.unwrap();
    let a = s.account().clone();
    let env = db.cli_env("cli", &s, "424242");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(BIN)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env.iter().map(|(k, v)| (k, v)))
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = tokio::task::block_in_place(|| run(&["-vv", "login", "--via", "totp"]));
    assert_eq!(code, Some(exit_of(ErrorClass::CredentialRejected)), "{err}");
    let (code, err2) = tokio::task::block_in_place(|| run(&["-vv", "token"]));
    assert_eq!(
        code,
        Some(exit_of(ErrorClass::CredentialRejected)),
        "{err2}"
    );
    let row: String = db
        .sql()
        .await
        .query_one(
            "SELECT lockouts FROM dhan_login_lockouts WHERE profile = 'default'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let holder: String = db
        .sql()
        .await
        .query_one("SELECT holder FROM dhan_login_leases", &[])
        .await
        .map(|r| r.get(0))
        .unwrap_or_default();
    for log in [&err, &err2] {
        assert!(!log.contains("with parameters"), "{log}");
        assert!(!log.contains("\"fingerprint\""), "{log}");
        assert!(!log.contains("hmac1:"), "{log}");
        assert!(holder.is_empty() || !log.contains(&holder), "{log}");
    }
    let lockouts: serde_json::Value = serde_json::from_str(&row).unwrap();
    let fingerprint = lockouts[0]["fingerprint"].as_str().unwrap();
    assert!(fingerprint.starts_with("hmac1:"), "{row}");
    let unkeyed = {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(b"dhan-login credentials v2\0");
        h.update(a.client_id.as_bytes());
        h.update(b"\0pin=424242\0totp_secret=");
        h.update(a.totp_secret.as_bytes());
        h.finalize()
            .iter()
            .take(16)
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    assert!(!row.contains(&unkeyed), "the row holds a searchable hash");
}

/// A consent whose request never left is given back in the database's ledger too.
#[tokio::test]
async fn an_unsent_consent_is_given_back_in_the_database() {
    let Some(db) = fresh_db().await else { return };
    let ledger = db.backend("a", 15).ledger(25);
    let now = Utc::now();
    for _ in 0..30 {
        ledger.reserve("1100000001", now).await.unwrap();
        ledger.unreserve("1100000001", now).await.unwrap();
    }
    let day = ledger.today("1100000001", now).await.unwrap();
    assert_eq!(day.used, 0);
    ledger.reserve("1100000001", now).await.unwrap();
    assert_eq!(ledger.today("1100000001", now).await.unwrap().used, 1);
}

/// Two machines on one database, each with a state folder of its own, run `login --via
/// totp` one after the other: one generateAccessToken request reaches Dhan, and the second
/// machine exits 5 naming the IST time of the next allowed attempt. The window is read
/// from the database, not from either machine's files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_send_one_generate_access_token_within_the_mint_window() {
    use dhan_login::mock::Endpoint;
    let Some(db) = fresh_db().await else { return };
    let s = MockServer::start(MockOptions {
        mint_interval: Duration::from_secs(120),
        ..Default::default()
    })
    .await
    .unwrap();
    let a = s.account().clone();
    let run = |replica: &str| {
        let own_state = tempfile::tempdir().unwrap();
        let mut env = db.cli_env(replica, &s, &a.pin);
        env.retain(|(k, _)| k != "DHAN_LOGIN_STATE_DIR");
        env.push((
            "DHAN_LOGIN_STATE_DIR".to_owned(),
            own_state.path().to_string_lossy().into_owned(),
        ));
        let out = std::process::Command::new(BIN)
            .args(["login", "--via", "totp"])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env.iter().map(|(k, v)| (k, v)))
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).trim().to_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, token, err) = tokio::task::block_in_place(|| run("r1"));
    assert_eq!(code, Some(0), "{err}");
    let (code, out, err) = tokio::task::block_in_place(|| run("r2"));
    assert_eq!(code, Some(exit_of(ErrorClass::Transient)), "{out}\n{err}");
    assert!(err.contains("next attempt is allowed at"), "{err}");
    assert!(err.contains(" IST"), "{err}");
    assert!(!err.contains(&token), "the token leaked into the error");
    assert_eq!(s.calls(Endpoint::GenerateAccessToken), 1);
    let stored: String = db
        .sql()
        .await
        .query_one(
            "SELECT outcome FROM dhan_login_mints WHERE client_id = $1",
            &[&a.client_id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, "minted");
}
