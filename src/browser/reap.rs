//! Finding, killing and reaping every process of one Chromium session.
//!
//! Chromium is a tree: the browser forks zygotes, which fork the GPU, network and
//! renderer processes, and the crash handler double-forks away from the tree entirely.
//! Killing the browser alone leaves the rest running (measured: 8 processes and the
//! profile dir survived). A session's processes are recognised three ways, so that one
//! tree can be told from the next when several logins run in one process (tests do):
//! descendants of the browser pid, a command line naming the session's own
//! user-data-dir, and an environment variable set only on this session's browser (the
//! crash handler keeps the environment but not the profile path).

use std::path::Path;
use std::time::{Duration, Instant};

/// What identifies one session's processes.
#[derive(Debug, Clone)]
pub(crate) struct Marker {
    /// `--user-data-dir=<path>`, exactly as passed to Chromium.
    profile_arg: String,
    /// `NAME=value`, set on the browser's environment only.
    env_entry: String,
}

pub(crate) const SESSION_ENV: &str = "DHAN_LOGIN_BROWSER_SESSION";

impl Marker {
    pub(crate) fn new(profile: &Path, session_id: &str) -> Self {
        Marker {
            profile_arg: format!("--user-data-dir={}", profile.display()),
            env_entry: format!("{SESSION_ENV}={session_id}"),
        }
    }
}

/// A process as /proc shows it.
#[derive(Debug, Clone, Copy)]
struct Proc {
    pid: u32,
    ppid: u32,
    zombie: bool,
}

#[cfg(target_os = "linux")]
mod imp {
    use super::*;
    use rustix::process::{Pid, Signal, WaitOptions, kill_process, waitpid};
    use std::collections::{HashMap, HashSet};

    /// Makes this process the reaper of its orphaned descendants (Linux
    /// `PR_SET_CHILD_SUBREAPER`): the Chromium processes that outlive their browser (the
    /// crash handler, zygotes) are then re-parented here instead of to PID 1, and a login
    /// reaps them as it ends. Without it they go to PID 1, which in a container may be a
    /// program that never reaps: zombies pile up for the container's life.
    ///
    /// It changes the whole process for good, so the library never does it by itself: a
    /// program that runs browser logins calls it once at start (the `dhan-login` binary
    /// does). Elsewhere than on Linux it does nothing.
    pub fn become_subreaper() {
        // The kernel reads the argument as a flag: any pid turns it on.
        if let Err(error) = rustix::process::set_child_subreaper(Some(rustix::process::getpid())) {
            tracing::debug!(
                %error,
                "could not become a child subreaper; orphaned Chromium processes go to init"
            );
        }
    }

