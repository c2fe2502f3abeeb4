//! The config file as written: its tables and fields, and parse errors that never quote
//! a secret.

use std::collections::BTreeMap;
use std::path::PathBuf;

use secrecy::SecretString;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::store::StoreFile;
use super::{ConfigError, Paths};
use crate::secret::Secret;

/// One profile as written in the file. Every field is optional: the environment may
/// supply it, and what a login path needs is checked when that path is taken. Inline
/// secrets are `SecretString` from the parse on: Debug shows them redacted.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ProfileFile {
    pub(super) client_id: Option<String>,
    pub(super) mobile: Option<SecretString>,
    pub(super) mobile_file: Option<PathBuf>,
    pub(super) mobile_command: Option<String>,
    pub(super) pin: Option<SecretString>,
    pub(super) pin_file: Option<PathBuf>,
    pub(super) pin_command: Option<String>,
    pub(super) totp_secret: Option<SecretString>,
    pub(super) totp_secret_file: Option<PathBuf>,
    pub(super) totp_secret_command: Option<String>,
    pub(super) api_key: Option<SecretString>,
    pub(super) api_key_file: Option<PathBuf>,
    pub(super) api_key_command: Option<String>,
    pub(super) api_secret: Option<SecretString>,
    pub(super) api_secret_file: Option<PathBuf>,
    pub(super) api_secret_command: Option<String>,
    pub(super) redirect_url: Option<String>,
    /// Prints the code Dhan sent by SMS or e-mail, for accounts whose login page asks for
    /// one (no TOTP); run only when that screen is shown.
    pub(super) otp_command: Option<String>,
    pub(super) auth_base_url: Option<String>,
    pub(super) api_base_url: Option<String>,
    /// A cached token is used while it has more than this left.
    pub(super) margin_minutes: Option<f64>,
    /// generate-consent calls allowed per IST day (at most Dhan's 25).
    pub(super) consent_cap: Option<u32>,
    /// How long a second process waits for another's login before giving up.
    pub(super) lock_wait_secs: Option<f64>,
    /// The daily login time, `HH:MM` in IST.
    pub(super) login_at: Option<String>,
    /// `"never"` on a host that must only read tokens made elsewhere.
    pub(super) login: Option<String>,
    #[serde(default)]
    pub(super) browser: BrowserFile,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BrowserFile {
    pub(super) executable: Option<PathBuf>,
    pub(super) headed: Option<bool>,
    pub(super) step_timeout_secs: Option<f64>,
    pub(super) overall_timeout_secs: Option<f64>,
    pub(super) block_resources: Option<bool>,
    pub(super) block_trackers: Option<bool>,
    pub(super) selectors: Option<PathBuf>,
    pub(super) artifacts_dir: Option<PathBuf>,
    #[serde(default)]
    pub(super) extra_args: Vec<String>,
    pub(super) single_process: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileConfig {
    #[serde(default)]
    pub(super) profiles: BTreeMap<String, ProfileFile>,
    /// The daemon's tables (`dhan-login serve`), as written: the daemon and its client
    /// project them with the environment on top; a profile does not depend on them.
    #[serde(default)]
    pub(super) serve: ServeFile,
    #[cfg_attr(not(feature = "serve"), allow(dead_code))]
    #[serde(default)]
    pub(super) notify: NotifyFile,
    /// Shared state for several machines (PostgreSQL); files when absent.
    #[serde(default)]
    pub(super) store: StoreFile,
}

/// The `[serve]` table as written. Parsed in every build, so that a typo fails every
/// command; only the daemon (feature `serve`) reads most of it.
#[cfg_attr(not(feature = "serve"), allow(dead_code))]
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ServeFile {
    pub(crate) listen: Option<String>,
    pub(crate) allow_remote: Option<bool>,
    pub(crate) socket: Option<PathBuf>,
    pub(crate) key_file: Option<PathBuf>,
    pub(crate) token_file: Option<String>,
    pub(crate) env_file: Option<String>,
    pub(crate) refresh_ahead_minutes: Option<f64>,
    pub(crate) jitter_minutes: Option<f64>,
    pub(crate) retry_min_secs: Option<f64>,
    pub(crate) retry_max_secs: Option<f64>,
}

/// The `[notify]` table as written (parsed in every build, read by the daemon).
#[cfg_attr(not(feature = "serve"), allow(dead_code))]
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NotifyFile {
    pub(crate) webhook: Option<String>,
    pub(crate) warn_before_minutes: Option<f64>,
}

impl ProfileFile {
    /// The inline value, `*_file` and `*_command` of `which`, taken out. Its three
    /// fields are the file's spelling of [`Secret::key`]: `pin`, `pin_file`, `pin_command`.
    pub(super) fn take_secret(
        &mut self,
        which: Secret,
    ) -> (Option<SecretString>, Option<PathBuf>, Option<String>) {
        let (inline, file, command) = match which {
            Secret::Mobile => (
                &mut self.mobile,
                &mut self.mobile_file,
                &mut self.mobile_command,
            ),
            Secret::Pin => (&mut self.pin, &mut self.pin_file, &mut self.pin_command),
            Secret::TotpSecret => (
                &mut self.totp_secret,
                &mut self.totp_secret_file,
                &mut self.totp_secret_command,
            ),
            Secret::ApiKey => (
                &mut self.api_key,
                &mut self.api_key_file,
                &mut self.api_key_command,
            ),
            Secret::ApiSecret => (
                &mut self.api_secret,
                &mut self.api_secret_file,
                &mut self.api_secret_command,
            ),
            #[cfg(test)]
            Secret::Fake => return (None, None, None),
        };
        (inline.take(), file.take(), command.take())
    }
}

/// Reads the config file as `T`. A missing file reads as `T::default()` unless the user
/// named it.
pub(super) fn read_toml<T: DeserializeOwned + Default>(
    paths: &Paths,
) -> Result<(T, PathBuf), ConfigError> {
    let path = paths.config_file.clone();
    let text = match super::bounded::read_to_string(&path, super::bounded::CONFIG_MAX) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !paths.config_explicit => {
            return Ok((T::default(), path));
        }
        Err(source) => return Err(ConfigError::Read { path, source }),
    };
    let file = toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.clone(),
        message: describe_toml_error(&e, &text),
    })?;
    Ok((file, path))
}

