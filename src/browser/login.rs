//! What a consent login is given (the page's URL, the secrets, where an SMS code comes
//! from) and what a look at the page without logging in gives back: the types the
//! entry points in `mod.rs` and the files that drive the page share.

use std::fmt;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;

use secrecy::SecretString;
use url::Url;

use super::error::Artifacts;
use crate::progress::Progress;
use crate::redact::Scrubber;
use crate::totp::TotpGenerator;

/// Where a code sent by SMS or e-mail comes from, for accounts whose login page asks for
/// one instead of a TOTP. Asked only once that screen is on display.
pub trait OtpSource: Send + Sync {
    /// The six digits, or why they could not be had (no secret in the text).
    fn code(&self) -> Pin<Box<dyn Future<Output = Result<SecretString, String>> + Send + '_>>;
}

/// One consent login to drive.
pub struct ConsentLogin<'a> {
    /// `{auth}/login/consentApp-login?consentAppId=...`
    pub consent_url: Url,
    /// Narrows the capture to this origin and path; `None` captures the first request
    /// with a `tokenId` query parameter, wherever it goes.
    pub redirect_url: Option<&'a Url>,
    /// The account's registered mobile number, digits only.
    pub mobile: &'a SecretString,
    /// The account's login PIN (six digits).
    pub pin: &'a SecretString,
    /// Asked for a code only once the TOTP screen is on display; without one, a TOTP
    /// screen fails the login (configuration error).
    pub totp: Option<&'a TotpGenerator>,
    /// For a page that asks for an SMS/e-mail OTP; without one, such a page fails the
    /// login (no TOTP is ever typed there).
    pub otp: Option<&'a dyn OtpSource>,
    /// Masks the secrets known to the caller; the TOTP codes and the tokenId are added
    /// to it here (and the mobile, PIN and consentAppId, in case they were not).
    pub scrubber: Scrubber,
    /// Told when each step starts and ends (see [`capture_token_id`](super::capture_token_id) for the steps).
    pub progress: &'a dyn Progress,
    /// `dhan-login record --out DIR`: each screen's DOM (scrubbed) and the selector
    /// candidates that matched on it.
    pub record_dir: Option<&'a Path>,
}

/// Shows what a login is for, never its secrets: the consent URL without its query (the
/// consentAppId is as good as a password until used), no mobile, PIN or codes.
impl fmt::Debug for ConsentLogin<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut consent_url = self.consent_url.clone();
        consent_url.set_query(None);
        f.debug_struct("ConsentLogin")
            .field("consent_url", &consent_url.as_str())
            .field("redirect_url", &self.redirect_url.map(Url::as_str))
            .field("totp", &self.totp.is_some())
            .field("otp", &self.otp.is_some())
            .field("record_dir", &self.record_dir)
            .finish_non_exhaustive()
    }
}

/// What `dhan-login doctor` saw on the consent page.
#[derive(Debug, Clone)]
pub struct PageReport {
    /// The classifier's verdict: `mobile` on a page the login can start on; also
    /// `totp`, `otp`, `pin`, `error`, `expired`, `unknown`, `unplaced`, `ambiguous`,
    /// `navigating`, `pending`.
    pub screen: String,
    /// The signals behind it (scrubbed).
    pub reasons: Vec<String>,
    /// Screenshot, page and step log when the screen is not the mobile screen.
    pub artifacts: Artifacts,
}
