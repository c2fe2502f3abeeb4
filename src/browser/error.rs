//! What can go wrong in a browser login, and how the caller should react to it.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error_class::ErrorClass;

/// The named stages of a browser login, as reported to `Progress` and in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    /// Finding and starting Chromium.
    Launch,
    /// Loading the consent page until its first screen shows.
    Open,
    /// Typing the mobile number and pressing Proceed.
    Mobile,
    /// Typing the current TOTP code (skipped on a device Dhan trusts).
    Totp,
    /// A code sent by SMS or e-mail, on accounts without TOTP.
    Otp,
    /// Typing the PIN.
    Pin,
    /// Waiting for the redirect that carries the tokenId.
    Capture,
    /// Ending the browser and removing its profile folder.
    Close,
}

impl Step {
    /// The lower-case name used in progress reports, logs and error messages (`totp`,
    /// `pin`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Launch => "launch",
            Step::Open => "open",
            Step::Mobile => "mobile",
            Step::Totp => "totp",
            Step::Otp => "otp",
            Step::Pin => "pin",
            Step::Capture => "capture",
            Step::Close => "close",
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which limit ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// `BrowserSettings::step_timeout`.
    Step(Duration),
    /// `BrowserSettings::overall_timeout`.
    Overall(Duration),
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Limit::Step(d) => write!(f, "the step timeout ({})", secs(*d)),
            Limit::Overall(d) => write!(f, "the overall timeout ({})", secs(*d)),
        }
    }
}

fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

/// Where the failure artifacts of a run went.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Artifacts {
    /// The failure happened before there was a browser to look at.
    #[default]
    None,
    /// Screenshot, page HTML and step log are in this folder.
    Saved(PathBuf),
    /// Writing them failed; the reason, without the page's content.
    Failed(String),
}

impl fmt::Display for Artifacts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Artifacts::None => Ok(()),
            Artifacts::Saved(dir) => {
                write!(f, "; screenshot, page and step log in {}", dir.display())
            }
            Artifacts::Failed(why) => write!(f, "; failure artifacts could not be saved: {why}"),
        }
    }
}

