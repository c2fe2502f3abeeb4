//! One Chromium for one login, and the guarantee that nothing of it outlives the login.
//!
//! The normal path closes the browser over CDP and reaps what it leaves behind. Every
//! other path (an error, a panic, the login future dropped on SIGINT) ends in `Drop`,
//! which must work synchronously: it SIGKILLs the whole process tree, reaps it and
//! removes the profile directory before returning.

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::Duration;

use chromiumoxide::error::CdpError;
use chromiumoxide::handler::HandlerConfig;
use chromiumoxide::{Browser, Handler, Page};
use futures_util::StreamExt;
use tempfile::TempDir;
use tokio::task::JoinHandle;
use tracing::instrument::WithSubscriber;

use super::error::BrowserError;
use super::launch::{self, Found};
use super::profile;
use super::quiet::Muffler;
use super::reap::{self, Marker};
use super::sandbox;
use super::scrub::SharedScrubber;
use super::spawn::{self, Announced, Spawn};
use crate::config::BrowserSettings;

/// For the WebSocket handshake, once Chromium has printed its address.
const CONNECT_LIMIT: Duration = Duration::from_secs(5);
/// How long children get to exit after the browser has.
const ORPHAN_LIMIT: Duration = Duration::from_secs(2);

pub(crate) struct Session {
    browser: Option<Browser>,
    /// A blank tab opened ahead (see `prepare_page`).
    spare: Option<Page>,
    /// The browser process, spawned (and reaped) by us.
    child: Option<Child>,
    pid: Option<u32>,
    marker: Marker,
    profile: Option<TempDir>,
    tasks: Vec<JoinHandle<()>>,
    muffler: Muffler,
}

/// Why a start gave no DevTools address.
enum Start {
    /// Chromium exited first; its last lines.
    Exited(String),
    Failed(String),
}

impl Session {
    /// Starts Chromium on a fresh profile and keeps its CDP handler polled.
    pub(crate) async fn launch(
        settings: &BrowserSettings,
        found: &Found,
        launch_timeout: Duration,
        muffler: Muffler,
        scrubber: SharedScrubber,
    ) -> Result<Session, BrowserError> {
        let executable = &found.path;
        let launch_error = |message: String| BrowserError::Launch {
            executable: executable.to_path_buf(),
            message,
        };
        let session_id = format!("{:016x}", rand::random::<u64>());
        let exe = executable.clone();
        let headed = settings.headed;
        let mut plan = tokio::task::spawn_blocking(move || sandbox::plan(&exe, headed))
            .await
            .map_err(|e| launch_error(format!("cannot plan its start: {e}")))?;
        let profile = profile::create(&session_id)
            .map_err(|e| launch_error(format!("cannot create a profile directory: {e}")))?;
        let mut session = Session {
            browser: None,
            spare: None,
            child: None,
            pid: None,
            marker: Marker::new(profile.path(), &session_id),
            profile: Some(profile),
            tasks: Vec::new(),
            muffler,
        };
        let profile_dir = session.profile_dir().to_path_buf();
        #[cfg(unix)]
        if let Some(account) = &plan.run_as {
            sandbox::hand_over(&[&profile_dir, &profile_dir.join("tmp")], account).map_err(
                |e| launch_error(format!("cannot hand the profile to {}: {e}", account.name)),
            )?;
        }
        let ws_url = loop {
            let started = session
                .start(settings, found, &plan, &session_id, launch_timeout)
                .await;
            match started {
                Ok(url) => break url,
                Err(Start::Exited(tail)) if plan.sandbox && sandbox::blames_sandbox(&tail) => {
                    sandbox::note_refused(executable, &plan);
                    plan = plan.without_sandbox();
                    session.forget_child();
                }
                Err(Start::Exited(tail)) => {
                    return Err(launch_error(format!(
                        "it exited at start: {}",
                        scrub(&scrubber, &tail)
                    )));
                }
                Err(Start::Failed(message)) => return Err(launch_error(message)),
            }
        };
        let config = HandlerConfig {
            request_timeout: settings.step_timeout,
            // chromiumoxide's default viewport also turns on touch emulation for every
            // tab, and a page that asks for touch may serve its mobile layout. Without
            // it the page sees the browser's own 800x600 window, as a person's
            // desktop browser would show it, and each new tab costs two commands less.
            viewport: None,
            ..HandlerConfig::default()
        };
        let (browser, handler) =
            tokio::time::timeout(CONNECT_LIMIT, Browser::connect_with_config(ws_url, config))
                .await
                .map_err(|_| {
                    launch_error(format!("no DevTools connection within {CONNECT_LIMIT:?}"))
                })?
                .map_err(|e| launch_error(scrub(&scrubber, &e.to_string())))?;
        session.browser = Some(browser);
        sandbox::record(&plan);
        let task = tokio::spawn(
            drive_handler(handler, scrubber).with_subscriber(session.muffler.dispatch.clone()),
        );
        session.tasks.push(task);
        tracing::debug!(
            pid = session.pid,
            profile_dir = %profile_dir.display(),
            "Chromium started"
        );
        Ok(session)
    }

