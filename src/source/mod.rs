//! Token sources and the chain that tries them, cheapest first.
//!
//! Each source answers one of three ways: it does not apply (not configured), it failed
//! (worth trying the next source), or it is fatal (the account said no: stop at once,
//! since retrying a rejected credential through another path is how accounts get locked).

#[cfg(feature = "browser")]
mod browser;
#[cfg(feature = "browser")]
pub use browser::Inspection;
#[cfg(feature = "browser")]
pub(crate) use browser::inspect;
mod consent;
mod context;
mod exchange;
mod manual;
mod needs;
#[cfg(feature = "browser")]
mod otp;
mod renew;
mod totp;

use std::time::Instant;

pub use context::{BoxFuture, Context, Outcome, TokenSource};
pub use needs::{Missing, needs, sends, uses_otp_command};

use crate::error::{Attempt, AttemptResult, ChainFailure, Error};
use crate::secret::Secret;
use crate::sync::lock;
use crate::token::{SourceKind, Token};

#[cfg(feature = "browser")]
use browser::BrowserSource;
use manual::ManualSource;
use renew::RenewSource;
use totp::TotpSource;

/// Tries sources in order; the first token wins, a fatal answer stops the chain.
pub async fn run_chain(
    sources: &[Box<dyn TokenSource>],
    cx: &Context<'_>,
) -> Result<(Token, Vec<Attempt>), ChainFailure> {
    let mut attempts = Vec::new();
    for source in sources {
        let kind = source.kind();
        *lock(&cx.running) = Some(kind);
        let started = Instant::now();
        let outcome = source.obtain(cx).await;
        let elapsed = started.elapsed();
        let result = match outcome {
            Outcome::Obtained(token) => {
                tracing::info!(source = %kind, ms = elapsed.as_millis() as u64, "token obtained");
                return Ok((token, attempts));
            }
            Outcome::NotApplicable(why) => {
                tracing::debug!(source = %kind, %why, "source does not apply");
                AttemptResult::NotApplicable(why)
            }
            Outcome::Failed(e) => {
                tracing::warn!(source = %kind, error = %e, "source failed; trying the next");
                AttemptResult::Failed(e)
            }
            Outcome::Fatal(e) => {
                // The caller gets this error in the chain's report: logging it as an error
                // too would print it twice.
                tracing::info!(source = %kind, error = %e, "source refused; stopping");
                attempts.push(Attempt {
                    source: kind,
                    result: AttemptResult::Fatal(e),
                    elapsed,
                });
                return Err(ChainFailure { attempts });
            }
        };
        attempts.push(Attempt {
            source: kind,
            result,
            elapsed,
        });
    }
    Err(ChainFailure { attempts })
}

/// The chain in its standard order, or a single source for `login --via`.
pub(crate) fn sources(only: Option<SourceKind>) -> Vec<Box<dyn TokenSource>> {
    let all: Vec<Box<dyn TokenSource>> = vec![
        Box::new(RenewSource),
        Box::new(TotpSource),
        #[cfg(feature = "browser")]
        Box::new(BrowserSource),
        Box::new(ManualSource),
    ];
    match only {
        None => all,
        Some(kind) => all.into_iter().filter(|s| s.kind() == kind).collect(),
    }
}

/// The secrets Dhan rejected with `e`, which a source of `kind` returned: those of the
/// endpoint that said no, else all the source sends.
pub(crate) fn rejected_secrets(kind: SourceKind, e: &Error) -> &'static [Secret] {
    match e {
        Error::Api(a) => match a.endpoint() {
            "generateAccessToken" => &[Secret::Pin, Secret::TotpSecret],
            "generate-consent" | "consumeApp-consent" => &[Secret::ApiKey, Secret::ApiSecret],
            _ => sends(kind),
        },
        // A code sent by SMS or e-mail is good for one login: its rejection says nothing
        // of the stored secrets (it used to lock the mobile, PIN and TOTP secret, and
        // fingerprint the right PIN). What printed it may be at fault: `rejected_code`.
        e if rejected_code(e) => &[],
        // The login page: the mobile, the PIN or the code.
        #[cfg(feature = "browser")]
        Error::Browser(_) => &[Secret::Mobile, Secret::Pin, Secret::TotpSecret],
        _ => sends(kind),
    }
}

/// True when Dhan rejected the SMS/e-mail code typed at the login page: with an
/// `otp_command` configured it printed that code, and is what gets locked
/// ([`crate::store::OTP_COMMAND`]); a code a person typed locks nothing.
#[cfg(feature = "browser")]
pub(crate) fn rejected_code(e: &Error) -> bool {
    matches!(
        e,
        Error::Browser(crate::browser::BrowserError::Rejected {
            step: crate::browser::Step::Otp,
            ..
        })
    )
}

/// Without the browser no login page asks for a code.
#[cfg(not(feature = "browser"))]
pub(crate) fn rejected_code(_: &Error) -> bool {
    false
}

#[cfg(all(test, feature = "browser"))]
mod rejection_tests {
    use super::*;
    use crate::browser::{Artifacts, BrowserError, Step};

    fn rejected_at(step: Step) -> Error {
        Error::Browser(BrowserError::Rejected {
            step,
            message: "Invalid code".into(),
            artifacts: Artifacts::None,
        })
    }

    #[test]
    fn a_rejected_sms_code_locks_none_of_the_stored_secrets() {
        assert!(rejected_secrets(SourceKind::Browser, &rejected_at(Step::Otp)).is_empty());
        assert_eq!(
            rejected_secrets(SourceKind::Browser, &rejected_at(Step::Pin)),
            [Secret::Mobile, Secret::Pin, Secret::TotpSecret]
        );
    }
}