/// Every message here is free of secrets: page texts are scrubbed before they are stored.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BrowserError {
    /// No usable Chromium or Chrome was found (or the one configured is not an
    /// executable, or is the headless shell where a visible window was asked for).
    #[error("no Chromium or Chrome to run (tried: {}); {hint}", tried.join(", "))]
    NotInstalled {
        /// Every place looked at, in order (`chromium on PATH`, a file path, ...).
        tried: Vec<String>,
        /// What to install or set to fix it.
        hint: String,
    },

    /// A value handed to the login cannot be typed (not digits, wrong length) or a
    /// folder it names cannot be used.
    #[error("{field}: {message}")]
    Input {
        /// Which value: `mobile`, `pin`, `otp`, `totp_secret` or `record_dir`.
        field: &'static str,
        /// What is wrong with it; never the value itself.
        message: String,
    },

    /// The selector profile (`browser.selectors`) cannot be read, is not valid TOML,
    /// or has a field the driver does not know or of the wrong type.
    #[error("selector profile {}: {message}", path.display())]
    Selectors {
        /// The user's file, or `<built-in>`.
        path: PathBuf,
        /// What is wrong, naming the field when there is one.
        message: String,
    },

    /// Chromium was found but could not be started: its temporary profile folder, the
    /// process itself, or its DevTools endpoint failed.
    #[error("could not start {}: {message}", executable.display())]
    Launch {
        /// The binary that was run.
        executable: PathBuf,
        /// Why it failed (the browser's own words when it said any).
        message: String,
    },

    /// The page said no: wrong mobile, TOTP or PIN, or a blocked account.
    #[error("step `{step}`: the login page refused: \"{message}\"{artifacts}")]
    Rejected {
        /// The screen on display when the page said no.
        step: Step,
        /// The page's error text, scrubbed of secrets.
        message: String,
        /// Where the screenshot, page and step log went.
        artifacts: Artifacts,
    },

    /// The consentAppId is unknown, used or expired.
    #[error(
        "step `{step}`: the consent is expired or invalid: \"{message}\" (generate a new consent){artifacts}"
    )]
    ConsentExpired {
        /// The step the page said it in.
        step: Step,
        /// The page's words, scrubbed of secrets.
        message: String,
        /// Where the screenshot, page and step log went.
        artifacts: Artifacts,
    },

    /// No screen the driver knows came before the deadline.
    #[error(
        "step `{step}`: no screen the driver knows appeared within {limit} (last look: {seen}){artifacts}"
    )]
    ScreenUnknown {
        /// The step that was waiting for a screen.
        step: Step,
        /// The classifier's verdict and its reasons at the last look. Scrubbed.
        seen: String,
        /// The timeout that ran out.
        limit: Limit,
        /// Where the screenshot, page and step log went.
        artifacts: Artifacts,
    },

    /// The page shows something the driver cannot place safely (a masked and an
    /// unmasked code group at once, a group of the wrong size, words of two codes):
    /// nothing was typed into it.
    #[error("step `{step}`: nothing was typed: the page shows {seen}{artifacts}")]
    Doubtful {
        /// The step whose screen was in doubt.
        step: Step,
        /// What made it doubtful, as the classifier put it. Scrubbed.
        seen: String,
        /// Where the screenshot, page and step log went.
        artifacts: Artifacts,
    },

    /// The page asks for a code sent by SMS or e-mail and no way to get one is set up.
    #[error(
        "step `{step}`: the login page asks for a code sent by SMS or e-mail (no TOTP screen); set `otp_command` (e.g. a script that reads your SMS forwarder) or run in a terminal to type it{artifacts}"
    )]
    NeedsOtp {
        /// Always [`Step::Otp`].
        step: Step,
        /// Where the screenshot, page and step log went.
        artifacts: Artifacts,
    },

    /// The browser did not answer a command in time, the redirect did not come after the
    /// PIN screen, or no TOTP code could be had before the overall deadline. (A page that
    /// shows nothing known fails as [`BrowserError::ScreenUnknown`] instead.) Worth
    /// retrying later.
    #[error("step `{step}`: {limit} ran out{artifacts}")]
    Timeout {
        /// The step under way.
        step: Step,
        /// Which timeout, and how long it was.
        limit: Limit,
        /// Where the screenshot, page and step log went.
        artifacts: Artifacts,
    },

    /// The consent page could not be loaded (DNS, refused connection, TLS...). Worth
    /// retrying later.
    #[error("step `{step}`: the login page did not load: {message}{artifacts}")]
    Navigation {
        /// Always [`Step::Open`].
        step: Step,
        /// Chromium's network error (`net::ERR_CONNECTION_REFUSED`, ...).
        message: String,
        /// Where the screenshot, page and step log went.
        artifacts: Artifacts,
    },

    /// The browser or the protocol misbehaved (crash, lost connection, keys not landing).
    #[error("step `{step}`: {message}{artifacts}")]
    Driver {
        /// The step under way.
        step: Step,
        /// What went wrong, scrubbed of secrets.
        message: String,
        /// Where the screenshot, page and step log went.
        artifacts: Artifacts,
    },
}

impl BrowserError {
    /// How the caller should react: `Config` (fix the setup), `CredentialRejected`
    /// (stop; see [`BrowserError::is_fatal`]), `Transient` (retry later) or `Other`.
    pub fn class(&self) -> ErrorClass {
        match self {
            BrowserError::NotInstalled { .. }
            | BrowserError::Input { .. }
            | BrowserError::Selectors { .. }
            | BrowserError::NeedsOtp { .. } => ErrorClass::Config,
            BrowserError::Rejected { .. } => ErrorClass::CredentialRejected,
            BrowserError::Timeout { .. } | BrowserError::Navigation { .. } => ErrorClass::Transient,
            BrowserError::ConsentExpired { .. }
            | BrowserError::Launch { .. }
            | BrowserError::ScreenUnknown { .. }
            | BrowserError::Doubtful { .. }
            | BrowserError::Driver { .. } => ErrorClass::Other,
        }
    }

