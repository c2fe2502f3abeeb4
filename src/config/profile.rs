//! A profile: the file's fields with the environment on top, as a login uses them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;
use url::Url;

use super::{
    ConfigError, DEFAULT_API_BASE_URL, DEFAULT_AUTH_BASE_URL, DEFAULT_LOCK_WAIT, DEFAULT_MARGIN,
    SecretRef, StoreSettings,
};
use crate::decide::{IstTime, Logins, Rules};
use crate::dhan::DHAN_CONSENT_LIMIT;
use crate::secret::Secret;

/// How the headless browser login runs. Start from [`BrowserSettings::with_defaults`] and
/// set fields: more may come, so a struct literal cannot be written outside the crate.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BrowserSettings {
    /// Chromium/Chrome to run; `None` means discover it (DHAN_LOGIN_CHROME, then PATH).
    pub executable: Option<PathBuf>,
    /// Show the browser window (`--headed`), to watch a login; needs a display and a full
    /// Chromium rather than the headless shell.
    pub headed: bool,
    /// The longest one screen of the login may take to appear or answer (default 15 s).
    pub step_timeout: Duration,
    /// The longest the whole browser login may take, launch included (default 60 s).
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
    /// Run Chromium as one process (`--single-process`). `None` decides by itself: on for
    /// a headless login as root, where Chromium's sandbox is off anyway and the separate
    /// page process isolates nothing; off otherwise. `Some(true)` as another user turns
    /// the sandbox off too.
    pub single_process: Option<bool>,
}

impl BrowserSettings {
    /// The defaults a profile gets: headless, discovered browser, 15 s per step, 60 s in
    /// all, resources and trackers blocked, artifacts in `state_dir/artifacts`.
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
            single_process: None,
        }
    }
}

/// One origin, or none, per secret of [`Secret::ALL`].
type Secrets = [Option<SecretRef>; Secret::ALL.len()];

/// Everything one login needs to know about one Dhan account: who it is, where each
/// secret comes from, where Dhan is and where the state is kept. Read from the config
/// file with the environment on top ([`Profile::load`]) or made in code
/// ([`Profile::builder`]). Debug never shows a secret's value.
#[derive(Debug)]
pub struct Profile {
    /// The profile's name in the config file; it also names its state (token file, lock,
    /// lockouts).
    pub name: String,
    /// The numeric Dhan client id.
    pub client_id: Option<String>,
    /// Where each secret comes from, by [`Secret::index`]: [`Profile::get`] reads it.
    pub(super) secrets: Secrets,
    /// The redirect URL registered for the app; a loopback one lets the manual login
    /// catch the redirect itself.
    pub redirect_url: Option<Url>,
    /// A command printing the SMS/e-mail OTP, for a login page that asks for one.
    pub otp_command: Option<String>,
    /// Dhan's auth host (`https://auth.dhan.co`), or a stand-in's.
    pub auth_base_url: Url,
    /// Dhan's API (`https://api.dhan.co/v2`), or a stand-in's.
    pub api_base_url: Url,
    /// A cached token is used while it has more than this left (default 30 minutes).
    pub margin: chrono::Duration,
    /// generate-consent calls allowed per IST day, 1 to Dhan's limit of 25.
    pub consent_cap: u32,
    /// How long to wait for another process's login to this profile (default 120 s).
    pub lock_wait: Duration,
    /// The daily login time (IST): a token obtained before its latest occurrence is
    /// replaced once, and a live one is never replaced between two of them.
    pub login_at: Option<IstTime>,
    /// Whether this host may obtain tokens itself, or only use live ones made elsewhere.
    pub logins: Logins,
    /// The least time between two generateAccessToken attempts for the client id, by any
    /// process (default and least against Dhan: 125 s). Shorter only for a stand-in on a
    /// loopback address (`DHAN_LOGIN_MINT_INTERVAL_SECS`, for tests).
    pub mint_interval: Duration,
    /// How the headless browser login runs.
    pub browser: BrowserSettings,
    /// The folder holding this profile's state when it is kept in files.
    pub state_dir: PathBuf,
    /// Files under `state_dir`, or the database every machine shares.
    pub store: std::sync::Arc<StoreSettings>,
}

/// A profile made in code rather than read from the config file: `Profile::builder`.
#[derive(Debug)]
#[must_use]
pub struct ProfileBuilder {
    profile: Profile,
}

