//! Where the config file and the state folder are.

use std::path::PathBuf;

use super::ConfigError;

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
    /// so a caller can pass something other than the process environment. An empty
    /// variable counts as unset. Fails only when a default is needed and there is no
    /// home directory.
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
