//! The throw-away Chromium profile of one login, and the removal of those a killed
//! dhan-login left behind.
//!
//! A profile holds what the login page stored (its Session file has the mobile number
//! and the consentAppId), so none may stay on disk. The normal paths remove it (see
//! `session`); only a `kill -9` of dhan-login cannot. Each profile therefore names its
//! owner in a small file, and every launch removes the profiles whose owner is gone
//! (killing any browser still using one, which only a dhan-login older than the
//! parent-death signal could have left).

use std::path::{Path, PathBuf};
use std::time::Duration;

use tempfile::TempDir;

use super::reap::{self, Marker};

pub(crate) const PREFIX: &str = "dhan-login-chromium-";
const OWNER_FILE: &str = "dhan-login-owner";
/// A profile folder without an owner file may be one being created right now.
const UNOWNED_GRACE: Duration = Duration::from_secs(60);

/// Who created a profile: enough to tell whether it is still alive, even if its pid has
/// been reused since (the start time would differ).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Owner {
    pid: u32,
    start: u64,
    session: String,
}

impl Owner {
    fn me(session: &str) -> Owner {
        let pid = std::process::id();
        Owner {
            pid,
            start: start_time(pid).unwrap_or(0),
            session: session.to_string(),
        }
    }

    fn parse(text: &str) -> Option<Owner> {
        let mut f = text.split_whitespace();
        Some(Owner {
            pid: f.next()?.parse().ok()?,
            start: f.next()?.parse().ok()?,
            session: f.next()?.to_string(),
        })
    }

    fn render(&self) -> String {
        format!("{} {} {}\n", self.pid, self.start, self.session)
    }

    fn alive(&self) -> bool {
        if self.pid == 0 {
            return false;
        }
        #[cfg(target_os = "linux")]
        {
            // A different start time is another process that got the same pid.
            start_time(self.pid).is_some_and(|s| self.start == 0 || s == self.start)
        }
        #[cfg(all(unix, not(target_os = "linux")))]
        {
            use rustix::process::{Pid, test_kill_process};
            // Another user's process answers "not permitted": it exists all the same.
            i32::try_from(self.pid)
                .ok()
                .and_then(Pid::from_raw)
                .is_some_and(|p| {
                    matches!(test_kill_process(p), Ok(()) | Err(rustix::io::Errno::PERM))
                })
        }
        #[cfg(not(unix))]
        {
            true
        }
    }
}

/// The process's start time in clock ticks since boot (field 22 of /proc/PID/stat).
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; starttime is the 20th of them.
    stat[stat.rfind(')')? + 1..]
        .split_whitespace()
        .nth(19)?
        .parse()
        .ok()
}

/// Creates a fresh profile folder owned by this process.
pub(crate) fn create(session: &str) -> std::io::Result<TempDir> {
    let dir = tempfile::Builder::new().prefix(PREFIX).tempdir()?;
    std::fs::write(dir.path().join(OWNER_FILE), Owner::me(session).render())?;
    // Chromium's singleton socket goes to a mkdtemp folder in TMPDIR, which a killed
    // browser never removes: keep it inside the profile.
    std::fs::create_dir(dir.path().join("tmp"))?;
    Ok(dir)
}

/// Removes the dhan-login profiles in `base` whose owner process is gone, and returns
/// them. Profiles of live dhan-login processes (another login running now) are kept.
pub(crate) fn sweep_stale(base: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(base) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().starts_with(PREFIX) {
            continue;
        }
        let path = entry.path();
        if !is_mine(&entry) {
            continue;
        }
        let owner = std::fs::read_to_string(path.join(OWNER_FILE))
            .ok()
            .and_then(|t| Owner::parse(&t));
        let stale = match &owner {
            Some(o) => !o.alive(),
            None => entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > UNOWNED_GRACE),
        };
        if !stale {
            continue;
        }
        let session = owner.map(|o| o.session).unwrap_or_default();
        let left = reap::session_processes(None, &Marker::new(&path, &session));
        reap::kill(&left);
        match std::fs::remove_dir_all(&path) {
            Ok(()) => removed.push(path),
            Err(e) => {
                tracing::debug!(path = %path.display(), error = %e, "could not remove a stale Chromium profile")
            }
        }
    }
    if !removed.is_empty() {
        tracing::info!(
            count = removed.len(),
            "removed Chromium profiles left by an earlier dhan-login that was killed"
        );
    }
    removed
}

/// Another user's folder in a shared /tmp is none of our business. A folder handed to
/// the user Chromium runs as (see `sandbox`) is still ours when its owner file is.
fn is_mine(entry: &std::fs::DirEntry) -> bool {
    let Ok(meta) = entry.metadata() else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let me = rustix::process::geteuid().as_raw();
        let owner_file_is_mine = || {
            std::fs::symlink_metadata(entry.path().join(OWNER_FILE))
                .is_ok_and(|m| m.is_file() && m.uid() == me)
        };
        meta.is_dir() && (meta.uid() == me || owner_file_is_mine())
    }
    #[cfg(not(unix))]
    {
        meta.is_dir()
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    fn profile_in(base: &Path, name: &str, owner: Option<&Owner>) -> PathBuf {
        let p = base.join(format!("{PREFIX}{name}"));
        std::fs::create_dir_all(p.join("Default")).unwrap();
        std::fs::write(p.join("Default/Session"), "mobile and consentAppId").unwrap();
        if let Some(o) = owner {
            std::fs::write(p.join(OWNER_FILE), o.render()).unwrap();
        }
        p
    }

    #[test]
    fn removes_profiles_of_dead_owners_only() {
        let base = tempfile::tempdir().unwrap();
        let mine = profile_in(base.path(), "live", Some(&Owner::me("s1")));
        // A process that has exited (reaped): its pid is free.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead_pid = child.id();
        child.wait().unwrap();
        let dead = Owner {
            pid: dead_pid,
            start: 1,
            session: "s2".into(),
        };
        let gone = profile_in(base.path(), "dead", Some(&dead));
        // Our own pid with another start time: a reused pid, so the owner is gone.
        let mut reused = Owner::me("s3");
        reused.start += 1;
        let reused_dir = profile_in(base.path(), "reused", Some(&reused));
        // Fresh and without an owner file: maybe being created right now.
        let young = profile_in(base.path(), "young", None);
        let other = base.path().join("not-ours");
        std::fs::create_dir(&other).unwrap();

        let mut removed = sweep_stale(base.path());
        removed.sort();
        let mut want = vec![gone.clone(), reused_dir.clone()];
        want.sort();
        assert_eq!(removed, want);
        assert!(mine.exists() && young.exists() && other.exists());
        assert!(!gone.exists() && !reused_dir.exists());
    }

    #[test]
    fn a_created_profile_names_its_owner() {
        let dir = create("abc").unwrap();
        let text = std::fs::read_to_string(dir.path().join(OWNER_FILE)).unwrap();
        let owner = Owner::parse(&text).unwrap();
        assert_eq!(owner, Owner::me("abc"));
        assert!(owner.alive());
        assert!(dir.path().join("tmp").is_dir());
    }
}
