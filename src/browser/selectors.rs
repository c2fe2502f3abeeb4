//! The page profile: the words, hints and selector candidates the screen classifier
//! uses, in one place that a user can override from a TOML file when Dhan changes its
//! page.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::BrowserError;

const BUILT_IN: &str = include_str!("default_selectors.toml");
/// The fixed wait after a code that `submit_settle_cap_ms` replaced; still read as it.
const RENAMED_GRACE: &str = "submit_grace_ms";

/// What the classifier looks for on the consent login page (see the built-in file,
/// [`SelectorProfile::built_in_toml`], for what each field means).
///
/// A candidate is a CSS selector (optionally `css=`-prefixed), `text=Needle` (innermost
/// visible element containing Needle, case-insensitive), `CSS >> text=Needle`, or
/// `xpath=EXPR`. A word field holds words or phrases matched as whole words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SelectorProfile {
    /// Candidates for the mobile number field.
    pub mobile_input: Vec<String>,
    /// Words near a group of digit inputs that mark it as the TOTP screen.
    pub totp_words: Vec<String>,
    /// Words that mark a code sent by SMS or e-mail; such a screen never gets a TOTP.
    pub otp_words: Vec<String>,
    /// Words that mark the PIN screen.
    pub pin_words: Vec<String>,
    /// Words that say "a code goes here" without saying which; an unmasked group with
    /// only these is taken for the TOTP screen.
    pub code_words: Vec<String>,
    /// Candidates for masked inputs (or their ancestors): an input matching one is a PIN
    /// box. `type="password"` and a computed `-webkit-text-security` count besides.
    pub masked: Vec<String>,
    /// Candidates that are the TOTP inputs whatever the other signals say. Empty by
    /// default; for a page the classifier gets wrong.
    pub totp_inputs: Vec<String>,
    /// Like `totp_inputs`, for the SMS/e-mail OTP screen.
    pub otp_inputs: Vec<String>,
    /// Like `totp_inputs`, for the PIN screen.
    pub pin_inputs: Vec<String>,
    /// Words of a screen's own button (Proceed, Continue, Verify, ...).
    pub submit_words: Vec<String>,
    /// Words that rule a button out as the screen's button (Resend, Back, ...).
    pub not_submit_words: Vec<String>,
    /// Candidates for the mobile screen's button, tried before the word search.
    pub mobile_submit: Vec<String>,
    /// Candidates for a code screen's button, tried before the word search.
    pub code_submit: Vec<String>,
    /// Candidates for on-page error messages; a visible, non-empty match ends the login
    /// and is never retried.
    pub error: Vec<String>,
    /// Candidates for success or information toasts, whose text is never taken for an
    /// error.
    pub not_error: Vec<String>,
    /// Visible text anywhere on the page that is an error (case-insensitive).
    pub error_texts: Vec<String>,
    /// Among the error texts, those that mean the consentAppId is spent or unknown.
    pub expired_texts: Vec<String>,
    /// After the last digit, the longest (milliseconds) the driver waits for the page
    /// to run what the typing set in motion before it presses the screen's button
    /// (unless the page sent the code meanwhile). The wait ends as soon as the page has
    /// nothing left in motion; this cap only bounds a page that never settles.
    pub submit_settle_cap_ms: u64,
    /// The longest (milliseconds) a screen may stay after its button was pressed, with
    /// nothing sent, before the button is pressed once more (once per screen); sooner
    /// when the page has settled after the press without sending or navigating.
    pub proceed_retry_ms: u64,
    /// The longest (milliseconds) one look waits for the page to change before
    /// looking again anyway.
    pub look_interval_ms: u64,
}