impl ProfileBuilder {
    /// The Dhan client id (digits).
    pub fn client_id(mut self, id: impl Into<String>) -> Self {
        self.profile.client_id = Some(id.into());
        self
    }

    /// Where the secret `which` comes from.
    pub fn secret(mut self, which: Secret, secret: SecretRef) -> Self {
        self.profile.set(which, Some(secret));
        self
    }

    /// The registered mobile number (browser login).
    pub fn mobile(self, secret: SecretRef) -> Self {
        self.secret(Secret::Mobile, secret)
    }

    /// The 6-digit login PIN.
    pub fn pin(self, secret: SecretRef) -> Self {
        self.secret(Secret::Pin, secret)
    }

    /// The base32 TOTP secret from Dhan Web's TOTP setup.
    pub fn totp_secret(self, secret: SecretRef) -> Self {
        self.secret(Secret::TotpSecret, secret)
    }

    /// The API key of the Dhan app (consent-based logins).
    pub fn api_key(self, secret: SecretRef) -> Self {
        self.secret(Secret::ApiKey, secret)
    }

    /// The API secret of the Dhan app.
    pub fn api_secret(self, secret: SecretRef) -> Self {
        self.secret(Secret::ApiSecret, secret)
    }

    /// The redirect URL registered for the app.
    pub fn redirect_url(mut self, url: Url) -> Self {
        self.profile.redirect_url = Some(url);
        self
    }

    /// A command printing the SMS/e-mail code, for a login page that asks for one.
    pub fn otp_command(mut self, command: impl Into<String>) -> Self {
        self.profile.otp_command = Some(command.into());
        self
    }

    /// Where Dhan's auth host is (the stand-in's, in tests).
    pub fn auth_base_url(mut self, url: Url) -> Self {
        self.profile.auth_base_url = url;
        self
    }

    /// Where Dhan's API is (the stand-in's, in tests).
    pub fn api_base_url(mut self, url: Url) -> Self {
        self.profile.api_base_url = url;
        self
    }

    /// A cached token is used while it has more than this left (default 30 minutes).
    pub fn margin(mut self, margin: chrono::Duration) -> Self {
        self.profile.margin = margin;
        self
    }

    /// generate-consent calls allowed per IST day (default and most: Dhan's 25).
    pub fn consent_cap(mut self, cap: u32) -> Self {
        self.profile.consent_cap = cap;
        self
    }

    /// How long to wait for another process's login (default 120 s).
    pub fn lock_wait(mut self, wait: Duration) -> Self {
        self.profile.lock_wait = wait;
        self
    }

    /// The daily login time (IST).
    pub fn login_at(mut self, at: IstTime) -> Self {
        self.profile.login_at = Some(at);
        self
    }

    /// Whether this host may log in.
    pub fn logins(mut self, logins: Logins) -> Self {
        self.profile.logins = logins;
        self
    }

    /// The least time between two generateAccessToken attempts (default 125 s; shorter
    /// only for an auth host on a loopback address, else 125 s still holds).
    pub fn mint_interval(mut self, interval: Duration) -> Self {
        self.profile.mint_interval = interval;
        self
    }

    /// How the browser login runs (default: `BrowserSettings::with_defaults`).
    pub fn browser(mut self, browser: BrowserSettings) -> Self {
        self.profile.browser = browser;
        self
    }

    /// Shared state in PostgreSQL instead of files under the state folder.
    pub fn store(mut self, store: StoreSettings) -> Self {
        self.profile.store = std::sync::Arc::new(store);
        self
    }

    /// The profile, with what the config file's reading would refuse refused here too
    /// (every bad field named at once). Secrets are not read: `Profile::check` does.
    pub fn build(self) -> Result<Profile, ConfigError> {
        let p = &self.profile;
        let mut bad: Vec<ConfigError> = Vec::new();
        if let Some(Err(e)) = p.client_id.as_deref().map(super::validate::client_id) {
            bad.push(e.into());
        }
        if !(1..=DHAN_CONSENT_LIMIT).contains(&p.consent_cap) {
            bad.push(ConfigError::Field {
                field: "consent_cap".into(),
                message: format!(
                    "{} is outside 1..={DHAN_CONSENT_LIMIT} (Dhan's daily limit)",
                    p.consent_cap
                ),
            });
        }
        let urls = [
            ("auth_base_url", Some(&p.auth_base_url)),
            ("api_base_url", Some(&p.api_base_url)),
            ("redirect_url", p.redirect_url.as_ref()),
        ];
        for (field, url) in urls {
            if let Some(url) = url.filter(|u| !matches!(u.scheme(), "http" | "https")) {
                bad.push(ConfigError::Field {
                    field: field.into(),
                    message: format!("`{url}` must be an http(s) URL"),
                });
            }
        }
        let mut profile = self.profile;
        profile.mint_interval = mint_interval(profile.mint_interval, &profile.auth_base_url);
        match bad.len() {
            0 => Ok(profile),
            1 => Err(bad.remove(0)),
            _ => Err(ConfigError::Several(bad)),
        }
    }
}

