//! Finding a Chromium/Chrome and starting it for one login.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chromiumoxide::browser::BrowserConfig;

use super::error::BrowserError;
use crate::config::BrowserSettings;

pub(crate) const CHROME_ENV: &str = "DHAN_LOGIN_CHROME";

/// Names looked up on PATH, most specific first.
#[cfg(not(windows))]
const PATH_NAMES: &[&str] = &[
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
];
#[cfg(windows)]
const PATH_NAMES: &[&str] = &["chrome.exe", "msedge.exe", "chromium.exe"];

#[cfg(target_os = "macos")]
fn standard_locations() -> Vec<PathBuf> {
    let apps = [
        "Google Chrome.app/Contents/MacOS/Google Chrome",
        "Chromium.app/Contents/MacOS/Chromium",
        "Microsoft Edge.app/Contents/MacOS/Microsoft Edge",
    ];
    let mut roots = vec![PathBuf::from("/Applications")];
    if let Some(home) = std::env::var_os("HOME") {
        roots.push(PathBuf::from(home).join("Applications"));
    }
    roots
        .iter()
        .flat_map(|root| apps.iter().map(move |app| root.join(app)))
        .collect()
}

#[cfg(windows)]
fn standard_locations() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for var in ["ProgramFiles", "ProgramFiles(x86)", "LOCALAPPDATA"] {
        if let Some(root) = std::env::var_os(var) {
            let root = PathBuf::from(root);
            out.push(root.join(r"Google\Chrome\Application\chrome.exe"));
            out.push(root.join(r"Microsoft\Edge\Application\msedge.exe"));
            out.push(root.join(r"Chromium\Application\chrome.exe"));
        }
    }
    out
}

#[cfg(not(any(target_os = "macos", windows)))]
fn standard_locations() -> Vec<PathBuf> {
    // Debian's /usr/bin/chromium is a wrapper script; these are the binaries behind the
    // usual wrappers, for systems where PATH is minimal (cron, systemd units).
    [
        "/usr/lib/chromium/chromium",
        "/usr/lib/chromium-browser/chromium-browser",
        "/opt/google/chrome/chrome",
        "/snap/bin/chromium",
    ]
    .iter()
    .map(PathBuf::from)
    .collect()
}

#[cfg(target_os = "macos")]
const INSTALL_HINT: &str = "install Google Chrome (or `brew install --cask chromium`), or set browser.executable / DHAN_LOGIN_CHROME";
#[cfg(windows)]
const INSTALL_HINT: &str = "install Google Chrome, or set browser.executable / DHAN_LOGIN_CHROME";
#[cfg(not(any(target_os = "macos", windows)))]
const INSTALL_HINT: &str = "install it with `apt-get install chromium` (Debian/Ubuntu) or install Google Chrome, or set browser.executable / DHAN_LOGIN_CHROME";

fn is_executable(path: &Path) -> bool {
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.is_file() && meta.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    {
        meta.is_file()
    }
}

/// The browser to run: the configured one, else `DHAN_LOGIN_CHROME`, else the usual names
/// on PATH, else the standard install locations. `env` is injectable for tests.
pub(crate) fn find_executable(
    settings: &BrowserSettings,
    env: &dyn Fn(&str) -> Option<std::ffi::OsString>,
) -> Result<PathBuf, BrowserError> {
    let mut tried: Vec<String> = Vec::new();
    let explicit = settings
        .executable
        .clone()
        .map(|p| (p, "browser.executable"))
        .or_else(|| {
            env(CHROME_ENV)
                .filter(|v| !v.is_empty())
                .map(|v| (PathBuf::from(v), CHROME_ENV))
        });
    if let Some((path, source)) = explicit {
        // A name without a slash is looked up on PATH, like a shell would.
        let resolved = if path.components().count() == 1 {
            search_path(&path, env)
        } else {
            Some(path.clone()).filter(|p| is_executable(p))
        };
        return resolved.ok_or_else(|| BrowserError::NotInstalled {
            tried: vec![format!("{} (from {source})", path.display())],
            hint: format!("{source} does not name an executable file; fix it or unset it to search the usual places"),
        });
    }
    for name in PATH_NAMES {
        tried.push(format!("{name} on PATH"));
        if let Some(found) = search_path(Path::new(name), env) {
            return Ok(found);
        }
    }
    for path in standard_locations() {
        if is_executable(&path) {
            return Ok(path);
        }
        tried.push(path.display().to_string());
    }
    Err(BrowserError::NotInstalled {
        tried,
        hint: INSTALL_HINT.into(),
    })
}

