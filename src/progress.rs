//! Step reporting for long operations, so the CLI can show where a login is without the
//! library knowing about terminals.

use std::time::Duration;

/// Receives the named steps of a login as they start and end.
pub trait Progress: Send + Sync {
    fn step_started(&self, step: &str);
    fn step_finished(&self, step: &str, elapsed: Duration);
}

/// Reports nothing: for tests, `--quiet` and non-terminal output.
pub struct NoProgress;

impl Progress for NoProgress {
    fn step_started(&self, _step: &str) {}
    fn step_finished(&self, _step: &str, _elapsed: Duration) {}
}