    /// Starts Chromium once on the session's profile and waits for its DevTools address.
    async fn start(
        &mut self,
        settings: &BrowserSettings,
        found: &Found,
        plan: &sandbox::Plan,
        session_id: &str,
        launch_timeout: Duration,
    ) -> Result<String, Start> {
        let profile_dir = self.profile_dir().to_path_buf();
        tracing::debug!(
            executable = %found.path.display(),
            profile_dir = %profile_dir.display(),
            session = %session_id,
            plan = %plan.describe(),
            "starting Chromium"
        );
        let env = |k: &str, v: PathBuf| (k.into(), v.into_os_string());
        let mut envs = vec![
            // Lets every process of this session be found again by its environment.
            (reap::SESSION_ENV.into(), session_id.into()),
            // The crash handler otherwise writes its database under ~/.config.
            env("XDG_CONFIG_HOME", profile_dir.join("xdg-config")),
            env("XDG_CACHE_HOME", profile_dir.join("xdg-cache")),
            env("TMPDIR", profile_dir.join("tmp")),
        ];
        if plan.run_as.is_some() {
            // Root's home is closed to the other user: what Chromium keeps there
            // (~/.pki) goes into the throw-away profile too.
            envs.push(env("HOME", profile_dir.clone()));
        }
        let spawned = spawn::start(Spawn {
            program: found.path.clone(),
            args: launch::command_line(settings, found.kind, &profile_dir, plan.sandbox),
            envs,
            run_as: plan
                .run_as
                .as_ref()
                .map(|a| (a.uid, a.gid, profile_dir.clone())),
        })
        .await;
        let mut child = spawned.map_err(|e| {
            let hint = match &plan.run_as {
                Some(a) if e.kind() == std::io::ErrorKind::PermissionDenied => format!(
                    " (it runs as the user {}, which must be able to read and run it)",
                    a.name
                ),
                _ => String::new(),
            };
            Start::Failed(format!("cannot start it: {e}{hint}"))
        })?;
        self.pid = Some(child.id());
        let stderr = child.stderr.take();
        self.child = Some(child);
        // While Chromium starts: clear what killed runs left behind.
        if let Some(base) = profile_dir.parent() {
            profile::sweep_stale(base);
        }
        let announced = stderr
            .ok_or_else(|| std::io::Error::other("no stderr pipe"))
            .and_then(spawn::watch_stderr)
            .map_err(|e| Start::Failed(format!("cannot read its output: {e}")))?;
        // If this await is cancelled, the Drop of the session kills the tree.
        match tokio::time::timeout(launch_timeout, announced).await {
            Err(_) => Err(Start::Failed(format!(
                "no DevTools address within {launch_timeout:?}"
            ))),
            Ok(Ok(Announced::Listening(url))) => Ok(url),
            Ok(Ok(Announced::Exited(tail))) => Err(Start::Exited(tail)),
            Ok(Err(_)) => Err(Start::Failed("its output ended unread".into())),
        }
    }

    /// Reaps a browser that exited at start, before it is started again.
    fn forget_child(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.pid = None;
    }

    /// Opens the blank tab the login will use, so that its renderer starts while the
    /// caller's own requests are still in flight. A failure here is retried by
    /// `blank_page`, which reports it.
    async fn prepare_page(&mut self) {
        if let Some(browser) = &self.browser {
            match browser.new_page("about:blank").await {
                Ok(page) => self.spare = Some(page),
                Err(e) => tracing::debug!(error = %e, "could not open a tab ahead"),
            }
        }
    }

