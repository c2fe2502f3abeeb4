//! What `config check` reports: every bad field at once, and warnings about how the
//! configuration is kept.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use secrecy::ExposeSecret;

use super::{ConfigError, Profile, validate};
use crate::secret::Secret;

/// Fails, naming each, when a `DHAN_*` variable holds bytes that are not UTF-8. Such a
/// value used to read as unset: a bad `DHAN_AUTH_BASE_URL` fell back to the real
/// auth.dhan.co, a bad `DHAN_LOGIN_STATE_DIR` to the default folder.
pub fn check_env(vars: impl IntoIterator<Item = (OsString, OsString)>) -> Result<(), ConfigError> {
    let mut bad: Vec<ConfigError> = vars
        .into_iter()
        .filter(|(k, _)| k.as_bytes().starts_with(b"DHAN_"))
        .filter(|(k, v)| k.to_str().is_none() || v.to_str().is_none())
        .map(|(k, _)| ConfigError::Field {
            field: k.to_string_lossy().into_owned(),
            message: "the environment variable's value is not valid UTF-8 (the value is not shown)"
                .into(),
        })
        .collect();
    match bad.len() {
        0 => Ok(()),
        1 => Err(bad.remove(0)),
        _ => Err(ConfigError::Several(bad)),
    }
}

/// Fails, naming both, when two of `profiles` resolve to one client id at one Dhan (in
/// the file, or through a `DHAN_CLIENT_ID` that applies to every profile). Dhan keeps one live token
/// per client: each login of one would end the token the other hands out.
pub fn check_client_ids<'a>(
    profiles: impl IntoIterator<Item = &'a Profile>,
) -> Result<(), ConfigError> {
    // Keyed by Dhan's auth host too: two stand-ins of Dhan are two sets of accounts.
    let mut owner: std::collections::HashMap<(&str, &str), &str> = std::collections::HashMap::new();
    let mut bad = Vec::new();
    for p in profiles {
        let Some(id) = p.client_id.as_deref() else {
            continue;
        };
        let key = (id, p.auth_base_url.as_str());
        if let Some(first) = owner.insert(key, &p.name) {
            owner.insert(key, first);
            bad.push(ConfigError::Field {
                field: "client_id".into(),
                message: format!(
                    "profiles `{first}` and `{}` both resolve to client id {id} (in the config file or through DHAN_CLIENT_ID): Dhan keeps one live token per client, so each login of one would end the token the other hands out. Serve one profile per client id",
                    p.name
                ),
            });
        }
    }
    match bad.len() {
        0 => Ok(()),
        1 => Err(bad.remove(0)),
        _ => Err(ConfigError::Several(bad)),
    }
}

/// A field that `config check` found wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// The profile field (`pin`, `browser.executable`), or `login` when no login path is
    /// configured at all.
    pub field: String,
    /// What is wrong with it; never the value of a secret.
    pub message: String,
}

impl Profile {
    /// Validates every field, reading each secret once, and lists what is wrong.
    pub fn check(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        let mut bad = |field: &str, message: String| {
            problems.push(Problem {
                field: field.to_owned(),
                message,
            })
        };
        match self.client_id.as_deref().map(validate::client_id) {
            None => bad("client_id", "missing (DHAN_CLIENT_ID)".into()),
            Some(Err(e)) => bad("client_id", e.problem.to_string()),
            Some(Ok(())) => {}
        }
        for &which in Secret::ALL {
            let Some(secret) = self.get(which) else {
                continue;
            };
            let field = which.key();
            match secret.get() {
                Err(e) => bad(field, e.to_string()),
                Ok(v) => {
                    if let Err(e) = validate::field(field, v.expose_secret()) {
                        bad(field, e.problem.to_string());
                    }
                }
            }
        }
        let has = |which| self.get(which).is_some();
        let has_totp = has(Secret::Pin) && has(Secret::TotpSecret);
        let has_consent = has(Secret::ApiKey) && has(Secret::ApiSecret);
        if !has_totp && !has_consent {
            bad(
                "login",
                "no way to log in: set pin + totp_secret (PIN+TOTP login) or api_key + api_secret (+ mobile, pin, totp_secret for the browser login)".into(),
            );
        }
        if has(Secret::ApiKey) != has(Secret::ApiSecret) {
            let missing = if !has(Secret::ApiKey) {
                Secret::ApiKey
            } else {
                Secret::ApiSecret
            };
            bad(missing.key(), "api_key and api_secret go together".into());
        }
        if let Some(path) = &self.browser.executable
            && !path.exists()
        {
            bad(
                "browser.executable",
                format!("{} does not exist", path.display()),
            );
        }
        if let Some(path) = &self.browser.selectors
            && !path.exists()
        {
            bad(
                "browser.selectors",
                format!("{} does not exist", path.display()),
            );
        }
        problems
    }
}

/// Inline secrets in a file others can read are one `cat` away from leaking.
pub(super) fn warn_if_exposed(path: &Path, profile: &Profile) {
    use std::os::unix::fs::PermissionsExt;
    let inline = Secret::ALL
        .iter()
        .any(|&s| profile.get(s).is_some_and(|s| s.is_inline()));
    let Ok(meta) = std::fs::metadata(path) else {
        return;
    };
    let mode = meta.permissions().mode();
    if inline && mode & 0o077 != 0 {
        tracing::warn!(
            "{} holds inline secrets and is readable by group/others: run `chmod 600 {}`",
            path.display(),
            path.display()
        );
    }
    // Group-readable is the documented service layout (0640 root:dhan-login); readable
    // by every user is not.
    let store = &profile.store;
    let password = store
        .url
        .as_ref()
        .is_some_and(|u| u.is_inline() && u.get().is_ok_and(|v| holds_password(v.expose_secret())));
    if password && mode & 0o004 != 0 {
        tracing::warn!(
            "{} holds the state database's password and is readable by every user: run `chmod o-r {}`",
            path.display(),
            path.display()
        );
    }
    if let Some(key) = store.key.as_ref().and_then(|k| k.file_path())
        && std::fs::metadata(&key).is_ok_and(|m| m.permissions().mode() & 0o004 != 0)
    {
        tracing::warn!(
            "the store key {} is readable by every user, and opens every stored token: run `chmod 600 {}`",
            key.display(),
            key.display()
        );
    }
}

/// A PostgreSQL URL (`postgres://user:pw@…`) or key=value string (`password=…`) that
/// carries a password.
fn holds_password(url: &str) -> bool {
    url::Url::parse(url).is_ok_and(|u| u.password().is_some()) || url.contains("password=")
}
