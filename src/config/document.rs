//! The config file, read and parsed once per command. The profiles, `[store]`, `[serve]`
//! and `[notify]` are projections of this one document, so a command sees one version of
//! a file edited while it runs, and never parses it twice.

use std::path::PathBuf;

use super::check::warn_if_exposed;
use super::merge::merge;
use super::schema::{FileConfig, ProfileFile, ServeFile, read_toml};
use super::{ConfigError, DEFAULT_PROFILE, Paths, Profile, StoreSettings};

/// The config file as read once: every table, checked against the schema (an unknown key
/// or a value of the wrong type in any table fails the read), nothing merged with the
/// environment yet.
#[derive(Debug)]
pub struct Config {
    paths: Paths,
    path: PathBuf,
    file: FileConfig,
}

impl Config {
    /// Reads and parses the file at `paths` (a missing file is an empty one unless the
    /// user named it).
    pub fn load(paths: &Paths) -> Result<Config, ConfigError> {
        let (file, path) = read_toml::<FileConfig>(paths)?;
        Ok(Config {
            paths: paths.clone(),
            path,
            file,
        })
    }

    /// Where the file and the state folder are.
    pub fn paths(&self) -> &Paths {
        &self.paths
    }

    /// The profile `name` with the environment on top.
    pub fn profile(
        &self,
        name: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Profile, ConfigError> {
        let (profile, mut bad) = self.profile_lenient(name, env)?;
        match bad.len() {
            0 => Ok(profile),
            1 => Err(bad.remove(0)),
            _ => Err(ConfigError::Several(bad)),
        }
    }

    /// As `profile`, but a bad field falls back to its default and is listed instead of
    /// failing, so `config check` can name every bad field at once.
    pub fn profile_lenient(
        &self,
        name: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(Profile, Vec<ConfigError>), ConfigError> {
        let profiles = &self.file.profiles;
        let pf = match profiles.get(name) {
            Some(p) => p.clone(),
            // Without a file (or with an empty one) env vars alone may define the profile.
            None if profiles.is_empty() || name == DEFAULT_PROFILE => ProfileFile::default(),
            None => {
                return Err(ConfigError::UnknownProfile {
                    name: name.to_owned(),
                    path: self.path.clone(),
                    known: profiles.keys().cloned().collect::<Vec<_>>().join(", "),
                });
            }
        };
        let (mut profile, mut bad) = merge(name, pf, &self.paths, env);
        let (store, store_bad) = StoreSettings::merge(self.file.store.clone(), env);
        profile.store = std::sync::Arc::new(store);
        bad.extend(store_bad);
        warn_if_exposed(&self.path, &profile);
        Ok((profile, bad))
    }

    /// Every profile name in the file.
    pub fn profile_names(&self) -> Vec<String> {
        self.file.profiles.keys().cloned().collect()
    }

    /// The `[serve]` table as written.
    pub(crate) fn serve(&self) -> &ServeFile {
        &self.file.serve
    }

    /// The `[notify]` table as written.
    #[cfg(feature = "serve")]
    pub(crate) fn notify(&self) -> &super::schema::NotifyFile {
        &self.file.notify
    }
}

impl Profile {
    /// Loads `name` from the file at `paths` and applies the environment on top: a
    /// [`Config`] read for this profile alone.
    pub fn load(
        name: &str,
        paths: &Paths,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Profile, ConfigError> {
        Config::load(paths)?.profile(name, env)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file replaced after the read changes nothing a projection says: the profile and
    /// the daemon's tables come from the same version of it.
    #[test]
    fn every_projection_comes_from_the_one_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.toml");
        let write = |id: &str, port: u16| {
            std::fs::write(
                &file,
                format!(
                    "[serve]\nlisten = \"127.0.0.1:{port}\"\n[profiles.p]\nclient_id = \"{id}\"\n"
                ),
            )
            .unwrap()
        };
        write("1000000001", 9001);
        let paths = Paths {
            config_file: file.clone(),
            config_explicit: true,
            state_dir: dir.path().join("state"),
        };
        let config = Config::load(&paths).unwrap();
        write("1000000002", 9002);
        std::fs::remove_file(&file).unwrap();
        let profile = config.profile("p", &|_| None).unwrap();
        assert_eq!(profile.client_id.as_deref(), Some("1000000001"));
        assert_eq!(config.serve().listen.as_deref(), Some("127.0.0.1:9001"));
        assert_eq!(config.profile_names(), ["p"]);
        // Read again, the file is gone: only a new read sees it.
        assert!(Config::load(&paths).is_err());
    }

    /// `~` in a path setting is the injected environment's `HOME`, not this process's:
    /// a caller that hands in the environment hands in the home with it.
    #[test]
    fn a_tilde_is_the_injected_home() {
        use secrecy::ExposeSecret;
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        std::fs::create_dir_all(home.join(".dhan")).unwrap();
        std::fs::write(home.join(".dhan/pin"), "2468\n").unwrap();
        let file = dir.path().join("config.toml");
        std::fs::write(
            &file,
            "[profiles.p]\npin_file = \"~/.dhan/pin\"\n\
             [profiles.p.browser]\nartifacts_dir = \"~/artifacts\"\n",
        )
        .unwrap();
        let paths = Paths {
            config_file: file,
            config_explicit: true,
            state_dir: dir.path().join("state"),
        };
        let home_text = home.to_str().unwrap().to_owned();
        let env = move |k: &str| (k == "HOME").then(|| home_text.clone());
        let profile = Config::load(&paths).unwrap().profile("p", &env).unwrap();
        let pin = profile.get(crate::secret::Secret::Pin).unwrap();
        assert_eq!(pin.get().unwrap().expose_secret(), "2468");
        assert_eq!(profile.browser.artifacts_dir, home.join("artifacts"));
    }
}