    /// The tab opened ahead, or a new one.
    pub(crate) async fn blank_page(&mut self) -> Result<Page, CdpError> {
        if let Some(page) = self.spare.take() {
            return Ok(page);
        }
        match &self.browser {
            Some(browser) => browser.new_page("about:blank").await,
            None => Err(CdpError::NotFound),
        }
    }

    /// A task that must not outlive the session (event listeners of the page).
    pub(crate) fn own_task(&mut self, task: JoinHandle<()>) {
        self.tasks.push(task);
    }

    fn profile_dir(&self) -> &Path {
        self.profile
            .as_ref()
            .map(TempDir::path)
            .unwrap_or_else(|| Path::new(""))
    }

    /// Ends Chromium and removes the profile. A throw-away profile has nothing worth a
    /// graceful shutdown, and killing the tree outright measured 131 → 68 ms (median of
    /// 7 logins) against `Browser::close` + `wait` + orphan reaping. The kill polls for
    /// the processes to die, so it runs on a blocking thread, not on the caller's worker.
    pub(crate) async fn close(self) {
        self.end_in_background().wait().await;
    }

    fn stop_tasks(&mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
    }

    /// SIGKILL for every process of the session, then reap them all.
    fn kill_tree(&mut self) {
        self.stop_tasks();
        let deadline = std::time::Instant::now() + ORPHAN_LIMIT;
        let mut killed: Vec<u32> = Vec::new();
        let mut left: Vec<u32> = Vec::new();
        // A process forked between a scan and the kill is caught by the next scan.
        for _ in 0..3 {
            let fresh: Vec<u32> = reap::session_processes(self.pid, &self.marker)
                .into_iter()
                .filter(|p| !killed.contains(p))
                .collect();
            if fresh.is_empty() {
                break;
            }
            // The scan comes first: once the browser dies, its children are re-parented
            // and no longer found by walking down from it.
            if let Some(child) = self.child.as_mut() {
                // Through the handle, which reaps it: its pid is never signalled after
                // that (it could by then belong to someone else).
                let _ = child.kill();
            }
            reap::kill(&fresh);
            if killed.is_empty() {
                // A killed process runs no more code of its own, and the kernel takes
                // tens of milliseconds to tear Chromium's down: the profile goes
                // meanwhile. What a system call already under way still writes is
                // removed after the reaping, by `remove_profile`.
                if let Some(profile) = &self.profile {
                    let _ = std::fs::remove_dir_all(profile.path());
                }
            }
            killed.extend(fresh);
            if let Some(child) = self.child.as_mut() {
                while matches!(child.try_wait(), Ok(None)) && std::time::Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
            left = reap::reap_until_gone(
                &killed,
                self.pid,
                deadline.saturating_duration_since(std::time::Instant::now()),
            );
        }
        if !left.is_empty() {
            tracing::warn!(pids = ?left, "some Chromium processes could not be reaped");
        }
        self.spare = None;
        self.browser = None;
        if let Some(mut child) = self.child.take()
            && matches!(child.try_wait(), Ok(None))
        {
            // Killed above; this only collects its exit status.
            let _ = child.kill();
            let _ = child.wait();
        }
        self.remove_profile();
    }

    fn remove_profile(&mut self) {
        let Some(profile) = self.profile.take() else {
            return;
        };
        let path: PathBuf = profile.path().to_path_buf();
        if let Err(e) = profile.close() {
            // A process that was still writing may have recreated a file: one more try.
            if std::fs::remove_dir_all(&path).is_err() && path.exists() {
                tracing::warn!(path = %path.display(), error = %e, "could not remove the Chromium profile");
            }
        }
        let warnings = self.muffler.muted_warnings();
        if warnings > 0 {
            tracing::debug!(
                count = warnings,
                "chromiumoxide logged warnings that were muted because they can quote page content"
            );
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if self.profile.is_some() || self.browser.is_some() || self.child.is_some() {
            self.kill_tree();
        }
    }
}

/// Polls the CDP connection for the whole session: without it no command completes.
/// An error item is one bad message, not the end of the connection.
async fn drive_handler(mut handler: Handler, scrubber: SharedScrubber) {
    while let Some(item) = handler.next().await {
        if let Err(e) = item {
            tracing::debug!(error = %scrub(&scrubber, &e.to_string()), "CDP handler error (skipped)");
        }
    }
}

fn scrub(scrubber: &SharedScrubber, text: &str) -> String {
    super::scrub::scrub_with(scrubber, text)
}

/// A browser started before the login it serves is known, so that its start overlaps
/// with the caller's own requests (generate-consent). Dropping it kills it.
pub(crate) struct Started {
    pub(crate) session: Result<Session, BrowserError>,
    pub(crate) took: Duration,
    /// Shared with the session's handler task; the login fills it with its secrets.
    pub(crate) scrubber: SharedScrubber,
    pub(crate) dispatch: tracing::Dispatch,
}

impl Started {
    pub(crate) async fn start(settings: &BrowserSettings) -> Started {
        let muffler = Muffler::new();
        let dispatch = muffler.dispatch.clone();
        let scrubber: SharedScrubber = Default::default();
        let started = std::time::Instant::now();
        let session = async {
            let found = launch::find_executable(settings, &|k| std::env::var_os(k))?;
            let mut session = Session::launch(
                settings,
                &found,
                settings.step_timeout,
                muffler,
                scrubber.clone(),
            )
            .await?;
            session.prepare_page().await;
            Ok(session)
        }
        .with_subscriber(dispatch.clone())
        .await;
        Started {
            session,
            took: started.elapsed(),
            scrubber,
            dispatch,
        }
    }
}

/// Chromium being ended on a blocking thread, while the caller goes on (consume-consent).
/// The end completes even if this is dropped unawaited.
pub(crate) struct Ending {
    task: JoinHandle<()>,
    started: std::time::Instant,
}

impl Session {
    /// Kills and reaps the tree and removes the profile on a blocking thread.
    pub(crate) fn end_in_background(self) -> Ending {
        let dispatch = tracing::dispatcher::get_default(tracing::Dispatch::clone);
        let started = std::time::Instant::now();
        let task = tokio::task::spawn_blocking(move || {
            tracing::dispatcher::with_default(&dispatch, move || drop(self));
        });
        Ending { task, started }
    }
}

impl Ending {
    /// Waits until nothing of the browser is left; returns how long ending it took.
    pub(crate) async fn wait(self) -> Duration {
        if let Err(e) = self.task.await {
            tracing::warn!(error = %e, "ending Chromium failed");
        }
        self.started.elapsed()
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A browser whose sandbox the "kernel" refuses: it exits naming the sandbox unless
    /// started with `--no-sandbox`, then announces a DevTools address nobody listens on.
    #[tokio::test]
    async fn a_refused_sandbox_is_started_again_without_it_once() {
        let dir = tempfile::tempdir().unwrap();
        // Chromium may run as another user (root's plan): it must reach the script.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let log = dir.path().join("args");
        std::fs::write(&log, "").unwrap();
        std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o666)).unwrap();
        let exe = dir.path().join("fake-chromium");
        std::fs::write(
            &exe,
            format!(
                "#!/bin/sh\necho \"$*\" >> {log}\ncase \" $* \" in *' --no-sandbox '*)\n  \
                 echo 'DevTools listening on ws://127.0.0.1:9/devtools/browser/x' >&2; exec sleep 30;;\nesac\n\
                 echo '[FATAL:zygote_host_impl_linux.cc(128)] No usable sandbox!' >&2\nexit 1\n",
                log = log.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut settings = BrowserSettings::with_defaults(Path::new("/nonexistent-state"));
        settings.executable = Some(exe.clone());
        let found = launch::find_executable(&settings, &|_| None).unwrap();

        let launched = Session::launch(
            &settings,
            &found,
            Duration::from_secs(20),
            Muffler::new(),
            SharedScrubber::default(),
        )
        .await;
        // Nothing listens on port 9: the second start got as far as connecting.
        let err = launched.err().expect("no DevTools server to connect to");
        assert!(!err.to_string().contains("No usable sandbox"), "{err}");
        let starts = std::fs::read_to_string(&log).unwrap();
        let starts: Vec<&str> = starts.lines().collect();
        assert_eq!(starts.len(), 2, "{starts:?}");
        assert!(!starts[0].contains("--no-sandbox"), "{starts:?}");
        assert!(starts[1].contains("--no-sandbox"), "{starts:?}");
        let next = sandbox::plan(&found.path, false);
        assert!(next.run_as.is_some() || !sandbox::is_root());
        assert!(!next.sandbox, "remembered for the next login");
    }
}
