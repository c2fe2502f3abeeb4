//! Finding the browser for one login, and the command line it is started with.
//!
//! Headless logins prefer Chromium's *headless shell* (Debian's `chromium-headless-shell`,
//! what Playwright and Puppeteer run by default when headless): measured here it starts
//! in about 70–80 ms against 190–260 ms for full Chromium and peaks at about 215 MiB of
//! PSS against about 385 MiB. It has no window, so `--headed` needs a full browser.
//!
//! Distributions wrap both in shell scripts (`/usr/bin/chromium-headless-shell` runs the
//! real binary *without* `exec`): a wrapper would be the process dhan-login watches and
//! kills while the browser itself lives on, so wrappers are resolved to what they run.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::error::BrowserError;
use crate::config::BrowserSettings;

pub(crate) const CHROME_ENV: &str = "DHAN_LOGIN_CHROME";

/// Which kind of browser a path is; it decides the headless switches and whether a
/// window can be shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Always headless, no window, lighter and faster to start.
    HeadlessShell,
    /// Chromium, Chrome or Edge: headless with `--headless`, headed without.
    Full,
}

impl Kind {
    fn of(path: &Path) -> Kind {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        if name.contains("headless-shell") || name.contains("headless_shell") {
            Kind::HeadlessShell
        } else {
            Kind::Full
        }
    }
}

/// The browser to run and what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Found {
    pub path: PathBuf,
    pub kind: Kind,
}

/// Where to look besides PATH; injectable so that tests do not depend on this machine.
pub(crate) struct Locations {
    shell: Vec<PathBuf>,
    full: Vec<PathBuf>,
}

/// Names of the headless shell on PATH.
const SHELL_NAMES: &[&str] = &["chromium-headless-shell", "chrome-headless-shell"];

/// Names of full browsers on PATH, most specific first.
#[cfg(not(windows))]
const FULL_NAMES: &[&str] = &[
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
];
#[cfg(windows)]
const FULL_NAMES: &[&str] = &["chrome.exe", "msedge.exe", "chromium.exe"];

impl Locations {
    #[cfg(target_os = "macos")]
    pub(crate) fn system() -> Locations {
        let apps = [
            "Google Chrome.app/Contents/MacOS/Google Chrome",
            "Chromium.app/Contents/MacOS/Chromium",
            "Microsoft Edge.app/Contents/MacOS/Microsoft Edge",
        ];
        let mut roots = vec![PathBuf::from("/Applications")];
        if let Some(home) = std::env::var_os("HOME") {
            roots.push(PathBuf::from(home).join("Applications"));
        }
        Locations {
            shell: Vec::new(),
            full: roots
                .iter()
                .flat_map(|root| apps.iter().map(move |app| root.join(app)))
                .collect(),
        }
    }

    #[cfg(windows)]
    pub(crate) fn system() -> Locations {
        let mut full = Vec::new();
        for var in ["ProgramFiles", "ProgramFiles(x86)", "LOCALAPPDATA"] {
            if let Some(root) = std::env::var_os(var) {
                let root = PathBuf::from(root);
                full.push(root.join(r"Google\Chrome\Application\chrome.exe"));
                full.push(root.join(r"Microsoft\Edge\Application\msedge.exe"));
                full.push(root.join(r"Chromium\Application\chrome.exe"));
            }
        }
        Locations {
            shell: Vec::new(),
            full,
        }
    }

    #[cfg(not(any(target_os = "macos", windows)))]
    pub(crate) fn system() -> Locations {
        // The binaries behind the usual wrappers, also for a minimal PATH (cron, systemd).
        let paths = |list: &[&str]| list.iter().map(PathBuf::from).collect();
        Locations {
            shell: paths(&["/usr/lib/chromium/chromium-headless-shell"]),
            full: paths(&[
                "/usr/lib/chromium/chromium",
                "/usr/lib/chromium-browser/chromium-browser",
                "/opt/google/chrome/chrome",
                "/snap/bin/chromium",
            ]),
        }
    }
}

#[cfg(target_os = "macos")]
const INSTALL_HINT: &str = "install Google Chrome (or `brew install --cask chromium`), or set browser.executable / DHAN_LOGIN_CHROME";
#[cfg(windows)]
const INSTALL_HINT: &str = "install Google Chrome, or set browser.executable / DHAN_LOGIN_CHROME";
#[cfg(not(any(target_os = "macos", windows)))]
const INSTALL_HINT: &str = "install it with `apt-get install chromium-headless-shell chromium` (Debian/Ubuntu, or run scripts/setup) or install Google Chrome, or set browser.executable / DHAN_LOGIN_CHROME";

