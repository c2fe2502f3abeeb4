//! The library's error, and the report of a chain that obtained no token (a list of
//! errors, one per source tried).

// Every error `Error` wraps is also here, so that a program matching its variants finds
// them in one place.
pub use crate::api::ApiError;
#[cfg(feature = "browser")]
pub use crate::browser::BrowserError;
pub use crate::config::ConfigError;
pub use crate::store::{LockError, StoreError};
pub use crate::token::TokenError;
pub use crate::totp::TotpError;

use crate::error_class::ErrorClass;
use crate::token::SourceKind;

/// Everything the library can fail with. [`Error::class`] says what kind of failure it
/// is (and so the CLI's exit code); messages name the setting or file at fault and never
/// hold a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is missing something or holds a bad value.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The configured `totp_secret` cannot make Dhan's codes (its messages name the
    /// field).
    #[error(transparent)]
    Totp(#[from] TotpError),
    /// Dhan answered with an error, or could not be reached.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// A login answered a token that cannot be used (no expiry, not JWT-shaped…).
    #[error("token: {0}")]
    Token(#[from] TokenError),
    /// The shared state could not be read or written.
    #[error(transparent)]
    Store(StoreError),
    /// Another process kept the profile for longer than the wait.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// The headless browser login failed.
    #[cfg(feature = "browser")]
    #[error(transparent)]
    Browser(#[from] BrowserError),
    /// Every source of the chain was tried or skipped and none produced a token.
    #[error("{0}")]
    Chain(ChainFailure),
    /// A local I/O failure.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A refusal decided here, not by Dhan: the lockout guard (credentials Dhan rejected
    /// before, class `CredentialRejected`), the consent budget, a manual login aborted, a
    /// host whose logins are off. Being local, it never records a lockout itself.
    #[error("{message}")]
    Refused {
        /// The class it counts as (`ConsentLimit` for a spent budget…).
        class: ErrorClass,
        /// Why, and what to do about it.
        message: String,
    },
}

/// The store's refusals, I/O failures and lock timeouts become the library's own
/// variants, as callers have always matched them.
impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Refused { class, message } => Error::Refused { class, message },
            StoreError::Io(e) => Error::Io(e),
            StoreError::Lock(e) => Error::Lock(e),
            e => Error::Store(e),
        }
    }
}

impl Error {
    /// How long Dhan asked us to wait before the next try, if it did (or how long its
    /// 2-minute mint window has left, when that refused the try).
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Error::Api(e) => e.retry_after(),
            Error::Store(StoreError::MintWindow(w)) => Some(w.wait),
            Error::Chain(c) => c
                .attempts
                .iter()
                .filter_map(|a| match &a.result {
                    AttemptResult::Failed(e) | AttemptResult::Fatal(e) => e.retry_after(),
                    AttemptResult::NotApplicable(_) => None,
                })
                .max(),
            _ => None,
        }
    }

    /// The class that decides fallback, retries and the CLI's exit code.
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::Config(_) | Error::Totp(_) => ErrorClass::Config,
            Error::Store(e) => e.class(),
            Error::Lock(e) => e.class(),
            Error::Api(e) => e.class(),
            Error::Token(_) => ErrorClass::UnexpectedBody,
            Error::Io(_) => ErrorClass::Other,
            #[cfg(feature = "browser")]
            Error::Browser(e) => e.class(),
            Error::Chain(c) => c.class(),
            Error::Refused { class, .. } => *class,
        }
    }
}

/// One source's try, for the final report.
#[derive(Debug)]
pub struct Attempt {
    /// The source tried.
    pub source: SourceKind,
    /// How it ended.
    pub result: AttemptResult,
    /// How long it took.
    pub elapsed: std::time::Duration,
}

/// How one source's try ended without a token, for the chain's report: the source's
/// `Outcome` less `Obtained`, so this error can never hold a token.
#[derive(Debug)]
pub enum AttemptResult {
    /// The source was skipped, for the reason given (not configured, locked out…).
    NotApplicable(String),
    /// It failed; the chain went on to the next source.
    Failed(Error),
    /// It failed in a way that stops the chain (rejected credentials, consent limit, a
    /// rate limit, bad configuration): another source would resend or spend them, or
    /// could not do better.
    Fatal(Error),
}

impl Attempt {
    /// The class of the failure, or None for a skipped source.
    pub fn class(&self) -> Option<ErrorClass> {
        match &self.result {
            AttemptResult::NotApplicable(_) => None,
            AttemptResult::Failed(e) | AttemptResult::Fatal(e) => Some(e.class()),
        }
    }
}

impl std::fmt::Display for Attempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.result {
            AttemptResult::NotApplicable(why) => write!(f, "{}: skipped ({why})", self.source),
            AttemptResult::Failed(e) => write!(f, "{}: failed: {e}", self.source),
            AttemptResult::Fatal(e) => write!(f, "{}: refused, chain stopped: {e}", self.source),
        }
    }
}

/// Every attempt of a chain that produced no token.
#[derive(Debug)]
pub struct ChainFailure {
    /// The sources in the order they were tried.
    pub attempts: Vec<Attempt>,
}

impl ChainFailure {
    /// The class that decides the exit code: a fatal one if any, else the last failure.
    pub fn class(&self) -> ErrorClass {
        let fatal = self.attempts.iter().find_map(|a| match &a.result {
            AttemptResult::Fatal(e) => Some(e.class()),
            _ => None,
        });
        fatal
            .or_else(|| self.attempts.iter().rev().find_map(Attempt::class))
            .unwrap_or(ErrorClass::Config)
    }
}

impl std::fmt::Display for ChainFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self
            .attempts
            .iter()
            .all(|a| matches!(a.result, AttemptResult::NotApplicable(_)))
        {
            write!(f, "no way to obtain a token is configured:")?;
        } else {
            write!(f, "no token obtained:")?;
        }
        for a in &self.attempts {
            write!(f, "\n  - {a}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_totp_secret_is_named_once() {
        for e in [TotpError::BadSecret, TotpError::TooShort(5)] {
            let text = Error::from(e).to_string();
            assert!(text.starts_with("totp_secret "), "{text}");
            assert_eq!(text.matches("totp_secret").count(), 1, "{text}");
        }
    }
}
