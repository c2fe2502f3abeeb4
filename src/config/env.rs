//! Overrides from the environment, read the same way by every table of the config file
//! (profiles, `[store]`, `[serve]`, `[notify]`): an empty variable counts as unset, and
//! a value that does not parse is reported with its variable, never silently replaced
//! by the file's. Durations have one range per unit, whatever the setting:
//! `*_secs` above 0 and at most a day, `*_minutes` from 0 to a day.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use super::ConfigError;

/// The longest any `*_secs` or `*_minutes` setting may be.
const A_DAY_SECS: f64 = 86_400.0;

/// The environment, as every settings table reads it.
#[derive(Clone, Copy)]
pub(crate) struct Overrides<'a>(pub(crate) &'a dyn Fn(&str) -> Option<String>);

impl Overrides<'_> {
    /// The variable's value, unless unset or empty.
    pub(crate) fn var(&self, name: &str) -> Option<String> {
        (self.0)(name).filter(|v| !v.is_empty())
    }

    /// `path` with a leading `~` replaced by this environment's `HOME`, so that a caller
    /// who injects the environment injects the home too.
    pub(crate) fn expand_home(&self, path: &Path) -> PathBuf {
        match (path.strip_prefix("~"), self.var("HOME")) {
            (Ok(rest), Some(home)) => PathBuf::from(home).join(rest),
            _ => path.to_path_buf(),
        }
    }

    /// The variable `name` read as a `T`, else the file's value. `field` names the
    /// setting in the error.
    pub(crate) fn parsed<T: Setting>(
        &self,
        field: &str,
        name: &str,
        file: Option<T>,
    ) -> Result<Option<T>, ConfigError> {
        match self.var(name) {
            Some(v) => v.trim().parse().map(Some).map_err(|_| ConfigError::Field {
                field: field.to_owned(),
                message: format!("{name}=`{v}` is not {}", T::WHAT),
            }),
            None => Ok(file),
        }
    }
}

/// A value a variable may hold, and how an error calls it.
pub(crate) trait Setting: FromStr {
    const WHAT: &'static str;
}

impl Setting for f64 {
    const WHAT: &'static str = "a number";
}

impl Setting for bool {
    const WHAT: &'static str = "true or false";
}

/// A `*_secs` setting: above 0, at most a day.
pub(crate) fn seconds(field: &str, s: f64) -> Result<Duration, ConfigError> {
    if !(s > 0.0 && s <= A_DAY_SECS) {
        return Err(ConfigError::Field {
            field: field.to_owned(),
            message: format!("{s} must be above 0 and at most 86400 (a day)"),
        });
    }
    Ok(Duration::from_secs_f64(s))
}

/// A `*_minutes` setting: from 0 to a day.
pub(crate) fn minutes(field: &str, m: f64) -> Result<Duration, ConfigError> {
    if !(0.0..=A_DAY_SECS / 60.0).contains(&m) {
        return Err(ConfigError::Field {
            field: field.to_owned(),
            message: format!("{m} is outside 0..=1440"),
        });
    }
    Ok(Duration::from_secs_f64(m * 60.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_leading_tilde_is_the_environments_home() {
        let env = |k: &str| (k == "HOME").then(|| "/injected".to_owned());
        let o = Overrides(&env);
        assert_eq!(
            o.expand_home(Path::new("~/a/b")),
            Path::new("/injected/a/b")
        );
        assert_eq!(o.expand_home(Path::new("a/~/b")), Path::new("a/~/b"));
        assert_eq!(o.expand_home(Path::new("~user/b")), Path::new("~user/b"));
        let homeless = |_: &str| None;
        assert_eq!(
            Overrides(&homeless).expand_home(Path::new("~/a")),
            Path::new("~/a")
        );
    }

    #[test]
    fn an_override_wins_and_a_bad_one_is_named_not_replaced() {
        let env = |k: &str| match k {
            "A" => Some("2.5".to_owned()),
            "B" => Some("soon".to_owned()),
            "E" => Some(String::new()),
            _ => None,
        };
        let o = Overrides(&env);
        assert_eq!(o.parsed("a", "A", Some(1.0)).unwrap(), Some(2.5));
        assert_eq!(o.parsed("e", "E", Some(1.0)).unwrap(), Some(1.0));
        let e = o.parsed("b", "B", Some(1.0)).unwrap_err().to_string();
        assert_eq!(e, "b: B=`soon` is not a number");
        let e = o.parsed::<bool>("b", "B", None).unwrap_err().to_string();
        assert_eq!(e, "b: B=`soon` is not true or false");
    }

    #[test]
    fn durations_have_one_range_per_unit() {
        assert!(seconds("x", 0.0).is_err());
        assert_eq!(seconds("x", 0.5).unwrap(), Duration::from_millis(500));
        assert_eq!(seconds("x", 86_400.0).unwrap(), Duration::from_secs(86_400));
        let e = seconds("x", 86_401.0).unwrap_err().to_string();
        assert!(e.starts_with("x: 86401 must be above 0"), "{e}");
        assert_eq!(minutes("m", 0.0).unwrap(), Duration::ZERO);
        assert_eq!(minutes("m", 1440.0).unwrap(), Duration::from_secs(86_400));
        assert!(minutes("m", -1.0).is_err() && minutes("m", 1441.0).is_err());
    }
}
