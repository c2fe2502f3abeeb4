//! The library's error, and the report of a chain that obtained no token (a list of
//! errors, one per source tried).

use crate::api::ApiError;
use crate::config::ConfigError;
use crate::error_class::ErrorClass;
use crate::store::{LockError, StoreError};
use crate::token::{SourceKind, TokenError};
use crate::totp::TotpError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("totp_secret: {0}")]
    Totp(#[from] TotpError),
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("token: {0}")]
    Token(#[from] TokenError),
    #[error(transparent)]
    Store(StoreError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[cfg(feature = "browser")]
    #[error(transparent)]
    Browser(#[from] crate::browser::BrowserError),
    #[error("{0}")]
    Chain(ChainFailure),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The lockout guard: these credentials were rejected before.
    #[error("{0}")]
    Locked(String),
    /// A refusal decided locally (lockout guard, consent budget, manual login aborted).
    #[error("{message}")]
    Refused { class: ErrorClass, message: String },
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
    /// How long Dhan asked us to wait before the next try, if it did.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Error::Api(e) => e.retry_after(),
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
            Error::Locked(_) => ErrorClass::CredentialRejected,
            Error::Refused { class, .. } => *class,
        }
    }
}

/// One source's try, for the final report.
#[derive(Debug)]
pub struct Attempt {
    pub source: SourceKind,
    pub result: AttemptResult,
    pub elapsed: std::time::Duration,
}

#[derive(Debug)]
pub enum AttemptResult {
    NotApplicable(String),
    Failed(Error),
    Fatal(Error),
}

impl Attempt {
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
