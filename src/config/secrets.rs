//! A secret's origin (inline, environment, file or command), read on first use.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use super::paths::expand_home;
use super::{ConfigError, command};

/// How long a `*_command` may take to print its secret (a password manager unlocking).
const SECRET_COMMAND_TIMEOUT: Duration = Duration::from_secs(20);

/// Where a secret comes from. Read at most once per process.
#[derive(Debug)]
pub struct SecretRef {
    field: &'static str,
    origin: Origin,
    value: OnceLock<SecretString>,
}

#[derive(Debug)]
pub(super) enum Origin {
    Inline(SecretString),
    Env(SecretString),
    File(PathBuf),
    Command(String),
}

impl SecretRef {
    pub(super) fn new(field: &'static str, origin: Origin) -> Self {
        SecretRef {
            field,
            origin,
            value: OnceLock::new(),
        }
    }

    pub(super) fn from_env(field: &'static str, value: String) -> Self {
        SecretRef::new(field, Origin::Env(SecretString::from(value)))
    }

    /// The secret, read from its file or command on first use. A command blocks the
    /// calling thread: on the async runtime, `load` first.
    pub fn get(&self) -> Result<&SecretString, ConfigError> {
        if let Some(v) = self.value.get() {
            return Ok(v);
        }
        let v = match &self.origin {
            Origin::Inline(v) | Origin::Env(v) => v.clone(),
            Origin::File(path) => {
                let text = std::fs::read_to_string(expand_home(path)).map_err(|e| {
                    self.error(format!(
                        "cannot read {}_file {}: {e}",
                        self.field,
                        path.display()
                    ))
                })?;
                SecretString::from(text.trim().to_owned())
            }
            Origin::Command(cmd) => SecretString::from(
                command::run_blocking(cmd, SECRET_COMMAND_TIMEOUT)
                    .map_err(|e| self.command_error(e))?,
            ),
        };
        self.keep(v)
    }

    /// `get`, with a command run on the runtime: a SIGTERM or Ctrl-C that drops the login
    /// ends the command's whole process group at once, instead of after the 20 s that a
    /// password manager waiting for a prompt nobody sees would take.
    pub async fn load(&self) -> Result<&SecretString, ConfigError> {
        match &self.origin {
            Origin::Command(cmd) if self.value.get().is_none() => {
                let text = command::run(cmd, SECRET_COMMAND_TIMEOUT)
                    .await
                    .map_err(|e| self.command_error(e))?;
                self.keep(SecretString::from(text))
            }
            _ => self.get(),
        }
    }

    fn keep(&self, v: SecretString) -> Result<&SecretString, ConfigError> {
        if v.expose_secret().is_empty() {
            return Err(self.error("is empty".into()));
        }
        Ok(self.value.get_or_init(|| v))
    }

    fn command_error(&self, e: command::Failure) -> ConfigError {
        self.error(format!("{}_command: {e}", self.field))
    }

    fn error(&self, message: String) -> ConfigError {
        ConfigError::Field {
            field: self.field.to_owned(),
            message,
        }
    }

    pub(super) fn is_inline(&self) -> bool {
        matches!(self.origin, Origin::Inline(_))
    }
}
