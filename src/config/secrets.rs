//! A secret's origin (inline, environment, file or command), read on first use.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use super::ConfigError;
use super::paths::expand_home;

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

    /// The secret, read from its file or command on first use.
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
            Origin::Command(cmd) => SecretString::from(self.run(cmd)?),
        };
        if v.expose_secret().is_empty() {
            return Err(self.error("is empty".into()));
        }
        Ok(self.value.get_or_init(|| v))
    }

    /// Runs a `*_command` in a process group of its own, killed whole if it outlives
    /// `SECRET_COMMAND_TIMEOUT`: a password manager waiting for a prompt nobody sees must
    /// not hang a login (or a daemon) for ever.
    fn run(&self, cmd: &str) -> Result<String, ConfigError> {
        use std::io::Read;
        use std::os::unix::process::CommandExt;
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .process_group(0)
            .spawn()
            .map_err(|e| self.error(format!("cannot run {}_command: {e}", self.field)))?;
        let mut pipe = child.stdout.take();
        // Read on the side, so a chatty command cannot block on a full pipe.
        let reader = std::thread::spawn(move || {
            let mut out = Vec::new();
            if let Some(p) = pipe.as_mut() {
                let _ = p.take(64 * 1024).read_to_end(&mut out);
            }
            out
        });
        let started = std::time::Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if started.elapsed() < SECRET_COMMAND_TIMEOUT => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                other => {
                    // SAFETY: signals the command's own process group, made above.
                    unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
                    let _ = child.wait();
                    let why = match other {
                        Err(e) => format!("cannot wait for it: {e}"),
                        _ => format!(
                            "no answer within {} s; killed",
                            SECRET_COMMAND_TIMEOUT.as_secs()
                        ),
                    };
                    return Err(self.error(format!("{}_command: {why}", self.field)));
                }
            }
        };
        let stdout = reader.join().unwrap_or_default();
        if !status.success() {
            return Err(self.error(format!("{}_command failed ({status})", self.field)));
        }
        // Only the first line: password managers often print notes after it.
        let text = String::from_utf8(stdout)
            .map_err(|_| self.error(format!("{}_command printed non-UTF-8", self.field)))?;
        Ok(text.lines().next().unwrap_or("").trim().to_owned())
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
