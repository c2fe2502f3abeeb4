//! TOTP codes for Dhan's login: RFC 6238, SHA-1, 6 digits, 30 s.
//!
//! Dhan rejects a code that is reused or about to expire, and a rejected code counts
//! towards a lockout, so the generator never hands out the same step twice, waits for a
//! fresh step near the edge, and follows the server's clock when ours is off.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use totp_rs::{Builder, Secret, Totp};

use crate::dhan::TOTP_STEP_SECS;
use crate::sync::lock;
/// A code with less life left than this may expire in flight; wait for the next one.
const MIN_REMAINING_MS: i64 = 5_000;
/// Below this the local clock is trusted: a Date header only has whole seconds.
const SKEW_TOLERANCE_MS: i64 = 2_000;

/// Why a configured `totp_secret` cannot generate Dhan's codes. Every message names the
/// field and none shows the secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TotpError {
    /// Neither base32 nor an `otpauth://` URI.
    #[error(
        "totp_secret is not valid base32 (A-Z, 2-7) nor an otpauth:// URI (the value is not shown)"
    )]
    BadSecret,
    /// The secret decodes to this many bytes, fewer than 10.
    #[error("totp_secret decodes to {0} bytes; at least 10 (80 bits) are needed")]
    TooShort(usize),
    /// The `otpauth://` URI does not parse; the reason never quotes the URI.
    #[error("totp_secret otpauth:// URI could not be read: {0}")]
    BadUri(String),
    /// The URI asks for codes Dhan rejects (another algorithm, length or period), which
    /// would count towards a lockout.
    #[error(
        "totp_secret otpauth:// URI asks for {0}; Dhan's codes are SHA1, 6 digits, 30 s (scan Dhan's own QR code)"
    )]
    Unsupported(String),
}

/// The time source, injectable so tests can stand at a window's edge.
pub trait Clock: Send + Sync {
    /// The current time. Must not block: it is read under a lock.
    fn now(&self) -> DateTime<Utc>;
}

/// The machine's clock ([`Utc::now`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// When and for which step the next code should be generated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Plan {
    step: i64,
    wait: Duration,
}

/// Decides the step to use at server time `now_ms` (Unix ms), given the last step used.
fn plan(now_ms: i64, last_step: Option<i64>) -> Plan {
    let step = now_ms.div_euclid(TOTP_STEP_SECS * 1000);
    let remaining = (step + 1) * TOTP_STEP_SECS * 1000 - now_ms;
    let fresh_enough = remaining >= MIN_REMAINING_MS;
    let unused = last_step.is_none_or(|last| step > last);
    if fresh_enough && unused {
        return Plan {
            step,
            wait: Duration::ZERO,
        };
    }
    // The next step is always unused: steps only move forward.
    let next = step.max(last_step.unwrap_or(step)) + 1;
    let wait_ms = next * TOTP_STEP_SECS * 1000 - now_ms;
    Plan {
        step: next,
        wait: Duration::from_millis(wait_ms.max(0) as u64),
    }
}

struct State {
    last_step: Option<i64>,
    /// Server time minus local time, applied only once it exceeds the tolerance.
    offset_ms: i64,
}

/// Generates the TOTP codes of one login run (or of several sharing it): each 30 s step
/// at most once, never one about to expire, on the server's clock when ours is off.
/// Share one generator (behind an `Arc`) between everything that submits codes for a
/// profile in a process.
pub struct TotpGenerator {
    totp: Totp,
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
}

/// Shows the step bookkeeping only: the secret stays out of every log.
impl std::fmt::Debug for TotpGenerator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("TotpGenerator");
        // try_lock: a Debug call must never wait on (or deadlock with) a code being made.
        if let Ok(st) = self.state.try_lock() {
            d.field("last_step", &st.last_step)
                .field("offset_ms", &st.offset_ms);
        }
        d.finish_non_exhaustive()
    }
}

impl TotpGenerator {
    /// Accepts a base32 secret (spaces, dashes, lower case and padding tolerated, 80-bit
    /// secrets included) or an `otpauth://totp/...` URI.
    pub fn new(secret: &SecretString, clock: Arc<dyn Clock>) -> Result<Self, TotpError> {
        let raw = secret.expose_secret().trim();
        let totp = if raw.starts_with("otpauth://") {
            let totp =
                Totp::from_url_unchecked(raw).map_err(|e| TotpError::BadUri(uri_error(&e)))?;
            dhan_accepts(&totp)?;
            totp
        } else {
            let cleaned: zeroize::Zeroizing<String> = zeroize::Zeroizing::new(
                raw.chars()
                    .filter(|c| !c.is_whitespace() && *c != '-')
                    .map(|c| c.to_ascii_uppercase())
                    .collect(),
            );
            let cleaned = cleaned.trim_end_matches('=');
            let bytes = Secret::try_from_base32(cleaned).map_err(|_| TotpError::BadSecret)?;
            let len = bytes.as_ref().len();
            if len < 10 {
                return Err(TotpError::TooShort(len));
            }
            // build() insists on 128 bits; Dhan's authenticator secrets are often 80.
            Builder::new().with_secret(bytes).build_noncompliant()
        };
        Ok(Self {
            totp,
            clock,
            state: Mutex::new(State {
                last_step: None,
                offset_ms: 0,
            }),
        })
    }

