//! Profiles from a TOML file, overridden field by field from the environment.
//!
//! Secrets may be inline, in a file (`*_file`) or printed by a command (`*_command`, e.g.
//! a password manager). They are read only when a login needs them, so the cached-token
//! path never runs a password manager.

mod bounded;
mod check;
pub(crate) mod command;
mod document;
mod env;
mod merge;
mod paths;
mod profile;
mod schema;
mod secrets;
mod store;
pub mod validate;

use std::path::PathBuf;

pub use check::{Problem, check_client_ids, check_env};
pub use document::Config;
pub(crate) use env::Overrides;
#[cfg(feature = "serve")]
pub(crate) use env::{Setting, minutes, seconds};
pub use paths::Paths;
pub use profile::{BrowserSettings, Profile, ProfileBuilder};
pub use secrets::SecretRef;
pub use store::{DEFAULT_LEASE, StoreSettings};

/// Dhan's auth host: the login and consent calls and the consent page.
pub(crate) const DEFAULT_AUTH_BASE_URL: &str = "https://auth.dhan.co";
/// Dhan's trading API: RenewToken and profile.
pub(crate) const DEFAULT_API_BASE_URL: &str = "https://api.dhan.co/v2";
/// The profile that may come from the environment alone, without a config file.
pub(crate) const DEFAULT_PROFILE: &str = "default";
/// A cached token is used while it has more than this left (`margin_minutes`).
pub(crate) const DEFAULT_MARGIN: chrono::Duration = chrono::Duration::minutes(30);
/// How long a second process waits for another's login (`lock_wait_secs`).
pub(crate) const DEFAULT_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(120);

/// A configuration that cannot be used. Every variant names what to fix (the file, the
/// field and its environment variable); none holds a secret's value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The config file exists (or was named) but could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The config file.
        path: PathBuf,
        /// Why reading it failed.
        source: std::io::Error,
    },
    /// The config file is not TOML, or holds a key or value this version does not know.
    #[error("config file {path} is not valid: {message}")]
    Parse {
        /// The config file.
        path: PathBuf,
        /// Where (line and column) and what, any quoted value masked: a misplaced PIN
        /// must not be echoed.
        message: String,
    },
    /// The profile asked for is not in the file (and is not `default`).
    #[error("profile `{name}` is not in {path} (profiles there: {known})")]
    UnknownProfile {
        /// The profile asked for.
        name: String,
        /// The config file.
        path: PathBuf,
        /// The profiles the file has, comma-separated.
        known: String,
    },
    /// One setting has a bad value, or a secret could not be read from its file or
    /// command.
    #[error("{field}: {message}")]
    Field {
        /// The setting as the file (`browser.step_timeout_secs`) or the environment
        /// (`DHAN_LOGIN_LEASE_SECS`) names it.
        field: String,
        /// What is wrong, without the value when the field is a secret.
        message: String,
    },
    /// A login needs this setting and neither the profile nor the environment has it.
    #[error("{field} is missing: set it in the profile or with {env}")]
    Missing {
        /// The profile field.
        field: &'static str,
        /// The environment variable that can set it instead.
        env: &'static str,
    },
    /// No home directory to put the default config file and state folder in: set
    /// `DHAN_LOGIN_CONFIG` and `DHAN_LOGIN_STATE_DIR`.
    #[error("cannot find a home directory for the default config and state paths")]
    NoHome,
    /// More than one of the above, all reported at once so one edit can fix them all.
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    Several(Vec<ConfigError>),
}

impl From<validate::Invalid> for ConfigError {
    fn from(e: validate::Invalid) -> Self {
        ConfigError::Field {
            field: e.field.to_owned(),
            message: e.problem.to_string(),
        }
    }
}
