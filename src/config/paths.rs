//! Where the config file and the state folder are.

use std::path::PathBuf;

use super::ConfigError;
use super::env::Overrides;

/// The default config folder and state folder: the XDG base directories of `env`
/// (an absolute `XDG_CONFIG_HOME`/`XDG_STATE_HOME`, else under its `HOME`).
#[cfg(target_os = "linux")]
fn default_dirs(env: &dyn Fn(&str) -> Option<String>) -> Option<(PathBuf, PathBuf)> {
    let vars = Overrides(env);
    let Some(home) = vars.var("HOME").map(PathBuf::from) else {
        return os_dirs();
    };
    let base = |var: &str, under_home: &str| {
        vars.var(var)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .unwrap_or_else(|| home.join(under_home))
            .join("dhan-login")
    };
    Some((
        base("XDG_CONFIG_HOME", ".config"),
        base("XDG_STATE_HOME", ".local/state"),
    ))
}

#[cfg(not(target_os = "linux"))]
fn default_dirs(_: &dyn Fn(&str) -> Option<String>) -> Option<(PathBuf, PathBuf)> {
    os_dirs()
}

/// The platform's folders for the account, as the OS gives them.
fn os_dirs() -> Option<(PathBuf, PathBuf)> {
    let d = directories::ProjectDirs::from("", "", "dhan-login")?;
    let state = d.state_dir().unwrap_or_else(|| d.data_local_dir());
    Some((d.config_dir().to_path_buf(), state.to_path_buf()))
}

/// Where the config file and the state come from.
#[derive(Debug, Clone)]
pub struct Paths {
    /// The TOML file holding the profiles; it may be absent unless named.
    pub config_file: PathBuf,
    /// True when the user named the file: then it must exist.
    pub config_explicit: bool,
    /// The folder holding each profile's token, lock, consent ledger and lockouts (when
    /// the state is kept in files), and failure artifacts.
    pub state_dir: PathBuf,
}

impl Paths {
    /// The paths the command line uses: `DHAN_LOGIN_CONFIG` (else
    /// `~/.config/dhan-login/config.toml`) and `DHAN_LOGIN_STATE_DIR` (else the
    /// platform's state folder, `~/.local/state/dhan-login` on Linux), read through `env`
    /// so a caller can pass something other than the process environment. On Linux the
    /// defaults come from that environment too (`XDG_CONFIG_HOME`, `XDG_STATE_HOME`,
    /// `HOME`); only when it has no `HOME` is the home the OS gives the account used. An
    /// empty variable counts as unset. Fails only when a default is needed and there is
    /// no home directory.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Paths, ConfigError> {
        let defaults = || default_dirs(env).ok_or(ConfigError::NoHome);
        let (config_file, config_explicit) = match env("DHAN_LOGIN_CONFIG") {
            Some(p) if !p.is_empty() => (PathBuf::from(p), true),
            _ => (defaults()?.0.join("config.toml"), false),
        };
        let state_dir = match env("DHAN_LOGIN_STATE_DIR") {
            Some(p) if !p.is_empty() => PathBuf::from(p),
            _ => defaults()?.1,
        };
        Ok(Paths {
            config_file,
            config_explicit,
            state_dir,
        })
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    fn paths(vars: &[(&str, &str)]) -> Paths {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Paths::from_env(&|k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())).unwrap()
    }

    /// The defaults follow the environment handed in, not this process's HOME.
    #[test]
    fn the_default_folders_come_from_the_injected_environment() {
        let p = paths(&[("HOME", "/injected")]);
        assert_eq!(
            p.config_file,
            PathBuf::from("/injected/.config/dhan-login/config.toml")
        );
        assert_eq!(
            p.state_dir,
            PathBuf::from("/injected/.local/state/dhan-login")
        );
        assert!(!p.config_explicit);

        let p = paths(&[
            ("HOME", "/injected"),
            ("XDG_CONFIG_HOME", "/xdg/config"),
            ("XDG_STATE_HOME", "relative/is/ignored"),
        ]);
        assert_eq!(
            p.config_file,
            PathBuf::from("/xdg/config/dhan-login/config.toml")
        );
        assert_eq!(
            p.state_dir,
            PathBuf::from("/injected/.local/state/dhan-login")
        );

        let p = paths(&[
            ("DHAN_LOGIN_CONFIG", "/c.toml"),
            ("DHAN_LOGIN_STATE_DIR", "/s"),
        ]);
        assert_eq!(
            (p.config_file, p.state_dir),
            ("/c.toml".into(), "/s".into())
        );
        assert!(p.config_explicit);
    }
}