/// toml's own Display quotes the offending line, which may hold a PIN or a secret:
/// name the place and the problem instead, with any quoted value masked.
fn describe_toml_error(e: &toml::de::Error, text: &str) -> String {
    let mut message = e.message().trim().to_owned();
    // "unknown field `x`, expected one of …" quotes a key: worth showing when it is a
    // misspelt field name, but a secret pasted as a key (`135790 = …`) must not be. An
    // "invalid type: integer `135790`" or "invalid value" quotes the value.
    let names_a_key = message.starts_with("unknown field") || message.starts_with("missing field");
    if !names_a_key {
        message = mask_backticked(&message);
    } else if !first_backticked(&message).is_some_and(looks_like_a_field_name) {
        message = mask_first_backticked(&message);
    }
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message,
    }
}

/// Field names are lower-case words: a key with digits or capitals may be a PIN or a
/// base32 secret typed in the wrong place.
fn looks_like_a_field_name(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 40
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || matches!(b, b'_' | b'-' | b'.'))
}

fn first_backticked(s: &str) -> Option<&str> {
    let start = s.find('`')? + 1;
    let len = s[start..].find('`')?;
    Some(&s[start..start + len])
}

fn mask_first_backticked(s: &str) -> String {
    match first_backticked(s) {
        Some(key) => s.replacen(&format!("`{key}`"), "`****`", 1),
        None => s.to_owned(),
    }
}

fn mask_backticked(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut inside = false;
    for c in s.chars() {
        if c == '`' {
            if inside {
                out.push_str("****`");
            } else {
                out.push('`');
            }
            inside = !inside;
        } else if !inside {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_of_a_parsed_profile_shows_no_secret() {
        let file: FileConfig = toml::from_str(
            "[profiles.p]\nclient_id = \"1100000042\"\nmobile = \"9876543210\"\npin = \"135790\"\n\
             totp_secret = \"JBSWY3DPEHPK3PXP\"\napi_key = \"key-abc\"\napi_secret = \"sec-xyz\"\n\
             [store]\nurl = \"postgres://u:hunter2@db/x\"\n",
        )
        .unwrap();
        let shown = format!("{file:?}");
        assert!(shown.contains("1100000042"), "{shown}");
        for secret in [
            "9876543210",
            "135790",
            "JBSWY3DPEHPK3PXP",
            "key-abc",
            "sec-xyz",
            "hunter2",
        ] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
    }
}
