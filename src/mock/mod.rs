//! Local stand-in for auth.dhan.co and api.dhan.co.
//!
//! It speaks the endpoints of Dhan's public v2 docs with real state (consents, one-time
//! tokenIds, live tokens, used TOTP steps), serves consent login pages written for this
//! project, and lets tests inject faults and count calls, so that nothing in the test
//! suite or the demo ever talks to Dhan.
//!
//! # Using it
//!
//! [`MockServer::start`] binds 127.0.0.1 on a free port (or [`MockOptions::port`]) and
//! serves from a task of the current tokio runtime until the server is dropped or
//! [`shut down`](MockServer::shutdown). Point a profile at
//! [`MockServer::auth_base_url`] and [`MockServer::api_base_url`] and log in with the
//! credentials of [`MockServer::account`]; they are fixed, plainly fake values
//! ([`MockAccount::demo`]). From another language, run `dhan-login mock-server`: its first
//! line of output is [`MockServer::describe_json`].
//!
//! ```
//! use dhan_login::mock::{MockOptions, MockServer};
//! use dhan_login::{NoProgress, Profile, Request, SecretRef, SourceKind, TokenManager};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dhan = MockServer::start(MockOptions::default()).await?;
//! let account = dhan.account();
//! let state = tempfile::tempdir()?;
//! let profile = Profile::builder("demo", state.path())
//!     .client_id(account.client_id.clone())
//!     .pin(SecretRef::inline(account.pin.clone()))
//!     .totp_secret(SecretRef::inline(account.totp_secret.clone()))
//!     .auth_base_url(dhan.auth_base_url())
//!     .api_base_url(dhan.api_base_url())
//!     .build()?;
//! let got = TokenManager::new(profile)
//!     .token(&Request::default(), &NoProgress)
//!     .await?;
//! assert_eq!(got.token.source, SourceKind::Totp);
//! assert!(dhan.is_live(got.token.access_token.secret()));
//! dhan.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! # What it serves
//!
//! - `POST /app/generateAccessToken` (PIN + TOTP), `POST /app/generate-consent`,
//!   `GET|POST /app/consumeApp-consent` on the auth base URL;
//! - `GET|POST /v2/RenewToken` and `GET /v2/profile` on the API base URL;
//! - the consent login page, `GET /login/consentApp-login?consentAppId=…`
//!   ([`MockServer::consent_login_url`]), in the shape [`PageVariant`] picks;
//! - `POST /mock/issue-token?kind=SELF|APP&lifetime_secs=N&client_id=…`, which is not
//!   Dhan's: the [`MockServer::issue_token`] of a client in another process.
//!
//! # The rules it keeps
//!
//! Like Dhan as its docs and public scripts describe it: a TOTP code is accepted in the
//! current 30 s step or the next/previous one, and each step only once
//! ([`MockServer::set_totp_reuse_allowed`] lifts that); a consentAppId yields one tokenId,
//! and a tokenId one token, within 10 minutes; every new token ends the account's earlier ones; RenewToken
//! accepts only live [`TokenKind::SelfWeb`] tokens; generateAccessToken refuses an
//! attempt within [`MockOptions::mint_interval`] of the account's last one, and that
//! refusal restarts the window; each account gets
//! [`MockOptions::consent_cap`] consents per IST calendar day; three wrong codes (TOTP,
//! OTP or PIN) on one opened login page block that page. Its error texts and bodies are partly invented:
//! the crate's `fixtures/README.md` says which facts each follows.
//!
//! # Making it fail
//!
//! [`MockServer::set_fault`] and its `_once`/`_times` forms make an [`Endpoint`] answer
//! with a [`Fault`] (a status, a delay, a broken body, a credential refusal, any answer);
//! [`MockServer::calls`], [`MockServer::entries`], [`MockServer::logins`] and
//! [`MockServer::consents_today`] count what reached it.

mod gate;
mod generator;
mod ip_book;
mod jwt;
mod pages;
mod routes;
mod screens;
mod state;

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use url::Url;

use state::State;

