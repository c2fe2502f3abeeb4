//! The commands that print a secret (`*_command`, `otp_command`): `sh -c` in a process
//! group of their own, so that the whole group can be killed — the shell and whatever it
//! started (a password manager's helper, a `sleep` in a script).
//!
//! On the async runtime, a [`Group`] dropped before its command ended kills the group: a
//! SIGTERM or Ctrl-C that drops a login in progress ends the command at once, not after
//! its time limit.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process_group};
use tokio::io::AsyncReadExt;

/// A secret is one line: more output than this is not read, and is an error.
const MAX_OUTPUT: u64 = super::bounded::SECRET_MAX;

fn sh(cmd: &str) -> std::process::Command {
    let mut c = std::process::Command::new("sh");
    c.arg("-c")
        .arg(cmd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    c
}

/// The most of a command's stderr relayed (the rest is read and dropped, so that the
/// command never blocks on a full pipe nor dies of a closed one).
const MAX_STDERR: usize = 16 * 1024;

/// How long an ended command's stderr is waited for: a process it left in the
/// background may hold the pipe open for ever.
const RELAY_WAIT: Duration = Duration::from_secs(2);

/// Lines longer than this are relayed in pieces.
const MAX_LINE: u64 = 1024;

/// Relays a command's stderr to the log line by line, masked (`echo "pin is 135790"
/// >&2` in a script used to reach the terminal and the journal as it was).
fn relay_line(line: &[u8], relayed: &mut usize) {
    if *relayed >= MAX_STDERR {
        return;
    }
    *relayed += line.len();
    let line = String::from_utf8_lossy(line);
    let line = line.trim_end();
    if !line.is_empty() {
        tracing::warn!(
            "secret command said: {}",
            crate::redact::mask_secret_like(line)
        );
    }
}

async fn relay_stderr(pipe: tokio::process::ChildStderr) {
    use tokio::io::AsyncBufReadExt;
    let mut reader = tokio::io::BufReader::new(pipe);
    let (mut line, mut relayed) = (Vec::new(), 0);
    loop {
        line.clear();
        match (&mut reader)
            .take(MAX_LINE)
            .read_until(b'\n', &mut line)
            .await
        {
            Ok(0) | Err(_) => break,
            Ok(_) => relay_line(&line, &mut relayed),
        }
    }
}

fn relay_stderr_blocking(pipe: std::process::ChildStderr) {
    use std::io::BufRead;
    let mut reader = std::io::BufReader::new(pipe);
    let (mut line, mut relayed) = (Vec::new(), 0);
    loop {
        line.clear();
        match (&mut reader).take(MAX_LINE).read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => relay_line(&line, &mut relayed),
        }
    }
}

/// Why a command gave no secret; the caller names the field.
#[derive(Debug)]
pub(crate) enum Failure {
    Start(std::io::Error),
    Wait(std::io::Error),
    TimedOut(Duration),
    Status(ExitStatus),
    NotUtf8,
    /// Printed more than `MAX_OUTPUT`: reading stopped and the group was killed (it
    /// used to die of SIGPIPE, reported as a puzzling exit 141).
    TooLong,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Start(e) => write!(f, "cannot be run: {e}"),
            Failure::Wait(e) => write!(f, "cannot wait for it: {e}"),
            Failure::TimedOut(limit) => {
                write!(f, "no answer within {} s; killed", limit.as_secs())
            }
            Failure::Status(s) => write!(f, "failed ({s})"),
            Failure::NotUtf8 => f.write_str("printed non-UTF-8"),
            Failure::TooLong => write!(
                f,
                "printed more than {} KiB; a secret is one line",
                MAX_OUTPUT / 1024
            ),
        }
    }
}

/// Only the first line: password managers often print notes after it.
fn first_line(status: ExitStatus, out: Vec<u8>) -> Result<String, Failure> {
    if out.len() as u64 > MAX_OUTPUT {
        return Err(Failure::TooLong);
    }
    if !status.success() {
        return Err(Failure::Status(status));
    }
    let text = String::from_utf8(out).map_err(|_| Failure::NotUtf8)?;
    Ok(text.lines().next().unwrap_or("").trim().to_owned())
}

fn kill_group(leader: u32) {
    // The group the leader made at spawn (`process_group(0)`) keeps its id while the
    // leader is not reaped, so this cannot reach another program's group.
    if let Some(group) = i32::try_from(leader).ok().and_then(Pid::from_raw) {
        let _ = kill_process_group(group, Signal::KILL);
    }
}

/// A running command. Dropped before the shell ended, it kills the whole group.
pub(crate) struct Group {
    child: tokio::process::Child,
    /// Relays the command's stderr; awaited (briefly) once the command ended, so that
    /// what it said is logged before the program moves on or exits.
    relay: Option<tokio::task::JoinHandle<()>>,
}

impl Group {
    pub(crate) fn spawn(cmd: &str) -> Result<Group, Failure> {
        let mut child = tokio::process::Command::from(sh(cmd))
            .kill_on_drop(true)
            .spawn()
            .map_err(Failure::Start)?;
        let relay = child
            .stderr
            .take()
            .map(|pipe| tokio::spawn(relay_stderr(pipe)));
        Ok(Group { child, relay })
    }

