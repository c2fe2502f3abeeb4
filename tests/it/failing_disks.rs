//! A disk that fills up or a state folder mounted read-only: a token that cannot be saved
//! is printed once and never a dead one after it, and `status` reads without writing.

use crate::common;

use common::{Stand, run};

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
