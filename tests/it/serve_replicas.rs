//! Several `serve` processes ("machines", each with its own state folder and serve.key)
//! on one PostgreSQL database: one login per profile in all, the lease passing on when
//! its holder dies or freezes, the shared consent ledger, and the database restarting
//! under load.

use crate::common;

use std::sync::Arc;
use std::time::{Duration, Instant};

#[cfg(feature = "browser")]
use common::cli::exit_of;
use common::cli::printed_token;
use common::serve::{
    Daemon, Login, Machine, SharedStore, account_profile, eventually, import_with, profile,
    serve_table, short_lived, start_all,
};
use common::{ist_time_of_day, jwt_claims, run};
#[cfg(feature = "browser")]
use dhan_login::ErrorClass;
use dhan_login::mock::{Endpoint, Fault, MockOptions, MockServer, TokenKind};

/// The lease length the failover tests use: 3 s unless DHAN_LOGIN_TEST_LEASE_SECS says
/// otherwise (the README's figure for the default of 15 s comes from running them so).
fn test_lease_secs() -> u64 {
    std::env::var("DHAN_LOGIN_TEST_LEASE_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
}

/// The lease row of `profile`: holder and epoch.
async fn lease_row(db: &str, profile: &str) -> Option<(String, i64)> {
    let (client, conn) = tokio_postgres::connect(db, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .query_opt(
            "SELECT holder, epoch FROM dhan_login_leases WHERE profile = $1",
            &[&profile],
        )
        .await
        .unwrap()
        .map(|r| (r.get(0), r.get(1)))
}

/// A `[serve]` table refreshing `ahead_secs` before expiry, and a PIN + TOTP profile
/// for each of the stand-in's accounts, named `{prefix}01`, `{prefix}02`...
fn one_profile_per_account(
    server: &MockServer,
    prefix: &str,
    ahead_secs: f64,
) -> (Vec<String>, String) {
    let mut config = serve_table(ahead_secs);
    let mut names = Vec::new();
    for (i, a) in server.accounts().iter().enumerate() {
        let name = format!("{prefix}{:02}", i + 1);
        config += &account_profile(&name, server, a, Login::Totp);
        names.push(name);
    }
    (names, config)
}

/// Three daemons on three "machines" (each its own state folder and serve.key) sharing
/// one database: one login in all, the same token from every replica. One replica holds
/// the profile's lease between logins; killed with SIGKILL, another takes the lease over
/// once it lapses, without logging in (the token is fresh), and the token endpoint of the
/// others never stops answering.
#[tokio::test(flavor = "multi_thread")]
async fn three_replicas_on_one_database_log_in_once_and_outlive_a_kill_9() {
    let Some(store) = SharedStore::new().await else {
        return;
    };
    let lease = test_lease_secs();
    let server = MockServer::start(MockOptions::default()).await.unwrap();
    let mut machines = store.machines(
        3,
        &(profile("acct", &server, Login::Totp) + &serve_table(60.0)),
    );
    let started = Instant::now();
    let mut daemons = start_all(machines.iter().map(|m| {
        let mut cmd = m.command();
        cmd.env("DHAN_LOGIN_LEASE_SECS", lease.to_string());
        (cmd, vec!["acct".to_owned()])
    }))
    .await;
    let mut tokens = Vec::new();
    for (d, m) in daemons.iter().zip(&machines) {
        tokens.push(
            d.served_token("acct", &m.key(), Duration::from_secs(40))
                .await,
        );
    }
    eprintln!(
        "3 replicas: every one served the token {:.2} s after start",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(server.logins(), 1, "{}", daemons[0].log());
    assert!(tokens.iter().all(|t| t == &tokens[0]));
    assert!(server.is_live(&tokens[0]));

    // Exactly one replica holds the lease; the others stand by.
    let (holder, epoch) = lease_row(&store.url, "acct").await.expect("a lease row");
    let mut states = Vec::new();
    for d in &daemons {
        states.push(
            d.profile("acct").await["state"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(
        states.iter().filter(|s| *s == "standby").count(),
        2,
        "{states:?}"
    );
    let pid_of = |d: &Daemon| d.child.id().unwrap();
    let h = daemons
        .iter()
        .position(|d| holder.contains(&format!("/{}/", pid_of(d))))
        .unwrap_or_else(|| panic!("the holder {holder} is none of the replicas"));
    assert_ne!(states[h], "standby");

    let mut dead = daemons.remove(h);
    let dead_machine = machines.remove(h);
    dead.child.start_kill().unwrap();
    dead.child.wait().await.unwrap();
    let killed = Instant::now();
    for (d, m) in daemons.iter().zip(&machines) {
        let (status, body) = d.get("/v1/profiles/acct/token", Some(&m.key())).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.contains(&tokens[0]));
    }
    eprintln!(
        "after kill -9 of the holder the others answered within {:.3} s",
        killed.elapsed().as_secs_f64()
    );
    drop(dead_machine);
    // The lease passes on once it lapses: at most lease_secs after the last renewal.
    let limit = Duration::from_secs(lease + 10);
    let new_holder = loop {
        if let Some((who, e)) = lease_row(&store.url, "acct").await
            && e > epoch
            && !who.is_empty()
        {
            break who;
        }
        assert!(
            killed.elapsed() < limit,
            "nobody took the lease over within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let took = killed.elapsed();
    eprintln!(
        "kill -9 of the holder: lease taken over {:.2} s later (lease_secs = {lease}), logins at the stand-in: {}",
        took.as_secs_f64(),
        server.logins()
    );
    assert!(
        took <= Duration::from_secs(lease) + Duration::from_secs(3),
        "took over after {took:?} with a lease of {lease} s"
    );
    assert!(
        daemons
            .iter()
            .any(|d| new_holder.contains(&format!("/{}/", pid_of(d)))),
        "{new_holder}"
    );
    // The token was fresh: the new holder serves it and does not log in.
    tokio::time::sleep(Duration::from_secs(1)).await;
    for (d, m) in daemons.iter().zip(&machines) {
        let token = d
            .served_token("acct", &m.key(), Duration::from_secs(5))
            .await;
        assert_eq!(token, tokens[0]);
    }
    assert_eq!(server.logins(), 1, "a replica logged in again");
    for d in daemons {
        d.stop().await;
    }
}

/// A replica frozen (SIGSTOP) mid-login past its lease wakes up (SIGCONT) after another
/// replica took the profile over and stored a newer token: its write is refused (fencing),
/// the newer token stays, and nobody logs in a third time.
#[tokio::test(flavor = "multi_thread")]
async fn a_replica_frozen_past_its_lease_cannot_overwrite_its_successors_token() {
    let Some(store) = SharedStore::new().await else {
        return;
    };
    let server = MockServer::start(MockOptions::default()).await.unwrap();
    let config = profile("acct", &server, Login::Totp) + &serve_table(60.0);
    let machine = || {
        let m = store.machine(&config);
        let mut cmd = m.command();
        cmd.env("DHAN_LOGIN_LEASE_SECS", "3");
        (m, cmd)
    };
    // A's login answer is held back for a second, long enough to freeze A under it.
    server.set_fault_once(
        Endpoint::GenerateAccessToken,
        Fault::Delay(Duration::from_secs(1)),
    );
    let (machine_a, cmd_a) = machine();
    let a = Daemon::start(cmd_a, &["acct"]).await;
    eventually(Duration::from_secs(30), "A asks for a token", || async {
        server.calls(Endpoint::GenerateAccessToken) >= 1
    })
    .await;
    let pid_a = a.child.id().expect("A runs") as libc::pid_t;
    // SAFETY: kill(2) on our own child's pid.
    unsafe {
        libc::kill(pid_a, libc::SIGSTOP);
    }
    // Past A's lease (3 s): B may take the profile over.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (machine_b, cmd_b) = machine();
    let b = Daemon::start(cmd_b, &["acct"]).await;
    let key_b = machine_b.key();
    let newer = b
        .served_token("acct", &key_b, Duration::from_secs(40))
        .await;
    assert_eq!(server.logins(), 2, "{}", b.log());
    // SAFETY: as above.
    unsafe {
        libc::kill(pid_a, libc::SIGCONT);
    }
    eventually(
        Duration::from_secs(20),
        "A's stale write is refused",
        || async { a.log().contains("has passed to another holder") },
    )
    .await;
    // A settles on B's token, from the database; nobody logs in again.
    let key_a = machine_a.key();
    eventually(
        Duration::from_secs(20),
        "A serves the newer token",
        || async {
            let (status, body) = a.get("/v1/profiles/acct/token", Some(&key_a)).await;
            status == 200 && body.contains(&newer)
        },
    )
    .await;
    let (_, body) = b.get("/v1/profiles/acct/token", Some(&key_b)).await;
    assert!(body.contains(&newer), "{body}");
    assert!(server.is_live(&newer));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(server.logins(), 2, "a third login:\n{}", a.log());
    for d in [a, b] {
        d.stop().await;
    }
}

/// Three daemons sharing one database serve thirty profiles (thirty accounts on one
/// stand-in): each profile is logged in exactly once, and every replica hands out the
/// same token for it.
#[tokio::test(flavor = "multi_thread")]
async fn three_replicas_serve_thirty_profiles_with_one_login_each() {
    let Some(store) = SharedStore::new().await else {
        return;
    };
    const PROFILES: u32 = 30;
    let server = MockServer::start(MockOptions {
        accounts: PROFILES,
        ..MockOptions::default()
    })
    .await
    .unwrap();
    let (names, config) = one_profile_per_account(&server, "p", 60.0);
    let machines = store.machines(3, &config);
    let started = Instant::now();
    let daemons = start_all(machines.iter().map(|m| (m.command(), names.clone()))).await;
    // Every replica, every profile: the token each hands out, once all have one.
    let mut served = vec![vec![String::new(); names.len()]; daemons.len()];
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let mut missing = 0;
        for (r, (d, m)) in daemons.iter().zip(&machines).enumerate() {
            let key = m.key();
            for (i, name) in names.iter().enumerate() {
                if !served[r][i].is_empty() {
                    continue;
                }
                match d.token(name, &key).await {
                    Ok(token) => served[r][i] = token,
                    Err(_) => missing += 1,
                }
            }
        }
        if missing == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{missing} tokens still missing after 90 s:\n{}",
            daemons[0].log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let took = started.elapsed();
    let logins = server.logins();
    eprintln!(
        "3 replicas x {PROFILES} profiles: all {} tokens served {:.2} s after start; {logins} logins at the stand-in",
        3 * PROFILES,
        took.as_secs_f64()
    );
    for (i, (name, a)) in names.iter().zip(server.accounts()).enumerate() {
        assert_eq!(server.logins_of(&a.client_id), 1, "{name}");
        assert_eq!(
            served[1][i], served[0][i],
            "{name}: replicas 1 and 2 differ"
        );
        assert_eq!(
            served[2][i], served[0][i],
            "{name}: replicas 1 and 3 differ"
        );
        assert!(server.is_live(&served[0][i]), "{name}");
        assert_eq!(
            jwt_claims(&served[0][i]).unwrap()["dhanClientId"],
            a.client_id.as_str()
        );
    }
    assert_eq!(logins, PROFILES);
    for d in daemons {
        d.stop().await;
    }
}

/// Forty profiles of one account, each logged in by a process of its own on one of three
/// machines sharing one database, try the consent login at once with a daily cap of 25: the shared ledger lets
/// exactly 25 generate-consent calls reach the stand-in, whatever the interleaving.
///
/// The stand-in answers generate-consent after 8 s, so every attempt counts itself in the
/// ledger before any consentAppId exists to be reused; Chromium is missing, so each
/// attempt ends right after its consent (its consentAppId stays pending, unspent).
#[cfg(feature = "browser")]
#[tokio::test(flavor = "multi_thread")]
async fn forty_consent_attempts_from_three_machines_stop_at_the_cap_of_25() {
    const ATTEMPTS: usize = 40;
    let server = MockServer::start(MockOptions {
        consent_cap: 1000,
        ..MockOptions::default()
    })
    .await
    .unwrap();
    server.set_fault(
        Endpoint::GenerateConsent,
        Fault::Delay(Duration::from_secs(8)),
    );
    let Some(store) = SharedStore::new().await else {
        return;
    };
    let a = server.account();
    let names: Vec<String> = (1..=ATTEMPTS).map(|i| format!("c{i:02}")).collect();
    let mut config = serve_table(60.0);
    for name in &names {
        // No TOTP secret: the consent login is the only way (otp_command would answer
        // an SMS screen, which is never reached).
        config += &format!(
            "[profiles.{name}]\nclient_id = \"{}\"\nauth_base_url = \"{}\"\napi_base_url = \"{}\"\n\
             mobile = \"{}\"\npin = \"{}\"\napi_key = \"{}\"\napi_secret = \"{}\"\n\
             redirect_url = \"{}\"\notp_command = \"false\"\nconsent_cap = 25\n\
             margin_minutes = 0.02\nlock_wait_secs = 20\n",
            a.client_id,
            server.auth_base_url().as_str().trim_end_matches('/'),
            server.api_base_url(),
            a.mobile,
            a.pin,
            a.api_key,
            a.api_secret,
            a.redirect_url,
        );
    }
    let machines = store.machines(3, &config);
    // Forty logins at once, one process each, spread over three machines. Not daemons:
    // serve refuses to hold two profiles on one client id (they would log each other
    // out), while the ledger must hold against any number of processes.
    let runs: Vec<_> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let m = &machines[i % 3];
            let mut cmd = m.command();
            cmd.env(
                "DHAN_LOGIN_CHROME",
                m.sandbox.state_dir().join("no-chromium"),
            )
            .args(["--profile", name, "login", "--via", "browser"]);
            tokio::spawn(common::run_within(cmd, None, Duration::from_secs(90)))
        })
        .collect();
    let mut held = 0;
    let mut logs = String::new();
    for run in runs {
        let run = run.await.unwrap();
        // Every attempt fails: no Chromium, or the cap (exit 4).
        assert_ne!(run.code, Some(0), "{run}");
        if run.code == Some(exit_of(ErrorClass::ConsentLimit)) {
            held += 1;
        } else if logs.is_empty() {
            logs = run.to_string();
        }
    }
    let reached = server.calls(Endpoint::GenerateConsent);
    let (client, conn) = tokio_postgres::connect(&store.url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let used: i32 = client
        .query_one(
            "SELECT used FROM dhan_login_consents WHERE client_id = $1",
            &[&a.client_id],
        )
        .await
        .unwrap()
        .get(0);
    eprintln!(
        "{ATTEMPTS} consent attempts from 40 processes on 3 machines, cap 25: {reached} reached the stand-in, \
         {held} refused by the shared ledger, the rest reused the pending consent; ledger used = {used}"
    );
    assert_eq!(reached, 25, "{logs}");
    assert_eq!(server.consents_today(), 25);
    assert_eq!(used, 25);
    assert!(
        held >= 1,
        "the cap was never reached: the test proves nothing"
    );
}

/// PostgreSQL stopped and started again (a restart with a 3 s outage) while three
/// replicas serve three profiles whose tokens are renewed every 10 s (the first round
/// falls due during the outage), and programs ask for tokens all along: every request is answered with a valid token (during the outage
/// from the replica's memory), the replicas reconnect, every refresh afterwards is one
/// RenewToken by one replica (a second would have been refused and forced a login), and
/// all replicas end up serving the same live tokens.
#[tokio::test(flavor = "multi_thread")]
async fn a_postgres_restart_under_load_loses_no_token_and_logs_in_nobody() {
    let Some(cluster) = common::pg::Cluster::start(&[]) else {
        return;
    };
    const PROFILES: u32 = 3;
    let server = MockServer::start(MockOptions {
        accounts: PROFILES,
        ..short_lived(20)
    })
    .await
    .unwrap();
    // PIN and TOTP too: a refused renewal would fall back to a login, which counts.
    let (names, config) = one_profile_per_account(&server, "r", 10.0);
    let machines = SharedStore::at(cluster.url()).machines(3, &config);
    // Dhan Web tokens, renewable, imported once into the shared database.
    for (name, a) in names.iter().zip(server.accounts()) {
        let token = server
            .issue_token_for(&a.client_id, TokenKind::SelfWeb, Duration::from_secs(20))
            .unwrap();
        import_with(machines[0].command(), name, &token).await;
    }
    let daemons = start_all(machines.iter().map(|m| (m.command(), names.clone()))).await;
    let daemons = Arc::new(daemons);
    let bearer: Vec<String> = machines.iter().map(Machine::key).collect();

    // Programs asking every replica for every token, all along.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let (daemons, names, stop) = (daemons.clone(), names.clone(), stop.clone());
        tokio::spawn(async move {
            let mut answers: Vec<(Instant, u16, String)> = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for (d, key) in daemons.iter().zip(&bearer) {
                    for name in &names {
                        let (status, body) = d
                            .get(&format!("/v1/profiles/{name}/token"), Some(key))
                            .await;
                        answers.push((Instant::now(), status, body));
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            answers
        })
    };
    // The outage covers the first renewal round (due 10 s after the tokens were made).
    tokio::time::sleep(Duration::from_secs(8)).await;
    let renewed_before = server.calls(Endpoint::RenewToken);
    let down = Instant::now();
    tokio::task::block_in_place(|| cluster.down());
    tokio::time::sleep(Duration::from_secs(3)).await;
    tokio::task::block_in_place(|| cluster.up());
    let up = Instant::now();
    // Two renewal rounds after the restart.
    tokio::time::sleep(Duration::from_secs(22)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let answers = load.await.unwrap();

    let during: Vec<_> = answers
        .iter()
        .filter(|(at, ..)| *at >= down && *at <= up)
        .collect();
    let failed: Vec<_> = answers.iter().filter(|(_, s, _)| *s != 200).collect();
    let renewals = server.calls(Endpoint::RenewToken);
    eprintln!(
        "PostgreSQL down for {:.1} s: {} token requests during the outage, {} over the run, {} not 200; \
         RenewToken calls {renewed_before} before the restart, {renewals} in all; logins {}",
        (up - down).as_secs_f64(),
        during.len(),
        answers.len(),
        failed.len(),
        server.logins()
    );
    assert!(!during.is_empty(), "no request fell in the outage");
    assert!(
        failed.is_empty(),
        "{} requests failed, first: {:?}\n{}",
        failed.len(),
        failed.first().map(|(_, s, b)| (s, b)),
        daemons[0].log()
    );
    assert_eq!(
        server.logins(),
        0,
        "a refresh became a login:\n{}",
        daemons
            .iter()
            .map(|d| d.log())
            .collect::<Vec<_>>()
            .join("\n--- next replica ---\n")
    );
    // Each profile renewed after the restart, by one replica at a time.
    assert!(
        renewals >= renewed_before + 2 * PROFILES,
        "{renewals} renewals in all, {renewed_before} before the restart"
    );
    for name in &names {
        let mut tokens = Vec::new();
        for (d, m) in daemons.iter().zip(&machines) {
            let token = d.token(name, &m.key()).await;
            tokens.push(token.unwrap_or_else(|(status, body)| panic!("{name}: {status} {body}")));
        }
        assert!(tokens.iter().all(|t| t == &tokens[0]), "{name}");
        assert!(
            server.is_live(&tokens[0]),
            "{name}: the served token is dead"
        );
    }
    let daemons = Arc::try_unwrap(daemons).unwrap_or_else(|_| panic!("the load task is done"));
    for d in daemons {
        d.stop().await;
    }
}

/// Two replicas on one database and a CLI consumer, across a daily `login_at`: the token
/// made before it is served unchanged until that time (no rotation, whatever
/// `refresh_ahead` says), exactly one login replaces it then, and the consumer, reading
/// the shared store, gets the new token without a login of its own.
#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_and_a_cli_consumer_cross_login_at_with_exactly_one_login() {
    let Some(store) = SharedStore::new().await else {
        return;
    };
    let server = MockServer::start(MockOptions::default()).await.unwrap();
    let machines = store.machines(
        2,
        &(profile("acct", &server, Login::Totp) + &serve_table(60.0)),
    );
    let old = server.issue_token(TokenKind::App, Duration::from_secs(24 * 3600));
    import_with(machines[0].command(), "acct", &old).await;
    // Whole seconds, as login_at holds them.
    let at =
        chrono::SubsecRound::trunc_subsecs(chrono::Utc::now() + chrono::Duration::seconds(10), 0);
    let daily = |m: &Machine| {
        let mut cmd = m.command();
        cmd.env("DHAN_LOGIN_AT", ist_time_of_day(at))
            .env("DHAN_LOGIN_LEASE_SECS", test_lease_secs().to_string());
        cmd
    };
    let daemons = start_all(machines.iter().map(|m| (daily(m), vec!["acct".to_owned()]))).await;
    let consumer = |m: &Machine| {
        let mut cmd = daily(m);
        cmd.args(["--profile", "acct", "token"]);
        cmd
    };
    // Before login_at: the stored token everywhere, no login, no renewal.
    while chrono::Utc::now() < at - chrono::Duration::seconds(1) {
        for (d, m) in daemons.iter().zip(&machines) {
            assert_eq!(
                d.served_token("acct", &m.key(), Duration::from_secs(5))
                    .await,
                old
            );
        }
        assert_eq!(printed_token(&run(consumer(&machines[1]), None).await), old);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(server.logins(), 0, "{}", daemons[0].log());

    eventually(Duration::from_secs(40), "the daily login", || async {
        server.logins() >= 1
    })
    .await;
    assert!(chrono::Utc::now() >= at, "logged in before login_at");
    let mut served = Vec::new();
    for (d, m) in daemons.iter().zip(&machines) {
        eventually(Duration::from_secs(40), "the new token served", || async {
            d.token("acct", &m.key()).await.is_ok_and(|t| t != old)
        })
        .await;
        served.push(
            d.served_token("acct", &m.key(), Duration::from_secs(5))
                .await,
        );
    }
    assert_eq!(served[0], served[1]);
    assert!(server.is_live(&served[0]));
    assert!(!server.is_live(&old));
    assert_eq!(
        printed_token(&run(consumer(&machines[1]), None).await),
        served[0]
    );
    // Nothing rotates after it.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(server.logins(), 1, "{}", daemons[0].log());
    assert_eq!(
        printed_token(&run(consumer(&machines[0]), None).await),
        served[0]
    );
    for d in daemons {
        d.stop().await;
    }
}

/// A consumer reports the token to a replica standing by, after a login elsewhere ended
/// it: the standby answers within its bounded wait (the new token, or a 503 with
/// Retry-After), not after the 40 s a token request may wait; the report reaches the
/// lease holder through the database, which replaces the token once; asked again, the
/// standby answers the new token.
#[tokio::test(flavor = "multi_thread")]
async fn a_dead_token_reported_to_a_standby_replica_is_replaced_by_the_holder() {
    use common::stand_in::{current_code, direct_login};
    let Some(store) = SharedStore::new().await else {
        return;
    };
    let server = MockServer::start(MockOptions::default()).await.unwrap();
    server.set_totp_reuse_allowed(true);
    let machines = store.machines(
        2,
        &(profile("acct", &server, Login::Totp) + &serve_table(60.0)),
    );
    let daemons = start_all(machines.iter().map(|m| {
        let mut cmd = m.command();
        cmd.env("DHAN_LOGIN_LEASE_SECS", test_lease_secs().to_string());
        (cmd, vec!["acct".to_owned()])
    }))
    .await;
    let first = daemons[0]
        .served_token("acct", &machines[0].key(), Duration::from_secs(40))
        .await;
    let mut standby = None;
    for _ in 0..100 {
        for (i, d) in daemons.iter().enumerate() {
            if d.profile("acct").await["state"] == "standby" {
                standby = Some(i);
            }
        }
        if standby.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let s = standby.expect("one replica stands by");
    let (d, key) = (&daemons[s], machines[s].key());
    assert_eq!(
        d.served_token("acct", &key, Duration::from_secs(5)).await,
        first
    );

    let elsewhere = direct_login(
        &server,
        &server.account().pin.clone(),
        &current_code(&server),
    )
    .await
    .json::<serde_json::Value>()
    .await
    .unwrap()["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(!server.is_live(&first));
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let report = || async {
        let r = http
            .post(format!("http://{}/v1/profiles/acct/token/rejected", d.addr))
            .header("Authorization", &key)
            .send()
            .await
            .unwrap();
        let retry_after = r
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        (r.status().as_u16(), retry_after, r.text().await.unwrap())
    };
    let asked = Instant::now();
    let (status, retry_after, body) = report().await;
    assert!(
        asked.elapsed() < Duration::from_secs(30),
        "the standby held the report {:?}",
        asked.elapsed()
    );
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    match status {
        200 => assert_eq!(v["verdict"], "replaced", "{v}"),
        503 => {
            assert!(
                retry_after.is_some_and(|s| s.parse::<u64>().is_ok()),
                "{body}"
            );
            assert_eq!(v["class"], "transient", "{v}");
        }
        other => panic!("HTTP {other}: {body}"),
    }
    assert!(!body.contains(&first), "the dead token came back");

    eventually(
        Duration::from_secs(90),
        "the holder's new token",
        || async { server.logins() >= 3 },
    )
    .await;
    let (status, _, body) = report().await;
    assert_eq!(status, 200, "{body}\n{}", daemons[0].log());
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let new = v["access_token"].as_str().unwrap().to_owned();
    assert_ne!(new, first);
    assert_ne!(new, elsewhere);
    assert!(server.is_live(&new));
    // One login at the start, one elsewhere, one replacing the dead token: no more.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        server.logins(),
        3,
        "{}\n{}",
        daemons[0].log(),
        daemons[1].log()
    );
    for (d, m) in daemons.iter().zip(&machines) {
        assert_eq!(
            d.served_token("acct", &m.key(), Duration::from_secs(5))
                .await,
            new
        );
    }
    for d in daemons {
        d.stop().await;
    }
}
