//! The decision table: cached token → chain of sources → store.
//!
//! One caller per profile obtains a token at a time: an in-process mutex for concurrent
//! callers in one daemon, the backend's ownership (a file lock, or a lease in the shared
//! database) for separate processes. Whoever waited re-reads the
//! store first, so twenty processes started together cause one login, not twenty.

mod checked;
mod rejected;

pub use checked::{Checked, Verified};
pub use rejected::Rechecked;

/// The daemon a manager asks first ([`TokenManagerBuilder::daemon`]).
pub use crate::daemon::DaemonAddr;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::api::DhanApi;
use crate::config::{Config, ConfigError, Profile};
use crate::console::Console;
use crate::daemon::ask_token;
use crate::decide::{
    Ask, Daemon, Facts, IstTime, Owned, OwnerPlan, Plan, Why, after_failure, as_owner, plan,
    serves_cached, spent_step_floor,
};
use crate::error::{AttemptResult, Error};
use crate::error_class::ErrorClass;
use crate::progress::Progress;
use crate::secret::Secret;
use crate::source::{
    Context, needs, rejected_code, rejected_secrets, run_chain, sends, sources, uses_otp_command,
};
use crate::store::{
    FingerprintKey, LedgerDay, Lockout, Lockouts, MintWait, OTP_COMMAND, Ownership, ProfileState,
    StateBackend, StoreError,
};
use crate::sync::lock;
use crate::token::{SourceKind, Token};
use crate::totp::{Clock, SystemClock};

/// What a caller wants.
#[derive(Default, Clone)]
pub struct Request {
    /// Obtain a new token even if the cached one is valid.
    pub force: bool,
    /// Only this source (`login --via`).
    pub via: Option<SourceKind>,
    /// Save every login screen here (`record`).
    pub record_dir: Option<PathBuf>,
    /// Someone to ask: enables the manual source, and typing an SMS/e-mail code the
    /// login page asks for when no `otp_command` is configured. `None` never waits for
    /// a person.
    pub console: Option<Arc<dyn Console>>,
    /// The token must still be alive at the next time IST clocks show this (`token
    /// --valid-until`): a stored one that dies first is replaced.
    pub valid_until: Option<IstTime>,
    /// Dhan's `profile` refused this token (DH-901): it is replaced, unless another
    /// process has replaced it already.
    pub refused: Option<Token>,
}

impl Request {
    /// The request as `decide` reads it.
    fn ask(&self) -> Ask<'_> {
        Ask {
            force: self.force,
            valid_until: self.valid_until,
            refused: self.refused.as_ref(),
            fresh_since: None,
        }
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("force", &self.force)
            .field("via", &self.via)
            .field("record_dir", &self.record_dir)
            .field("console", &self.console.as_ref().map(|_| "provided"))
            .field("valid_until", &self.valid_until)
            .field("refused", &self.refused.is_some())
            .finish()
    }
}

/// A token and how it came.
#[derive(Debug)]
pub struct Obtained {
    /// The token to send to Dhan as the `access-token` header.
    pub token: Token,
    /// True when it came from the store without a login.
    pub cached: bool,
    /// Set when Dhan minted this token but it could not be saved: it lives only in this
    /// process (the replaced one was set aside), and the caller must say so loudly.
    pub unsaved: Option<StoreError>,
    /// Set when this is the stored token, which was due to be replaced (inside its
    /// margin, or older than the daily login time), and replacing it failed on the way
    /// (Dhan or the network down, a rate limit): it is still live, so it is handed out,
    /// and the caller should say why and how long it has left.
    pub not_replaced: Option<Error>,
}

impl Obtained {
    /// A token handed out as it was, without a login.
    fn cached(token: Token) -> Obtained {
        Obtained {
            token,
            cached: true,
            unsaved: None,
            not_replaced: None,
        }
    }
}

