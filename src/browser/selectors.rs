//! The selector profile: every selector and error text the driver relies on, in one
//! place that a user can override from a TOML file when Dhan changes its page.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::BrowserError;

const BUILT_IN: &str = include_str!("default_selectors.toml");

/// Candidates for each element of the consent login, tried in order.
///
/// A candidate is a CSS selector (optionally `css=`-prefixed), `text=Needle` (innermost
/// visible element containing Needle, case-insensitive), `CSS >> text=Needle`, or
/// `xpath=EXPR`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SelectorProfile {
    pub mobile_input: Vec<String>,
    pub mobile_submit: Vec<String>,
    pub totp_screen: Vec<String>,
    pub totp_boxes: Vec<String>,
    pub totp_single: Vec<String>,
    pub totp_submit: Vec<String>,
    pub pin_screen: Vec<String>,
    pub pin_boxes: Vec<String>,
    pub pin_single: Vec<String>,
    pub pin_submit: Vec<String>,
    pub error: Vec<String>,
    pub error_texts: Vec<String>,
    pub expired_texts: Vec<String>,
    pub submit_grace_ms: u64,
    pub poll_interval_ms: u64,
}

/// A user file: any subset of the fields, each replacing the built-in value whole.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Overrides {
    mobile_input: Option<Vec<String>>,
    mobile_submit: Option<Vec<String>>,
    totp_screen: Option<Vec<String>>,
    totp_boxes: Option<Vec<String>>,
    totp_single: Option<Vec<String>>,
    totp_submit: Option<Vec<String>>,
    pin_screen: Option<Vec<String>>,
    pin_boxes: Option<Vec<String>>,
    pin_single: Option<Vec<String>>,
    pin_submit: Option<Vec<String>>,
    error: Option<Vec<String>>,
    error_texts: Option<Vec<String>>,
    expired_texts: Option<Vec<String>>,
    submit_grace_ms: Option<u64>,
    poll_interval_ms: Option<u64>,
}

impl SelectorProfile {
    /// The text of the built-in profile, a starting point for a user's own file.
    pub fn built_in_toml() -> &'static str {
        BUILT_IN
    }

    pub fn built_in() -> Result<Self, BrowserError> {
        let profile: SelectorProfile =
            toml::from_str(BUILT_IN).map_err(|e| BrowserError::Selectors {
                path: PathBuf::from("<built-in>"),
                message: e.to_string(),
            })?;
        profile
            .validate()
            .map_err(|message| BrowserError::Selectors {
                path: PathBuf::from("<built-in>"),
                message,
            })?;
        Ok(profile)
    }

    /// The built-in profile with the fields of `user` (a TOML file) laid over it.
    pub fn load(user: Option<&Path>) -> Result<Self, BrowserError> {
        let mut profile = Self::built_in()?;
        let Some(path) = user else {
            return Ok(profile);
        };
        let bad = |message: String| BrowserError::Selectors {
            path: path.to_path_buf(),
            message,
        };
        let text =
            std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
        let o: Overrides = toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
        let set = |field: &mut Vec<String>, value: Option<Vec<String>>| {
            if let Some(v) = value {
                *field = v;
            }
        };
        set(&mut profile.mobile_input, o.mobile_input);
        set(&mut profile.mobile_submit, o.mobile_submit);
        set(&mut profile.totp_screen, o.totp_screen);
        set(&mut profile.totp_boxes, o.totp_boxes);
        set(&mut profile.totp_single, o.totp_single);
        set(&mut profile.totp_submit, o.totp_submit);
        set(&mut profile.pin_screen, o.pin_screen);
        set(&mut profile.pin_boxes, o.pin_boxes);
        set(&mut profile.pin_single, o.pin_single);
        set(&mut profile.pin_submit, o.pin_submit);
        set(&mut profile.error, o.error);
        set(&mut profile.error_texts, o.error_texts);
        set(&mut profile.expired_texts, o.expired_texts);
        if let Some(v) = o.submit_grace_ms {
            profile.submit_grace_ms = v;
        }
        if let Some(v) = o.poll_interval_ms {
            profile.poll_interval_ms = v;
        }
        profile.validate().map_err(bad)?;
        Ok(profile)
    }

    /// Catches what would otherwise only show up as a timeout on the live page.
    fn validate(&self) -> Result<(), String> {
        let required = [
            ("mobile_input", &self.mobile_input),
            ("mobile_submit", &self.mobile_submit),
            ("pin_screen", &self.pin_screen),
        ];
        for (name, list) in required {
            if list.is_empty() {
                return Err(format!("`{name}` needs at least one candidate"));
            }
        }
        if self.totp_boxes.is_empty() && self.totp_single.is_empty() {
            return Err("`totp_boxes` and `totp_single` are both empty".into());
        }
        if self.pin_boxes.is_empty() && self.pin_single.is_empty() {
            return Err("`pin_boxes` and `pin_single` are both empty".into());
        }
        let selector_fields = [
            ("mobile_input", &self.mobile_input),
            ("mobile_submit", &self.mobile_submit),
            ("totp_screen", &self.totp_screen),
            ("totp_boxes", &self.totp_boxes),
            ("totp_single", &self.totp_single),
            ("totp_submit", &self.totp_submit),
            ("pin_screen", &self.pin_screen),
            ("pin_boxes", &self.pin_boxes),
            ("pin_single", &self.pin_single),
            ("pin_submit", &self.pin_submit),
            ("error", &self.error),
        ];
        for (name, list) in selector_fields {
            for c in list {
                check_candidate(c).map_err(|why| format!("`{name}`: candidate `{c}` {why}"))?;
            }
        }
        for (name, list) in [
            ("error_texts", &self.error_texts),
            ("expired_texts", &self.expired_texts),
        ] {
            if list.iter().any(|t| t.trim().is_empty()) {
                return Err(format!(
                    "`{name}` holds an empty text, which would match every page"
                ));
            }
        }
        if !(5..=1000).contains(&self.poll_interval_ms) {
            return Err("`poll_interval_ms` must be between 5 and 1000".into());
        }
        if self.submit_grace_ms > 10_000 {
            return Err("`submit_grace_ms` must be at most 10000".into());
        }
        Ok(())
    }

    pub(crate) fn submit_grace(&self) -> Duration {
        Duration::from_millis(self.submit_grace_ms)
    }

    pub(crate) fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms)
    }
}

