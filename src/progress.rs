//! Step reporting for long operations, so the CLI can show where a login is without the
//! library knowing about terminals.

use std::time::Duration;

/// Receives the named steps of a login as they start and end. Called on the async
/// runtime, in the middle of a login: an implementation should return quickly. Steps
/// may overlap (the browser launches while the consent is generated).
pub trait Progress: Send + Sync {
    /// A step begins: `renew`, `totp login`, `generate consent`, `consume consent`, or a
    /// browser step (`launch`, `open`, `mobile`, `totp`, `otp`, `pin`, `capture`,
    /// `close`).
    fn step_started(&self, step: &str);
    /// `step` has ended, `elapsed` after it started, well or not: a failure is reported
    /// through the login's result, not here. A step cut short by an error may end
    /// without this call.
    fn step_finished(&self, step: &str, elapsed: Duration);
}

/// Reports nothing: for tests, `--quiet` and non-terminal output.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn step_started(&self, _step: &str) {}
    fn step_finished(&self, _step: &str, _elapsed: Duration) {}
}
