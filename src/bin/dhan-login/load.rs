//! Where every command finds its config file, state folder and profile.

use anyhow::Result;
use dhan_login::{Config, Paths, Profile, TokenManager};

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

/// The profile's manager, asking the daemon `serve.listen` names first.
pub fn manager(name: &str, file: Option<&std::path::Path>) -> Result<TokenManager> {
    Ok(TokenManager::from_config(&config(file)?, name, &|k| {
        std::env::var(k).ok()
    })?)
}