    /// Records the server's clock as read from a response's `Date` header, taken at local
    /// instant `local`. Returns the measured skew when it is large enough to be applied.
    pub fn observe_server_time(
        &self,
        server: DateTime<Utc>,
        local: DateTime<Utc>,
    ) -> Option<chrono::Duration> {
        // The header truncates to the second; compare against the middle of that second.
        let skew_ms = (server.timestamp_millis() + 500) - local.timestamp_millis();
        let mut st = self.lock();
        if skew_ms.abs() > SKEW_TOLERANCE_MS {
            st.offset_ms = skew_ms;
            Some(chrono::Duration::milliseconds(skew_ms))
        } else {
            st.offset_ms = 0;
            None
        }
    }

    /// Continues from a step used by an earlier run, so a code submitted by another
    /// process a moment ago is not submitted again.
    pub fn resume_after(&self, step: Option<i64>) {
        let mut st = self.lock();
        st.last_step = st.last_step.max(step);
    }

    /// The last step handed out, to be remembered across runs.
    pub fn last_step(&self) -> Option<i64> {
        self.lock().last_step
    }

    /// The offset applied to the local clock, if any.
    pub fn applied_skew(&self) -> chrono::Duration {
        chrono::Duration::milliseconds(self.lock().offset_ms)
    }

    /// The code to submit now, waiting first when the current one is used or about to
    /// expire. Each step is handed out once.
    pub async fn next_code(&self) -> SecretString {
        let (plan, code) = self.reserve();
        if !plan.wait.is_zero() {
            tracing::debug!(
                wait_ms = plan.wait.as_millis() as u64,
                "waiting for a fresh TOTP step"
            );
            tokio::time::sleep(plan.wait).await;
        }
        code
    }

    /// Chooses and marks the step at once, so two callers never get the same code.
    fn reserve(&self) -> (Plan, SecretString) {
        let mut st = self.lock();
        let now_ms = self.clock.now().timestamp_millis() + st.offset_ms;
        let plan = plan(now_ms, st.last_step);
        st.last_step = Some(plan.step);
        let code = self.totp.generate((plan.step * TOTP_STEP_SECS) as u64);
        (plan, SecretString::from(code.to_string()))
    }

    /// The code for an arbitrary Unix time, for tests and the stand-in.
    pub fn code_at(&self, unix_secs: u64) -> String {
        self.totp.generate(unix_secs).to_string()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock leaves plain data behind; keep going.
        lock(&self.state)
    }
}

/// Dhan checks codes as RFC 6238's defaults: another algorithm, length or step yields
/// codes it rejects, and each rejection counts towards a lockout.
fn dhan_accepts(totp: &Totp) -> Result<(), TotpError> {
    let mut asks = Vec::new();
    if totp.algorithm() != totp_rs::Algorithm::SHA1 {
        asks.push(format!("{:?}", totp.algorithm()));
    }
    if totp.digits() != 6 {
        asks.push(format!("{} digits", totp.digits()));
    }
    if totp.step() != TOTP_STEP_SECS as u64 {
        asks.push(format!("a {} s period", totp.step()));
    }
    if asks.is_empty() {
        Ok(())
    } else {
        Err(TotpError::Unsupported(asks.join(", ")))
    }
}