/// Dhan mints one token per client every 2 minutes and restarts the wait on an attempt
/// inside it: an interval shorter than `MINT_INTERVAL` is for a stand-in on this machine
/// (tests that log in back to back), never for Dhan, where 125 s holds whatever was set.
pub(super) fn mint_interval(interval: std::time::Duration, auth: &Url) -> std::time::Duration {
    let loopback = match auth.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    if interval >= crate::api::MINT_INTERVAL || loopback {
        return interval;
    }
    // A test knob, not a setting: said only in the debug log.
    tracing::debug!(
        "DHAN_LOGIN_MINT_INTERVAL_SECS ({} s) is ignored: only a stand-in on a loopback address may be asked for tokens more often than every {} s",
        interval.as_secs_f64(),
        crate::api::MINT_INTERVAL.as_secs()
    );
    crate::api::MINT_INTERVAL
}

impl Profile {
    /// The rules `decide` keeps this profile's token by.
    pub fn rules(&self) -> Rules {
        Rules {
            margin: self.margin,
            login_at: self.login_at,
            logins: self.logins,
        }
    }

    /// A profile made in code: `name` (which names its state) and the folder its state
    /// lives in, with every other field at its default until set.
    ///
    /// ```
    /// use dhan_login::{Profile, SecretRef};
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let profile = Profile::builder("bot", dir.path())
    ///     .client_id("1100000042")
    ///     .pin(SecretRef::command("pass show dhan/pin"))
    ///     .totp_secret(SecretRef::file("~/.config/dhan/totp"))
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(profile.name, "bot");
    /// assert!(Profile::builder("bot", dir.path()).client_id("12ab").build().is_err());
    /// ```
    pub fn builder(name: impl Into<String>, state_dir: impl Into<PathBuf>) -> ProfileBuilder {
        let state_dir = state_dir.into();
        let url = |s: &str| Url::parse(s).unwrap_or_else(|_| unreachable!("constant URL"));
        ProfileBuilder {
            profile: Profile {
                name: name.into(),
                client_id: None,
                secrets: Default::default(),
                redirect_url: None,
                otp_command: None,
                auth_base_url: url(DEFAULT_AUTH_BASE_URL),
                api_base_url: url(DEFAULT_API_BASE_URL),
                margin: DEFAULT_MARGIN,
                consent_cap: DHAN_CONSENT_LIMIT,
                lock_wait: DEFAULT_LOCK_WAIT,
                login_at: None,
                logins: Logins::Allowed,
                mint_interval: crate::api::MINT_INTERVAL,
                browser: BrowserSettings::with_defaults(&state_dir),
                state_dir,
                store: Default::default(),
            },
        }
    }

    /// Where `which` comes from, if the profile has it.
    pub fn get(&self, which: Secret) -> Option<&SecretRef> {
        self.secrets[which.index()].as_ref()
    }

    /// Sets where `which` comes from, under its config key (which its errors name).
    pub(crate) fn set(&mut self, which: Secret, secret: Option<SecretRef>) {
        self.secrets[which.index()] = secret.map(|s| s.named(which.key()));
    }

    /// The value of `which`, or the error naming it and its variable. A command runs on
    /// the runtime (`SecretRef::load`), so that a signal can end it.
    pub async fn require(&self, which: Secret) -> Result<&SecretString, ConfigError> {
        self.get(which)
            .ok_or(ConfigError::Missing {
                field: which.key(),
                env: which.env(),
            })?
            .load()
            .await
    }

    /// The client id, or the error naming the field and `DHAN_CLIENT_ID`.
    pub fn require_client_id(&self) -> Result<&str, ConfigError> {
        self.client_id.as_deref().ok_or(ConfigError::Missing {
            field: "client_id",
            env: "DHAN_CLIENT_ID",
        })
    }
}
