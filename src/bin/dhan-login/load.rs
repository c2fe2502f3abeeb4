//! Where every command finds its config file, state folder and profile.

use anyhow::Result;
use dhan_login::{Paths, Profile, ServeSettings, TokenManager};

pub fn paths(config: Option<&std::path::Path>) -> Result<Paths> {
    let mut paths = Paths::from_env(&|k| std::env::var(k).ok())?;
    if let Some(c) = config {
        paths.config_file = c.to_path_buf();
        paths.config_explicit = true;
    }
    Ok(paths)
}

/// The profile, and a check of the daemon's tables: a malformed `[serve]` or `[notify]`
/// fails every command, not only `serve`, so that a typo there is seen at once.
pub fn load_profile(name: &str, config: Option<&std::path::Path>) -> Result<Profile> {
    let paths = paths(config)?;
    let profile = Profile::load(name, &paths, &|k| std::env::var(k).ok())?;
    ServeSettings::check_file(&paths)?;
    Ok(profile)
}

pub fn manager(name: &str, config: Option<&std::path::Path>) -> Result<TokenManager> {
    Ok(TokenManager::new(load_profile(name, config)?))
}
