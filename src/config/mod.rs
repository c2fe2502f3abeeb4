//! Profiles from a TOML file, overridden field by field from the environment.
//!
//! Secrets may be inline, in a file (`*_file`) or printed by a command (`*_command`, e.g.
//! a password manager). They are read only when a login needs them, so the cached-token
//! path never runs a password manager.

mod check;
pub(crate) mod command;
mod env;
mod merge;
mod paths;
mod profile;
mod schema;
mod secrets;
mod store;
pub mod validate;

use std::path::PathBuf;

pub use check::{Problem, check_env};
pub(crate) use env::{Overrides, Setting, minutes, seconds};
pub use paths::Paths;
pub(crate) use paths::expand_home;
pub use profile::{BrowserSettings, Profile, ProfileBuilder};
pub(crate) use schema::read_toml;
pub use secrets::SecretRef;
pub use store::{DEFAULT_LEASE, StoreSettings};

pub const DEFAULT_AUTH_BASE_URL: &str = "https://auth.dhan.co";
pub const DEFAULT_API_BASE_URL: &str = "https://api.dhan.co/v2";
pub const DEFAULT_PROFILE: &str = "default";
/// A cached token is used while it has more than this left (`margin_minutes`).
pub(crate) const DEFAULT_MARGIN: chrono::Duration = chrono::Duration::minutes(30);
/// How long a second process waits for another's login (`lock_wait_secs`).
pub(crate) const DEFAULT_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(120);

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("profile `{name}` is not in {path} (profiles there: {known})")]
    UnknownProfile {
        name: String,
        path: PathBuf,
        known: String,
    },
    #[error("{field}: {message}")]
    Field { field: String, message: String },
    #[error("{field} is missing: set it in the profile or with {env}")]
    Missing {
        field: &'static str,
        env: &'static str,
    },
    #[error("cannot find a home directory for the default config and state paths")]
    NoHome,
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