    fn read_proc(pid: u32) -> Option<Proc> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command name is in parentheses and may itself hold spaces or parentheses.
        let rest = &stat[stat.rfind(')')? + 1..];
        let mut fields = rest.split_whitespace();
        let state = fields.next()?;
        let ppid = fields.next()?.parse().ok()?;
        Some(Proc {
            pid,
            ppid,
            zombie: state == "Z" || state == "X",
        })
    }

    fn all_procs() -> Vec<Proc> {
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter_map(read_proc)
            .collect()
    }

    fn nul_fields(path: String) -> Vec<Vec<u8>> {
        std::fs::read(path)
            .map(|bytes| {
                bytes
                    .split(|b| *b == 0)
                    .filter(|f| !f.is_empty())
                    .map(<[u8]>::to_vec)
                    .collect()
            })
            .unwrap_or_default()
    }

    fn carries_marker(pid: u32, marker: &Marker) -> bool {
        let arg = marker.profile_arg.as_bytes();
        if nul_fields(format!("/proc/{pid}/cmdline"))
            .iter()
            .any(|a| a.as_slice() == arg)
        {
            return true;
        }
        let env = marker.env_entry.as_bytes();
        nul_fields(format!("/proc/{pid}/environ"))
            .iter()
            .any(|e| e.as_slice() == env)
    }

    /// Every live or zombie process of the session, the browser included when `root`
    /// is given. Zombies show no command line, so a dead browser's orphans are found
    /// through their parent links only while the snapshot is taken before they die.
    pub(crate) fn session_processes(root: Option<u32>, marker: &Marker) -> Vec<u32> {
        let me = std::process::id();
        let procs = all_procs();
        let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
        for p in &procs {
            children.entry(p.ppid).or_default().push(p.pid);
        }
        let mut found: HashSet<u32> = HashSet::new();
        let mut queue: Vec<u32> = Vec::new();
        if let Some(root) = root {
            queue.push(root);
        }
        for p in &procs {
            if p.pid != me && !p.zombie && carries_marker(p.pid, marker) {
                queue.push(p.pid);
            }
        }
        while let Some(pid) = queue.pop() {
            if pid == me || !found.insert(pid) {
                continue;
            }
            if let Some(kids) = children.get(&pid) {
                queue.extend(kids.iter().copied());
            }
        }
        let mut list: Vec<u32> = found.into_iter().collect();
        list.sort_unstable();
        list
    }

    pub(crate) fn kill(pids: &[u32]) {
        let me = std::process::id();
        for &pid in pids {
            if pid == me || pid <= 1 {
                continue;
            }
            // The pids come from a snapshot of this session's processes that were not
            // reaped since, so none can have been reused.
            if let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) {
                let _ = kill_process(pid, Signal::KILL);
            }
        }
    }

    /// Reaps those of `pids` that are zombies parented to this process and reports
    /// which are still around (alive, or zombies waiting for another parent).
    /// `skip` is a pid reaped elsewhere (tokio owns the browser's child handle): it only
    /// has to be dead.
    pub(crate) fn reap(pids: &[u32], skip: Option<u32>) -> Vec<u32> {
        let me = std::process::id();
        let mut left = Vec::new();
        for &pid in pids {
            let Some(p) = read_proc(pid) else { continue };
            if Some(pid) == skip {
                if !p.zombie {
                    left.push(pid);
                }
                continue;
            }
            if p.ppid == me && p.zombie {
                // One specific child, never any: the runtime waits for its own
                // children and must not have their status stolen.
                let child = i32::try_from(pid).ok().and_then(Pid::from_raw);
                if child.is_some() && matches!(waitpid(child, WaitOptions::NOHANG), Ok(Some(_))) {
                    continue;
                }
            }
            left.push(pid);
        }
        left
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    //! Without /proc the browser's own process handle is all there is: the direct child
    //! is killed and waited for by the caller, the rest is left to the OS.
    use super::*;

    /// Linux only: nothing to do here.
    pub fn become_subreaper() {}

    pub(crate) fn session_processes(root: Option<u32>, _marker: &Marker) -> Vec<u32> {
        root.into_iter().collect()
    }

    pub(crate) fn kill(_pids: &[u32]) {}

    pub(crate) fn reap(_pids: &[u32], _skip: Option<u32>) -> Vec<u32> {
        Vec::new()
    }
}

pub use imp::become_subreaper;
pub(crate) use imp::{kill, reap, session_processes};

/// Reaps `pids` until none is left or `limit` passes; returns the stragglers.
pub(crate) fn reap_until_gone(pids: &[u32], skip: Option<u32>, limit: Duration) -> Vec<u32> {
    let end = Instant::now() + limit;
    let mut left: Vec<u32> = pids.to_vec();
    loop {
        left = reap(&left, skip);
        if left.is_empty() || Instant::now() >= end {
            return left;
        }
        // A SIGKILLed process takes a few milliseconds to become a zombie.
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn finds_kills_and_reaps_a_marked_tree() {
        become_subreaper();
        let dir = tempfile::tempdir().unwrap();
        let marker = Marker::new(dir.path(), "unit-test-tree");
        // A shell that forks a grandchild and dies: the grandchild is an orphan that
        // carries the marker only in its environment.
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg("sleep 30 & sleep 30")
            .env(SESSION_ENV, "unit-test-tree")
            .spawn()
            .unwrap();
        let root = child.id();
        let mut found = Vec::new();
        for _ in 0..200 {
            found = session_processes(Some(root), &marker);
            if found.len() >= 3 {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(found.contains(&root));
        assert!(found.len() >= 3, "{found:?}");
        kill(&found);
        child.wait().unwrap();
        let left = reap_until_gone(&found, Some(root), Duration::from_secs(2));
        assert!(left.is_empty(), "{left:?}");
        assert!(session_processes(None, &marker).is_empty());
    }
}