const HEADED_HINT: &str = "--headed shows a window, which the headless shell cannot: install a full browser (`apt-get install chromium` on Debian/Ubuntu, or Google Chrome), or point browser.executable / DHAN_LOGIN_CHROME at one";

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

/// Wrapper scripts are small; anything bigger is not one.
const SCRIPT_LIMIT: u64 = 64 * 1024;

/// The program a path really runs: symlinks followed, and a `#!` wrapper script replaced
/// by the absolute path it names that has the wrapper's own file name (Debian's
/// headless-shell wrapper names `/usr/lib/chromium/chromium-headless-shell`). `None` for a
/// wrapper whose target cannot be read off it: running it would leave the browser outside
/// dhan-login's reach.
fn real_binary(path: &Path) -> Option<PathBuf> {
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    if !is_script(&path) {
        return Some(path);
    }
    let name = path.file_name()?.to_owned();
    let text = std::fs::read_to_string(&path).ok()?;
    text.split(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ';' | '`'))
        .filter(|t| t.starts_with('/'))
        .map(PathBuf::from)
        .filter(|p| p.file_name() == Some(name.as_os_str()) && *p != path)
        .find(|p| is_executable(p) && !is_script(p))
}

fn is_script(path: &Path) -> bool {
    use std::io::Read;
    let small = std::fs::metadata(path).is_ok_and(|m| m.len() <= SCRIPT_LIMIT);
    let mut head = [0u8; 2];
    small
        && std::fs::File::open(path)
            .and_then(|mut f| f.read_exact(&mut head))
            .is_ok()
        && &head == b"#!"
}

/// The browser to run: the configured one, else `DHAN_LOGIN_CHROME`, else (headless
/// only) the headless shell, else a full Chromium/Chrome from PATH or the standard
/// locations. `env` is injectable for tests.
pub(crate) fn find_executable(
    settings: &BrowserSettings,
    env: &dyn Fn(&str) -> Option<OsString>,
) -> Result<Found, BrowserError> {
    find_in(settings, env, &Locations::system())
}

pub(crate) fn find_in(
    settings: &BrowserSettings,
    env: &dyn Fn(&str) -> Option<OsString>,
    places: &Locations,
) -> Result<Found, BrowserError> {
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
        return explicit_executable(&path, source, settings.headed, env);
    }
    let mut tried: Vec<String> = Vec::new();
    let mut shell_seen: Option<PathBuf> = None;
    let shells =
        places
            .shell
            .iter()
            .map(|p| (p.clone(), p.display().to_string()))
            .chain(SHELL_NAMES.iter().filter_map(|n| {
                search_path(Path::new(n), env).map(|p| (p, format!("{n} on PATH")))
            }));
    for (candidate, label) in shells {
        if let Some(real) = consider(&candidate, label, &mut tried) {
            if !settings.headed {
                return Ok(Found {
                    path: real,
                    kind: Kind::HeadlessShell,
                });
            }
            shell_seen.get_or_insert(real);
        }
    }
    if settings.headed {
        tried.clear();
    }
    for name in FULL_NAMES {
        match search_path(Path::new(name), env) {
            Some(candidate) => {
                if let Some(real) = consider(&candidate, format!("{name} on PATH"), &mut tried) {
                    return Ok(Found {
                        path: real,
                        kind: Kind::Full,
                    });
                }
            }
            None => tried.push(format!("{name} on PATH")),
        }
    }
    for path in &places.full {
        if let Some(real) = consider(path, path.display().to_string(), &mut tried) {
            return Ok(Found {
                path: real,
                kind: Kind::Full,
            });
        }
    }
    let hint = match shell_seen {
        Some(shell) => format!(
            "only the headless shell ({}) is installed; {HEADED_HINT}",
            shell.display()
        ),
        None if settings.headed => HEADED_HINT.to_string(),
        None => INSTALL_HINT.to_string(),
    };
    Err(BrowserError::NotInstalled { tried, hint })
}

