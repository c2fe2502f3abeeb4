//! `[store]`: where the shared state lives when several machines serve the same profiles.
//!
//! Without a URL every profile keeps its state in files under the state folder. With a
//! `postgres://` URL the tokens, ledger, lockouts and leases live in that database, and the
//! tokens are encrypted there with the key from `key_file` / `key_command`.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

use super::ConfigError;
use super::env::Overrides;
use super::secrets::{Origin, SecretRef};

/// How long a lease outlives its last renewal unless `lease_secs` says otherwise.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(15);

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StoreFile {
    /// May hold the database password: redacted in Debug from the parse on.
    url: Option<SecretString>,
    url_file: Option<PathBuf>,
    url_command: Option<String>,
    key_file: Option<PathBuf>,
    key_command: Option<String>,
    lease_secs: Option<f64>,
}

/// The `[store]` table merged with the environment. Start from `StoreSettings::default()`
/// (files) and set fields: more may come, so a struct literal cannot be written outside
/// the crate.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct StoreSettings {
    /// `postgres://…`; None keeps the state in files.
    pub url: Option<SecretRef>,
    /// 32 bytes, base64: the key tokens are encrypted with in the database.
    pub key: Option<SecretRef>,
    /// A lease not renewed for this long passes to the next machine that asks.
    pub lease: Duration,
}

impl StoreSettings {
    pub(crate) fn merge(
        file: StoreFile,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> (StoreSettings, Vec<ConfigError>) {
        let var = |k: &str| env(k).filter(|v| !v.is_empty());
        let home = Overrides(env);
        let mut bad = Vec::new();
        let one = |field: &'static str,
                   origins: Vec<(bool, Origin)>,
                   bad: &mut Vec<ConfigError>|
         -> Option<SecretRef> {
            let given: Vec<Origin> = origins
                .into_iter()
                .filter_map(|(set, o)| set.then_some(o))
                .collect();
            if given.len() > 1 {
                // `field` is already the dotted name (store.url); the keys are its last part.
                let key = field.trim_start_matches("store.");
                bad.push(ConfigError::Field {
                    field: field.to_owned(),
                    message: format!("give only one of {key}, {key}_file, {key}_command"),
                });
                return None;
            }
            given
                .into_iter()
                .next()
                .map(|origin| SecretRef::new(field, origin))
        };
        let url = match var("DHAN_LOGIN_STORE_URL") {
            Some(v) => Some(SecretRef::from_env("store.url", v)),
            None => one(
                "store.url",
                vec![
                    (
                        file.url.is_some(),
                        Origin::Inline(file.url.unwrap_or_else(|| SecretString::from(""))),
                    ),
                    (
                        file.url_file.is_some(),
                        Origin::File(home.expand_home(&file.url_file.unwrap_or_default())),
                    ),
                    (
                        file.url_command.is_some(),
                        Origin::Command(file.url_command.unwrap_or_default()),
                    ),
                ],
                &mut bad,
            ),
        };
        let key_file = var("DHAN_LOGIN_STORE_KEY_FILE")
            .map(PathBuf::from)
            .or(file.key_file);
        let key = one(
            "store.key",
            vec![
                (
                    key_file.is_some(),
                    Origin::File(home.expand_home(&key_file.unwrap_or_default())),
                ),
                (
                    file.key_command.is_some(),
                    Origin::Command(file.key_command.unwrap_or_default()),
                ),
            ],
            &mut bad,
        );
        let lease_secs = Overrides(env)
            .parsed("store.lease_secs", "DHAN_LOGIN_LEASE_SECS", file.lease_secs)
            .unwrap_or_else(|e| {
                bad.push(e);
                None
            });
        let lease = match lease_secs {
            // Renewal runs every third of the lease: below 3 s a busy machine loses it.
            Some(s) if !(3.0..=3600.0).contains(&s) => {
                bad.push(ConfigError::Field {
                    field: "store.lease_secs".into(),
                    message: format!("{s} is outside 3..=3600"),
                });
                DEFAULT_LEASE
            }
            Some(s) => Duration::from_secs_f64(s),
            None => DEFAULT_LEASE,
        };
        if url.is_some() && key.is_none() {
            bad.push(ConfigError::Field {
                field: "store.key_file".into(),
                message: "a store url needs key_file or key_command (DHAN_LOGIN_STORE_KEY_FILE): tokens are encrypted in the database".into(),
            });
        }
        (StoreSettings { url, key, lease }, bad)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_sources_of_one_value_name_the_field_once() {
        let file: StoreFile =
            toml::from_str("url = 'postgres://h/db'\nurl_file = '/u'\nkey_file = '/k'\n")
                .expect("a [store] table");
        let (_, bad) = StoreSettings::merge(file, &|_| None);
        let fields: Vec<(String, String)> = bad
            .into_iter()
            .map(|e| match e {
                ConfigError::Field { field, message } => (field, message),
                other => panic!("{other}"),
            })
            .collect();
        assert_eq!(
            fields,
            [(
                "store.url".to_owned(),
                "give only one of url, url_file, url_command".to_owned()
            )]
        );
    }
}
