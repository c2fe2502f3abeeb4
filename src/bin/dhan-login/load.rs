//! Where every command finds its config file, state folder and profile.

use anyhow::Result;
use dhan_login::{Config, Paths, Profile, TokenManager, serve::ServeSettings};

pub fn paths(config: Option<&std::path::Path>) -> Result<Paths> {
    let mut paths = Paths::from_env(&|k| std::env::var(k).ok())?;
    if let Some(c) = config {
        paths.config_file = c.to_path_buf();
        paths.config_explicit = true;
    }
    Ok(paths)
}

/// The config file, read and parsed once for the whole command. Every table is checked
/// by the read: a malformed `[serve]` or `[notify]` fails every command, not only
/// `serve`, so that a typo there is seen at once.
pub fn config(file: Option<&std::path::Path>) -> Result<Config> {
    Ok(Config::load(&paths(file)?)?)
}

pub fn load_profile(name: &str, file: Option<&std::path::Path>) -> Result<Profile> {
    Ok(config(file)?.profile(name, &|k| std::env::var(k).ok())?)
}

/// The profile's manager, for a command that never asks a daemon for its token.
pub fn manager(name: &str, file: Option<&std::path::Path>) -> Result<TokenManager> {
    Ok(TokenManager::new(load_profile(name, file)?))
}

/// The profile's manager for `token`, `exec` and `ip`, which ask the daemon
/// `serve.listen` names first. The daemon's settings must then be valid as a whole.
pub fn daemon_first(name: &str, file: Option<&std::path::Path>) -> Result<TokenManager> {
    let config = config(file)?;
    let env = |k: &str| std::env::var(k).ok();
    ServeSettings::from_config(&config, &env)?;
    Ok(TokenManager::from_config(&config, name, &env)?)
}
