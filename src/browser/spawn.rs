//! Starting Chromium so that it cannot outlive dhan-login, even after `kill -9`.
//!
//! The browser is spawned directly (never through chromiumoxide's launcher, which cannot
//! set a parent-death signal) with `PR_SET_PDEATHSIG(SIGKILL)` set in the child between
//! fork and exec. Linux sends that signal when the *thread* that forked the child ends,
//! not the process: a child forked from a pooled worker thread (tokio's blocking pool
//! retires idle threads after ~10 s) would be killed in the middle of a login. So every
//! browser is forked by one dedicated thread that lives as long as the process.
//!
//! The DevTools address is read from Chromium's stderr ("DevTools listening on ws://…",
//! printed because of `--remote-debugging-port=0`), and the rest of stderr is drained so
//! that a chatty browser never blocks on a full pipe.

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;

use tokio::sync::oneshot;

/// What to run.
pub(crate) struct Spawn {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub envs: Vec<(OsString, OsString)>,
    /// Another user (uid, gid) to run it as, and the folder it starts in (root's own
    /// working directory may be closed to that user).
    pub run_as: Option<(u32, u32, PathBuf)>,
}

struct Request {
    spawn: Spawn,
    reply: oneshot::Sender<std::io::Result<Child>>,
}

/// The spawner thread's inbox. The thread is never joined: it ends with the process,
/// which is exactly the lifetime the parent-death signal needs.
fn spawner() -> std::io::Result<&'static mpsc::Sender<Request>> {
    static INBOX: OnceLock<mpsc::Sender<Request>> = OnceLock::new();
    if let Some(tx) = INBOX.get() {
        return Ok(tx);
    }
    let (tx, rx) = mpsc::channel::<Request>();
    let mut started = Ok(());
    let tx = INBOX.get_or_init(|| {
        started = std::thread::Builder::new()
            .name("chromium-spawner".into())
            .spawn(move || {
                for req in rx {
                    let _ = req.reply.send(fork_exec(req.spawn));
                }
            })
            .map(drop);
        tx
    });
    started.map(|()| tx)
}

fn fork_exec(spawn: Spawn) -> std::io::Result<Child> {
    let mut cmd = Command::new(&spawn.program);
    cmd.args(&spawn.args)
        .envs(spawn.envs.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    #[cfg(unix)]
    if let Some((uid, gid, dir)) = &spawn.run_as {
        use std::os::unix::process::CommandExt;
        // The standard library drops the supplementary groups, then sets the group and
        // the user, all before the `pre_exec` below runs.
        cmd.uid(*uid).gid(*gid).current_dir(dir);
    }
    #[cfg(target_os = "linux")]
    {
        use rustix::io::Errno;
        use rustix::process::{Signal, getpid, getppid, set_parent_process_death_signal};
        use std::os::unix::process::CommandExt;
        let parent = getpid();
        // SAFETY: the closure runs between fork and exec and only makes two system calls
        // (rustix makes them directly), both async-signal-safe; it allocates nothing (an
        // `Errno` becomes an `io::Error` without allocating) and touches no lock. It runs
        // after the change of user, which clears a parent-death signal set before it.
        unsafe {
            cmd.pre_exec(move || {
                set_parent_process_death_signal(Some(Signal::KILL))?;
                // The parent may have died between fork and prctl: then the signal will
                // never come, so do not become a browser nobody owns.
                if getppid() != Some(parent) {
                    return Err(Errno::SRCH.into());
                }
                Ok(())
            });
        }
    }
    cmd.spawn()
}

/// Forks and execs on the spawner thread.
pub(crate) async fn start(spawn: Spawn) -> std::io::Result<Child> {
    let (reply, answer) = oneshot::channel();
    spawner()?
        .send(Request { spawn, reply })
        .map_err(|_| std::io::Error::other("the Chromium spawner thread is gone"))?;
    answer
        .await
        .map_err(|_| std::io::Error::other("the Chromium spawner thread is gone"))?
}

/// How Chromium's start ended, as told by its stderr.
pub(crate) enum Announced {
    /// The DevTools WebSocket URL.
    Listening(String),
    /// stderr closed first: the browser exited. Its last lines, for the error message.
    Exited(String),
}

const LISTENING: &str = "DevTools listening on ";
/// Lines kept for the error message of a browser that exits at start.
const TAIL_LINES: usize = 6;

/// Reads `stderr` on a thread of its own until the DevTools line, then drains it until
/// every process holding it (the zygotes inherit it) has exited.
pub(crate) fn watch_stderr(
    stderr: std::process::ChildStderr,
) -> std::io::Result<oneshot::Receiver<Announced>> {
    let (tx, rx) = oneshot::channel();
    std::thread::Builder::new()
        .name("chromium-stderr".into())
        .spawn(move || {
            let mut reader = BufReader::new(stderr);
            let mut tail: Vec<String> = Vec::new();
            let mut line = Vec::new();
            loop {
                line.clear();
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                let text = String::from_utf8_lossy(&line);
                let text = text.trim_end();
                if let Some(url) = text.split_once(LISTENING).map(|(_, u)| u.trim()) {
                    let _ = tx.send(Announced::Listening(url.to_string()));
                    // Nobody reads the rest; it only must not fill the pipe.
                    let _ = std::io::copy(&mut reader, &mut std::io::sink());
                    return;
                }
                if tail.len() == TAIL_LINES {
                    tail.remove(0);
                }
                tail.push(text.to_string());
            }
            let _ = tx.send(Announced::Exited(tail.join("\n")));
        })?;
    Ok(rx)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    fn sh(script: &str) -> Spawn {
        Spawn {
            program: "/bin/sh".into(),
            args: vec!["-c".into(), script.into()],
            envs: Vec::new(),
            run_as: None,
        }
    }

    #[tokio::test]
    async fn reads_the_devtools_line_and_drains_the_rest() {
        let mut child = start(sh(
            "echo noise >&2; echo 'DevTools listening on ws://127.0.0.1:1/devtools/browser/x' >&2; \
             i=0; while [ $i -lt 2000 ]; do echo more-noise-to-fill-a-pipe >&2; i=$((i+1)); done",
        ))
        .await
        .unwrap();
        let got = watch_stderr(child.stderr.take().unwrap())
            .unwrap()
            .await
            .unwrap();
        match got {
            Announced::Listening(url) => {
                assert_eq!(url, "ws://127.0.0.1:1/devtools/browser/x")
            }
            Announced::Exited(t) => panic!("no URL found: {t}"),
        }
        // Drained: the writer is not blocked on a full pipe.
        assert!(child.wait().unwrap().success());
    }

    #[tokio::test]
    async fn an_early_exit_reports_the_last_lines() {
        let mut child = start(sh("echo 'cannot open display' >&2; exit 3"))
            .await
            .unwrap();
        let got = watch_stderr(child.stderr.take().unwrap())
            .unwrap()
            .await
            .unwrap();
        match got {
            Announced::Exited(t) => assert!(t.contains("cannot open display"), "{t}"),
            Announced::Listening(u) => panic!("unexpected {u}"),
        }
        child.wait().unwrap();
    }
}
