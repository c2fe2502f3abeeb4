//! The `[serve]` and `[notify]` tables of the config file, each key overridable by
//! `DHAN_LOGIN_SERVE_<KEY>` / `DHAN_LOGIN_NOTIFY_<KEY>`.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use url::Url;

use crate::config::{Config, ConfigError, Overrides, Paths, Setting, minutes, seconds};
use crate::daemon::{DEFAULT_LISTEN, DaemonAddr, client_addr, parse_listen};

/// How `dhan-login serve` runs, and where `token` / `exec` find it.
#[derive(Debug, Clone)]
pub struct ServeSettings {
    /// The HTTP endpoint.
    pub listen: SocketAddr,
    /// Set in the file or the environment: then `token` and `exec` ask the daemon first.
    pub listen_configured: bool,
    /// Permits a `listen` address other than loopback.
    pub allow_remote: bool,
    /// A Unix socket serving the same routes, besides `listen`.
    pub socket: Option<PathBuf>,
    /// The bearer key of the token routes.
    pub key_file: PathBuf,
    /// Where each profile's bare token goes; `{profile}` is replaced by its name.
    pub token_file: String,
    /// Where each profile's `DHAN_ACCESS_TOKEN=` / `DHAN_CLIENT_ID=` file goes.
    pub env_file: String,
    /// A token is refreshed this long before it expires…
    pub refresh_ahead: Duration,
    /// …plus a random part of this, so that many machines do not all ask at once.
    pub jitter: Duration,
    /// Backoff after a failure that may pass: doubles from `retry_min` up to `retry_max`.
    pub retry_min: Duration,
    /// The longest wait between two attempts after failures that may pass.
    pub retry_max: Duration,
    /// Where failures are reported (the `[notify]` table).
    pub notify: NotifySettings,
}

/// Who hears of a failure the daemon cannot fix by itself, and how early (the `[notify]`
/// table). Its `Debug` shows only the webhook's scheme and host: a Telegram-style URL
/// carries a bot token in its path.
#[derive(Clone)]
pub struct NotifySettings {
    /// Receives a JSON event on a fatal failure and before an unrefreshed token expires.
    pub webhook: Option<Url>,
    /// How long before expiry an unrefreshed token is reported.
    pub warn_before: Duration,
}

// A Telegram webhook carries the bot's token in its path: show the host only.
impl fmt::Debug for NotifySettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NotifySettings")
            .field("webhook", &self.webhook.as_ref().map(webhook_host))
            .field("warn_before", &self.warn_before)
            .finish()
    }
}

/// What a log line may say about a webhook URL.
pub(crate) fn webhook_host(url: &Url) -> String {
    format!("{}://{}/…", url.scheme(), url.host_str().unwrap_or("?"))
}

