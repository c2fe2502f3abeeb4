//! What every source is given ([`Context`]: the profile, the API client, the shared
//! state and the checks before anything is sent), what it answers ([`Outcome`]), and the
//! trait a source implements. The chain in `mod.rs` and each source use these; none of
//! them uses the chain.

use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};

use secrecy::ExposeSecret;

use super::needs::{sends, uses_otp_command};
use crate::api::DhanApi;
use crate::config::{ConfigError, Profile, validate};
use crate::console::Console;
use crate::decide::{NoRenewal, Renewal};
use crate::error::Error;
use crate::error_class::ErrorClass;
use crate::progress::Progress;
use crate::secret::Secret;
use crate::store::{FingerprintKey, KeptTokenId, Ledger, Lockouts, MintWindow, StateBackend};
use crate::sync::lock;
use crate::token::{SourceKind, Token};
use crate::totp::{Clock, TotpGenerator};

/// The future a [`TokenSource`] returns: boxed, so the trait stays object-safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How one source ended: a token, or one of the three ways of not getting one. The
/// last three are [`AttemptResult`](crate::error::AttemptResult)'s variants; the two
/// types stay apart because an attempt is kept in [`crate::error::ChainFailure`], an
/// error, and an error never holds a token (it is logged, printed and wrapped):
/// `AttemptResult` has no variant to put one in, so the report cannot carry a token by
/// mistake.
#[derive(Debug)]
pub enum Outcome {
    /// A token: the chain stops and the manager stores it.
    Obtained(Token),
    /// The source is not configured or cannot run now (no stored token to renew, nobody
    /// at a console); the reason is shown in the chain's report. The next source runs.
    NotApplicable(String),
    /// Worth trying the next source: a network failure, a page that did not load.
    Failed(Error),
    /// Dhan refused the credentials or the consent, wants a pause, or the configuration
    /// is wrong: the chain stops here, since another path would resend what was refused.
    Fatal(Error),
}

/// What every source may use. Built once per attempt by the manager.
pub struct Context<'a> {
    /// The profile being logged in.
    pub profile: &'a Profile,
    /// The Dhan client, pointed at the profile's base URLs.
    pub api: &'a DhanApi,
    /// Whether RenewToken is tried, on which token, or why not (the manager's plan).
    pub renew: Renewal<'a>,
    /// Where the sources report their steps.
    pub progress: &'a dyn Progress,
    /// The time every source reads (TOTP codes, token expiry).
    pub clock: Arc<dyn Clock>,
    /// `dhan-login record --out DIR`: the browser saves each screen it meets.
    pub record_dir: Option<PathBuf>,
    /// Whom to ask, when a person may be asked (manual login, an SMS/e-mail code).
    pub console: Option<&'a dyn Console>,
    /// Consents used today and the pending consentAppId.
    pub ledger: Ledger,
    /// When generateAccessToken was last tried for the client id, by any process.
    pub mint: MintWindow,
    /// The credentials Dhan rejected before: a path that would send them is refused.
    pub lockouts: Lockouts,
    /// The key the lockouts' fingerprints were made with; without it (or for one made
    /// with another key) a lockout holds whatever the values are now.
    pub fingerprints: Option<FingerprintKey>,
    /// The last TOTP step an earlier run submitted.
    pub totp_resume: Option<i64>,
    totp: OnceLock<TotpGenerator>,
    /// The source `run_chain` is running, so `preflight` knows what it will send.
    pub(super) running: Mutex<Option<SourceKind>>,
    /// The tokenId an earlier run kept, until a source takes it to exchange (once a run).
    kept_in: Mutex<Option<KeptTokenId>>,
    /// A tokenId this run could not exchange and that may still be good.
    kept_out: Mutex<Option<KeptTokenId>>,
}

impl fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("profile", &self.profile.name)
            .field("api", self.api)
            .field("renew", &self.renew)
            .field("record_dir", &self.record_dir)
            .field("console", &self.console.map(|_| "provided"))
            .field("totp_resume", &self.totp_resume)
            .finish_non_exhaustive()
    }
}

