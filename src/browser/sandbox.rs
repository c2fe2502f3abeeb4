//! Who runs Chromium, and whether its sandbox is on.
//!
//! The login page loads scripts dhan-login does not control. Chromium's sandbox keeps a
//! renderer bug inside the renderer, but Chromium refuses to start it as root. So when
//! dhan-login runs as root (a container, a system service), Chromium runs as an
//! unprivileged user instead: a dedicated system user, created on first use, else
//! `nobody`. Its profile folder is handed to that user; the DevTools port is on
//! loopback and stderr is an inherited pipe, so the root parent still drives and reaps
//! it. Some kernels and containers refuse the user namespaces the sandbox needs
//! (Docker's default seccomp profile, Ubuntu's AppArmor restriction): Chromium then
//! exits at once naming its sandbox, and only then does dhan-login start it again
//! without, saying so once.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// The system user created to run Chromium when dhan-login runs as root.
pub(crate) const USER: &str = "dhan-login-chromium";
/// Used when the dedicated user cannot be created.
const FALLBACK_USER: &str = "nobody";

/// An unprivileged account to run Chromium as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

/// How one Chromium is started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    /// The account Chromium runs as, when it must not be this process's own (root).
    pub run_as: Option<Account>,
    /// Chromium's own sandbox on (no `--no-sandbox`).
    pub sandbox: bool,
}

impl Plan {
    /// The same start without the sandbox, for a kernel that refused it.
    pub(crate) fn without_sandbox(&self) -> Plan {
        Plan {
            run_as: self.run_as.clone(),
            sandbox: false,
        }
    }

    /// One line for `status`, `doctor` and the log.
    pub(crate) fn describe(&self) -> String {
        let who = match &self.run_as {
            Some(a) => format!("as user {} (uid {})", a.name, a.uid),
            None if is_root() => "as root".to_owned(),
            None => "as this user".to_owned(),
        };
        if self.sandbox {
            format!("Chromium runs {who} with its sandbox on")
        } else {
            format!("Chromium runs {who} WITHOUT its sandbox")
        }
    }
}

pub(crate) fn is_root() -> bool {
    #[cfg(unix)]
    {
        rustix::process::geteuid().is_root()
    }
    #[cfg(not(unix))]
    {
        false
    }
}

/// The plan for `executable`: this process's own user with the sandbox when it is not
/// root; as root, the unprivileged account (looked up, or created, once per process)
/// with the sandbox unless this executable's sandbox was refused before. A window
/// (`headed`) as root stays root's, without the sandbox: another user could not reach
/// root's display. Blocks while the account is created: call it off the runtime's
/// workers.
pub(crate) fn plan(executable: &Path, headed: bool) -> Plan {
    if !is_root() {
        return Plan {
            run_as: None,
            sandbox: true,
        };
    }
    if headed {
        tracing::warn!(
            "a window as root: Chromium runs as root WITHOUT its sandbox; run --headed as another user to keep it"
        );
        return Plan {
            run_as: None,
            sandbox: false,
        };
    }
    let run_as = account();
    // Without another account Chromium cannot have its sandbox as root.
    let sandbox = run_as.is_some() && !was_refused(executable);
    Plan { run_as, sandbox }
}

/// The account root runs Chromium as, or `None` (logged once) when there is none.
fn account() -> Option<Account> {
    static ACCOUNT: OnceLock<Option<Account>> = OnceLock::new();
    ACCOUNT
        .get_or_init(|| {
            let found = lookup(USER)
                .or_else(|| create(USER).then(|| lookup(USER)).flatten())
                .or_else(|| lookup(FALLBACK_USER));
            if found.is_none() {
                tracing::warn!(
                    "running as root and neither the user {USER} (useradd failed) nor {FALLBACK_USER} exists: Chromium runs as root without its sandbox"
                );
            }
            found
        })
        .clone()
}

/// Executables whose sandbox was refused in this process.
fn refused() -> &'static Mutex<HashSet<PathBuf>> {
    static REFUSED: OnceLock<Mutex<HashSet<PathBuf>>> = OnceLock::new();
    REFUSED.get_or_init(Default::default)
}

fn was_refused(executable: &Path) -> bool {
    refused()
        .lock()
        .map(|set| set.contains(executable))
        .unwrap_or(false)
}

/// Notes that the kernel refused `executable`'s sandbox; warns the first time only.
pub(crate) fn note_refused(executable: &Path, plan: &Plan) {
    let first = refused()
        .lock()
        .map(|mut set| set.insert(executable.to_path_buf()))
        .unwrap_or(true);
    if first {
        tracing::warn!(
            executable = %executable.display(),
            "this kernel or container refuses the user namespaces Chromium's sandbox needs: {}; allow unprivileged user namespaces (seccomp/AppArmor) to get it back",
            plan.without_sandbox().describe()
        );
    }
}