impl ServeSettings {
    /// The file's tables with the environment on top: a [`Config`] read for them alone.
    pub fn load(
        paths: &Paths,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<ServeSettings, ConfigError> {
        Self::from_config(&Config::load(paths)?, env)
    }

    /// The `[serve]` and `[notify]` tables of `config` with the environment on top;
    /// defaults under the state folder.
    pub fn from_config(
        config: &Config,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<ServeSettings, ConfigError> {
        let (serve, notify, paths) = (config.serve(), config.notify(), config.paths());
        let get = Lookup {
            env: Overrides(env),
        };
        let configured = crate::daemon::listen(config, env)?;
        let listen = configured.unwrap_or(DEFAULT_LISTEN);
        let state = |file: &str| paths.state_dir.join(file).to_string_lossy().into_owned();
        let retry_min = get
            .parsed::<f64>("serve", "retry_min_secs", serve.retry_min_secs)?
            .map(|s| seconds("serve.retry_min_secs", s))
            .transpose()?
            .unwrap_or(Duration::from_secs(30));
        let retry_max = get
            .parsed::<f64>("serve", "retry_max_secs", serve.retry_max_secs)?
            .map(|s| seconds("serve.retry_max_secs", s))
            .transpose()?
            .unwrap_or(Duration::from_secs(15 * 60));
        if retry_max < retry_min {
            return Err(field(
                "serve.retry_max_secs",
                format!("{retry_max:?} is below serve.retry_min_secs ({retry_min:?})"),
            ));
        }
        let webhook = get
            .text("notify", "webhook", notify.webhook.clone())
            .map(|raw| parse_webhook(&raw))
            .transpose()?;
        Ok(ServeSettings {
            listen,
            listen_configured: configured.is_some(),
            allow_remote: get
                .parsed("serve", "allow_remote", serve.allow_remote)?
                .unwrap_or(false),
            socket: get
                .text("serve", "socket", serve.socket.clone().map(path_text))
                .map(|p| get.env.expand_home(Path::new(&p))),
            key_file: crate::daemon::key_file(config, env),
            token_file: get
                .text("serve", "token_file", serve.token_file.clone())
                .map(|p| handoff_path("serve.token_file", &p, &get.env))
                .transpose()?
                .unwrap_or_else(|| state("serve/{profile}.token")),
            env_file: get
                .text("serve", "env_file", serve.env_file.clone())
                .map(|p| handoff_path("serve.env_file", &p, &get.env))
                .transpose()?
                .unwrap_or_else(|| state("serve/{profile}.env")),
            refresh_ahead: get
                .parsed(
                    "serve",
                    "refresh_ahead_minutes",
                    serve.refresh_ahead_minutes,
                )?
                .map(|m| minutes("serve.refresh_ahead_minutes", m))
                .transpose()?
                .unwrap_or(Duration::from_secs(60 * 60)),
            jitter: get
                .parsed("serve", "jitter_minutes", serve.jitter_minutes)?
                .map(|m| minutes("serve.jitter_minutes", m))
                .transpose()?
                .unwrap_or(Duration::from_secs(5 * 60)),
            retry_min,
            retry_max,
            notify: NotifySettings {
                webhook,
                warn_before: get
                    .parsed("notify", "warn_before_minutes", notify.warn_before_minutes)?
                    .map(|m| minutes("notify.warn_before_minutes", m))
                    .transpose()?
                    .unwrap_or(Duration::from_secs(45 * 60)),
            },
        })
    }

    /// `serve --listen`.
    pub fn set_listen(&mut self, raw: &str) -> Result<(), ConfigError> {
        self.listen = parse_listen("--listen", raw)?;
        Ok(())
    }

    /// Refuses an address reachable from other machines unless that was asked for.
    pub fn check_listen(&self) -> Result<(), ConfigError> {
        if self.listen.ip().is_loopback() || self.allow_remote {
            return Ok(());
        }
        Err(field(
            "serve.listen",
            format!(
                "{} is not a loopback address: other machines could reach the token \
                 endpoint. Listen on 127.0.0.1, or pass --allow-remote (serve.allow_remote \
                 = true) if you mean it",
                self.listen
            ),
        ))
    }

    /// The token file of one profile.
    pub fn token_file_for(&self, profile: &str) -> PathBuf {
        PathBuf::from(self.token_file.replace("{profile}", profile))
    }

    /// The env file of one profile.
    pub fn env_file_for(&self, profile: &str) -> PathBuf {
        PathBuf::from(self.env_file.replace("{profile}", profile))
    }

    /// Where a client connects: an unspecified address (0.0.0.0) is reached on loopback.
    pub fn client_addr(&self) -> SocketAddr {
        client_addr(self.listen)
    }

    /// The daemon a consumer asks first, when `listen` is configured.
    pub fn daemon(&self) -> Option<DaemonAddr> {
        self.listen_configured.then(|| DaemonAddr {
            addr: self.client_addr(),
            key_file: self.key_file.clone(),
        })
    }
}

/// A hand-over file's path as configured, `~/` expanded. A `..` is refused: after
/// `{profile}` it climbed out of the folder the path names (`serve/{profile}/../../x`),
/// so the files landed where nobody would look for them, or somewhere they replace.
fn handoff_path(key: &str, raw: &str, env: &Overrides<'_>) -> Result<String, ConfigError> {
    let path = env.expand_home(Path::new(raw));
    if path
        .components()
        .any(|c| c == std::path::Component::ParentDir)
    {
        return Err(field(
            key,
            format!("{raw}: `..` is not allowed; write the path without it"),
        ));
    }
    Ok(path_text(path))
}

/// The environment first, then the file: `DHAN_LOGIN_<TABLE>_<KEY>` overrides `key`.
struct Lookup<'a> {
    env: Overrides<'a>,
}

impl Lookup<'_> {
    fn var(table: &str, key: &str) -> String {
        format!(
            "DHAN_LOGIN_{}_{}",
            table.to_ascii_uppercase(),
            key.to_ascii_uppercase()
        )
    }

    fn text(&self, table: &str, key: &str, file: Option<String>) -> Option<String> {
        self.env.var(&Self::var(table, key)).or(file)
    }

    fn parsed<T: Setting>(
        &self,
        table: &str,
        key: &str,
        file: Option<T>,
    ) -> Result<Option<T>, ConfigError> {
        self.env
            .parsed(&format!("{table}.{key}"), &Self::var(table, key), file)
    }
}