/// Obtains and keeps one profile's token: the cached one while it is valid, else the
/// first login path that works, stored for the next caller. Cheap to share (`Arc`): all
/// callers of one manager wait for one login.
pub struct TokenManager {
    profile: Profile,
    api: DhanApi,
    backend: StateBackend,
    clock: Arc<dyn Clock>,
    lock_wait: Duration,
    inflight: tokio::sync::Mutex<()>,
    /// A minted token whose save failed: this process still hands it out.
    unsaved: std::sync::Mutex<Option<Token>>,
    /// The token last read from a shared database, handed out while it is unreachable.
    seen: std::sync::Mutex<Option<Token>>,
    /// A running `serve` asked first.
    daemon: Option<DaemonAddr>,
}

impl fmt::Debug for TokenManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unsaved = lock(&self.unsaved).is_some();
        f.debug_struct("TokenManager")
            .field("profile", &self.profile.name)
            .field("backend", &self.backend)
            .field("lock_wait", &self.lock_wait)
            .field("daemon", &self.daemon)
            .field("holds_unsaved_token", &unsaved)
            .finish_non_exhaustive()
    }
}

/// A `TokenManager` set up beyond what its profile says: `TokenManager::builder`.
#[must_use]
pub struct TokenManagerBuilder {
    profile: Profile,
    clock: Option<Arc<dyn Clock>>,
    backend: Option<StateBackend>,
    lock_wait: Option<Duration>,
    http: Option<reqwest::Client>,
    daemon: Option<DaemonAddr>,
}

impl fmt::Debug for TokenManagerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenManagerBuilder")
            .field("profile", &self.profile.name)
            .field("clock", &self.clock.as_ref().map(|_| "provided"))
            .field("backend", &self.backend)
            .field("lock_wait", &self.lock_wait)
            .field("http", &self.http.as_ref().map(|_| "shared"))
            .field("daemon", &self.daemon)
            .finish()
    }
}

impl TokenManagerBuilder {
    /// Reads the time from `clock` instead of the system's (tests standing at the edge
    /// of a TOTP window or of a token's life).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Keeps the state in `backend` instead of the one the profile names.
    pub fn backend(mut self, backend: StateBackend) -> Self {
        self.backend = Some(backend);
        self
    }

    /// Waits this long for another process's login instead of the profile's
    /// `lock_wait_secs`.
    pub fn lock_wait(mut self, wait: Duration) -> Self {
        self.lock_wait = Some(wait);
        self
    }

    /// Sends Dhan's calls on `client` (from `api::http_client`), shared with other
    /// managers, instead of a client of its own.
    #[cfg(feature = "serve")]
    pub(crate) fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// Asks the `dhan-login serve` at `daemon` first, as `dhan-login token` does: its
    /// token unless it dies before the time asked for, and its check of a token Dhan
    /// refused (`rejected`, `token_verified`). A forced request logs in here.
    pub fn daemon(mut self, daemon: DaemonAddr) -> Self {
        self.daemon = Some(daemon);
        self
    }

    /// The manager. Nothing is read or contacted yet.
    pub fn build(self) -> TokenManager {
        let profile = self.profile;
        let (auth, api) = (profile.auth_base_url.clone(), profile.api_base_url.clone());
        let api = match self.http {
            Some(client) => DhanApi::with_client(auth, api, client),
            None => DhanApi::new(auth, api),
        };
        let backend = self
            .backend
            .unwrap_or_else(|| StateBackend::for_settings(&profile.state_dir, &profile.store));
        TokenManager {
            api,
            backend,
            clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
            lock_wait: self.lock_wait.unwrap_or(profile.lock_wait),
            inflight: tokio::sync::Mutex::new(()),
            unsaved: std::sync::Mutex::new(None),
            seen: std::sync::Mutex::new(None),
            daemon: self.daemon,
            profile,
        }
    }
}

impl TokenManager {
    /// A manager for `profile`, with the state where the profile says and the system
    /// clock. Nothing is read or contacted yet.
    pub fn new(profile: Profile) -> Self {
        Self::builder(profile).build()
    }

    /// A manager for `profile` with some of its parts replaced.
    pub fn builder(profile: Profile) -> TokenManagerBuilder {
        TokenManagerBuilder {
            profile,
            clock: None,
            backend: None,
            lock_wait: None,
            http: None,
            daemon: None,
        }
    }

