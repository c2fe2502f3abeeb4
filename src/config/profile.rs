//! A profile: the file's fields with the environment on top, as a login uses them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use url::Url;

use super::check::warn_if_exposed;
use super::merge::merge;
use super::schema::{FileConfig, ProfileFile, read_toml};
use super::{ConfigError, DEFAULT_PROFILE, Paths, SecretRef, StoreSettings};

/// How the headless browser login runs.
#[derive(Debug, Clone)]
pub struct BrowserSettings {
    /// Chromium/Chrome to run; `None` means discover it (DHAN_LOGIN_CHROME, then PATH).
    pub executable: Option<PathBuf>,
    pub headed: bool,
    pub step_timeout: Duration,
    pub overall_timeout: Duration,
    /// Block images, fonts and media: the login needs none of them.
    pub block_resources: bool,
    /// Block ad, analytics and tag-manager hosts (their frames copy the page's URLs).
    pub block_trackers: bool,
    /// A TOML selector profile overriding the built-in one.
    pub selectors: Option<PathBuf>,
    /// Where failure artifacts go (one sub-folder per failed run).
    pub artifacts_dir: PathBuf,
    /// Extra Chromium switches, written without the leading dashes.
    pub extra_args: Vec<String>,
}

impl BrowserSettings {
    pub fn with_defaults(state_dir: &Path) -> Self {
        BrowserSettings {
            executable: None,
            headed: false,
            step_timeout: Duration::from_secs(15),
            overall_timeout: Duration::from_secs(60),
            block_resources: true,
            block_trackers: true,
            selectors: None,
            artifacts_dir: state_dir.join("artifacts"),
            extra_args: Vec::new(),
        }
    }
}

/// A profile with file and environment merged.
#[derive(Debug)]
pub struct Profile {
    pub name: String,
    pub client_id: Option<String>,
    pub mobile: Option<SecretRef>,
    pub pin: Option<SecretRef>,
    pub totp_secret: Option<SecretRef>,
    pub api_key: Option<SecretRef>,
    pub api_secret: Option<SecretRef>,
    pub redirect_url: Option<Url>,
    /// A command printing the SMS/e-mail OTP, for a login page that asks for one.
    pub otp_command: Option<String>,
    pub auth_base_url: Url,
    pub api_base_url: Url,
    pub margin: chrono::Duration,
    pub consent_cap: u32,
    pub lock_wait: Duration,
    pub browser: BrowserSettings,
    pub state_dir: PathBuf,
    /// Files under `state_dir`, or the database every machine shares.
    pub store: std::sync::Arc<StoreSettings>,
}

impl Profile {
    /// Loads `name` from the file at `paths` and applies the environment on top.
    pub fn load(
        name: &str,
        paths: &Paths,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Profile, ConfigError> {
        let (profile, mut bad) = Self::load_lenient(name, paths, env)?;
        match bad.len() {
            0 => Ok(profile),
            1 => Err(bad.remove(0)),
            _ => Err(ConfigError::Several(bad)),
        }
    }

    /// As `load`, but a bad field falls back to its default and is listed instead of
    /// failing the load, so `config check` can name every bad field at once.
    pub fn load_lenient(
        name: &str,
        paths: &Paths,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(Profile, Vec<ConfigError>), ConfigError> {
        let (file, path) = read_toml::<FileConfig>(paths)?;
        let mut profiles = file.profiles;
        let pf = match profiles.remove(name) {
            Some(p) => p,
            // Without a file (or with an empty one) env vars alone may define the profile.
            None if profiles.is_empty() || name == DEFAULT_PROFILE => ProfileFile::default(),
            None => {
                return Err(ConfigError::UnknownProfile {
                    name: name.to_owned(),
                    path,
                    known: profiles.keys().cloned().collect::<Vec<_>>().join(", "),
                });
            }
        };
        let (mut profile, mut bad) = merge(name, pf, paths, env);
        let (store, store_bad) = StoreSettings::merge(file.store, env);
        profile.store = std::sync::Arc::new(store);
        bad.extend(store_bad);
        warn_if_exposed(&path, &profile);
        Ok((profile, bad))
    }

    /// Every profile name in the file (for `serve --all`).
    pub fn names(paths: &Paths) -> Result<Vec<String>, ConfigError> {
        Ok(read_toml::<FileConfig>(paths)?
            .0
            .profiles
            .into_keys()
            .collect())
    }

    /// The configured secret named `field` (`pin`, `totp_secret`…), if that is one.
    pub fn secret(&self, field: &str) -> Option<&SecretRef> {
        match field {
            "mobile" => self.mobile.as_ref(),
            "pin" => self.pin.as_ref(),
            "totp_secret" => self.totp_secret.as_ref(),
            "api_key" => self.api_key.as_ref(),
            "api_secret" => self.api_secret.as_ref(),
            _ => None,
        }
    }

    /// A hash of the client id and the values of `fields`, to recognise "the same
    /// credentials that were rejected" without storing them. None when one of them is
    /// configured but cannot be read now (a failing command): that is not a change.
    pub async fn secrets_fingerprint(&self, fields: &[impl AsRef<str>]) -> Option<String> {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(b"dhan-login credentials v2\0");
        h.update(self.client_id.as_deref().unwrap_or("").as_bytes());
        for field in fields {
            let field = field.as_ref();
            h.update(b"\0");
            h.update(field.as_bytes());
            h.update(b"=");
            match self.secret(field) {
                Some(s) => match s.load().await {
                    Ok(v) => h.update(v.expose_secret().as_bytes()),
                    Err(_) => return None,
                },
                None => h.update(b"\x01absent"),
            }
        }
        Some(
            h.finalize()
                .iter()
                .take(16)
                .map(|b| format!("{b:02x}"))
                .collect(),
        )
    }

    /// The secret in `field`, or the error naming it and its variable. A command runs on
    /// the runtime (`SecretRef::load`), so that a signal can end it.
    pub async fn require<'a>(
        secret: &'a Option<SecretRef>,
        field: &'static str,
        env: &'static str,
    ) -> Result<&'a SecretString, ConfigError> {
        secret
            .as_ref()
            .ok_or(ConfigError::Missing { field, env })?
            .load()
            .await
    }

    pub fn require_client_id(&self) -> Result<&str, ConfigError> {
        self.client_id.as_deref().ok_or(ConfigError::Missing {
            field: "client_id",
            env: "DHAN_CLIENT_ID",
        })
    }
}
