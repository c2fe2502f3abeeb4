//! Notices a suspend/resume or a step of the system clock, so expiry is re-checked at
//! once instead of after a sleep that the monotonic clock stretched.
//!
//! Timers run on the monotonic clock, which on Linux stands still while the machine
//! sleeps; tokens expire by the wall clock. A short tick comparing the two catches both
//! a resume and an NTP step within about a second.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{Notify, watch};

const TICK: Duration = Duration::from_secs(1);

/// More disagreement than a loaded machine's scheduling delay.
const TOLERANCE: Duration = Duration::from_secs(2);

pub(crate) async fn watch_jumps(nudge: Arc<Notify>, mut stop: watch::Receiver<bool>) {
    let mut last = (Instant::now(), SystemTime::now());
    loop {
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let now = (Instant::now(), SystemTime::now());
        let mono = now.0.duration_since(last.0);
        let wall = now.1.duration_since(last.1);
        if let Some(by) = jump(mono, wall) {
            tracing::info!(
                seconds = by,
                "the wall clock moved apart from the monotonic clock (suspend/resume or a clock step); re-checking every token"
            );
            nudge.notify_waiters();
        }
        last = now;
    }
}

/// How far (in seconds, signed) the wall clock moved beyond the monotonic one, if that
/// is more than the tolerance. `wall` is an error when the clock went backwards.
fn jump(mono: Duration, wall: Result<Duration, std::time::SystemTimeError>) -> Option<f64> {
    let wall = match wall {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    };
    let by = wall - mono.as_secs_f64();
    (by.abs() > TOLERANCE.as_secs_f64()).then_some(by)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_drift_is_not_a_jump_but_a_resume_or_step_is() {
        let s = Duration::from_secs;
        assert_eq!(jump(s(1), Ok(Duration::from_millis(1500))), None);
        assert_eq!(jump(s(1), Ok(s(3601))), Some(3600.0));
        let back = SystemTime::UNIX_EPOCH
            .duration_since(SystemTime::UNIX_EPOCH + s(10))
            .map(|_| s(0));
        assert_eq!(jump(s(1), back), Some(-11.0));
    }
}
