//! Keeps this process's memory, which holds PINs, TOTP secrets, API secrets and tokens,
//! out of core files and away from other processes of the same user.
//!
//! Linux: `PR_SET_DUMPABLE 0` stops core dumps and makes /proc/PID/mem, environ and
//! ptrace attach root's alone (a debugger of the same user, a compromised sibling).
//! Everywhere on Unix: the soft core-file limit goes to 0, the hard one is left as it
//! was, so that `exec` can give the program it runs the limit it would have had.
//! Chromium and `*_command` programs inherit the zero limit, which is wanted: a
//! renderer's memory holds what was typed into the page.

/// The soft core-file limit found at start; restored for the program `exec` runs.
#[cfg(unix)]
static ORIGINAL_CORE: std::sync::OnceLock<Rlimit> = std::sync::OnceLock::new();

#[cfg(unix)]
use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// Call first thing in `main`, before any secret is read. Failures are logged (at
/// debug: nothing the user can act on) and not fatal.
pub fn protect() {
    #[cfg(target_os = "linux")]
    {
        use rustix::process::{DumpableBehavior, set_dumpable_behavior};
        if let Err(error) = set_dumpable_behavior(DumpableBehavior::NotDumpable) {
            tracing::debug!(%error, "could not mark the process non-dumpable");
        }
    }
    #[cfg(unix)]
    {
        let limit = getrlimit(Resource::Core);
        let _ = ORIGINAL_CORE.set(limit);
        let none = Rlimit {
            current: Some(0),
            maximum: limit.maximum,
        };
        // Lowering a soft limit needs no privilege.
        if let Err(error) = setrlimit(Resource::Core, none) {
            tracing::debug!(%error, "could not turn core files off");
        }
    }
}

/// Gives back the core-file limit found at start, just before this process becomes
/// another program (`exec`), which holds none of dhan-login's secrets.
pub fn release_for_exec() {
    #[cfg(unix)]
    if let Some(limit) = ORIGINAL_CORE.get() {
        // A value this process had, within the unchanged hard limit.
        let _ = setrlimit(Resource::Core, *limit);
    }
}
