//! The stand-in's settings and the names tests use with it: its accounts, the login page
//! it serves, the endpoints it counts and the faults it can inject. A leaf of `mock`: the
//! parent and the files that serve requests use it, it uses none of them.

use std::fmt;
use std::time::Duration;

/// An account the stand-in knows.
#[derive(Clone, PartialEq, Eq)]
pub struct MockAccount {
    /// Ten digits, the `DHAN_CLIENT_ID` of a profile logging in here.
    pub client_id: String,
    /// The `dhanClientName` of the grants.
    pub client_name: String,
    /// The `dhanClientUcc` of the grants.
    pub ucc: String,
    /// Ten digits, typed on the login page's mobile screen.
    pub mobile: String,
    /// Six digits, typed on the PIN screen and sent to generateAccessToken.
    pub pin: String,
    /// Base32, RFC 6238 with SHA-1, 6 digits, 30 s steps.
    pub totp_secret: String,
    /// The `app_id` that generate-consent and consumeApp-consent require.
    pub api_key: String,
    /// The `app_secret` that goes with [`MockAccount::api_key`].
    pub api_secret: String,
    /// Where the consent login page redirects with `?tokenId=`; nothing needs to listen.
    pub redirect_url: String,
}

impl MockAccount {
    /// Fixed values that are plainly fake, so that a demo transcript or a screenshot can
    /// never be mistaken for a real account.
    pub fn demo() -> Self {
        Self {
            client_id: "1100000042".into(),
            client_name: "DEMO USER (MOCK)".into(),
            ucc: "MOCK0042".into(),
            mobile: "9999900042".into(),
            pin: "135790".into(),
            // 160 bits: pyotp, which many Dhan scripts use, refuses secrets under 112.
            totp_secret: "MOCKDHANDEMOTOTPSECRETMOCKDHAN23".into(),
            api_key: "mock-api-key-0042".into(),
            api_secret: "mock-api-secret-0042".into(),
            // Port 9 (discard) has nobody listening: the driver must capture the redirect
            // without loading it, as it must with a real, unreachable redirect URL.
            redirect_url: "http://127.0.0.1:9/dhan/callback".into(),
        }
    }

    /// The `n`th further account (n ≥ 1) of a stand-in serving several: plainly fake
    /// ids like the demo's, a PIN and a TOTP secret drawn at random, the demo's redirect.
    pub fn numbered(n: u32) -> Self {
        use rand::Rng;
        let client_id = format!("12{n:08}");
        let secret = totp_rs::Secret::new_stack(rand::random::<[u8; 20]>()).to_base32();
        Self {
            client_name: format!("DEMO USER {n} (MOCK)"),
            ucc: format!("MCK{n:05}"),
            mobile: format!("98{n:08}"),
            pin: format!("{:06}", rand::rng().random_range(0..1_000_000u32)),
            totp_secret: secret,
            api_key: format!("mock-api-key-{client_id}"),
            api_secret: format!("mock-api-secret-{:016x}", rand::random::<u64>()),
            client_id,
            ..Self::demo()
        }
    }
}

// Tests print options on failure; the stand-in's secrets are fake, but a habit of
// redacting them keeps this type safe to copy into code that holds real ones.
impl fmt::Debug for MockAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockAccount")
            .field("client_id", &self.client_id)
            .field("client_name", &self.client_name)
            .field("ucc", &self.ucc)
            .field("mobile", &self.mobile)
            .field("pin", &"****")
            .field("totp_secret", &"****")
            .field("api_key", &self.api_key)
            .field("api_secret", &"****")
            .field("redirect_url", &self.redirect_url)
            .finish()
    }
}