/// The real binary behind `candidate`, or why it cannot be used (noted in `tried`).
fn consider(candidate: &Path, label: String, tried: &mut Vec<String>) -> Option<PathBuf> {
    if !is_executable(candidate) {
        tried.push(label);
        return None;
    }
    let real = real_binary(candidate);
    if real.is_none() {
        tried.push(format!(
            "{label} (a wrapper script whose browser could not be found)"
        ));
    }
    real
}

fn explicit_executable(
    path: &Path,
    source: &str,
    headed: bool,
    env: &dyn Fn(&str) -> Option<OsString>,
) -> Result<Found, BrowserError> {
    // A name without a slash is looked up on PATH, like a shell would.
    let resolved = if path.components().count() == 1 {
        search_path(path, env)
    } else {
        Some(path.to_path_buf()).filter(|p| is_executable(p))
    };
    let Some(found) = resolved else {
        return Err(BrowserError::NotInstalled {
            tried: vec![format!("{} (from {source})", path.display())],
            hint: format!(
                "{source} does not name an executable file; fix it or unset it to search the usual places"
            ),
        });
    };
    // A wrapper the user chose is still run if its browser cannot be read off it.
    let real = real_binary(&found).unwrap_or(found);
    let kind = Kind::of(&real);
    if headed && kind == Kind::HeadlessShell {
        return Err(BrowserError::NotInstalled {
            tried: vec![format!("{} (from {source})", real.display())],
            hint: format!("it is the headless shell; {HEADED_HINT}"),
        });
    }
    Ok(Found { path: real, kind })
}