    pub(crate) fn stdout(&mut self) -> Option<tokio::process::ChildStdout> {
        self.child.stdout.take()
    }

    /// Ends the whole group now and reaps the shell.
    pub(crate) async fn kill(mut self) {
        if let Some(leader) = self.child.id() {
            kill_group(leader);
        }
        let _ = self.child.wait().await;
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        // `id()` is None once the shell was reaped: then its group id may be reused.
        if let Some(leader) = self.child.id() {
            kill_group(leader);
        }
    }
}

/// Runs `cmd` on the runtime and returns the first line it printed. The group is killed
/// when it outlives `limit`, or when this future is dropped.
pub(crate) async fn run(cmd: &str, limit: Duration) -> Result<String, Failure> {
    let mut group = Group::spawn(cmd)?;
    let stdout = group.stdout();
    let answered = tokio::time::timeout(limit, async {
        let mut out = Vec::new();
        if let Some(pipe) = stdout {
            let _ = pipe.take(MAX_OUTPUT + 1).read_to_end(&mut out).await;
        }
        if out.len() as u64 > MAX_OUTPUT {
            return Err(Failure::TooLong);
        }
        let status = group.child.wait().await.map_err(Failure::Wait)?;
        if let Some(relay) = group.relay.take() {
            // A background process of the command may keep stderr open: do not wait
            // for it beyond a moment.
            let _ = tokio::time::timeout(RELAY_WAIT, relay).await;
        }
        Ok::<_, Failure>((status, out))
    })
    .await;
    match answered {
        Ok(Ok((status, out))) => first_line(status, out),
        Ok(Err(e)) => {
            group.kill().await;
            Err(e)
        }
        Err(_) => {
            group.kill().await;
            Err(Failure::TimedOut(limit))
        }
    }
}

/// `run` for callers outside the runtime (`config check`).
pub(crate) fn run_blocking(cmd: &str, limit: Duration) -> Result<String, Failure> {
    let mut child = sh(cmd).spawn().map_err(Failure::Start)?;
    let relayed = child.stderr.take().map(|pipe| {
        let (done, relayed) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            relay_stderr_blocking(pipe);
            let _ = done.send(());
        });
        relayed
    });
    let mut pipe = child.stdout.take();
    // Read on the side, so a chatty command cannot block on a full pipe.
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        if let Some(p) = pipe.as_mut() {
            let _ = p.take(MAX_OUTPUT + 1).read_to_end(&mut out);
        }
        out
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() < limit => std::thread::sleep(Duration::from_millis(20)),
            other => {
                kill_group(child.id());
                let _ = child.wait();
                return Err(match other {
                    Err(e) => Failure::Wait(e),
                    _ => Failure::TimedOut(limit),
                });
            }
        }
    };
    if let Some(relayed) = relayed {
        let _ = relayed.recv_timeout(RELAY_WAIT);
    }
    first_line(status, reader.join().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alive(pid: i32) -> bool {
        Pid::from_raw(pid).is_some_and(|p| rustix::process::test_kill_process(p).is_ok())
    }

    #[tokio::test]
    async fn the_first_line_is_the_answer_and_failures_are_told_apart() {
        let limit = Duration::from_secs(10);
        assert_eq!(run("printf 'a1 \\nnotes\\n'", limit).await.unwrap(), "a1");
        assert_eq!(
            run_blocking("printf 'a1 \\nnotes\\n'", limit).unwrap(),
            "a1"
        );
        assert!(matches!(
            run("exit 3", limit).await,
            Err(Failure::Status(_))
        ));
        assert!(matches!(
            run("printf '\\377'", limit).await,
            Err(Failure::NotUtf8)
        ));
        // Over 64 KiB: a clear error, not the SIGPIPE (exit 141) of a closed pipe.
        let chatty = "head -c 200000 /dev/zero | tr '\\0' a";
        assert!(matches!(run(chatty, limit).await, Err(Failure::TooLong)));
        assert!(matches!(run_blocking(chatty, limit), Err(Failure::TooLong)));
        let slow = run("sleep 5", Duration::from_millis(200)).await;
        assert!(matches!(slow, Err(Failure::TimedOut(_))), "{slow:?}");
    }

    #[tokio::test]
    async fn dropping_a_run_kills_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        // The shell starts a grandchild and waits for it: it outlives the shell if only
        // the shell were killed.
        let cmd = format!("sleep 60 & echo $! > {}; wait", pid_file.display());
        let running = tokio::spawn(async move { run(&cmd, Duration::from_secs(60)).await });
        let mut pid = None;
        for _ in 0..200 {
            if let Ok(text) = std::fs::read_to_string(&pid_file)
                && let Ok(p) = text.trim().parse::<i32>()
            {
                pid = Some(p);
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let pid = pid.expect("the command started its sleep");
        assert!(alive(pid));
        running.abort();
        let _ = running.await;
        let mut gone = false;
        for _ in 0..200 {
            // A killed child of a killed shell is reparented and reaped by init; until
            // then it shows as a zombie, which counts as gone.
            let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            if !alive(pid) || state.split(' ').nth(2) == Some("Z") {
                gone = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert!(gone, "the command's sleep outlived the dropped run");
    }
}
