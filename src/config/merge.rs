//! One profile's file fields merged with the environment into a `Profile`. Every bad
//! field is collected instead of failing at the first, so that `config check` names
//! them all at once.

use std::path::PathBuf;

use secrecy::SecretString;
use url::Url;

use super::env::{Overrides, minutes, seconds};
use super::schema::{BrowserFile, ProfileFile};
use super::secrets::{Origin, SecretRef};
use super::{
    BrowserSettings, ConfigError, DEFAULT_API_BASE_URL, DEFAULT_AUTH_BASE_URL, DEFAULT_LOCK_WAIT,
    DEFAULT_MARGIN, Paths, Profile,
};
use crate::decide::{IstTime, Logins};
use crate::dhan::DHAN_CONSENT_LIMIT;
use crate::secret::Secret;

/// The merge's reading of the environment: the shared overrides, plus secrets and URLs.
struct Env<'a>(Overrides<'a>);

impl Env<'_> {
    fn var(&self, name: &str) -> Option<String> {
        self.0.var(name)
    }

    /// A number from `env_name`, else the file's; a bad override is noted.
    fn number(
        &self,
        field: &str,
        env_name: &str,
        file: Option<f64>,
        bad: &mut Vec<ConfigError>,
    ) -> Option<f64> {
        keep(bad, self.0.parsed(field, env_name, file)).flatten()
    }

    /// The secret `which`: its variable wins, else at most one of the file's origins.
    fn secret(
        &self,
        which: Secret,
        (inline, file, command): (Option<SecretString>, Option<PathBuf>, Option<String>),
    ) -> Result<Option<SecretRef>, ConfigError> {
        let field = which.key();
        if let Some(v) = self.var(which.env()) {
            return Ok(Some(SecretRef::from_env(field, v)));
        }
        let origins = [inline.is_some(), file.is_some(), command.is_some()];
        if origins.iter().filter(|b| **b).count() > 1 {
            return Err(ConfigError::Field {
                field: field.into(),
                message: format!("give only one of {field}, {field}_file, {field}_command"),
            });
        }
        let origin = match (inline, file, command) {
            (Some(v), _, _) => Origin::Inline(v),
            (_, Some(p), _) => Origin::File(self.0.expand_home(&p)),
            (_, _, Some(c)) => Origin::Command(c),
            _ => return Ok(None),
        };
        Ok(Some(SecretRef::new(field, origin)))
    }

    /// An http(s) URL from `env_name`, else the file's.
    fn url(
        &self,
        field: &str,
        env_name: &str,
        file: Option<String>,
    ) -> Result<Option<Url>, ConfigError> {
        let Some(raw) = self.var(env_name).or(file) else {
            return Ok(None);
        };
        let parsed = Url::parse(raw.trim()).map_err(|e| ConfigError::Field {
            field: field.into(),
            message: format!("`{raw}` is not a URL: {e}"),
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(ConfigError::Field {
                field: field.into(),
                message: format!("`{raw}` must be an http(s) URL"),
            });
        }
        Ok(Some(parsed))
    }
}

