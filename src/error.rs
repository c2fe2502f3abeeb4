//! The library's error and the classes that decide fallback, retries and exit codes.

use serde::{Deserialize, Serialize};

use crate::api::ApiError;
use crate::config::ConfigError;
use crate::source::{AttemptResult, ChainFailure};
use crate::store::{LockError, StoreError};
use crate::token::TokenError;
use crate::totp::TotpError;

/// What kind of failure happened. The chain, the daemon and the CLI's exit code all
/// branch on this, never on message text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// Bad or missing configuration: fix the config, nothing else helps.
    Config,
    /// Dhan (or its login page) said the PIN, TOTP, mobile or API secret is wrong.
    CredentialRejected,
    /// The daily consent limit is used up.
    ConsentLimit,
    /// DH-901: the access token is invalid or expired.
    TokenInvalid,
    /// DH-904: too many requests.
    RateLimited,
    /// Timeouts, connection failures, 5xx: worth another try later.
    Transient,
    /// Dhan answered something we cannot read.
    UnexpectedBody,
    /// Anything else (local I/O, browser failures, refusals we do not classify).
    Other,
}

impl ErrorClass {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Config => "config",
            ErrorClass::CredentialRejected => "credential_rejected",
            ErrorClass::ConsentLimit => "consent_limit",
            ErrorClass::TokenInvalid => "token_invalid",
            ErrorClass::RateLimited => "rate_limited",
            ErrorClass::Transient => "transient",
            ErrorClass::UnexpectedBody => "unexpected_body",
            ErrorClass::Other => "other",
        }
    }
}

impl std::fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

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
    Store(#[from] StoreError),
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
            Error::Config(_)
            | Error::Totp(_)
            | Error::Store(StoreError::BadProfileName(_) | StoreError::SchemaTooNew { .. }) => {
                ErrorClass::Config
            }
            // The database is down or restarting, or another machine took the profile
            // over: worth trying again shortly.
            Error::Store(StoreError::Database { .. } | StoreError::Fenced { .. }) => {
                ErrorClass::Transient
            }
            Error::Api(e) => e.class(),
            Error::Token(_) => ErrorClass::UnexpectedBody,
            // Another process is still logging in: worth trying again shortly.
            Error::Lock(LockError::Timeout { .. } | LockError::Leased { .. }) => {
                ErrorClass::Transient
            }
            Error::Store(_) | Error::Lock(_) | Error::Io(_) => ErrorClass::Other,
            #[cfg(feature = "browser")]
            Error::Browser(e) => e.class(),
            Error::Chain(c) => c.class(),
            Error::Locked(_) => ErrorClass::CredentialRejected,
            Error::Refused { class, .. } => *class,
        }
    }
}
