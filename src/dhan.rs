//! Dhan's fixed numbers, written once: every layer that counts consents, TOTP steps,
//! mint windows, token lives or IST days reads them from here. Where each comes from:
//! Dhan's v2 documentation, and the public projects running against the live API that
//! docs/DHAN_TOKENS.md cites (with how sure each fact is).

use std::time::Duration;

/// Dhan's documented daily limit of generate-consent calls per client id (IST day):
/// "at most 25 consentAppId per day per user" (v2 docs, authentication).
pub(crate) const DHAN_CONSENT_LIMIT: u32 = 25;

/// How long a TOTP code lasts, in seconds: RFC 6238's default step, which Dhan's TOTP
/// (6 digits, SHA-1, set up on Dhan Web) uses.
pub(crate) const TOTP_STEP_SECS: i64 = 30;

/// [`TOTP_STEP_SECS`] as a duration: the pause Dhan wants after a refused code.
pub(crate) const TOTP_STEP: Duration = Duration::from_secs(TOTP_STEP_SECS as u64);

/// How long a tokenId whose exchange failed on the way is kept for the next run to
/// exchange. Dhan does not document a tokenId's life; it is an OAuth authorization code
/// in all but name, and RFC 6749 (section 4.1.2) recommends at most 10 minutes for those.
/// Past this the kept tokenId is dropped untried: a secret is kept no longer than it can
/// be of use. One tried too late costs a refused request, then the usual login.
pub(crate) const TOKEN_ID_LIFETIME: Duration = Duration::from_secs(600);

/// Dhan's window between two generateAccessToken calls for one client id: "Token can be
/// generated once every 2 minutes", and a call inside it restarts it (docs/DHAN_TOKENS.md).
pub(crate) const MINT_WINDOW: Duration = Duration::from_secs(120);

/// How long dhan-login leaves between two generateAccessToken attempts for one client
/// id: Dhan's 2 minutes (which an early attempt restarts) and 5 s for the clocks of
/// two machines. Public as `api::MINT_INTERVAL`.
pub const MINT_INTERVAL: Duration = Duration::from_secs(MINT_WINDOW.as_secs() + 5);

/// A token's life: exactly 86,400 s from the second it was minted (v2 docs; seen by
/// several projects, docs/DHAN_TOKENS.md). Only the stand-in mints tokens, so only it
/// (feature `mock`) uses this.
#[cfg(feature = "mock")]
pub(crate) const TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

/// India Standard Time is UTC+05:30: Dhan writes its times in it without an offset
/// (`expiryTime`, `tokenValidity`) and counts its days (the consent limit) in it.
pub(crate) const IST_OFFSET_SECS: i32 = 5 * 3600 + 30 * 60;

/// The TOTP step a Unix time (seconds) falls in.
pub(crate) fn totp_step(unix_secs: i64) -> i64 {
    unix_secs.div_euclid(TOTP_STEP_SECS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_is_thirty_seconds_and_times_before_1970_round_down() {
        assert_eq!(totp_step(0), 0);
        assert_eq!(totp_step(29), 0);
        assert_eq!(totp_step(30), 1);
        assert_eq!(totp_step(-1), -1);
        assert_eq!(TOTP_STEP.as_secs() as i64, TOTP_STEP_SECS);
    }
}