/// Which consent login page the stand-in serves. Every field is one thing public scripts
/// saw vary on Dhan's page (or one way a driver must be able to fail); fixtures/README.md
/// says which facts each follows and what is invented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageVariant {
    /// What the TOTP/OTP and PIN inputs look like.
    pub markup: Markup,
    /// Whether a code screen sends itself or waits for its button.
    pub submission: Submission,
    /// false: a device Dhan trusts — mobile goes straight to the PIN screen.
    pub totp_screen: bool,
    /// true: one page whose script swaps screens (Angular-like, no navigation between
    /// screens); false: server-rendered screens, one document each.
    pub spa: bool,
    /// The screen after the mobile screen when [`PageVariant::totp_screen`] is true.
    pub second_factor: SecondFactor,
    /// The first Proceed click on the mobile screen does nothing (no request).
    pub proceed_ignored_once: bool,
    /// An analytics iframe on every screen whose document requests URLs carrying a decoy
    /// tokenId, and a third-party tag script in the head.
    pub tracker_iframe: bool,
    /// The code boxes move the focus on 40 ms after a digit (when it is still on that
    /// box) instead of at once: digits typed faster than that land in the box before and
    /// are dropped or misplaced.
    pub slow_focus: bool,
    /// The code boxes swallow every digit key (a page that takes no synthetic keys):
    /// nothing typed lands, and no code may be sent.
    pub keys_ignored: bool,
    /// A generated page ([`PageVariant::generated`]): every screen composed from
    /// dimensions drawn from this seed. `markup` and `submission` are then unused.
    pub seed: Option<u64>,
}

impl Default for PageVariant {
    /// The page as public automation scripts describe Dhan's.
    fn default() -> Self {
        Self {
            markup: Markup::CodeInput,
            submission: Submission::Button,
            totp_screen: true,
            spa: true,
            second_factor: SecondFactor::Totp,
            proceed_ignored_once: false,
            tracker_iframe: true,
            slow_focus: false,
            keys_ignored: false,
            seed: None,
        }
    }
}

impl PageVariant {
    /// The stand-in's first page: server-rendered, one-character tel boxes for the TOTP,
    /// password boxes for the PIN, no trackers.
    pub fn classic() -> Self {
        Self {
            markup: Markup::PasswordPin,
            spa: false,
            tracker_iframe: false,
            ..Self::default()
        }
    }

    /// [`PageVariant::classic`]'s boxes on a page that draws its screens by script and
    /// sends each code by itself on the sixth digit.
    pub fn spa_classic() -> Self {
        Self {
            spa: true,
            submission: Submission::Auto,
            ..Self::classic()
        }
    }
}

/// The DOM of the code screens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Markup {
    /// `<code-input>` boxes (span > input type=tel inputmode=numeric
    /// autocomplete=one-time-code, no maxlength/name/formcontrolname); PIN spans with class
    /// `code-hidden` (-webkit-text-security: disc).
    CodeInput,
    /// What most public scripts assume: tel boxes with maxlength="1" for both codes, the
    /// PIN unmasked (no code-hidden, no password).
    TelBoxes,
    /// tel maxlength=1 TOTP boxes, type="password" PIN boxes.
    PasswordPin,
    /// One six-digit field per code screen (TOTP: tel/one-time-code; PIN: password
    /// maxlength=6).
    SingleField,
    /// The PIN screen has its heading but no input at all (a driver must fail with
    /// artifacts).
    MissingPinBoxes,
    /// The first code screen shows a masked and an unmasked six-box group at once (a
    /// driver must type nothing).
    Ambiguous,
    /// After Proceed, a "Verify it's you" screen with one unlabeled text box and a "Next"
    /// button: nothing that fits a TOTP, PIN or OTP. It never lets anyone through.
    Unrecognisable,
}

impl Markup {
    /// Every markup, for test matrices.
    pub const ALL: [Markup; 7] = [
        Markup::CodeInput,
        Markup::TelBoxes,
        Markup::PasswordPin,
        Markup::SingleField,
        Markup::MissingPinBoxes,
        Markup::Ambiguous,
        Markup::Unrecognisable,
    ];
}

/// How a code screen sends its code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Submission {
    /// On the sixth digit, by itself (after 0–150 ms), while its button stays shown.
    Auto,
    /// Only its button (TOTP: Proceed, OTP: Verify, PIN: Continue) or Enter.
    Button,
    /// Auto or Button, picked at random each time a screen is loaded or shown.
    Random,
    /// On the sixth digit, by itself, after a random 0–600 ms timer: longer than any
    /// fixed wait a driver would pick. A press meanwhile sends the code a second time.
    Deferred,
    /// On the sixth digit, within that key's own input event.
    OnKey,
    /// Only its button or Enter, like `Button`; the stand-in answers each entry after
    /// 300–800 ms, and the button stays enabled meanwhile: every press sends again.
    BusyButton,
}