impl SelectorProfile {
    /// The text of the built-in profile, a starting point for a user's own file.
    pub fn built_in_toml() -> &'static str {
        BUILT_IN
    }

    /// The profile the driver uses when `browser.selectors` is not set. Fails only if the
    /// built-in file were broken, which a unit test rules out.
    pub fn built_in() -> Result<Self, BrowserError> {
        Self::parse(BUILT_IN.parse::<toml::Table>(), Path::new("<built-in>"))
    }

    /// The built-in profile with the fields of `user` (a TOML file) laid over it, each
    /// field replacing the built-in value whole.
    pub fn load(user: Option<&Path>) -> Result<Self, BrowserError> {
        let Some(path) = user else {
            return Self::built_in();
        };
        let bad = |message: String| BrowserError::Selectors {
            path: path.to_path_buf(),
            message,
        };
        let text =
            std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
        let overrides: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            // toml's message quotes the offending line; the span is enough to find it.
            bad(format!("not valid TOML ({})", e.message()))
        })?;
        let mut table: toml::Table =
            BUILT_IN
                .parse()
                .map_err(|e: toml::de::Error| BrowserError::Selectors {
                    path: PathBuf::from("<built-in>"),
                    message: e.to_string(),
                })?;
        for (key, value) in overrides {
            // Its successor: a fixed wait then, the longest wait now.
            let key = if key == RENAMED_GRACE {
                tracing::warn!(
                    "the page profile's `{RENAMED_GRACE}` is now `submit_settle_cap_ms`, the longest wait for the page to settle after a code"
                );
                "submit_settle_cap_ms".to_string()
            } else {
                key
            };
            if !table.contains_key(&key) {
                let mut known: Vec<&str> = table.keys().map(String::as_str).collect();
                known.sort_unstable();
                return Err(bad(format!(
                    "unknown field `{key}` (known: {})",
                    known.join(", ")
                )));
            }
            table.insert(key, value);
        }
        Self::parse(Ok(table), path)
    }

    fn parse(
        table: Result<toml::Table, toml::de::Error>,
        path: &Path,
    ) -> Result<Self, BrowserError> {
        let bad = |message: String| BrowserError::Selectors {
            path: path.to_path_buf(),
            message,
        };
        let table = table.map_err(|e| bad(e.message().to_string()))?;
        let profile: SelectorProfile = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| bad(e.message().to_string()))?;
        profile.validate().map_err(bad)?;
        Ok(profile)
    }

    /// Catches what would otherwise only show up as a timeout on the live page.
    fn validate(&self) -> Result<(), String> {
        let element_fields = [
            ("mobile_input", &self.mobile_input),
            ("masked", &self.masked),
            ("totp_inputs", &self.totp_inputs),
            ("otp_inputs", &self.otp_inputs),
            ("pin_inputs", &self.pin_inputs),
            ("mobile_submit", &self.mobile_submit),
            ("code_submit", &self.code_submit),
            ("error", &self.error),
            ("not_error", &self.not_error),
        ];
        for (name, list) in element_fields {
            for c in list {
                check_candidate(c).map_err(|why| format!("`{name}`: candidate `{c}` {why}"))?;
            }
        }
        let word_fields = [
            ("totp_words", &self.totp_words),
            ("otp_words", &self.otp_words),
            ("pin_words", &self.pin_words),
            ("code_words", &self.code_words),
            ("submit_words", &self.submit_words),
            ("not_submit_words", &self.not_submit_words),
            ("error_texts", &self.error_texts),
            ("expired_texts", &self.expired_texts),
        ];
        for (name, list) in word_fields {
            if list.iter().any(|t| t.trim().is_empty()) {
                return Err(format!(
                    "`{name}` holds an empty text, which would match every page"
                ));
            }
        }
        for (name, list) in [
            ("pin_words", &self.pin_words),
            ("submit_words", &self.submit_words),
        ] {
            if list.is_empty() {
                return Err(format!("`{name}` needs at least one word"));
            }
        }
        if !(10..=2000).contains(&self.look_interval_ms) {
            return Err("`look_interval_ms` must be between 10 and 2000".into());
        }
        if self.submit_settle_cap_ms > 10_000 {
            return Err("`submit_settle_cap_ms` must be at most 10000".into());
        }
        if !(500..=30_000).contains(&self.proceed_retry_ms) {
            return Err("`proceed_retry_ms` must be between 500 and 30000".into());
        }
        Ok(())
    }

    pub(crate) fn submit_settle_cap(&self) -> Duration {
        Duration::from_millis(self.submit_settle_cap_ms)
    }

    pub(crate) fn proceed_retry(&self) -> Duration {
        Duration::from_millis(self.proceed_retry_ms)
    }

    pub(crate) fn look_interval(&self) -> Duration {
        Duration::from_millis(self.look_interval_ms)
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
    fn built_in_profile_parses_and_does_not_lean_on_type_or_maxlength() {
        let p = SelectorProfile::built_in().unwrap();
        for c in p.mobile_input.iter().chain(&p.masked) {
            assert!(!c.contains("maxlength"), "{c}");
            assert!(!c.contains("type=\"tel\""), "{c}");
        }
        assert!(p.masked.iter().any(|c| c == ".code-hidden"));
        assert!(p.error.iter().any(|c| c == ".toast-error"));
        assert!(p.submit_words.iter().any(|w| w == "continue"));
        assert!(p.expired_texts.iter().any(|t| t == "Session expired"));
        assert!(p.totp_inputs.is_empty() && p.pin_inputs.is_empty());
    }

    #[test]
    fn user_file_replaces_only_its_fields() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sel.toml");
        std::fs::write(
            &path,
            "pin_inputs = ['input.pin']\nsubmit_settle_cap_ms = 0\n",
        )
        .unwrap();
        let p = SelectorProfile::load(Some(&path)).unwrap();
        let base = SelectorProfile::built_in().unwrap();
        assert_eq!(p.pin_inputs, vec!["input.pin".to_string()]);
        assert_eq!(p.submit_settle_cap_ms, 0);
        assert_eq!(p.mobile_input, base.mobile_input);
        // A file written for the fixed grace it replaced still loads, as the cap.
        std::fs::write(&path, "submit_grace_ms = 700\n").unwrap();
        let p = SelectorProfile::load(Some(&path)).unwrap();
        assert_eq!(p.submit_settle_cap_ms, 700);
    }

    #[test]
    fn user_file_typos_and_empty_candidates_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sel.toml");
        std::fs::write(&path, "pin_box = ['x']\n").unwrap();
        let e = SelectorProfile::load(Some(&path)).unwrap_err().to_string();
        assert!(e.contains("pin_box") && e.contains("pin_inputs"), "{e}");
        std::fs::write(&path, "mobile_submit = ['text=  ']\n").unwrap();
        let e = SelectorProfile::load(Some(&path)).unwrap_err().to_string();
        assert!(e.contains("mobile_submit"), "{e}");
        std::fs::write(&path, "error_texts = ['']\n").unwrap();
        assert!(SelectorProfile::load(Some(&path)).is_err());
        std::fs::write(&path, "pin_words = 3\n").unwrap();
        let e = SelectorProfile::load(Some(&path)).unwrap_err().to_string();
        assert!(e.contains("sel.toml"), "{e}");
    }

    #[test]
    fn a_secret_pasted_into_the_file_is_not_echoed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sel.toml");
        std::fs::write(&path, "pin_words = [\"135790\"\n").unwrap();
        let e = SelectorProfile::load(Some(&path)).unwrap_err().to_string();
        assert!(!e.contains("135790"), "{e}");
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