/// Remembers how the last Chromium of this process was started, for [`last`].
pub(crate) fn record(plan: &Plan) {
    if let Ok(mut last) = last_plan().lock() {
        *last = Some(plan.clone());
    }
}

fn last_plan() -> &'static Mutex<Option<Plan>> {
    static LAST: Mutex<Option<Plan>> = Mutex::new(None);
    &LAST
}

/// How the last Chromium this process started ran (user, sandbox), if one did.
pub(crate) fn last() -> Option<String> {
    last_plan().lock().ok()?.as_ref().map(Plan::describe)
}

/// Whether the last lines of a Chromium that exited at start blame its sandbox
/// ("No usable sandbox!", "Failed to move to new namespace", a failed `clone` of the
/// zygote's namespaces).
pub(crate) fn blames_sandbox(tail: &str) -> bool {
    let tail = tail.to_ascii_lowercase();
    tail.contains("sandbox") || tail.contains("namespace")
}

#[cfg(unix)]
fn lookup(name: &str) -> Option<Account> {
    let cname = std::ffi::CString::new(name).ok()?;
    let mut buf = vec![0 as libc::c_char; 4096];
    // SAFETY: an all-zero passwd is a valid value for getpwnam_r to fill in.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call and `buf` outlives it; the reentrant
    // form shares no static buffer with other threads.
    let rc = unsafe {
        libc::getpwnam_r(
            cname.as_ptr(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 || result.is_null() || pwd.pw_uid == 0 {
        return None;
    }
    Some(Account {
        name: name.to_owned(),
        uid: pwd.pw_uid,
        gid: pwd.pw_gid,
    })
}

#[cfg(not(unix))]
fn lookup(_: &str) -> Option<Account> {
    None
}

/// Creates the system user: no home, no login shell, a group of its own. Another
/// dhan-login creating it at the same moment makes this one fail, which the lookup
/// after it does not mind.
fn create(name: &str) -> bool {
    let made = std::process::Command::new("useradd")
        .args([
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            "--comment",
            // A passwd field: no colon.
            "dhan-login runs Chromium as this user",
            name,
        ])
        .stdin(std::process::Stdio::null())
        .output();
    match made {
        Ok(out) if out.status.success() => {
            tracing::info!(user = name, "created the system user Chromium runs as");
            true
        }
        Ok(out) => {
            tracing::debug!(
                status = %out.status,
                stderr = %String::from_utf8_lossy(&out.stderr).trim(),
                "useradd failed"
            );
            false
        }
        Err(e) => {
            tracing::debug!(error = %e, "useradd could not be run");
            false
        }
    }
}

/// Hands the profile folder (and the folders Chromium writes into at once) to the
/// account, keeping the owner file (`profile`) root's.
#[cfg(unix)]
pub(crate) fn hand_over(dirs: &[&Path], account: &Account) -> std::io::Result<()> {
    for dir in dirs {
        std::os::unix::fs::chown(dir, Some(account.uid), Some(account.gid))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_keeps_the_sandbox_and_runs_root_as_another_user() {
        let exe = Path::new("/nonexistent/chromium");
        if is_root() {
            let headless = plan(exe, false);
            let account = headless.run_as.expect("root runs Chromium as another user");
            assert_ne!(account.uid, 0);
            assert!(headless.sandbox);
            assert_eq!(
                plan(exe, true),
                Plan {
                    run_as: None,
                    sandbox: false
                }
            );
        } else {
            for headed in [false, true] {
                assert_eq!(
                    plan(exe, headed),
                    Plan {
                        run_as: None,
                        sandbox: true
                    }
                );
            }
        }
    }

    #[test]
    fn a_refused_sandbox_is_remembered_per_executable() {
        let exe = Path::new("/nonexistent/refused-chromium");
        let plan = Plan {
            run_as: None,
            sandbox: true,
        };
        assert!(!was_refused(exe));
        note_refused(exe, &plan);
        assert!(was_refused(exe));
        assert!(!was_refused(Path::new("/nonexistent/other-chromium")));
    }

    #[test]
    fn early_exits_that_blame_the_sandbox_are_told_apart() {
        assert!(blames_sandbox(
            "[FATAL:zygote_host_impl_linux.cc(128)] No usable sandbox! If you are running on Ubuntu 23.10+"
        ));
        assert!(blames_sandbox(
            "Failed to move to new namespace: PID namespaces supported, Network namespace supported, but failed: errno = Operation not permitted"
        ));
        assert!(!blames_sandbox("cannot open display :0"));
    }

    #[test]
    fn the_description_says_who_and_whether_sandboxed() {
        let plan = Plan {
            run_as: Some(Account {
                name: USER.into(),
                uid: 999,
                gid: 999,
            }),
            sandbox: true,
        };
        assert_eq!(
            plan.describe(),
            "Chromium runs as user dhan-login-chromium (uid 999) with its sandbox on"
        );
        assert!(plan.without_sandbox().describe().contains("WITHOUT"));
    }
}
