//! Profiles from a TOML file, overridden field by field from the environment.
//!
//! Secrets may be inline, in a file (`*_file`) or printed by a command (`*_command`, e.g.
//! a password manager). They are read only when a login needs them, so the cached-token
//! path never runs a password manager.

mod store;
pub mod validate;

pub use store::{DEFAULT_LEASE, StoreSettings};

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

pub const DEFAULT_AUTH_BASE_URL: &str = "https://auth.dhan.co";
pub const DEFAULT_API_BASE_URL: &str = "https://api.dhan.co/v2";
pub const DEFAULT_PROFILE: &str = "default";

/// How long a `*_command` may take to print its secret (a password manager unlocking).
const SECRET_COMMAND_TIMEOUT: Duration = Duration::from_secs(20);

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

/// Where the config file and the state come from.
pub struct Paths {
    pub config_file: PathBuf,
    /// True when the user named the file: then it must exist.
    pub config_explicit: bool,
    pub state_dir: PathBuf,
}

impl Paths {
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Paths, ConfigError> {
        let dirs = directories::ProjectDirs::from("", "", "dhan-login");
        let (config_file, config_explicit) = match env("DHAN_LOGIN_CONFIG") {
            Some(p) if !p.is_empty() => (PathBuf::from(p), true),
            _ => (
                dirs.as_ref()
                    .ok_or(ConfigError::NoHome)?
                    .config_dir()
                    .join("config.toml"),
                false,
            ),
        };
        let state_dir = match env("DHAN_LOGIN_STATE_DIR") {
            Some(p) if !p.is_empty() => PathBuf::from(p),
            _ => {
                let d = dirs.as_ref().ok_or(ConfigError::NoHome)?;
                d.state_dir()
                    .unwrap_or_else(|| d.data_local_dir())
                    .to_path_buf()
            }
        };
        Ok(Paths {
            config_file,
            config_explicit,
            state_dir,
        })
    }
}

/// One profile as written in the file. Every field is optional: the environment may
/// supply it, and what a login path needs is checked when that path is taken.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    client_id: Option<String>,
    mobile: Option<String>,
    mobile_file: Option<PathBuf>,
    mobile_command: Option<String>,
    pin: Option<String>,
    pin_file: Option<PathBuf>,
    pin_command: Option<String>,
    totp_secret: Option<String>,
    totp_secret_file: Option<PathBuf>,
    totp_secret_command: Option<String>,
    api_key: Option<String>,
    api_key_file: Option<PathBuf>,
    api_key_command: Option<String>,
    api_secret: Option<String>,
    api_secret_file: Option<PathBuf>,
    api_secret_command: Option<String>,
    redirect_url: Option<String>,
    /// Prints the code Dhan sent by SMS or e-mail, for accounts whose login page asks for
    /// one (no TOTP); run only when that screen is shown.
    otp_command: Option<String>,
    auth_base_url: Option<String>,
    api_base_url: Option<String>,
    /// A cached token is used while it has more than this left.
    margin_minutes: Option<f64>,
    /// generate-consent calls allowed per IST day (at most Dhan's 25).
    consent_cap: Option<u32>,
    /// How long a second process waits for another's login before giving up.
    lock_wait_secs: Option<f64>,
    #[serde(default)]
    browser: BrowserFile,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct BrowserFile {
    executable: Option<PathBuf>,
    headed: Option<bool>,
    step_timeout_secs: Option<f64>,
    overall_timeout_secs: Option<f64>,
    block_resources: Option<bool>,
    block_trackers: Option<bool>,
    selectors: Option<PathBuf>,
    artifacts_dir: Option<PathBuf>,
    #[serde(default)]
    extra_args: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    profiles: BTreeMap<String, ProfileFile>,
    /// The daemon's table (`dhan-login serve`); `token` and `exec` read it to find it.
    #[serde(default)]
    serve: crate::serve::ServeFile,
    #[serde(default)]
    notify: crate::serve::NotifyFile,
    /// Shared state for several machines (PostgreSQL); files when absent.
    #[serde(default)]
    store: store::StoreFile,
}

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

