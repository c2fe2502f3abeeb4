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
static ORIGINAL_CORE: std::sync::OnceLock<libc::rlimit> = std::sync::OnceLock::new();

/// Call first thing in `main`, before any secret is read. Failures are logged (at
/// debug: nothing the user can act on) and not fatal.
pub fn protect() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: prctl with PR_SET_DUMPABLE only changes a flag of this process.
        if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } != 0 {
            tracing::debug!(error = %std::io::Error::last_os_error(), "could not mark the process non-dumpable");
        }
    }
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes into the struct it is given.
        if unsafe { libc::getrlimit(libc::RLIMIT_CORE, &mut limit) } != 0 {
            return;
        }
        let _ = ORIGINAL_CORE.set(limit);
        let none = libc::rlimit {
            rlim_cur: 0,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit reads the struct it is given; lowering a soft limit needs
        // no privilege.
        if unsafe { libc::setrlimit(libc::RLIMIT_CORE, &none) } != 0 {
            tracing::debug!(error = %std::io::Error::last_os_error(), "could not turn core files off");
        }
    }
}

/// Gives back the core-file limit found at start, just before this process becomes
/// another program (`exec`), which holds none of dhan-login's secrets.
pub fn release_for_exec() {
    #[cfg(unix)]
    if let Some(limit) = ORIGINAL_CORE.get() {
        // SAFETY: setrlimit reads the struct it is given; the value is one this process
        // had, within the unchanged hard limit.
        unsafe {
            libc::setrlimit(libc::RLIMIT_CORE, limit);
        }
    }
}