    /// True when the account said no: nothing may try these credentials again, through
    /// this path or any other, or the account gets locked.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            BrowserError::Rejected { .. } | BrowserError::ConsentExpired { .. }
        )
    }

    /// The step the login was in, when a browser was involved.
    pub fn step(&self) -> Option<Step> {
        match self {
            BrowserError::NotInstalled { .. }
            | BrowserError::Input { .. }
            | BrowserError::Selectors { .. } => None,
            BrowserError::Launch { .. } => Some(Step::Launch),
            BrowserError::Rejected { step, .. }
            | BrowserError::ConsentExpired { step, .. }
            | BrowserError::ScreenUnknown { step, .. }
            | BrowserError::Doubtful { step, .. }
            | BrowserError::NeedsOtp { step, .. }
            | BrowserError::Timeout { step, .. }
            | BrowserError::Navigation { step, .. }
            | BrowserError::Driver { step, .. } => Some(*step),
        }
    }

    /// The folder holding the screenshot, page and step log of the failed run.
    pub fn artifacts_dir(&self) -> Option<&Path> {
        match self.artifacts() {
            Some(Artifacts::Saved(dir)) => Some(dir),
            _ => None,
        }
    }

    fn artifacts(&self) -> Option<&Artifacts> {
        match self {
            BrowserError::Rejected { artifacts, .. }
            | BrowserError::ConsentExpired { artifacts, .. }
            | BrowserError::ScreenUnknown { artifacts, .. }
            | BrowserError::Doubtful { artifacts, .. }
            | BrowserError::NeedsOtp { artifacts, .. }
            | BrowserError::Timeout { artifacts, .. }
            | BrowserError::Navigation { artifacts, .. }
            | BrowserError::Driver { artifacts, .. } => Some(artifacts),
            _ => None,
        }
    }

    pub(crate) fn set_artifacts(&mut self, value: Artifacts) {
        match self {
            BrowserError::Rejected { artifacts, .. }
            | BrowserError::ConsentExpired { artifacts, .. }
            | BrowserError::ScreenUnknown { artifacts, .. }
            | BrowserError::Doubtful { artifacts, .. }
            | BrowserError::NeedsOtp { artifacts, .. }
            | BrowserError::Timeout { artifacts, .. }
            | BrowserError::Navigation { artifacts, .. }
            | BrowserError::Driver { artifacts, .. } => *artifacts = value,
            _ => {}
        }
    }

    pub(crate) fn driver(step: Step, message: impl Into<String>) -> Self {
        BrowserError::Driver {
            step,
            message: message.into(),
            artifacts: Artifacts::None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_screen_names_step_what_was_seen_and_folder() {
        let e = BrowserError::ScreenUnknown {
            step: Step::Pin,
            seen: "unknown (no mobile field and no group of digit inputs)".into(),
            limit: Limit::Step(Duration::from_secs(3)),
            artifacts: Artifacts::Saved(PathBuf::from("/tmp/a/b")),
        };
        let s = e.to_string();
        assert!(s.contains("step `pin`"), "{s}");
        assert!(s.contains("no group of digit inputs"), "{s}");
        assert!(s.contains("/tmp/a/b"), "{s}");
        assert!(s.contains("3.0s"), "{s}");
        assert!(!e.is_fatal());
        assert_eq!(e.artifacts_dir(), Some(Path::new("/tmp/a/b")));
    }

    #[test]
    fn rejections_are_fatal() {
        let e = BrowserError::Rejected {
            step: Step::Totp,
            message: "Invalid TOTP".into(),
            artifacts: Artifacts::None,
        };
        assert!(e.is_fatal());
        assert_eq!(e.class(), ErrorClass::CredentialRejected);
    }
}
