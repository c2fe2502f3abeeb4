//! Stopping a login on SIGINT/SIGTERM.

use anyhow::{Context as _, Result};

/// The login was stopped by SIGINT/SIGTERM; the browser guard has cleaned up.
#[derive(Debug, thiserror::Error)]
#[error("interrupted")]
pub struct Interrupted;

/// Runs a login until it ends or SIGINT/SIGTERM arrives. Dropping the future on a
/// signal runs the browser's guard, which kills Chromium and removes its profile dir.
pub async fn interruptible<F: std::future::Future>(f: F) -> Result<F::Output> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot watch SIGTERM")?;
    tokio::select! {
        out = f => Ok(out),
        _ = tokio::signal::ctrl_c() => Err(Interrupted.into()),
        _ = term.recv() => Err(Interrupted.into()),
    }
}
