//! The classes every error falls into. They decide fallback, retries and exit codes, and
//! every layer's error type maps onto them, so this module imports nothing of the crate.

use serde::{Deserialize, Serialize};

/// What kind of failure happened. The chain, the daemon and the CLI's exit code all
/// branch on this, never on message text.
///
/// More classes may be added: a `match` needs a wildcard arm, and what it does there
/// should be what it does for `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
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
    /// No live token, and this host never logs in (`login = "never"`).
    LoginsOff,
    /// Anything else (local I/O, browser failures, refusals we do not classify).
    Other,
}

impl ErrorClass {
    /// The snake_case name, as in JSON and the state file (`credential_rejected`…).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Config => "config",
            ErrorClass::CredentialRejected => "credential_rejected",
            ErrorClass::ConsentLimit => "consent_limit",
            ErrorClass::TokenInvalid => "token_invalid",
            ErrorClass::RateLimited => "rate_limited",
            ErrorClass::Transient => "transient",
            ErrorClass::UnexpectedBody => "unexpected_body",
            ErrorClass::LoginsOff => "logins_off",
            ErrorClass::Other => "other",
        }
    }
}

impl ErrorClass {
    /// The CLI's exit code for a failure of this class, as README's "Exit codes" and
    /// `dhan-login --help` document them: 2 configuration, 3 credentials rejected, 4
    /// consent limit, 5 transient (rate limits included), 6 logins off, 1 anything else.
    /// (130, interrupted, is no class: the binary adds it.)
    pub fn exit_code(self) -> u8 {
        match self {
            ErrorClass::Config => 2,
            ErrorClass::CredentialRejected => 3,
            ErrorClass::ConsentLimit => 4,
            ErrorClass::Transient | ErrorClass::RateLimited => 5,
            ErrorClass::LoginsOff => 6,
            ErrorClass::TokenInvalid | ErrorClass::UnexpectedBody | ErrorClass::Other => 1,
        }
    }
}

impl std::fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