fn search_path(name: &Path, env: &dyn Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    let path = env("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

/// Switches that keep a throw-away browser quiet on a closed network and fast to drive.
/// Written without dashes; `command_line` adds them.
const SWITCHES: &[&str] = &[
    "disable-background-networking",
    "disable-component-update",
    "disable-sync",
    "disable-default-apps",
    "disable-domain-reliability",
    "disable-extensions",
    "disable-component-extensions-with-background-pages",
    "disable-client-side-phishing-detection",
    "no-first-run",
    "no-default-browser-check",
    "no-pings",
    "disable-quic",
    "disable-gpu",
    // No GPU means software compositing anyway; these keep the GPU process from loading
    // its software rasterizer: peak tree PSS 224 -> 209 MiB on the headless shell,
    // time unchanged (BENCHMARKS.md).
    "disable-gpu-compositing",
    "disable-software-rasterizer",
    // Without it Chromium opens a startup tab: one more renderer for nothing.
    "no-startup-window",
    // Every process costs its own copy of Chromium's relocated data and its allocator's
    // pages: the GPU process (software compositing only here) and the network service
    // run inside the browser process instead. Peak tree PSS on the headless shell
    // 226 -> 215 MiB, time unchanged (BENCHMARKS.md). The feature's name has a `2`
    // since Chromium renamed it; the old name is silently ignored.
    "in-process-gpu",
    "enable-features=NetworkServiceInProcess2",
    "disable-crash-reporter",
    "disable-breakpad",
    "metrics-recording-only",
    // A page in a headless browser counts as hidden: its timers must not be throttled.
    "disable-background-timer-throttling",
    "disable-backgrounding-occluded-windows",
    "disable-renderer-backgrounding",
    "disable-hang-monitor",
    "disable-ipc-flooding-protection",
    "disable-popup-blocking",
    "disable-prompt-on-repost",
    // Containers give /dev/shm 64 MiB, which renderers outgrow.
    "disable-dev-shm-usage",
    // Never touch the user's keyring for a throw-away profile.
    "password-store=basic",
    "use-mock-keychain",
    "enable-automation",
    "disable-features=TranslateUI",
    "lang=en-US",
    // Chromium picks a free port and prints it: no race for a fixed one.
    "remote-debugging-port=0",
];

/// A user switch, with exactly two leading dashes whatever was written.
fn user_switch(raw: &str) -> Option<String> {
    let raw = raw.trim().trim_start_matches('-');
    (!raw.is_empty()).then(|| format!("--{raw}"))
}

/// Chromium's arguments for one login on `profile`, with its sandbox on when `sandbox`
/// (see `sandbox::plan`). User switches come last, so that one of theirs with the same
/// key wins.
pub(crate) fn command_line(
    settings: &BrowserSettings,
    kind: Kind,
    profile: &Path,
    sandbox: bool,
) -> Vec<OsString> {
    let mut args: Vec<OsString> = SWITCHES.iter().map(|s| format!("--{s}").into()).collect();
    let mut dir = OsString::from("--user-data-dir=");
    dir.push(profile.as_os_str());
    args.push(dir);
    let headless = !settings.headed || kind == Kind::HeadlessShell;
    if headless {
        for s in ["--headless", "--hide-scrollbars", "--mute-audio"] {
            args.push(s.into());
        }
    }
    // Where the kernel refuses the sandbox, the page's own process isolates nothing
    // and costs a second copy of Chromium's relocated data: one process instead of two,
    // peak tree PSS 187 -> 172 MiB and 0.93x the time (BENCHMARKS.md). Kept to headless
    // logins, and a setting turns it off. Asked for, it costs the sandbox.
    let single = settings.single_process.unwrap_or(!sandbox && headless);
    if !sandbox || single {
        // Without the sandbox the zygotes serve nothing: children are started directly,
        // two processes fewer (peak tree PSS 215 -> 205 MiB, BENCHMARKS.md). With the
        // sandbox on, Chromium refuses `--no-zygote`.
        args.push("--no-sandbox".into());
        args.push("--no-zygote".into());
    }
    if single {
        args.push("--single-process".into());
    } else if sandbox {
        // Chromium starts a second, unsandboxed zygote for the GPU process and the
        // utilities; here both run inside the browser process (above), so it would only
        // hold its own copy of the binary's relocated data. Without it the sandboxed
        // tree's peak PSS drops 199 -> 190 MiB at the same time (BENCHMARKS.md).
        args.push("--no-unsandboxed-zygote".into());
    }
    let user: Vec<String> = settings
        .extra_args
        .iter()
        .filter_map(|raw| user_switch(raw))
        .collect();
    let mut lists: Vec<(&str, Vec<String>)> =
        LIST_SWITCHES.iter().map(|k| (*k, Vec::new())).collect();
    args.retain(|a| !take_list(a.to_str().unwrap_or_default(), &mut lists));
    let user: Vec<String> = user
        .into_iter()
        .filter(|a| !take_list(a, &mut lists))
        .collect();
    for (key, values) in lists {
        if !values.is_empty() {
            args.push(format!("--{key}={}", values.join(",")).into());
        }
    }
    args.extend(user.into_iter().map(OsString::from));
    args
}

/// Switches whose value is a comma-separated list. Chromium keeps only the last of a
/// repeated switch, so a user's `--disable-features=X` would silently drop ours: the
/// lists are joined into one switch instead.
const LIST_SWITCHES: &[&str] = &["enable-features", "disable-features"];

/// Moves the values of a list switch into `lists` (without repeats); false for any other
/// argument.
fn take_list(arg: &str, lists: &mut [(&str, Vec<String>)]) -> bool {
    let Some(rest) = arg.strip_prefix("--") else {
        return false;
    };
    let Some((key, value)) = rest.split_once('=') else {
        return false;
    };
    let Some((_, values)) = lists.iter_mut().find(|(k, _)| *k == key) else {
        return false;
    };
    for v in value.split(',').map(str::trim).filter(|v| !v.is_empty()) {
        if !values.iter().any(|have| have == v) {
            values.push(v.to_string());
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings() -> BrowserSettings {
        BrowserSettings::with_defaults(Path::new("/nonexistent-state"))
    }

    #[cfg(unix)]
    fn make_exec(path: &Path, text: &str) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// A fake machine: a bin folder on PATH, a lib folder for the real binaries.
    struct Machine {
        dir: tempfile::TempDir,
        vars: HashMap<&'static str, OsString>,
    }

    #[cfg(unix)]
    impl Machine {
        fn new() -> Machine {
            let dir = tempfile::tempdir().unwrap();
            let bin = dir.path().join("bin");
            std::fs::create_dir_all(&bin).unwrap();
            let vars = [("PATH", bin.into_os_string())].into();
            Machine { dir, vars }
        }
        fn p(&self, rel: &str) -> PathBuf {
            self.dir.path().join(rel)
        }
        /// A binary (ELF-like: anything that is not `#!`).
        fn binary(&self, rel: &str) -> PathBuf {
            let p = self.p(rel);
            make_exec(&p, "\x7fELF");
            p
        }
        /// Debian's headless-shell wrapper: runs the binary without exec.
        fn shell_wrapper(&self, target: &Path) -> PathBuf {
            let p = self.p("bin/chromium-headless-shell");
            make_exec(
                &p,
                &format!("#!/bin/sh -e\n\n{} \"$@\"\n", target.display()),
            );
            p
        }
        fn places(&self, shell: &[PathBuf], full: &[PathBuf]) -> Locations {
            Locations {
                shell: shell.to_vec(),
                full: full.to_vec(),
            }
        }
        fn find(&self, s: &BrowserSettings, places: &Locations) -> Result<Found, BrowserError> {
            find_in(s, &|k| self.vars.get(k).cloned(), places)
        }
    }

    #[cfg(unix)]
    #[test]
    fn configured_executable_then_env_then_shell_then_full() {
        let mut m = Machine::new();
        let shell = m.binary("lib/chromium-headless-shell");
        let full = m.binary("lib/chromium");
        let places = m.places(std::slice::from_ref(&shell), std::slice::from_ref(&full));
        let chosen = m.binary("elsewhere/my-chrome");
        let from_env = m.binary("elsewhere/env-chrome");

        m.vars.insert(CHROME_ENV, from_env.clone().into_os_string());
        let mut s = settings();
        s.executable = Some(chosen.clone());
        assert_eq!(m.find(&s, &places).unwrap().path, chosen);
        s.executable = None;
        assert_eq!(m.find(&s, &places).unwrap().path, from_env);
        m.vars.remove(CHROME_ENV);
        let found = m.find(&s, &places).unwrap();
        assert_eq!((found.path, found.kind), (shell, Kind::HeadlessShell));
        s.headed = true;
        let found = m.find(&s, &places).unwrap();
        assert_eq!((found.path, found.kind), (full, Kind::Full));
    }

    #[cfg(unix)]
    #[test]
    fn the_shell_wrapper_on_path_resolves_to_the_real_binary() {
        let m = Machine::new();
        let real = m.binary("lib/chromium-headless-shell");
        m.shell_wrapper(&real);
        let found = m.find(&settings(), &m.places(&[], &[])).unwrap();
        assert_eq!(found.path, std::fs::canonicalize(&real).unwrap());
        assert_eq!(found.kind, Kind::HeadlessShell);
    }

    #[cfg(unix)]
    #[test]
    fn a_wrapper_that_cannot_be_resolved_is_skipped_for_the_next_candidate() {
        let m = Machine::new();
        // Like Debian's /usr/bin/chromium: the target is built from variables.
        make_exec(
            &m.p("bin/chromium"),
            "#!/bin/sh\nLIBDIR=/usr/lib/chromium\nexec $LIBDIR/chromium \"$@\"\n",
        );
        let full = m.binary("lib/chromium");
        let found = m
            .find(&settings(), &m.places(&[], std::slice::from_ref(&full)))
            .unwrap();
        assert_eq!(found.path, std::fs::canonicalize(&full).unwrap());
        let e = m
            .find(&settings(), &m.places(&[], &[]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("chromium on PATH (a wrapper script"), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn headed_with_only_the_shell_says_a_full_browser_is_needed() {
        let m = Machine::new();
        let shell = m.binary("lib/chromium-headless-shell");
        let mut s = settings();
        s.headed = true;
        let e = m
            .find(&s, &m.places(std::slice::from_ref(&shell), &[]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("only the headless shell"), "{e}");
        assert!(e.contains("--headed"), "{e}");
        // Also when the user names the shell explicitly.
        s.executable = Some(shell);
        let e = m.find(&s, &m.places(&[], &[])).unwrap_err().to_string();
        assert!(
            e.contains("headless shell") && e.contains("--headed"),
            "{e}"
        );
    }

    #[test]
    fn explicit_executable_must_exist() {
        let mut s = settings();
        s.executable = Some(PathBuf::from("/nonexistent/chrome"));
        let e = find_executable(&s, &|_| None).unwrap_err().to_string();
        assert!(e.contains("/nonexistent/chrome"), "{e}");
        assert!(e.contains("browser.executable"), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn nothing_found_names_what_was_tried_and_how_to_install() {
        let m = Machine::new();
        let e = m
            .find(&settings(), &m.places(&[m.p("lib/none")], &[]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("chromium on PATH"), "{e}");
        assert!(e.contains("google-chrome-stable on PATH"), "{e}");
        assert!(e.contains("lib/none"), "{e}");
        #[cfg(target_os = "linux")]
        assert!(e.contains("apt-get install chromium-headless-shell"), "{e}");
    }

    #[test]
    fn switches_have_two_dashes_and_user_ones_come_last() {
        let mut s = settings();
        s.extra_args = vec!["--lang=fr".into(), "mute-audio".into(), " ".into()];
        let args = command_line(&s, Kind::HeadlessShell, Path::new("/tmp/p"), true);
        let args: Vec<String> = args.iter().map(|a| a.to_string_lossy().into()).collect();
        assert!(
            args.iter()
                .all(|a| a.starts_with("--") && !a.starts_with("---")),
            "{args:?}"
        );
        assert_eq!(args.last().map(String::as_str), Some("--mute-audio"));
        assert!(args.contains(&"--lang=fr".to_string()));
        assert!(args.contains(&"--user-data-dir=/tmp/p".to_string()));
        assert!(args.contains(&"--remote-debugging-port=0".to_string()));
        assert!(args.contains(&"--headless".to_string()));
        // Chromium refuses `--no-zygote` with its sandbox on: only without it.
        assert_eq!(
            args.contains(&"--no-zygote".to_string()),
            args.contains(&"--no-sandbox".to_string()),
            "{args:?}"
        );
        s.headed = true;
        let args = command_line(&s, Kind::Full, Path::new("/tmp/p"), true);
        assert!(!args.iter().any(|a| a == "--headless"), "{args:?}");
    }

    #[test]
    fn one_process_only_for_headless_logins_without_the_sandbox_unless_set() {
        let has = |s: &BrowserSettings, kind: Kind, sandbox: bool, switch: &str| {
            command_line(s, kind, Path::new("/tmp/p"), sandbox)
                .iter()
                .any(|a| a == switch)
        };
        let mut s = settings();
        // With the sandbox (any user, root included since Chromium then runs as another
        // one): Chromium's usual processes, nothing turned off.
        for kind in [Kind::HeadlessShell, Kind::Full] {
            for switch in ["--single-process", "--no-sandbox", "--no-zygote"] {
                assert!(!has(&s, kind, true, switch), "{kind:?} {switch}");
            }
            // ...but the zygote that would start GPU and utility processes outside the
            // sandbox: they run inside the browser process.
            assert!(has(&s, kind, true, "--no-unsandboxed-zygote"), "{kind:?}");
            assert!(!has(&s, kind, false, "--no-unsandboxed-zygote"), "{kind:?}");
        }
        // Where the kernel refused the sandbox: one process for headless logins.
        for kind in [Kind::HeadlessShell, Kind::Full] {
            for switch in ["--single-process", "--no-sandbox", "--no-zygote"] {
                assert!(has(&s, kind, false, switch), "{kind:?} {switch}");
            }
        }
        // A headed window keeps Chromium's usual processes.
        s.headed = true;
        assert!(!has(&s, Kind::Full, false, "--single-process"));
        assert!(has(&s, Kind::Full, false, "--no-sandbox"));
        s.headed = false;
        s.single_process = Some(false);
        assert!(!has(&s, Kind::HeadlessShell, false, "--single-process"));
        assert!(has(&s, Kind::HeadlessShell, false, "--no-sandbox"));
        // Asked for with the sandbox available, one process goes without it (and zygote).
        s.single_process = Some(true);
        for switch in ["--single-process", "--no-sandbox", "--no-zygote"] {
            assert!(has(&s, Kind::HeadlessShell, true, switch), "{switch}");
        }
    }

    #[test]
    fn a_user_feature_list_is_joined_to_ours_not_put_in_its_place() {
        let mut s = settings();
        s.extra_args = vec![
            "--disable-features=PaintHolding,TranslateUI".into(),
            "enable-features=Foo".into(),
        ];
        let args: Vec<String> = command_line(&s, Kind::HeadlessShell, Path::new("/tmp/p"), true)
            .iter()
            .map(|a| a.to_string_lossy().into())
            .collect();
        let of = |key: &str| -> Vec<&String> {
            args.iter()
                .filter(|a| a.starts_with(&format!("--{key}=")))
                .collect()
        };
        assert_eq!(
            of("disable-features"),
            [&"--disable-features=TranslateUI,PaintHolding".to_string()],
            "{args:?}"
        );
        assert_eq!(
            of("enable-features"),
            [&"--enable-features=NetworkServiceInProcess2,Foo".to_string()],
            "{args:?}"
        );
    }
}
