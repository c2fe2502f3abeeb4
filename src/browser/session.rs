//! One Chromium for one login, and the guarantee that nothing of it outlives the login.
//!
//! The normal path closes the browser over CDP and reaps what it leaves behind. Every
//! other path (an error, a panic, the login future dropped on SIGINT) ends in `Drop`,
//! which must work synchronously: it SIGKILLs the whole process tree, reaps it and
//! removes the profile directory before returning.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chromiumoxide::{Browser, Handler};
use futures_util::StreamExt;
use tempfile::TempDir;
use tokio::task::JoinHandle;
use tracing::instrument::WithSubscriber;

use super::error::BrowserError;
use super::quiet::Muffler;
use super::reap::{self, Marker};
use super::{SharedScrubber, launch};
use crate::config::BrowserSettings;

/// Beyond the launch timeout, for the WebSocket handshake.
const CONNECT_SLACK: Duration = Duration::from_secs(2);
/// How long children get to exit after the browser has.
const ORPHAN_LIMIT: Duration = Duration::from_secs(2);

pub(crate) struct Session {
    browser: Option<Browser>,
    pid: Option<u32>,
    marker: Marker,
    profile: Option<TempDir>,
    tasks: Vec<JoinHandle<()>>,
    muffler: Muffler,
}

impl Session {
    /// Starts Chromium on a fresh profile and keeps its CDP handler polled.
    pub(crate) async fn launch(
        settings: &BrowserSettings,
        executable: &Path,
        launch_timeout: Duration,
        muffler: Muffler,
        scrubber: SharedScrubber,
    ) -> Result<Session, BrowserError> {
        let launch_error = |message: String| BrowserError::Launch {
            executable: executable.to_path_buf(),
            message,
        };
        reap::become_subreaper();
        let profile = tempfile::Builder::new()
            .prefix("dhan-login-chromium-")
            .tempdir()
            .map_err(|e| launch_error(format!("cannot create a profile directory: {e}")))?;
        // Chromium's singleton socket goes to a mkdtemp folder in TMPDIR, which a killed
        // browser never removes: keep it inside the profile, which we always remove.
        std::fs::create_dir(profile.path().join("tmp"))
            .map_err(|e| launch_error(format!("cannot create a temp directory: {e}")))?;
        let session_id = format!("{:016x}", rand::random::<u64>());
        let mut session = Session {
            browser: None,
            pid: None,
            marker: Marker::new(profile.path(), &session_id),
            profile: Some(profile),
            tasks: Vec::new(),
            muffler,
        };
        let profile_dir = session.profile_dir().to_path_buf();
        tracing::debug!(
            executable = %executable.display(),
            profile_dir = %profile_dir.display(),
            session = %session_id,
            "starting Chromium"
        );
        let config = launch::config(
            settings,
            executable,
            &profile_dir,
            &session_id,
            launch_timeout,
        )
        .map_err(launch_error)?;
        // If this await is cancelled, chromiumoxide kills only the direct child; the
        // Drop of `session` finds the rest by their marker.
        // chromiumoxide bounds the wait for the DevTools URL, not the connection after it.
        let (mut browser, handler) =
            tokio::time::timeout(launch_timeout + CONNECT_SLACK, Browser::launch(config))
                .await
                .map_err(|_| {
                    launch_error(format!("no DevTools connection within {launch_timeout:?}"))
                })?
                .map_err(|e| launch_error(scrub(&scrubber, &e.to_string())))?;
        session.pid = browser.get_mut_child().and_then(|c| c.as_mut_inner().id());
        session.browser = Some(browser);
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

    pub(crate) fn browser(&self) -> Option<&Browser> {
        self.browser.as_ref()
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
    /// 7 logins) against `Browser::close` + `wait` + orphan reaping.
    pub(crate) async fn close(mut self) {
        self.kill_tree();
    }

    fn stop_tasks(&mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
    }

    /// SIGKILL for every process of the session, then reap them all.
    fn kill_tree(&mut self) {
        self.stop_tasks();
        // Before launch returned, the pid is unknown but the runtime still owns it.
        let runtime_owned = self.pid.or_else(|| reap::browser_root(&self.marker));
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
            if let Some(child) = self.runtime_child() {
                // Through tokio's handle, so that it knows the child is gone and never
                // signals its pid again (which could by then belong to someone else).
                let _ = child.start_kill();
            }
            reap::kill(&fresh);
            killed.extend(fresh);
            if let Some(child) = self.runtime_child() {
                while matches!(child.try_wait(), Ok(None)) && std::time::Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
            left = reap::reap_until_gone(
                &killed,
                runtime_owned,
                deadline.saturating_duration_since(std::time::Instant::now()),
            );
        }
        if !left.is_empty() {
            tracing::warn!(pids = ?left, "some Chromium processes could not be reaped");
        }
        self.browser = None;
        self.remove_profile();
    }

    fn runtime_child(&mut self) -> Option<&mut tokio::process::Child> {
        self.browser
            .as_mut()
            .and_then(|b| b.get_mut_child())
            .map(|c| c.as_mut_inner())
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
        if self.profile.is_some() || self.browser.is_some() {
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
    super::scrub_with(scrubber, text)
}