/// The `tokenConsumerType` the stand-in writes into a token it mints: the library's own
/// kind, so a test compares what it minted with what the library read.
pub use crate::token::TokenKind;

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

    /// A generated page: where each screen's words are, its wrappers, inputs, masking,
    /// button, submission, decoys, timing, origin and rendering, all drawn from `seed`
    /// (the same seed, the same page). [`PageVariant::layout_json`] says what was drawn.
    pub fn generated(seed: u64) -> Self {
        let layout = generator::Layout::draw(seed);
        Self {
            markup: Markup::CodeInput,
            submission: Submission::Button,
            totp_screen: layout.second_factor != "skipped",
            spa: layout.rendering == "single-page",
            second_factor: if layout.second_factor == "sms-otp" {
                SecondFactor::SmsOtp
            } else {
                SecondFactor::Totp
            },
            proceed_ignored_once: false,
            tracker_iframe: layout.decoys.tracker,
            slow_focus: false,
            keys_ignored: false,
            seed: Some(seed),
        }
    }

    /// The dimensions drawn for a generated page, as JSON (None for other pages).
    pub fn layout_json(&self) -> Option<serde_json::Value> {
        let layout = generator::Layout::draw(self.seed?);
        serde_json::to_value(layout).ok()
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
    /// [`MockServer::sms_otp`].
    SmsOtp,
}

/// A screen whose submissions the stand-in counts ([`MockServer::entries`]).
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
    /// The first account (the one [`MockServer::account`] returns).
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

