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
mod options;
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

pub use options::{
    Endpoint, EntryKind, Fault, Markup, MockAccount, MockOptions, PageVariant, SecondFactor,
    Submission,
};
use state::State;

/// The `tokenConsumerType` the stand-in writes into a token it mints: the library's own
/// kind, so a test compares what it minted with what the library read.
pub use crate::token::TokenKind;

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