impl<'a> Context<'a> {
    /// A context for `profile` with nothing stored: no token to renew, no lockouts, no
    /// console, the consent ledger and the mint window in files under the profile's
    /// state folder. The
    /// manager fills in the rest from the stored state.
    pub fn new(
        profile: &'a Profile,
        api: &'a DhanApi,
        progress: &'a dyn Progress,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Context {
            profile,
            api,
            renew: Renewal::Skip(NoRenewal::NoToken),
            progress,
            clock,
            record_dir: None,
            console: None,
            ledger: StateBackend::files(&profile.state_dir).ledger(profile.consent_cap),
            mint: StateBackend::files(&profile.state_dir).mint_window(profile.mint_interval),
            lockouts: Lockouts::Recorded(Vec::new()),
            fingerprints: None,
            totp_resume: None,
            totp: OnceLock::new(),
            running: Mutex::new(None),
            kept_in: Mutex::new(None),
            kept_out: Mutex::new(None),
        }
    }

    /// Hands the run the tokenId an earlier run kept ([`ProfileState::kept_token_id`]):
    /// the consent login exchanges it before spending a consent.
    ///
    /// [`ProfileState::kept_token_id`]: crate::store::ProfileState::kept_token_id
    pub fn set_kept_token_id(&mut self, kept: Option<KeptTokenId>) {
        *lock(&self.kept_in) = kept;
    }

    /// The tokenId to keep for the next run: one this run could not exchange, else the
    /// earlier one if no source got to try it.
    pub fn kept_token_id(&self) -> Option<KeptTokenId> {
        lock(&self.kept_out)
            .clone()
            .or_else(|| lock(&self.kept_in).clone())
    }

    pub(super) fn take_kept_token_id(&self) -> Option<KeptTokenId> {
        lock(&self.kept_in).take()
    }

    pub(super) fn keep_token_id(&self, kept: KeptTokenId) {
        *lock(&self.kept_out) = Some(kept);
    }

    /// The last TOTP step this run submitted, if it generated any code.
    pub fn totp_last_step(&self) -> Option<i64> {
        self.totp.get().and_then(TotpGenerator::last_step)
    }

    /// Runs before a source sends anything: refuses a login whose credentials Dhan
    /// already rejected (unchanged since), or when the lockout file cannot be read.
    pub async fn preflight(&self) -> Result<(), Error> {
        let kind = *lock(&self.running);
        let sends = kind.map_or(Secret::ALL, sends);
        let otp_command = match kind {
            Some(kind) => uses_otp_command(kind, self.profile),
            None => self.profile.otp_command.is_some(),
        };
        self.check_inputs(sends).await?;
        self.check_lockouts(sends, otp_command).await
    }

    /// Every value this login would send has the shape Dhan accepts: a 5-digit PIN or an
    /// 8-digit TOTP URI is a failed attempt on the account, and no request should carry it.
    async fn check_inputs(&self, sends: &[Secret]) -> Result<(), Error> {
        if let Some(id) = &self.profile.client_id {
            validate::client_id(id).map_err(ConfigError::from)?;
        }
        for &which in sends {
            if let Some(secret) = self.profile.get(which) {
                let value = secret.load().await?;
                validate::field(which.key(), value.expose_secret()).map_err(ConfigError::from)?;
            }
        }
        Ok(())
    }

    /// `preflight` for a source that is not running (the daemon deciding a hold).
    pub async fn preflight_for(&self, kind: SourceKind) -> Result<(), Error> {
        self.check_lockouts(sends(kind), uses_otp_command(kind, self.profile))
            .await
    }

    async fn check_lockouts(&self, sends: &[Secret], otp_command: bool) -> Result<(), Error> {
        match &self.lockouts {
            Lockouts::Unreadable { path, reason, .. } if !sends.is_empty() => Err(locked(format!(
                "the lockout file {} cannot be read ({reason}), so dhan-login treats every \
                     login as locked (accounts get locked by retried rejections). Check the \
                     credentials, then run `dhan-login unlock`",
                path.display()
            ))),
            Lockouts::Unreadable { .. } => Ok(()),
            Lockouts::Recorded(all) => {
                let mut hit = None;
                for l in all {
                    if l.holds_for(sends, otp_command)
                        && match &self.fingerprints {
                            Some(key) if key.made(&l.fingerprint) => key
                                .fingerprint(self.profile, &l.secrets)
                                .await
                                .is_none_or(|fp| fp == l.fingerprint),
                            // Empty, unkeyed, or another key's: the values cannot be
                            // compared, so the rejection holds.
                            _ => true,
                        }
                    {
                        hit = Some(l);
                        break;
                    }
                }
                match hit {
                    Some(l) => Err(locked(format!(
                        "Dhan rejected these credentials ({}) at {} and dhan-login will not \
                         send them again (accounts get locked that way). Fix them in the \
                         configuration, or run `dhan-login unlock` if they are right. The \
                         rejection was: {}",
                        l.secrets.join(", "),
                        l.at.to_rfc3339(),
                        l.message
                    ))),
                    None => Ok(()),
                }
            }
        }
    }

    /// One TOTP generator per run, shared by every source, so that no code is ever
    /// submitted twice even when the chain moves from the API to the browser.
    pub async fn totp(&self) -> Result<&TotpGenerator, Error> {
        if let Some(g) = self.totp.get() {
            return Ok(g);
        }
        let secret = self.profile.require(Secret::TotpSecret).await?;
        let generator = TotpGenerator::new(secret, self.clock.clone())?;
        generator.resume_after(self.totp_resume);
        if let Some((server, local)) = self.api.probe_server_time().await
            && let Some(skew) = generator.observe_server_time(server, local)
        {
            tracing::warn!(
                skew_ms = skew.num_milliseconds(),
                "local clock is {:.1} s {} Dhan's: generating TOTP codes for the server's time (fix the clock with NTP)",
                skew.num_milliseconds().abs() as f64 / 1000.0,
                if skew.num_milliseconds() > 0 {
                    "behind"
                } else {
                    "ahead of"
                }
            );
        }
        Ok(self.totp.get_or_init(|| generator))
    }
}

/// One way of getting a token, tried in turn by [`run_chain`](super::run_chain).
pub trait TokenSource: Send + Sync {
    /// Which path this is; a token it obtains is recorded as coming from it.
    fn kind(&self) -> SourceKind;
    /// Tries once. A source that would send credentials calls [`Context::preflight`]
    /// first, and turns Dhan's refusals into [`Outcome::Fatal`].
    fn obtain<'a>(&'a self, cx: &'a Context<'a>) -> BoxFuture<'a, Outcome>;
}

/// The lockout guard's refusal: counted as a rejection (the chain stops, exit 3), but
/// one decided here, so it is not recorded as a new one.
fn locked(message: String) -> Error {
    Error::Refused {
        class: ErrorClass::CredentialRejected,
        message,
    }
}

/// Classifies a library error for the chain. Fatal: a credential or consent refusal
/// (another path would resend or spend them), a rate limit (Dhan wants a pause, and a
/// browser login would spend a consent to get round it) and a configuration error (no
/// other path can fix it, and none should send what is malformed).
pub(super) fn outcome_of(e: Error) -> Outcome {
    match e.class() {
        ErrorClass::CredentialRejected
        | ErrorClass::ConsentLimit
        | ErrorClass::RateLimited
        | ErrorClass::Config => Outcome::Fatal(e),
        _ => Outcome::Failed(e),
    }
}