/// Only the shape is checked here; a CSS selector the browser rejects is reported (and
/// skipped) when it is first tried.
fn check_candidate(c: &str) -> Result<(), &'static str> {
    let c = c.trim();
    if c.is_empty() {
        return Err("is empty");
    }
    let needle = if let Some(rest) = c.strip_prefix("text=") {
        Some(rest)
    } else {
        c.split_once(">> text=").map(
            |(scope, needle)| {
                if scope.trim().is_empty() { "" } else { needle }
            },
        )
    };
    if needle.is_some_and(|n| n.trim().is_empty()) {
        return Err("has nothing to match");
    }
    if c.strip_prefix("xpath=")
        .is_some_and(|x| x.trim().is_empty())
        || c.strip_prefix("css=").is_some_and(|x| x.trim().is_empty())
    {
        return Err("has nothing after the prefix");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_profile_parses_and_covers_the_stand_in() {
        let p = SelectorProfile::built_in().unwrap();
        assert_eq!(
            p.mobile_input[0],
            r#"input[type="tel"][formcontrolname="mobileNumber"]"#
        );
        assert!(p.totp_screen.iter().any(|c| c == "text=Verify with TOTP"));
        assert!(p.pin_screen.iter().any(|c| c == "text=Enter PIN"));
        assert!(p.error.iter().any(|c| c == ".error-message"));
        for text in ["Invalid TOTP", "Incorrect PIN", "is not registered"] {
            assert!(p.error_texts.iter().any(|t| t == text), "{text}");
        }
        assert!(p.expired_texts.iter().any(|t| t == "Session expired"));
    }

    #[test]
    fn user_file_replaces_only_its_fields() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sel.toml");
        std::fs::write(&path, "pin_boxes = ['input.pin']\nsubmit_grace_ms = 0\n").unwrap();
        let p = SelectorProfile::load(Some(&path)).unwrap();
        let base = SelectorProfile::built_in().unwrap();
        assert_eq!(p.pin_boxes, vec!["input.pin".to_string()]);
        assert_eq!(p.submit_grace_ms, 0);
        assert_eq!(p.mobile_input, base.mobile_input);
    }

    #[test]
    fn user_file_typos_and_empty_candidates_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sel.toml");
        std::fs::write(&path, "pin_box = ['x']\n").unwrap();
        let e = SelectorProfile::load(Some(&path)).unwrap_err().to_string();
        assert!(e.contains("pin_box"), "{e}");
        std::fs::write(&path, "mobile_submit = ['text=  ']\n").unwrap();
        let e = SelectorProfile::load(Some(&path)).unwrap_err().to_string();
        assert!(e.contains("mobile_submit"), "{e}");
        std::fs::write(&path, "error_texts = ['']\n").unwrap();
        assert!(SelectorProfile::load(Some(&path)).is_err());
    }

    #[test]
    fn candidate_shapes() {
        assert!(check_candidate("button >> text=Proceed").is_ok());
        assert!(check_candidate("text=Proceed").is_ok());
        assert!(check_candidate(" >> text=Proceed").is_err());
        assert!(check_candidate("xpath=").is_err());
        assert!(check_candidate("").is_err());
    }
}