/// What follows the mobile screen when the TOTP screen is not skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecondFactor {
    /// The TOTP screen; accepts the account's current TOTP code.
    Totp,
    /// "OTP sent to ******0042" (SMS/e-mail), six unmasked boxes; accepts
    /// [`MockServer::sms_otp`](super::MockServer::sms_otp).
    SmsOtp,
}

/// A screen whose submissions the stand-in counts ([`MockServer::entries`](super::MockServer::entries)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// The mobile number (Proceed).
    Mobile,
    /// A TOTP code.
    Totp,
    /// A code of the SMS-OTP screen ([`SecondFactor::SmsOtp`]).
    SmsOtp,
    /// The PIN.
    Pin,
}

/// How a stand-in starts; [`MockOptions::default`] is one demo account on a free port.
#[derive(Debug, Clone)]
pub struct MockOptions {
    /// The first account (the one [`MockServer::account`](super::MockServer::account) returns).
    pub account: MockAccount,
    /// How many accounts in all: the others are [`MockAccount::numbered`] 1, 2, …
    pub accounts: u32,
    /// 0 picks any free port.
    pub port: u16,
    /// How long a minted token stays live (Dhan's: 24 hours).
    pub token_lifetime: Duration,
    /// Consents allowed per account per IST calendar day.
    pub consent_cap: u32,
    /// Default: [`PageVariant::classic`], the page the browser driver's tests were first
    /// written against; [`PageVariant::default`] is the one closest to Dhan's.
    pub page_variant: PageVariant,
    /// How long a single-page variant shows an empty page before drawing the first screen.
    pub spa_render_delay: Duration,
    /// generateAccessToken's window: an attempt within this of the account's last one
    /// (refused attempts included) gets Dhan's HTTP 200 "Token can be generated once
    /// every 2 minutes." and restarts the window. Dhan's is 2 minutes; zero (the default
    /// here, for tests that log in back to back) turns it off.
    pub mint_interval: Duration,
}

impl Default for MockOptions {
    fn default() -> Self {
        Self {
            account: MockAccount::demo(),
            accounts: 1,
            port: 0,
            token_lifetime: crate::dhan::TOKEN_LIFETIME,
            consent_cap: crate::dhan::DHAN_CONSENT_LIMIT,
            page_variant: PageVariant::default(),
            spa_render_delay: Duration::from_millis(300),
            mint_interval: Duration::ZERO,
        }
    }
}

/// A group of requests the stand-in counts and can fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `POST /app/generateAccessToken`
    GenerateAccessToken,
    /// `POST /app/generate-consent`
    GenerateConsent,
    /// `GET|POST /app/consumeApp-consent`
    ConsumeConsent,
    /// Every request under `/login/`: pages, form posts, the Spa's JSON calls.
    ConsentLoginPage,
    /// `GET|POST /v2/RenewToken`
    RenewToken,
    /// `GET /v2/profile`
    Profile,
    /// `GET /v2/ip/getIP`, `POST /v2/ip/setIP`, `PUT /v2/ip/modifyIP`
    StaticIp,
}

impl Endpoint {
    /// Every endpoint, for test matrices.
    pub const ALL: [Endpoint; 7] = [
        Endpoint::GenerateAccessToken,
        Endpoint::GenerateConsent,
        Endpoint::ConsumeConsent,
        Endpoint::ConsentLoginPage,
        Endpoint::RenewToken,
        Endpoint::Profile,
        Endpoint::StaticIp,
    ];
}

/// What an endpoint does instead of (or before) its normal answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// That status with a short plain-text body, the way a proxy in front would answer.
    Status(u16),
    /// Waits, then answers normally.
    Delay(Duration),
    /// HTTP 200 whose body is cut short (JSON endpoints) or broken HTML (pages).
    MalformedBody,
    /// Answers as if the PIN, TOTP, mobile, API secret or token were wrong.
    WrongCredential,
    /// Exactly this answer.
    Respond {
        /// The HTTP status code.
        status: u16,
        /// The body, sent as is.
        body: String,
        /// The `Content-Type` header.
        content_type: String,
    },
}