/// Where a secret comes from. Read at most once per process.
#[derive(Debug)]
pub struct SecretRef {
    field: &'static str,
    origin: Origin,
    value: OnceLock<SecretString>,
}

#[derive(Debug)]
enum Origin {
    Inline(SecretString),
    Env(SecretString),
    File(PathBuf),
    Command(String),
}

impl SecretRef {
    fn from_env(field: &'static str, value: String) -> Self {
        SecretRef {
            field,
            origin: Origin::Env(SecretString::from(value)),
            value: OnceLock::new(),
        }
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

    fn is_inline(&self) -> bool {
        matches!(self.origin, Origin::Inline(_))
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

/// A field that `config check` found wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub field: String,
    pub message: String,
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
        let (file, path) = read_file(paths)?;
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
        Ok(read_file(paths)?.0.profiles.into_keys().collect())
    }

    /// The `[serve]` and `[notify]` tables of the file, unmerged.
    pub(crate) fn serve_tables(
        paths: &Paths,
    ) -> Result<(crate::serve::ServeFile, crate::serve::NotifyFile), ConfigError> {
        let file = read_file(paths)?.0;
        Ok((file.serve, file.notify))
    }

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
        let secrets = [
            (&self.mobile, "mobile"),
            (&self.pin, "pin"),
            (&self.totp_secret, "totp_secret"),
            (&self.api_key, "api_key"),
            (&self.api_secret, "api_secret"),
        ];
        for (secret, field) in secrets {
            let Some(secret) = secret else { continue };
            match secret.get() {
                Err(e) => bad(field, e.to_string()),
                Ok(v) => {
                    if let Err(e) = validate::field(field, v.expose_secret()) {
                        bad(field, e.problem.to_string());
                    }
                }
            }
        }
        let has_totp = self.pin.is_some() && self.totp_secret.is_some();
        let has_consent = self.api_key.is_some() && self.api_secret.is_some();
        if !has_totp && !has_consent {
            bad(
                "login",
                "no way to log in: set pin + totp_secret (PIN+TOTP login) or api_key + api_secret (+ mobile, pin, totp_secret for the browser login)".into(),
            );
        }
        if self.api_key.is_some() != self.api_secret.is_some() {
            let missing = if self.api_key.is_none() {
                "api_key"
            } else {
                "api_secret"
            };
            bad(missing, "api_key and api_secret go together".into());
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
    pub fn secrets_fingerprint(&self, fields: &[impl AsRef<str>]) -> Option<String> {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(b"dhan-login credentials v2\0");
        h.update(self.client_id.as_deref().unwrap_or("").as_bytes());
        for field in fields {
            let field = field.as_ref();
            h.update(b"\0");
            h.update(field.as_bytes());
            h.update(b"=");
            match self.secret(field).map(SecretRef::get) {
                Some(Ok(v)) => h.update(v.expose_secret().as_bytes()),
                Some(Err(_)) => return None,
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

    /// The secret in `field`, or the error naming it and its variable.
    pub fn require<'a>(
        secret: &'a Option<SecretRef>,
        field: &'static str,
        env: &'static str,
    ) -> Result<&'a SecretString, ConfigError> {
        secret
            .as_ref()
            .ok_or(ConfigError::Missing { field, env })?
            .get()
    }

    pub fn require_client_id(&self) -> Result<&str, ConfigError> {
        self.client_id.as_deref().ok_or(ConfigError::Missing {
            field: "client_id",
            env: "DHAN_CLIENT_ID",
        })
    }
}

fn read_file(paths: &Paths) -> Result<(FileConfig, PathBuf), ConfigError> {
    let path = paths.config_file.clone();
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !paths.config_explicit => {
            return Ok((FileConfig::default(), path));
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

fn merge(
    name: &str,
    pf: ProfileFile,
    paths: &Paths,
    env: &dyn Fn(&str) -> Option<String>,
) -> (Profile, Vec<ConfigError>) {
    let var = |k: &str| env(k).filter(|v| !v.is_empty());
    let secret = |field: &'static str,
                  env_name: &str,
                  inline: Option<String>,
                  file: Option<PathBuf>,
                  command: Option<String>|
     -> Result<Option<SecretRef>, ConfigError> {
        if let Some(v) = var(env_name) {
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
            (Some(v), _, _) => Origin::Inline(SecretString::from(v)),
            (_, Some(p), _) => Origin::File(p),
            (_, _, Some(c)) => Origin::Command(c),
            _ => return Ok(None),
        };
        Ok(Some(SecretRef {
            field,
            origin,
            value: OnceLock::new(),
        }))
    };
    let url =
        |field: &str, env_name: &str, file: Option<String>| -> Result<Option<Url>, ConfigError> {
            let Some(raw) = var(env_name).or(file) else {
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
        };
    let default_url = |s: &str| Url::parse(s).unwrap_or_else(|_| unreachable!("constant URL"));

    let mut browser = BrowserSettings::with_defaults(&paths.state_dir);
    let bf = pf.browser;
    browser.executable = var("DHAN_LOGIN_CHROME")
        .map(PathBuf::from)
        .or(bf.executable);
    browser.headed = bf.headed.unwrap_or(false);
    browser.block_resources = bf.block_resources.unwrap_or(true);
    browser.block_trackers = bf.block_trackers.unwrap_or(true);
    browser.selectors = bf.selectors.map(|p| expand_home(&p));
    if let Some(dir) = bf.artifacts_dir {
        browser.artifacts_dir = expand_home(&dir);
    }
    browser.extra_args = bf.extra_args;
    // Every bad field is collected, so that `config check` names them all at once.
    let mut bad: Vec<ConfigError> = Vec::new();
    if let Some(d) = bf
        .step_timeout_secs
        .and_then(|s| keep(&mut bad, seconds("browser.step_timeout_secs", s)))
    {
        browser.step_timeout = d;
    }
    if let Some(d) = bf
        .overall_timeout_secs
        .and_then(|s| keep(&mut bad, seconds("browser.overall_timeout_secs", s)))
    {
        browser.overall_timeout = d;
    }
    // An env override that is not a number is reported, never silently replaced by
    // the file's value.
    let number = |field: &str, env_name: &str, v: String, bad: &mut Vec<ConfigError>| {
        keep(
            bad,
            v.parse::<f64>().map_err(|_| ConfigError::Field {
                field: field.into(),
                message: format!("{env_name}=`{v}` is not a number"),
            }),
        )
    };
    let margin_minutes = var("DHAN_LOGIN_MARGIN_MINUTES")
        .map(|v| number("margin_minutes", "DHAN_LOGIN_MARGIN_MINUTES", v, &mut bad))
        .unwrap_or(pf.margin_minutes);
    let margin = match margin_minutes {
        Some(m) if !(0.0..=24.0 * 60.0).contains(&m) => {
            bad.push(ConfigError::Field {
                field: "margin_minutes".into(),
                message: format!("{m} is outside 0..=1440"),
            });
            chrono::Duration::minutes(30)
        }
        Some(m) => chrono::Duration::milliseconds((m * 60_000.0) as i64),
        None => chrono::Duration::minutes(30),
    };
    let limit = crate::store::DHAN_CONSENT_LIMIT;
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
    let lock_wait_secs = var("DHAN_LOGIN_LOCK_WAIT_SECS")
        .map(|v| number("lock_wait_secs", "DHAN_LOGIN_LOCK_WAIT_SECS", v, &mut bad))
        .unwrap_or(pf.lock_wait_secs);
    let lock_wait = lock_wait_secs
        .and_then(|s| keep(&mut bad, seconds("lock_wait_secs", s)))
        .unwrap_or(Duration::from_secs(120));

    let mobile = keep(
        &mut bad,
        secret(
            "mobile",
            "DHAN_MOBILE",
            pf.mobile,
            pf.mobile_file,
            pf.mobile_command,
        ),
    )
    .flatten();
    let pin = keep(
        &mut bad,
        secret("pin", "DHAN_PIN", pf.pin, pf.pin_file, pf.pin_command),
    )
    .flatten();
    let totp_secret = keep(
        &mut bad,
        secret(
            "totp_secret",
            "DHAN_TOTP_SECRET",
            pf.totp_secret,
            pf.totp_secret_file,
            pf.totp_secret_command,
        ),
    )
    .flatten();
    let api_key = keep(
        &mut bad,
        secret(
            "api_key",
            "DHAN_API_KEY",
            pf.api_key,
            pf.api_key_file,
            pf.api_key_command,
        ),
    )
    .flatten();
    let api_secret = keep(
        &mut bad,
        secret(
            "api_secret",
            "DHAN_API_SECRET",
            pf.api_secret,
            pf.api_secret_file,
            pf.api_secret_command,
        ),
    )
    .flatten();
    let redirect_url = keep(
        &mut bad,
        url("redirect_url", "DHAN_REDIRECT_URL", pf.redirect_url),
    )
    .flatten();
    let auth_base_url = keep(
        &mut bad,
        url("auth_base_url", "DHAN_AUTH_BASE_URL", pf.auth_base_url),
    )
    .flatten()
    .unwrap_or_else(|| default_url(DEFAULT_AUTH_BASE_URL));
    let api_base_url = keep(
        &mut bad,
        url("api_base_url", "DHAN_API_BASE_URL", pf.api_base_url),
    )
    .flatten()
    .unwrap_or_else(|| default_url(DEFAULT_API_BASE_URL));
    let profile = Profile {
        name: name.to_owned(),
        client_id: var("DHAN_CLIENT_ID")
            .or(pf.client_id)
            .map(|s| s.trim().to_owned()),
        mobile,
        pin,
        totp_secret,
        api_key,
        api_secret,
        redirect_url,
        otp_command: var("DHAN_OTP_COMMAND")
            .or(pf.otp_command)
            .filter(|c| !c.trim().is_empty()),
        auth_base_url,
        api_base_url,
        margin,
        consent_cap,
        lock_wait,
        browser,
        state_dir: paths.state_dir.clone(),
        store: Default::default(),
    };
    (profile, bad)
}

/// The value of `r`, or None with its error noted.
fn keep<T>(bad: &mut Vec<ConfigError>, r: Result<T, ConfigError>) -> Option<T> {
    r.map_err(|e| bad.push(e)).ok()
}

fn seconds(field: &str, s: f64) -> Result<Duration, ConfigError> {
    if !(s > 0.0 && s < 3600.0) {
        return Err(ConfigError::Field {
            field: field.into(),
            message: format!("{s} must be between 0 and 3600 seconds"),
        });
    }
    Ok(Duration::from_secs_f64(s))
}

pub(crate) fn expand_home(path: &Path) -> PathBuf {
    match (path.strip_prefix("~"), std::env::var_os("HOME")) {
        (Ok(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => path.to_path_buf(),
    }
}

/// Inline secrets in a file others can read are one `cat` away from leaking.
fn warn_if_exposed(path: &Path, profile: &Profile) {
    use std::os::unix::fs::PermissionsExt;
    let inline = [
        &profile.pin,
        &profile.totp_secret,
        &profile.api_secret,
        &profile.api_key,
    ]
    .iter()
    .any(|s| s.as_ref().is_some_and(|s| s.is_inline()));
    let Ok(meta) = std::fs::metadata(path) else {
        return;
    };
    if inline && meta.permissions().mode() & 0o077 != 0 {
        tracing::warn!(
            "{} holds inline secrets and is readable by group/others: run `chmod 600 {}`",
            path.display(),
            path.display()
        );
    }
}
