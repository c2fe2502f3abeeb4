//! A running dhan-login is closed to other processes of its user: not dumpable, no core
//! file, while a program it runs with `exec` gets the limits dhan-login was given.

use crate::common;

use std::time::Duration;

use common::{Stand, run};

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