    /// The manager `dhan-login token` uses: the profile `name` of `config` with the
    /// environment on top, asking the daemon `serve.listen` names first.
    pub fn from_config(
        config: &Config,
        name: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, Error> {
        let profile = config.profile(name, env)?;
        let mut builder = Self::builder(profile);
        if let Some(daemon) = DaemonAddr::from_config(config, env)? {
            builder = builder.daemon(daemon);
        }
        Ok(builder.build())
    }

    /// Where this manager keeps the profile's state (files or the shared database).
    pub fn backend(&self) -> &StateBackend {
        &self.backend
    }

    /// The profile this manager obtains tokens for.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// The Dhan client its logins use, pointed at the profile's base URLs.
    pub fn api(&self) -> &DhanApi {
        &self.api
    }

    /// The stored state. A corrupt file has been moved aside; say so and start empty.
    /// A stored token that is not token-shaped is left out.
    pub async fn state(&self) -> Result<ProfileState, Error> {
        match self.backend.load(&self.profile.name).await {
            Err(e @ StoreError::Corrupt { .. }) => {
                tracing::warn!("{e}");
                // The remembered TOTP step is lost with the file: assume the current one
                // was used, so the next login waits for a fresh code instead of risking
                // a rejection.
                Ok(ProfileState {
                    renewable: true,
                    totp_last_step: spent_step_floor(None, self.clock.now()),
                    ..Default::default()
                })
            }
            other => {
                let mut state = other?;
                if state.set_aside {
                    // As for a corrupt file: the failed run may have used this step.
                    state.totp_last_step = spent_step_floor(state.totp_last_step, self.clock.now());
                }
                // A token this process minted but could not save beats what the disk says.
                let unsaved = lock(&self.unsaved).clone();
                if let Some(t) = unsaved
                    && state
                        .token
                        .as_ref()
                        .is_none_or(|s| s.obtained_at < t.obtained_at)
                {
                    state.token = Some(t);
                }
                // A value that is not token-shaped (an edited or damaged file) is never
                // handed out, renewed or printed: as if there were none.
                if let Some(Err(e)) = state.token.as_ref().map(Token::check) {
                    tracing::warn!("the stored token is not used: {e}");
                    state.token = None;
                }
                if let StateBackend::Postgres(_) = self.backend {
                    *lock(&self.seen) = state.token.clone();
                }
                Ok(state)
            }
        }
    }

    /// The stored token if it may be handed out now: alive, and kept by the profile's
    /// rules (beyond the margin, or obtained since the daily login time) — or only
    /// waiting for the daily login that whoever owns the profile is about to do.
    ///
    /// While a shared database is unreachable (a restart, a network cut), the token this
    /// process last read from it (or minted and could not save) is handed out as long as
    /// it stays valid: a token is good until Dhan replaces it, and nothing can replace it
    /// unseen while no replica can reach the database to take the lease.
    pub async fn cached(&self) -> Result<Option<Token>, Error> {
        let rules = self.profile.rules();
        let now = self.clock.now();
        Ok(self
            .stored()
            .await?
            .filter(|t| serves_cached(t, &rules, now)))
    }

    /// The stored token, alive or not; through a database outage, the one last seen.
    async fn stored(&self) -> Result<Option<Token>, Error> {
        let now = self.clock.now();
        match self.state().await {
            Ok(state) => Ok(state.token),
            Err(e @ Error::Store(StoreError::Database { .. })) => {
                let remembered = [&self.unsaved, &self.seen]
                    .into_iter()
                    .filter_map(|m| lock(m).clone())
                    .filter(|t| t.is_live(now))
                    .max_by_key(|t| t.obtained_at);
                match remembered {
                    Some(t) => {
                        tracing::debug!(
                            "the state database is unreachable ({e}): handing out the token last read from it"
                        );
                        Ok(Some(t))
                    }
                    None => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// A valid token: the daemon's when the manager knows a running one and its token
    /// does; else the cached one unless `force`, else the first source that works.
    pub async fn token(&self, req: &Request, progress: &dyn Progress) -> Result<Obtained, Error> {
        if let Some(got) = self.daemons(req).await? {
            return Ok(got);
        }
        if let Some(cached) = self.unforced(req).await? {
            return Ok(cached);
        }
        let started_at = self.clock.now();
        let _inflight = self.inflight.lock().await;
        let owner = self.own().await?;
        let result = self.obtain(&owner, req, progress, started_at).await;
        // Let go now rather than on drop: a process about to exit would leave a lease
        // for the next machine to wait out.
        owner.release().await;
        result
    }

    /// `token` under an ownership the caller already holds and keeps (`serve` holds a
    /// profile's lease between logins).
    pub async fn token_as(
        &self,
        owner: &Ownership,
        req: &Request,
        progress: &dyn Progress,
    ) -> Result<Obtained, Error> {
        if let Some(cached) = self.unforced(req).await? {
            return Ok(cached);
        }
        let started_at = self.clock.now();
        let _inflight = self.inflight.lock().await;
        self.obtain(owner, req, progress, started_at).await
    }

    /// The daemon's token, when the manager knows a daemon and `plan` takes what it
    /// answers. Nothing of this host's state is read.
    async fn daemons(&self, req: &Request) -> Result<Option<Obtained>, Error> {
        let (rules, ask) = (self.profile.rules(), req.ask());
        let mut facts = Facts {
            daemon: match self.daemon {
                Some(_) => Daemon::Known,
                None => Daemon::Unknown,
            },
            ..Facts::default()
        };
        if plan(&facts, &rules, &ask, self.clock.now()) != Plan::AskDaemon {
            return Ok(None);
        }
        let answer = ask_token(self.daemon.as_ref(), &self.profile.name).await?;
        facts.daemon = Daemon::Answered(answer.as_ref());
        Ok(match plan(&facts, &rules, &ask, self.clock.now()) {
            Plan::TakeDaemons(token) => Some(Obtained::cached(token.clone())),
            _ => None,
        })
    }

    /// The stored token when `plan` hands it out; a refusal when a new one is needed
    /// and this host never logs in. Taken before any lock.
    async fn unforced(&self, req: &Request) -> Result<Option<Obtained>, Error> {
        let (rules, ask) = (self.profile.rules(), req.ask());
        if plan(&Facts::default(), &rules, &ask, self.clock.now()) != Plan::ReadStore {
            return Ok(None);
        }
        let stored = self.stored().await?;
        let facts = Facts {
            stored: Some(stored.as_ref()),
            ..Facts::default()
        };
        match plan(&facts, &rules, &ask, self.clock.now()) {
            Plan::HandOut(token) => Ok(Some(Obtained::cached(token.clone()))),
            Plan::LoginsOff(why) => Err(logins_off(why)),
            Plan::Own(why) => {
                tracing::debug!(profile = %self.profile.name, "a new token is needed: {why}");
                Ok(None)
            }
            Plan::AskDaemon | Plan::TakeDaemons(_) | Plan::ReadStore => Ok(None),
        }
    }

    /// The rest of `token`, while this process owns the profile.
    async fn obtain(
        &self,
        owner: &Ownership,
        req: &Request,
        progress: &dyn Progress,
        started_at: DateTime<Utc>,
    ) -> Result<Obtained, Error> {
        let mut state = self.state().await?;
        let owned = Owned {
            token: state.token.as_ref(),
            renewable: state.renewable,
            totp_last_step: state.totp_last_step,
            // Whoever held the profile before us may have done our work meanwhile.
            waited_since: owner.waited().then_some(started_at),
            took_over: owner.took_over(),
        };
        let go = match as_owner(&owned, &self.profile.rules(), &req.ask(), self.clock.now()) {
            OwnerPlan::HandOut(token) => return Ok(Obtained::cached(token.clone())),
            OwnerPlan::LoginsOff(why) => return Err(logins_off(why)),
            OwnerPlan::Obtain(go) => go,
        };

        let lockouts = self.lockouts(&state).await?;
        let mut cx = Context::new(&self.profile, &self.api, progress, self.clock.clone());
        cx.ledger = self.backend.ledger(self.profile.consent_cap);
        cx.mint = self.backend.mint_window(self.profile.mint_interval);
        cx.renew = go.renew;
        cx.record_dir = req.record_dir.clone();
        cx.console = req.console.as_deref();
        cx.fingerprints = self.fingerprint_key(&lockouts).await;
        cx.lockouts = lockouts;
        cx.totp_resume = go.totp_floor;
        cx.set_kept_token_id(state.kept_token_id.take());
        let result = run_chain(&sources(req.via), &cx).await;
        let last_step = cx.totp_last_step();
        // A token obtained ends any use of a kept tokenId (its token would replace this one).
        let kept_token_id = cx.kept_token_id().filter(|_| result.is_err());
        drop(cx);
        state.kept_token_id = kept_token_id;

        let now = self.clock.now();
        state.totp_last_step = last_step.or(go.totp_floor);
        match result {
            Ok((token, _)) => {
                state.token = Some(token.clone());
                state.renewable = true;
                state.last_error = None;
                state.updated_at = Some(now);
                // These credentials just worked: a rejection of them alone is over.
                let worked = sends(token.source);
                if !worked.is_empty() {
                    state.legacy_lockout = None;
                    self.backend
                        .clear_covered(&self.profile.name, worked)
                        .await?;
                }
                let unsaved = match self.save_minted(&state, owner).await {
                    Ok(()) => None,
                    // Another holder took the profile over meanwhile and stored its own
                    // token: that one is the profile's now, ours is not to be handed out.
                    Err(e @ StoreError::Fenced { .. }) => return Err(e.into()),
                    Err(e) => Some(e),
                };
                Ok(Obtained {
                    token,
                    cached: false,
                    unsaved,
                    not_replaced: None,
                })
            }
            Err(failure) => {
                let renew_failed = failure.attempts.iter().find_map(|a| match &a.result {
                    AttemptResult::Failed(e) if a.source == SourceKind::Renew => Some(e.class()),
                    _ => None,
                });
                for a in &failure.attempts {
                    if let AttemptResult::Fatal(e) = &a.result {
                        self.record_rejection(a.source, e, now).await;
                    }
                }
                let err = Error::Chain(failure);
                let after = after_failure(
                    go.why,
                    state.token.as_ref(),
                    state.renewable,
                    renew_failed,
                    err.class(),
                    now,
                );
                state.renewable = after.renewable;
                state.record_error(err.class(), err.to_string(), now);
                self.backend
                    .save(&self.profile.name, &state, Some(owner))
                    .await?;
                match state.token.filter(|_| after.hand_out_stored) {
                    Some(token) => Ok(Obtained {
                        token,
                        cached: true,
                        unsaved: None,
                        not_replaced: Some(err),
                    }),
                    None => Err(err),
                }
            }
        }
    }

    /// `dhan-login doctor`: checks the API key (a pending consent is reused, so at most
    /// one is spent), opens the consent page and reports its screen. Types nothing.
    #[cfg(feature = "browser")]
    pub async fn doctor(
        &self,
        progress: &dyn Progress,
    ) -> Result<crate::source::Inspection, Error> {
        // The ledger's read-modify-write must not race a login of another process.
        let owner = self.own().await?;
        let mut cx = Context::new(&self.profile, &self.api, progress, self.clock.clone());
        cx.ledger = self.backend.ledger(self.profile.consent_cap);
        let inspection = crate::source::inspect(&cx).await;
        drop(cx);
        owner.release().await;
        inspection
    }

    /// Takes over what `old`, this profile's manager before a reload, held in memory
    /// only: a token it minted and could not save (the stored one is dead since), and
    /// the one it last read from the database. Dropped with `old`, the first would make
    /// the next refresh renew the dead token and, refused, log in.
    #[cfg(feature = "serve")]
    pub(crate) fn carry_over(&self, old: &TokenManager) {
        for (mine, theirs) in [(&self.unsaved, &old.unsaved), (&self.seen, &old.seen)] {
            let held = lock(theirs)
                .clone()
                .filter(|t| self.profile.client_id.as_deref() == Some(t.client_id.as_str()));
            if held.is_some() {
                *lock(mine) = held;
            }
        }
    }

    /// Saves a state holding a token Dhan has just minted (which killed the stored one):
    /// retried, since losing it costs a login; if it still fails the token is kept in
    /// memory and the old state set aside, so nobody is handed the dead token.
    async fn save_minted(&self, state: &ProfileState, owner: &Ownership) -> Result<(), StoreError> {
        let mut last = None;
        for wait_ms in [0, 100, 500] {
            tokio::time::sleep(Duration::from_millis(wait_ms)).await;
            match self
                .backend
                .save(&self.profile.name, state, Some(owner))
                .await
            {
                Ok(()) => {
                    *lock(&self.unsaved) = None;
                    return Ok(());
                }
                // Another machine holds the profile now and stored its own token: that
                // one is not dead, so nothing is set aside.
                Err(e @ StoreError::Fenced { .. }) => return Err(e),
                Err(e) => last = Some(e),
            }
        }
        let Some(e) = last else { return Ok(()) };
        tracing::error!(
            "Dhan issued a new token but it cannot be saved ({e}): it is kept in memory for this run only"
        );
        if let Err(aside) = self.backend.set_aside(&self.profile.name).await {
            tracing::error!(
                "the stored token, which the new one replaced, could not be set aside either ({aside}): a later run may hand out that dead token until a login succeeds"
            );
        }
        *lock(&self.unsaved) = state.token.clone();
        Err(e)
    }

    /// The right to log in for this profile across processes, waited for up to `lock_wait`.
    async fn own(&self) -> Result<Ownership, Error> {
        Ok(self.backend.own(&self.profile.name, self.lock_wait).await?)
    }

    /// Every lockout in force for this profile, the one an older version left in the
    /// state file included (it holds every path: it cannot be matched per path).
    pub async fn lockouts(&self, state: &ProfileState) -> Result<Lockouts, Error> {
        let recorded = self.backend.lockouts(&self.profile.name).await?;
        let Some(legacy) = &state.legacy_lockout else {
            return Ok(recorded);
        };
        Ok(match recorded {
            Lockouts::Recorded(mut all) => {
                all.push(Lockout {
                    secrets: Secret::ALL.iter().map(|s| s.key().to_owned()).collect(),
                    fingerprint: String::new(),
                    at: legacy.at,
                    message: legacy.message.clone(),
                });
                Lockouts::Recorded(all)
            }
            unreadable => unreadable,
        })
    }

    /// The key to compare the lockouts' fingerprints with; none is needed (or made) while
    /// nothing is locked. Without one every lockout holds.
    async fn fingerprint_key(&self, lockouts: &Lockouts) -> Option<FingerprintKey> {
        if lockouts.is_empty() {
            return None;
        }
        match self.backend.fingerprint_key().await {
            Ok(key) => Some(key),
            Err(e) => {
                tracing::warn!(
                    "cannot read the key of the lockout fingerprints ({e}): every lockout holds"
                );
                None
            }
        }
    }

    /// Stores a credential rejection, keyed to the secrets the endpoint that said no was
    /// sent. A lockout that cannot be written is said loudly: the next run could resend.
    async fn record_rejection(&self, source: SourceKind, e: &Error, now: DateTime<Utc>) {
        // A refusal of ours (the lockout guard) is not Dhan's word on these values.
        if e.class() != ErrorClass::CredentialRejected || matches!(e, Error::Refused { .. }) {
            return;
        }
        let mut names: Vec<&str> = rejected_secrets(source, e)
            .iter()
            .map(|s| s.key())
            .collect();
        if rejected_code(e) && uses_otp_command(source, &self.profile) {
            names.push(OTP_COMMAND);
        }
        if names.is_empty() {
            return;
        }
        let fingerprint = match self.backend.fingerprint_key().await {
            Ok(key) => match key.fingerprint(&self.profile, &names).await {
                Some(fp) => fp,
                None => return,
            },
            Err(err) => {
                tracing::warn!(
                    "no key to fingerprint the rejected credentials ({err}): the lockout holds until `dhan-login unlock`, even once they are fixed"
                );
                String::new()
            }
        };
        let lockout = Lockout {
            secrets: names.iter().map(|&s| s.to_owned()).collect(),
            fingerprint,
            at: now,
            message: format!("{source}: {e}"),
        };
        if let Err(err) = self.backend.add_lockout(&self.profile.name, lockout).await {
            tracing::error!(
                "cannot record that Dhan rejected these credentials ({err}): the next run may send them again; fix them before retrying"
            );
        }
    }

    /// Why the daemon must hold this profile: every login path it has configured would
    /// send credentials Dhan rejected. Reads the secrets (to see whether they changed).
    pub async fn lockout_hold(
        &self,
        state: &ProfileState,
    ) -> Result<Option<(DateTime<Utc>, String)>, Error> {
        let lockouts = self.lockouts(state).await?;
        if lockouts.is_empty() {
            return Ok(None);
        }
        let mut cx = Context::new(
            &self.profile,
            &self.api,
            &crate::progress::NoProgress,
            self.clock.clone(),
        );
        cx.fingerprints = self.fingerprint_key(&lockouts).await;
        cx.lockouts = lockouts;
        let mut refusal = None;
        for kind in [SourceKind::Totp, SourceKind::Browser] {
            if needs(kind, &self.profile).is_err() {
                continue;
            }
            match cx.preflight_for(kind).await {
                Ok(()) => return Ok(None),
                Err(e) => refusal = refusal.or(Some(e.to_string())),
            }
        }
        let since = match &cx.lockouts {
            Lockouts::Unreadable { since, .. } => *since,
            Lockouts::Recorded(all) => all.iter().map(|l| l.at).max().unwrap_or_default(),
        };
        Ok(refusal.map(|m| (since, m)))
    }

    /// Lifts every lockout after the user checked the credentials. True if there was one.
    pub async fn unlock(&self) -> Result<bool, Error> {
        let owner = self.own_to_write().await?;
        let mut state = self.state().await?;
        let had_legacy = state.legacy_lockout.take().is_some();
        if had_legacy {
            self.backend
                .save(&self.profile.name, &state, owner.as_ref())
                .await?;
        }
        let had_file = self.backend.clear_lockouts(&self.profile.name).await?;
        if let Some(owner) = owner {
            owner.release().await;
        }
        Ok(had_legacy || had_file)
    }

    /// What `unlock`, `import` and `logout` hold while they write. A state file is read, changed
    /// and written whole, so they take the file lock as a login does. In the database
    /// every change is a statement of its own, and a daemon holds the lease between
    /// logins: waiting for it would make them fail whenever a daemon runs.
    async fn own_to_write(&self) -> Result<Option<Ownership>, Error> {
        match &self.backend {
            StateBackend::Files(_) => Ok(Some(self.own().await?)),
            StateBackend::Postgres(_) => Ok(None),
        }
    }

    /// Today's consent figures, when the client id is known.
    pub async fn consents_today(&self) -> Result<Option<LedgerDay>, Error> {
        let Some(client_id) = self.profile.client_id.as_deref() else {
            return Ok(None);
        };
        let ledger = self.backend.ledger(self.profile.consent_cap);
        Ok(Some(ledger.today(client_id, self.clock.now()).await?))
    }

    /// The wait before generateAccessToken may be tried again for the profile's client
    /// id (the last attempt, by any process or replica, was within the profile's
    /// `mint_interval`); None while an attempt may go now or without a client id.
    pub async fn mint_wait(&self) -> Result<Option<MintWait>, Error> {
        let Some(client_id) = self.profile.client_id.as_deref() else {
            return Ok(None);
        };
        let window = self.backend.mint_window(self.profile.mint_interval);
        match window.check(client_id, self.clock.now()).await {
            Ok(()) => Ok(None),
            Err(StoreError::MintWindow(wait)) => Ok(Some(wait)),
            Err(e) => Err(e.into()),
        }
    }

    /// Stores a token made elsewhere (Dhan Web), after checking it with `profile`.
    pub async fn import(&self, raw: &str) -> Result<Token, Error> {
        let raw = raw.trim();
        let info = self.api.profile(raw).await?;
        let now = self.clock.now();
        let client_id = info
            .client_id
            .clone()
            .or_else(|| self.profile.client_id.clone());
        let expiry = info.token_validity.map(|t| t.to_rfc3339());
        let token = Token::from_grant(raw, client_id.as_deref(), None, SourceKind::Import, now)
            .or_else(|_| {
                Token::from_grant(
                    raw,
                    client_id.as_deref(),
                    expiry.as_deref(),
                    SourceKind::Import,
                    now,
                )
            })?;
        // Another account's token would be handed out, and renewed, as this one's.
        if let Some(mine) = self.profile.client_id.as_deref()
            && token.client_id != mine
        {
            return Err(Error::Config(ConfigError::Field {
                field: "client_id".into(),
                message: format!(
                    "the token belongs to client id {}, not this profile's {mine}: import it into that account's profile",
                    token.client_id
                ),
            }));
        }
        let owner = self.own_to_write().await?;
        let mut state = self.state().await?;
        state.token = Some(token.clone());
        state.renewable = true;
        state.last_error = None;
        state.updated_at = Some(now);
        self.backend
            .save(&self.profile.name, &state, owner.as_ref())
            .await?;
        if let Some(owner) = owner {
            owner.release().await;
        }
        Ok(token)
    }

    /// Forgets the stored token. Dhan keeps it alive until it expires.
    ///
    /// Only the token goes: the lockout and the last TOTP step stay, or a logout followed
    /// by a login could resubmit a spent code or a rejected PIN. Done while owning the
    /// profile's state file, like every other write: a login finishing meanwhile would
    /// otherwise have its new token or its spent TOTP step overwritten by the state read
    /// before it. In the database the token goes only if it is still the one read: a
    /// token another machine stored meanwhile (a successor that took the profile over) is
    /// its own, and stays.
    pub async fn logout(&self) -> Result<bool, Error> {
        let owner = self.own_to_write().await?;
        let mut state = self.state().await?;
        let forgotten = match state.token.take() {
            Some(read) => {
                state.updated_at = Some(self.clock.now());
                self.backend
                    .forget(&self.profile.name, &state, &read)
                    .await?
            }
            None => false,
        };
        if let Some(owner) = owner {
            owner.release().await;
        }
        Ok(forgotten)
    }
}

/// The refusal of a host that never logs in.
fn logins_off(why: Why) -> Error {
    Error::Refused {
        class: ErrorClass::LoginsOff,
        message: format!(
            "no live token, and logins are off on this host (login = \"never\" or DHAN_LOGIN_NO_LOGIN): {why}; log in on the machine that owns this account's token"
        ),
    }
}

// What they test is the daemon's reload (`carry_over`).
#[cfg(all(test, feature = "serve"))]
mod tests {
    use super::*;
    use crate::store::ProfileState;

    fn minted(client_id: &str, obtained: DateTime<Utc>) -> Token {
        let mut t = Token::from_grant(
            &format!("a.{}.c", obtained.timestamp()),
            Some(client_id),
            Some("2099-01-01T00:00:00"),
            SourceKind::Renew,
            obtained,
        )
        .unwrap();
        t.expires_at = obtained + chrono::Duration::hours(24);
        t
    }

    /// The daemon builds a new manager before each refresh (a config change is honoured
    /// by it): a renewed token the store could not take must survive that, or the next
    /// refresh renews the token it killed, is refused, and logs in.
    #[tokio::test]
    async fn a_reloaded_manager_keeps_the_token_its_predecessor_could_not_save() {
        let dir = tempfile::tempdir().unwrap();
        let profile = |id: &str| {
            Profile::builder("p", dir.path())
                .client_id(id)
                .build()
                .unwrap()
        };
        let now = Utc::now();
        let dead = minted("1000000001", now - chrono::Duration::hours(1));
        let old = TokenManager::new(profile("1000000001"));
        old.backend()
            .save(
                "p",
                &ProfileState {
                    token: Some(dead.clone()),
                    ..ProfileState::default()
                },
                None,
            )
            .await
            .unwrap();
        let renewed = minted("1000000001", now);
        *lock(&old.unsaved) = Some(renewed.clone());

        let forgetful = TokenManager::new(profile("1000000001"));
        let got = forgetful.state().await.unwrap().token.unwrap();
        assert_eq!(got.obtained_at, dead.obtained_at, "without carry_over");

        let reloaded = TokenManager::new(profile("1000000001"));
        reloaded.carry_over(&old);
        let got = reloaded.state().await.unwrap().token.unwrap();
        assert_eq!(got.obtained_at, renewed.obtained_at);

        // A profile edited to another client id takes nothing of the old one's.
        let other = TokenManager::new(profile("1000000002"));
        other.carry_over(&old);
        assert!(lock(&other.unsaved).is_none());
    }
}