fn search_path(name: &Path, env: &dyn Fn(&str) -> Option<std::ffi::OsString>) -> Option<PathBuf> {
    let path = env("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

/// Switches that keep a throw-away browser quiet on a closed network. chromiumoxide adds
/// the leading dashes itself (`.arg("--x")` would become `----x`, which Chromium ignores).
const SWITCHES: &[&str] = &[
    "disable-background-networking",
    "disable-component-update",
    "disable-sync",
    "disable-default-apps",
    "disable-domain-reliability",
    "no-first-run",
    "no-default-browser-check",
    "no-pings",
    "disable-quic",
    "disable-gpu",
    // Without it Chromium opens a startup tab: one more renderer for nothing.
    "no-startup-window",
    "disable-crash-reporter",
    "metrics-recording-only",
];

fn is_root() -> bool {
    #[cfg(unix)]
    {
        // SAFETY: geteuid has no preconditions and cannot fail.
        unsafe { libc::geteuid() == 0 }
    }
    #[cfg(not(unix))]
    {
        false
    }
}

/// A user switch as chromiumoxide wants it: bare key, value split off.
fn user_switch(raw: &str) -> Option<(&str, Option<&str>)> {
    let raw = raw.trim().trim_start_matches('-');
    if raw.is_empty() {
        return None;
    }
    Some(match raw.split_once('=') {
        Some((k, v)) => (k, Some(v)),
        None => (raw, None),
    })
}

pub(crate) fn config(
    settings: &BrowserSettings,
    executable: &Path,
    profile: &Path,
    session_id: &str,
    launch_timeout: Duration,
) -> Result<BrowserConfig, String> {
    let mut b = BrowserConfig::builder()
        .chrome_executable(executable)
        .user_data_dir(profile)
        .launch_timeout(launch_timeout)
        .request_timeout(settings.step_timeout)
        // Lets every process of this session be found again by its environment.
        .env(super::reap::SESSION_ENV, session_id)
        // The crash handler otherwise writes its database under the user's ~/.config.
        .env(
            "XDG_CONFIG_HOME",
            profile.join("xdg-config").display().to_string(),
        )
        .env(
            "XDG_CACHE_HOME",
            profile.join("xdg-cache").display().to_string(),
        )
        .env("TMPDIR", profile.join("tmp").display().to_string());
    b = if settings.headed {
        b.with_head()
    } else {
        b.new_headless_mode()
    };
    if is_root() {
        // Chromium refuses to start as root with its sandbox on.
        b = b.no_sandbox();
    }
    for s in SWITCHES {
        b = b.arg(*s);
    }
    for raw in &settings.extra_args {
        b = match user_switch(raw) {
            Some((key, Some(value))) => b.arg((key, value)),
            Some((key, None)) => b.arg(key),
            None => b,
        };
    }
    b.build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::ffi::OsString;

    fn settings() -> BrowserSettings {
        BrowserSettings::with_defaults(Path::new("/nonexistent-state"))
    }

    #[test]
    fn explicit_executable_must_exist() {
        let mut s = settings();
        s.executable = Some(PathBuf::from("/nonexistent/chrome"));
        let e = find_executable(&s, &|_| None).unwrap_err().to_string();
        assert!(e.contains("/nonexistent/chrome"), "{e}");
        assert!(e.contains("browser.executable"), "{e}");
    }

    #[test]
    fn env_variable_comes_after_settings() {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("mychrome");
        std::fs::write(&fake, "#!/bin/sh\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let vars: HashMap<&str, OsString> = [(CHROME_ENV, fake.clone().into_os_string())].into();
        let found = find_executable(&settings(), &|k| vars.get(k).cloned()).unwrap();
        assert_eq!(found, fake);
    }

    #[test]
    fn nothing_found_names_what_was_tried_and_how_to_install() {
        let dir = tempfile::tempdir().unwrap();
        let vars: HashMap<&str, OsString> = [("PATH", dir.path().as_os_str().to_owned())].into();
        match find_executable(&settings(), &|k| vars.get(k).cloned()) {
            // A standard location may exist on this machine; then there is nothing to check.
            Ok(p) => assert!(standard_locations().contains(&p)),
            Err(e) => {
                let s = e.to_string();
                assert!(s.contains("chromium on PATH"), "{s}");
                assert!(s.contains("google-chrome-stable on PATH"), "{s}");
                #[cfg(target_os = "linux")]
                assert!(s.contains("apt-get install chromium"), "{s}");
            }
        }
    }

    #[test]
    fn user_switches_lose_their_dashes() {
        let mut s = settings();
        s.extra_args = vec!["--lang=fr".into(), "mute-audio".into(), " ".into()];
        let cfg = config(
            &s,
            Path::new("/bin/true"),
            Path::new("/tmp/p"),
            "id",
            Duration::from_secs(1),
        )
        .unwrap();
        let dbg = format!("{cfg:?}");
        assert!(!dbg.contains("\"--"), "{dbg}");
        assert!(dbg.contains("\"lang\""), "{dbg}");
    }
}
