//! dhan-login: obtains and keeps a DhanHQ API access token without a human in the loop.
//!
//! The cheapest path wins: a cached token, then RenewToken, then PIN + TOTP, then a
//! headless browser on the consent page, then a manual login. See `TokenManager`.

mod api;
#[cfg(feature = "browser")]
mod browser;
mod config;
mod console;
mod error;
mod error_class;
mod manager;
pub mod mock;
mod progress;
mod redact;
mod serve;
mod source;
mod store;
mod token;
mod totp;

pub use api::{ApiError, DhanApi, Grant, ProfileInfo};
pub use config::{
    BrowserSettings, ConfigError, DEFAULT_LEASE, Paths, Problem, Profile, ProfileBuilder,
    SecretRef, StoreSettings, check_env, validate,
};
pub use console::{Console, ConsoleFuture};
pub use error::{Attempt, AttemptResult, ChainFailure, Error};
pub use error_class::ErrorClass;
pub use manager::{Obtained, Request, TokenManager, TokenManagerBuilder};
pub use progress::{NoProgress, Progress};
pub use redact::Scrubber;
pub use serve::{Daemon, Env as ServeEnv, NotifySettings, ServeSettings, ask_daemon};
pub use source::{BoxFuture, Context, Outcome, TokenSource, run_chain, sends};
pub use store::{
    ConsentLedger, FileBackend, LastError, Lease, Ledger, LedgerDay, LegacyLockout, LockError,
    Lockout, LockoutStore, Lockouts, Ownership, PendingConsent, PgBackend, ProfileLock,
    ProfileState, StateBackend, StoreError, TokenStore, next_ist_midnight, write_atomic,
};
pub use token::{AccessToken, SourceKind, Token, TokenJson, TokenKind, parse_ist};
pub use totp::{Clock, SystemClock, TotpError, TotpGenerator};

// browser re-exports
#[cfg(feature = "browser")]
pub use browser::{
    Artifacts, BrowserError, ConsentLogin, Limit, OtpSource, PageReport, SelectorProfile, Step,
    become_subreaper, capture_token_id, find_browser, inspect_consent_page,
};
#[cfg(feature = "browser")]
pub use source::Inspection;