/// Describes a URI error without echoing the URI, which holds the secret.
fn uri_error(e: &totp_rs::TotpError) -> String {
    let text = e.to_string();
    if text.contains("secret=") {
        "malformed URI".to_owned()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    struct Fixed(DateTime<Utc>);
    impl Clock for Fixed {
        fn now(&self) -> DateTime<Utc> {
            self.0
        }
    }

    fn at(ms: i64) -> Arc<dyn Clock> {
        Arc::new(Fixed(Utc.timestamp_millis_opt(ms).unwrap()))
    }

    // RFC 6238 appendix B, SHA-1 seed "12345678901234567890", truncated to 6 digits.
    const RFC_SEED_B32: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

    #[test]
    fn rfc6238_vectors() {
        let g = TotpGenerator::new(&RFC_SEED_B32.into(), Arc::new(SystemClock)).unwrap();
        for (t, code) in [
            (59u64, "287082"),
            (1111111109, "081804"),
            (1111111111, "050471"),
            (1234567890, "005924"),
            (2000000000, "279037"),
            (20000000000, "353130"),
        ] {
            assert_eq!(g.code_at(t), code, "t={t}");
        }
    }

    #[test]
    fn eighty_bit_secret_and_otpauth_uri_work() {
        let short = TotpGenerator::new(&"JBSWY3DPEHPK3PXP".into(), Arc::new(SystemClock));
        assert!(short.is_ok());
        let uri = format!("otpauth://totp/Dhan:1000000001?secret={RFC_SEED_B32}&issuer=Dhan");
        let g = TotpGenerator::new(&uri.as_str().into(), Arc::new(SystemClock)).unwrap();
        assert_eq!(g.code_at(59), "287082");
    }

    #[test]
    fn otpauth_parameters_dhan_cannot_accept_are_refused() {
        for (extra, named) in [
            ("&algorithm=SHA256", "SHA256"),
            ("&digits=8", "8 digits"),
            ("&period=60", "60 s period"),
        ] {
            let uri = format!("otpauth://totp/Dhan:1?secret={RFC_SEED_B32}&issuer=Dhan{extra}");
            let e = TotpGenerator::new(&uri.as_str().into(), Arc::new(SystemClock)).err();
            let Some(TotpError::Unsupported(what)) = e else {
                panic!("{extra}: {e:?}")
            };
            assert!(what.contains(named), "{what}");
            assert!(!what.contains(RFC_SEED_B32));
        }
        let ok = format!(
            "otpauth://totp/Dhan:1?secret={RFC_SEED_B32}&algorithm=SHA1&digits=6&period=30"
        );
        assert!(TotpGenerator::new(&ok.as_str().into(), Arc::new(SystemClock)).is_ok());
    }

    #[test]
    fn bad_secrets_are_named_without_their_value() {
        let e = TotpGenerator::new(&"not base32 !!".into(), Arc::new(SystemClock)).err();
        assert!(matches!(e, Some(TotpError::BadSecret)));
        let e = TotpGenerator::new(&"JBSWY3DP".into(), Arc::new(SystemClock)).err();
        assert!(matches!(e, Some(TotpError::TooShort(5))));
    }

    #[test]
    fn debug_never_shows_the_secret_or_a_code() {
        let g = TotpGenerator::new(&RFC_SEED_B32.into(), at(30_000 * 10 + 1_000)).unwrap();
        g.resume_after(Some(9));
        let shown = format!("{g:?}");
        assert!(shown.contains("last_step: Some(9)"), "{shown}");
        for hidden in [RFC_SEED_B32, "12345678901234567890", &g.code_at(300)] {
            assert!(!shown.contains(hidden), "{shown}");
        }
    }

    #[test]
    fn plan_uses_current_step_when_fresh() {
        assert_eq!(
            plan(30_000 * 10 + 1_000, None),
            Plan {
                step: 10,
                wait: Duration::ZERO
            }
        );
    }

    #[test]
    fn plan_waits_at_the_window_edge() {
        // 4 s left in step 10: wait 4 s for step 11.
        let p = plan(30_000 * 11 - 4_000, None);
        assert_eq!(p.step, 11);
        assert_eq!(p.wait, Duration::from_secs(4));
        // exactly 5 s left is still fine
        assert_eq!(plan(30_000 * 11 - 5_000, None).wait, Duration::ZERO);
    }

    #[test]
    fn plan_never_reuses_a_step() {
        let p = plan(30_000 * 10 + 1_000, Some(10));
        assert_eq!(p.step, 11);
        assert_eq!(p.wait, Duration::from_secs(29));
    }

    #[tokio::test(start_paused = true)]
    async fn generator_hands_out_each_step_once() {
        let g = TotpGenerator::new(&RFC_SEED_B32.into(), at(30_000 * 10 + 1_000)).unwrap();
        let first = g.next_code().await;
        let second = g.next_code().await;
        assert_eq!(first.expose_secret(), g.code_at(300));
        assert_eq!(second.expose_secret(), g.code_at(330));
    }

    #[tokio::test(start_paused = true)]
    async fn skew_over_two_seconds_moves_codes_to_server_time() {
        let local = Utc.timestamp_millis_opt(30_000 * 10 + 1_000).unwrap();
        let g = TotpGenerator::new(&RFC_SEED_B32.into(), at(local.timestamp_millis())).unwrap();
        // Server is 40 s ahead: its current step is 11.
        let server = local + chrono::Duration::seconds(40);
        let skew = g.observe_server_time(server, local).unwrap();
        assert!((skew.num_milliseconds() - 40_500).abs() < 1_000);
        assert_eq!(g.next_code().await.expose_secret(), g.code_at(330));
        // A skew inside the tolerance is ignored.
        assert!(g.observe_server_time(local, local).is_none());
        assert_eq!(g.applied_skew(), chrono::Duration::zero());
    }
}