/// A running stand-in. Dropping it stops the server too; `shutdown` also waits for it.
pub struct MockServer {
    state: Arc<State>,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl MockServer {
    /// Binds 127.0.0.1 (never a public interface) and serves in a background task of the
    /// current tokio runtime.
    pub async fn start(opts: MockOptions) -> std::io::Result<MockServer> {
        let state = Arc::new(State::new(&opts)?);
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", opts.port)).await?;
        let addr = listener.local_addr()?;
        let app = routes::router(state.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    // A dropped sender means the MockServer is gone: stop as well.
                    let _ = stopped.await;
                })
                .await;
            if let Err(e) = served {
                tracing::warn!(error = %e, "mock server stopped with an error");
            }
        });
        tracing::debug!(%addr, "mock Dhan server listening");
        Ok(MockServer {
            state,
            addr,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The address it listens on (127.0.0.1 and the port it got).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stands in for `https://auth.dhan.co`.
    pub fn auth_base_url(&self) -> Url {
        Url::parse(&format!("http://{}", self.addr))
            .expect("a socket address always forms a valid http URL")
    }

    /// Stands in for `https://api.dhan.co/v2`.
    pub fn api_base_url(&self) -> Url {
        Url::parse(&format!("http://{}/v2", self.addr))
            .expect("a socket address always forms a valid http URL")
    }

    /// The consent login page for a consentAppId, as Dhan's would be opened.
    pub fn consent_login_url(&self, consent_app_id: &str) -> Url {
        let mut url = self.auth_base_url();
        url.set_path("/login/consentApp-login");
        url.query_pairs_mut()
            .append_pair("consentAppId", consent_app_id);
        url
    }

    /// The first account.
    pub fn account(&self) -> &MockAccount {
        self.state.account()
    }

    /// Every account, the first one first.
    pub fn accounts(&self) -> &[MockAccount] {
        &self.state.accounts
    }

    /// Everything a client needs to log in here. Contains the (fake) secrets on purpose:
    /// `dhan-login demo` and scripts read them from this. The top-level fields are the
    /// first account's (what single-account scripts read); a stand-in with several
    /// accounts adds `accounts`, listing them all, the first one first.
    pub fn describe_json(&self) -> serde_json::Value {
        let account = |a: &MockAccount| {
            serde_json::json!({
                "client_id": a.client_id,
                "mobile": a.mobile,
                "pin": a.pin,
                "totp_secret": a.totp_secret,
                "api_key": a.api_key,
                "api_secret": a.api_secret,
                "redirect_url": a.redirect_url,
            })
        };
        let mut described = account(self.state.account());
        described["auth_base_url"] = self.auth_base_url().as_str().trim_end_matches('/').into();
        described["api_base_url"] = self.api_base_url().as_str().into();
        described["sms_otp"] = self.state.sms_otp.clone().into();
        if let Some(page) = self.state.page_variant().layout_json() {
            described["page"] = page;
        }
        if self.state.accounts.len() > 1 {
            described["accounts"] = self.state.accounts.iter().map(account).collect();
        }
        described
    }

    /// Requests that reached `ep`, faulted or not.
    pub fn calls(&self, ep: Endpoint) -> u32 {
        self.state.calls(ep)
    }

    /// Submissions of one login screen that reached the stand-in, accepted or not (a
    /// double submission counts twice, a Proceed the page swallowed not at all).
    pub fn entries(&self, what: EntryKind) -> u32 {
        self.state.entries(what)
    }

    /// The code the SMS-OTP screen accepts: six random digits, fixed for this server.
    pub fn sms_otp(&self) -> String {
        self.state.sms_otp.clone()
    }

    /// The tokenId the tracker iframe carries to the redirect URL. consumeApp-consent
    /// refuses it (INVALID_TOKEN_ID): only the main frame's 302 carries a real one.
    pub fn decoy_token_id(&self) -> String {
        self.state.decoy_token_id.clone()
    }

    /// Tokens minted by generateAccessToken and consumeApp-consent, for every account.
    pub fn logins(&self) -> u32 {
        self.state.logins()
    }

    /// Tokens minted by a login for one account (0 for a client id it does not know).
    pub fn logins_of(&self, client_id: &str) -> u32 {
        self.state
            .account_by_client_id(client_id)
            .map_or(0, |a| self.state.logins_of(a))
    }

    /// `fault` applies to every request to `ep` until cleared.
    pub fn set_fault(&self, ep: Endpoint, fault: Fault) {
        self.state.set_fault(ep, fault, None);
    }

    /// `fault` applies to the next request to `ep` only.
    pub fn set_fault_once(&self, ep: Endpoint, fault: Fault) {
        self.state.set_fault(ep, fault, Some(1));
    }

    /// `fault` applies to the next `times` requests to `ep`.
    pub fn set_fault_times(&self, ep: Endpoint, fault: Fault, times: u32) {
        self.state.set_fault(ep, fault, Some(times));
    }

    /// `ep` answers normally again.
    pub fn clear_fault(&self, ep: Endpoint) {
        self.state.clear_fault(ep);
    }

    /// Every endpoint answers normally again.
    pub fn clear_faults(&self) {
        self.state.clear_faults();
    }

    /// The login page served from now on, to logins under way as well.
    pub fn set_page_variant(&self, v: PageVariant) {
        self.state.set_page_variant(v);
    }

    /// Changes the daily consent cap of every account; consents already generated today
    /// still count against it.
    pub fn set_consent_cap(&self, n: u32) {
        self.state.set_consent_cap(n);
    }

    /// Changes generateAccessToken's window ([`MockOptions::mint_interval`]); zero turns
    /// it off.
    pub fn set_mint_interval(&self, interval: Duration) {
        self.state.set_mint_interval(interval);
    }

    /// Off by default, as RFC 6238 asks. Turning it on lets a demo or a test log in twice
    /// within one 30 s window.
    pub fn set_totp_reuse_allowed(&self, allowed: bool) {
        self.state.set_totp_reuse_allowed(allowed);
    }

    /// Mints a live token for the first account as if it came from elsewhere (a Dhan Web
    /// SELF token to renew, an about-to-expire APP token). Like every mint, it ends the
    /// account's previous tokens.
    pub fn issue_token(&self, kind: TokenKind, lifetime: Duration) -> String {
        self.state.issue_token(0, kind, lifetime)
    }

    /// [`MockServer::issue_token`] for the account with this client id (None: unknown).
    pub fn issue_token_for(
        &self,
        client_id: &str,
        kind: TokenKind,
        lifetime: Duration,
    ) -> Option<String> {
        let acct = self.state.account_by_client_id(client_id)?;
        Some(self.state.issue_token(acct, kind, lifetime))
    }

    /// Whether the stand-in would accept this access token now: minted here, not
    /// expired, and not ended by a later mint or a renewal.
    pub fn is_live(&self, token: &str) -> bool {
        self.state.is_live(token)
    }

    /// Lets every whitelisted IP be changed today, as if the seven days Dhan freezes a
    /// slot for had passed.
    pub fn allow_ip_changes(&self) {
        for acct in 0..self.state.accounts.len() {
            self.state.ip_book.unfreeze(acct, State::ist_today());
        }
    }

    /// Whether this consentAppId can still be logged in with (no tokenId made from it yet).
    pub fn consent_usable(&self, consent_app_id: &str) -> bool {
        self.state.consent_usable(consent_app_id)
    }

    /// Consents generated today (IST) and not yet refused by the cap, every account's.
    pub fn consents_today(&self) -> u32 {
        self.state.consents_today(None)
    }

    /// Consents generated today (IST) for one account (its cap is its own).
    pub fn consents_today_of(&self, client_id: &str) -> u32 {
        self.state
            .account_by_client_id(client_id)
            .map_or(0, |a| self.state.consents_today(Some(a)))
    }

    /// Stops accepting connections and waits (at most a few seconds) for requests in
    /// flight, such as one held by a `Fault::Delay`.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(Duration::from_secs(3), &mut task)
                .await
                .is_err()
        {
            task.abort();
        }
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl fmt::Debug for MockServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}