pub(super) fn merge(
    name: &str,
    mut pf: ProfileFile,
    paths: &Paths,
    env: &dyn Fn(&str) -> Option<String>,
) -> (Profile, Vec<ConfigError>) {
    let env = Env(Overrides(env));
    let mut bad: Vec<ConfigError> = Vec::new();
    let browser = browser(std::mem::take(&mut pf.browser), paths, &env, &mut bad);

    let margin_minutes = env.number(
        "margin_minutes",
        "DHAN_LOGIN_MARGIN_MINUTES",
        pf.margin_minutes,
        &mut bad,
    );
    let margin = margin_minutes
        .and_then(|m| keep(&mut bad, minutes("margin_minutes", m)))
        .and_then(|d| chrono::Duration::from_std(d).ok())
        .unwrap_or(DEFAULT_MARGIN);
    let limit = DHAN_CONSENT_LIMIT;
    let consent_cap = match pf.consent_cap {
        Some(n) if !(1..=limit).contains(&n) => {
            bad.push(ConfigError::Field {
                field: "consent_cap".into(),
                message: format!("{n} is outside 1..={limit} (Dhan's daily limit)"),
            });
            limit
        }
        Some(n) => n,
        None => limit,
    };
    let lock_wait = env
        .number(
            "lock_wait_secs",
            "DHAN_LOGIN_LOCK_WAIT_SECS",
            pf.lock_wait_secs,
            &mut bad,
        )
        .and_then(|s| keep(&mut bad, seconds("lock_wait_secs", s)))
        .unwrap_or(DEFAULT_LOCK_WAIT);

    let login_at = env
        .var("DHAN_LOGIN_AT")
        .or(pf.login_at.take())
        .filter(|s| !s.trim().is_empty())
        .and_then(|s| {
            let parsed = s.parse::<IstTime>().map_err(|message| ConfigError::Field {
                field: "login_at".into(),
                message: format!("{message}; set it (or DHAN_LOGIN_AT) like \"08:00\""),
            });
            keep(&mut bad, parsed)
        });
    let logins = keep(&mut bad, logins(&env, pf.login.as_deref())).unwrap_or_default();
    // Environment only: a knob for tests against the stand-in, not a setting.
    let mint_interval = env
        .number(
            "mint_interval_secs",
            "DHAN_LOGIN_MINT_INTERVAL_SECS",
            None,
            &mut bad,
        )
        .and_then(|s| {
            let d = if s == 0.0 {
                Ok(std::time::Duration::ZERO)
            } else {
                seconds("mint_interval_secs", s)
            };
            keep(&mut bad, d)
        })
        .unwrap_or(crate::api::MINT_INTERVAL);

    let secrets: Vec<(Secret, Option<SecretRef>)> = Secret::ALL
        .iter()
        .map(|&which| {
            let origins = pf.take_secret(which);
            (which, keep(&mut bad, env.secret(which, origins)).flatten())
        })
        .collect();
    let redirect_url = keep(
        &mut bad,
        env.url("redirect_url", "DHAN_REDIRECT_URL", pf.redirect_url),
    )
    .flatten();
    let auth_base_url = keep(
        &mut bad,
        env.url("auth_base_url", "DHAN_AUTH_BASE_URL", pf.auth_base_url),
    )
    .flatten()
    .unwrap_or_else(|| default_url(DEFAULT_AUTH_BASE_URL));
    let api_base_url = keep(
        &mut bad,
        env.url("api_base_url", "DHAN_API_BASE_URL", pf.api_base_url),
    )
    .flatten()
    .unwrap_or_else(|| default_url(DEFAULT_API_BASE_URL));
    let mint_interval = super::profile::mint_interval(mint_interval, &auth_base_url);
    let mut profile = Profile {
        name: name.to_owned(),
        client_id: env
            .var("DHAN_CLIENT_ID")
            .or(pf.client_id)
            .map(|s| s.trim().to_owned()),
        secrets: Default::default(),
        redirect_url,
        otp_command: env
            .var("DHAN_OTP_COMMAND")
            .or(pf.otp_command)
            .filter(|c| !c.trim().is_empty()),
        auth_base_url,
        api_base_url,
        margin,
        consent_cap,
        lock_wait,
        login_at,
        logins,
        mint_interval,
        browser,
        state_dir: paths.state_dir.clone(),
        store: Default::default(),
    };
    for (which, secret) in secrets {
        profile.set(which, secret);
    }
    (profile, bad)
}

fn browser(
    bf: BrowserFile,
    paths: &Paths,
    env: &Env<'_>,
    bad: &mut Vec<ConfigError>,
) -> BrowserSettings {
    let mut browser = BrowserSettings::with_defaults(&paths.state_dir);
    browser.executable = env
        .var("DHAN_LOGIN_CHROME")
        .map(PathBuf::from)
        .or(bf.executable);
    browser.headed = bf.headed.unwrap_or(false);
    browser.block_resources = bf.block_resources.unwrap_or(true);
    browser.block_trackers = bf.block_trackers.unwrap_or(true);
    browser.selectors = bf.selectors.map(|p| env.0.expand_home(&p));
    if let Some(dir) = bf.artifacts_dir {
        browser.artifacts_dir = env.0.expand_home(&dir);
    }
    browser.extra_args = bf.extra_args;
    browser.single_process = bf.single_process;
    if let Some(d) = bf
        .step_timeout_secs
        .and_then(|s| keep(bad, seconds("browser.step_timeout_secs", s)))
    {
        browser.step_timeout = d;
    }
    if let Some(d) = bf
        .overall_timeout_secs
        .and_then(|s| keep(bad, seconds("browser.overall_timeout_secs", s)))
    {
        browser.overall_timeout = d;
    }
    browser
}

/// `login = "never"` in the file, or `DHAN_LOGIN_NO_LOGIN=1`, keeps this host from ever
/// obtaining a token itself.
fn logins(env: &Env<'_>, file: Option<&str>) -> Result<Logins, ConfigError> {
    if let Some(v) = env.var("DHAN_LOGIN_NO_LOGIN") {
        return match v.trim() {
            "1" | "true" | "yes" => Ok(Logins::Never),
            "" | "0" | "false" | "no" => Ok(Logins::Allowed),
            _ => Err(ConfigError::Field {
                field: "login".into(),
                message: "DHAN_LOGIN_NO_LOGIN must be 1 (logins off) or 0".into(),
            }),
        };
    }
    match file.map(str::trim) {
        None | Some("auto") => Ok(Logins::Allowed),
        Some("never") => Ok(Logins::Never),
        Some(other) => Err(ConfigError::Field {
            field: "login".into(),
            message: format!("`{other}` is neither \"auto\" nor \"never\""),
        }),
    }
}

fn default_url(s: &str) -> Url {
    Url::parse(s).unwrap_or_else(|_| unreachable!("constant URL"))
}

/// The value of `r`, or None with its error noted.
fn keep<T>(bad: &mut Vec<ConfigError>, r: Result<T, ConfigError>) -> Option<T> {
    r.map_err(|e| bad.push(e)).ok()
}