fn field(name: &str, message: String) -> ConfigError {
    ConfigError::Field {
        field: name.to_owned(),
        message,
    }
}

fn path_text(p: PathBuf) -> String {
    p.to_string_lossy().into_owned()
}

/// The URL itself is never quoted back: a Telegram one holds the bot token.
fn parse_webhook(raw: &str) -> Result<Url, ConfigError> {
    let url =
        Url::parse(raw.trim()).map_err(|e| field("notify.webhook", format!("not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(field("notify.webhook", "must be an http(s) URL".into()));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(toml: &str, vars: &[(&str, &str)]) -> Result<ServeSettings, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.toml");
        std::fs::write(&file, toml).unwrap();
        let paths = Paths {
            config_file: file,
            config_explicit: true,
            state_dir: PathBuf::from("/state"),
        };
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ServeSettings::load(&paths, &|k| vars.get(k).cloned())
    }

    #[test]
    fn a_handoff_path_with_dot_dot_is_refused() {
        for (key, var) in [
            ("serve.token_file", "DHAN_LOGIN_SERVE_TOKEN_FILE"),
            ("serve.env_file", "DHAN_LOGIN_SERVE_ENV_FILE"),
        ] {
            let e = load("", &[(var, "out/{profile}/../../x")]).unwrap_err();
            assert!(e.to_string().contains(key), "{e}");
            assert!(e.to_string().contains("`..`"), "{e}");
        }
        let table = "[serve]\ntoken_file = \"/srv/t/{profile}/../x\"\n";
        assert!(load(table, &[]).is_err());
        let fine = load("[serve]\ntoken_file = \"out/{profile}.token\"\n", &[]).unwrap();
        assert_eq!(fine.token_file_for("a"), PathBuf::from("out/a.token"));
    }

    #[test]
    fn defaults_live_in_the_state_folder() {
        let s = load("", &[]).unwrap();
        assert_eq!(s.listen, DEFAULT_LISTEN);
        assert!(!s.listen_configured);
        assert_eq!(s.key_file, PathBuf::from("/state/serve.key"));
        assert_eq!(
            s.token_file_for("work"),
            PathBuf::from("/state/serve/work.token")
        );
        assert_eq!(
            s.env_file_for("work"),
            PathBuf::from("/state/serve/work.env")
        );
        assert_eq!(s.refresh_ahead, Duration::from_secs(3600));
        assert!(s.notify.webhook.is_none());
    }

    #[test]
    fn the_environment_wins_over_the_file() {
        let s = load(
            "[serve]\nlisten = \"127.0.0.1:9000\"\nrefresh_ahead_minutes = 10\n",
            &[("DHAN_LOGIN_SERVE_LISTEN", "localhost:9100")],
        )
        .unwrap();
        assert_eq!(s.listen.port(), 9100);
        assert!(s.listen_configured);
        assert_eq!(s.refresh_ahead, Duration::from_secs(600));
    }

    #[test]
    fn bad_values_name_their_field_and_never_quote_a_webhook() {
        let e = load("[serve]\nlisten = \"nowhere\"\n", &[]).unwrap_err();
        assert!(e.to_string().starts_with("serve.listen:"), "{e}");
        let e = load("[serve]\nlisten_on = \"x\"\n", &[]).unwrap_err();
        assert!(e.to_string().contains("listen_on"), "{e}");
        let e = load("", &[("DHAN_LOGIN_SERVE_JITTER_MINUTES", "soon")]).unwrap_err();
        assert!(e.to_string().starts_with("serve.jitter_minutes:"), "{e}");
        let e = load("[notify]\nwebhook = \"ftp://h/bot123:SECRET\"\n", &[]).unwrap_err();
        assert!(!e.to_string().contains("SECRET"), "{e}");
        let s = load(
            "[notify]\nwebhook = \"https://api.telegram.org/bot1:SECRET/x\"\n",
            &[],
        )
        .unwrap();
        assert!(!format!("{s:?}").contains("SECRET"));
    }

    #[test]
    fn a_public_address_needs_allow_remote() {
        let mut s = load("", &[]).unwrap();
        s.set_listen("0.0.0.0:7787").unwrap();
        assert!(s.check_listen().is_err());
        assert_eq!(s.client_addr(), "127.0.0.1:7787".parse().unwrap());
        s.allow_remote = true;
        assert!(s.check_listen().is_ok());
        s.set_listen("[::1]:1").unwrap();
        s.allow_remote = false;
        assert!(s.check_listen().is_ok());
    }
}
