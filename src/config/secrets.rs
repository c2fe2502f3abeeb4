//! A secret's origin (inline, environment, file or command), read on first use.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use super::env::Overrides;
use super::{ConfigError, command};

/// How long a `*_command` may take to print its secret (a password manager unlocking).
const SECRET_COMMAND_TIMEOUT: Duration = Duration::from_secs(20);

/// Where a secret comes from: its value, a file holding it, or a command printing it.
/// Read on first use and at most once per process; Debug never shows the value.
///
/// ```
/// use dhan_login::SecretRef;
/// use secrecy::ExposeSecret;
///
/// let pin = SecretRef::inline("135790");
/// assert_eq!(pin.get().unwrap().expose_secret(), "135790");
/// assert!(!format!("{pin:?}").contains("135790"));
/// let totp = SecretRef::command("printf 'JBSWY3DPEHPK3PXP\\nnotes\\n'");
/// assert_eq!(totp.get().unwrap().expose_secret(), "JBSWY3DPEHPK3PXP");
/// ```
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

    /// The secret itself.
    pub fn inline(value: impl Into<String>) -> Self {
        SecretRef::new("secret", Origin::Inline(SecretString::from(value.into())))
    }

    /// The contents of the file at `path` (`~/` expanded with this process's `HOME`, now),
    /// trimmed, read on first use.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        let path = Overrides(&|k| std::env::var(k).ok()).expand_home(&path.into());
        SecretRef::new("secret", Origin::File(path))
    }

    /// The first line `sh -c command` prints, trimmed, run on first use (a password
    /// manager: `pass show dhan/pin`). Killed if it has not answered within 20 s.
    pub fn command(command: impl Into<String>) -> Self {
        SecretRef::new("secret", Origin::Command(command.into()))
    }

    /// The same origin under the profile field it fills, which its errors then name.
    pub(crate) fn named(mut self, field: &'static str) -> Self {
        self.field = field;
        self
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
                let text = super::bounded::read_to_string(path, super::bounded::SECRET_MAX)
                    .map_err(|e| {
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

    /// The file the secret is read from, for `*_file`.
    pub(super) fn file_path(&self) -> Option<PathBuf> {
        match &self.origin {
            Origin::File(path) => Some(path.clone()),
            _ => None,
        }
    }
}
