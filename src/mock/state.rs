//! What the stand-in remembers between requests, and the rules it enforces.

use std::collections::{HashMap, HashSet};
use std::io;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use totp_rs::{Builder, Secret, Totp};

use super::ip_book::IpBook;
use super::jwt;
use super::{
    Endpoint, EntryKind, Fault, MockAccount, MockOptions, PageVariant, SecondFactor, TokenKind,
};
use crate::sync::lock;

pub(crate) const MOBILE_NOT_REGISTERED: &str = "Mobile number is not registered";
/// The one text public scripts saw on Dhan's page (a toast after a wrong TOTP).
pub(crate) const TOTP_INVALID: &str = "Invalid Totp entered";
pub(crate) const OTP_INVALID: &str = "Invalid OTP, please try again";
pub(crate) const PIN_INCORRECT: &str = "Incorrect PIN, please try again";
pub(crate) const ACCOUNT_BLOCKED: &str = "Your account is temporarily blocked";
/// The answer to anything typed into the Unrecognisable variant's screen.
pub(crate) const NOT_VERIFIED: &str = "We could not verify you. Please try again later.";

/// Wrong TOTP or PIN entries one login session tolerates before it blocks.
const WRONG_ENTRIES_BEFORE_BLOCK: u32 = 3;
/// A login page left open longer than this is forgotten.
const SESSION_TTL: Duration = Duration::from_secs(60 * 60);

/// An account's place in [`State::accounts`]: 0 is the first (the demo account).
pub(crate) type Acct = usize;

pub(crate) struct State {
    /// Every account the stand-in knows; the first is the one single-account callers use.
    pub(crate) accounts: Vec<MockAccount>,
    pub(crate) spa_render_delay: Duration,
    pub(crate) sms_otp: String,
    pub(crate) decoy_token_id: String,
    /// One per account, in the same order.
    totps: Vec<Totp>,
    token_lifetime: Duration,
    inner: Mutex<Inner>,
    /// The static IP whitelist, apart from `inner`: no rule ties it to the logins.
    pub(crate) ip_book: IpBook,
}

struct ArmedFault {
    fault: Fault,
    /// None: until cleared.
    remaining: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    Mobile,
    Totp,
    SmsOtp,
    Pin,
    /// PIN accepted; the tokenId is handed out on the next request (Spa) or at once.
    Authorized,
}

struct LoginSession {
    consent_app_id: String,
    acct: Acct,
    stage: Stage,
    wrong_entries: u32,
    created: Instant,
}

struct TokenRecord {
    acct: Acct,
    kind: TokenKind,
    expires: DateTime<Utc>,
}

struct Inner {
    calls: HashMap<Endpoint, u32>,
    entries: HashMap<EntryKind, u32>,
    /// Tokens minted by a login, per account.
    logins: Vec<u32>,
    faults: HashMap<Endpoint, ArmedFault>,
    page_variant: PageVariant,
    consent_cap: u32,
    totp_reuse_allowed: bool,
    consents_per_day: HashMap<(Acct, NaiveDate), u32>,
    /// consentAppId -> its account, and whether it is still usable (no tokenId generated
    /// from it yet).
    consents: HashMap<String, (Acct, bool)>,
    sessions: HashMap<String, LoginSession>,
    /// One-time tokenIds not yet exchanged, and whose they are.
    token_ids: HashMap<String, (Acct, Instant)>,
    tokens: HashMap<String, TokenRecord>,
    used_totp_steps: HashSet<(Acct, u64)>,
    /// generateAccessToken's window: no token within this of the last attempt.
    mint_interval: Duration,
    /// The last generateAccessToken attempt per account, refused ones included.
    last_mint_attempt: HashMap<Acct, Instant>,
}

pub(crate) struct Minted {
    pub(crate) token: String,
    pub(crate) expires: DateTime<Utc>,
}

pub(crate) struct LiveToken {
    pub(crate) acct: Acct,
    pub(crate) expires: DateTime<Utc>,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum TotpVerdict {
    Accepted,
    Invalid,
    Reused,
}

pub(crate) enum RenewRefusal {
    /// Unknown or replaced token, or a client id that is not its owner.
    Invalid,
    /// A token that has expired: Dhan renews only live ones.
    Expired,
    /// A live token that RenewToken does not extend (APP).
    NotRenewable,
}

/// What the consent login page shows after a submission.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum StepOutcome {
    Show {
        stage: Stage,
        error: Option<&'static str>,
    },
    Authorized,
    Expired,
}

/// The inputs a submission may carry; the session's stage decides which one is checked.
#[derive(Default)]
pub(crate) struct Entry {
    pub(crate) mobile: Option<String>,
    pub(crate) totp: Option<String>,
    pub(crate) otp: Option<String>,
    pub(crate) pin: Option<String>,
    /// Whatever was typed into a screen the stand-in never accepts (Unrecognisable).
    pub(crate) answer: Option<String>,
}

impl Entry {
    /// The screens this submission carries a value for; an `answer` stands for the
    /// screen it replaced (`stage`).
    pub(crate) fn kinds(&self, stage: Option<Stage>) -> Vec<EntryKind> {
        let mut kinds = Vec::new();
        let fields = [
            (&self.mobile, EntryKind::Mobile),
            (&self.totp, EntryKind::Totp),
            (&self.otp, EntryKind::SmsOtp),
            (&self.pin, EntryKind::Pin),
        ];
        for (value, kind) in fields {
            if value.is_some() {
                kinds.push(kind);
            }
        }
        if self.answer.is_some()
            && let Some(kind) = stage.and_then(Stage::entry_kind)
            && !kinds.contains(&kind)
        {
            kinds.push(kind);
        }
        kinds
    }
}

impl Stage {
    pub(crate) fn entry_kind(self) -> Option<EntryKind> {
        match self {
            Stage::Mobile => Some(EntryKind::Mobile),
            Stage::Totp => Some(EntryKind::Totp),
            Stage::SmsOtp => Some(EntryKind::SmsOtp),
            Stage::Pin => Some(EntryKind::Pin),
            Stage::Authorized => None,
        }
    }

    /// The screen after this one is accepted, on a page of this variant.
    pub(crate) fn next(self, variant: PageVariant) -> Stage {
        match self {
            Stage::Mobile if !variant.totp_screen => Stage::Pin,
            Stage::Mobile => match variant.second_factor {
                SecondFactor::Totp => Stage::Totp,
                SecondFactor::SmsOtp => Stage::SmsOtp,
            },
            Stage::Totp | Stage::SmsOtp => Stage::Pin,
            Stage::Pin | Stage::Authorized => Stage::Authorized,
        }
    }
}

fn six_random_digits() -> String {
    use rand::Rng;
    format!("{:06}", rand::rng().random_range(0..1_000_000u32))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn after(start: DateTime<Utc>, lifetime: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(lifetime)
        .ok()
        .and_then(|d| start.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

fn digits_only(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

fn totp_for(secret: &str) -> io::Result<Totp> {
    let cleaned: String = secret
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-' && *c != '=')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let bytes = Secret::try_from_base32(&cleaned).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "mock account totp_secret is not base32",
        )
    })?;
    // Skew 1: the current step and one either side, for clients whose clock is off.
    Ok(Builder::new()
        .with_secret(bytes)
        .with_skew(1)
        .build_noncompliant())
}

impl State {
    pub(crate) fn new(opts: &MockOptions) -> io::Result<State> {
        let mut accounts = vec![opts.account.clone()];
        accounts.extend((1..opts.accounts.max(1)).map(MockAccount::numbered));
        let mut totps = Vec::with_capacity(accounts.len());
        for a in &accounts {
            totps.push(totp_for(&a.totp_secret)?);
            url::Url::parse(&a.redirect_url).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("mock account redirect_url is not a URL: {e}"),
                )
            })?;
        }
        let n = accounts.len();
        Ok(State {
            accounts,
            spa_render_delay: opts.spa_render_delay,
            sms_otp: six_random_digits(),
            decoy_token_id: jwt::uuid_like(),
            totps,
            token_lifetime: opts.token_lifetime,
            inner: Mutex::new(Inner {
                calls: HashMap::new(),
                entries: HashMap::new(),
                logins: vec![0; n],
                faults: HashMap::new(),
                page_variant: opts.page_variant,
                consent_cap: opts.consent_cap,
                totp_reuse_allowed: false,
                consents_per_day: HashMap::new(),
                consents: HashMap::new(),
                sessions: HashMap::new(),
                token_ids: HashMap::new(),
                tokens: HashMap::new(),
                used_totp_steps: HashSet::new(),
                mint_interval: opts.mint_interval,
                last_mint_attempt: HashMap::new(),
            }),
            ip_book: IpBook::default(),
        })
    }

    // A handler that panicked mid-update leaves nothing half-done worth refusing to read:
    // every update here is a single insert or remove.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        lock(&self.inner)
    }

    /// Counts the request, then hands back the fault armed for it, if any.
    pub(crate) fn enter(&self, ep: Endpoint) -> Option<Fault> {
        let mut inner = self.lock();
        *inner.calls.entry(ep).or_insert(0) += 1;
        let armed = inner.faults.get_mut(&ep)?;
        let fault = armed.fault.clone();
        if let Some(n) = armed.remaining.as_mut() {
            *n = n.saturating_sub(1);
            if *n == 0 {
                inner.faults.remove(&ep);
            }
        }
        Some(fault)
    }

    pub(crate) fn calls(&self, ep: Endpoint) -> u32 {
        self.lock().calls.get(&ep).copied().unwrap_or(0)
    }

    /// Counts one submission of each screen it carries a value for.
    pub(crate) fn count_entry(&self, entry: &Entry, stage: Option<Stage>) {
        let kinds = entry.kinds(stage);
        let mut inner = self.lock();
        for kind in kinds {
            *inner.entries.entry(kind).or_insert(0) += 1;
        }
    }

    pub(crate) fn entries(&self, kind: EntryKind) -> u32 {
        self.lock().entries.get(&kind).copied().unwrap_or(0)
    }

    /// The first account (the one single-account callers use).
    pub(crate) fn account(&self) -> &MockAccount {
        &self.accounts[0]
    }

    pub(crate) fn account_by_client_id(&self, client_id: &str) -> Option<Acct> {
        self.accounts.iter().position(|a| a.client_id == client_id)
    }

    /// The account whose API key and secret these are.
    pub(crate) fn account_by_app(&self, api_key: &str, api_secret: &str) -> Option<Acct> {
        self.accounts
            .iter()
            .position(|a| a.api_key == api_key && a.api_secret == api_secret)
    }

    /// The account a login page session is for (the first when the session is unknown).
    pub(crate) fn session_account(&self, session: &str) -> &MockAccount {
        let acct = self.lock().sessions.get(session).map_or(0, |s| s.acct);
        &self.accounts[acct]
    }

    /// Tokens minted by a login, all accounts together.
    pub(crate) fn logins(&self) -> u32 {
        self.lock().logins.iter().sum()
    }

    pub(crate) fn logins_of(&self, acct: Acct) -> u32 {
        self.lock().logins.get(acct).copied().unwrap_or(0)
    }

    pub(crate) fn set_fault(&self, ep: Endpoint, fault: Fault, times: Option<u32>) {
        let mut inner = self.lock();
        if times == Some(0) {
            inner.faults.remove(&ep);
        } else {
            inner.faults.insert(
                ep,
                ArmedFault {
                    fault,
                    remaining: times,
                },
            );
        }
    }

    pub(crate) fn clear_fault(&self, ep: Endpoint) {
        self.lock().faults.remove(&ep);
    }

    pub(crate) fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    pub(crate) fn page_variant(&self) -> PageVariant {
        self.lock().page_variant
    }

    pub(crate) fn set_page_variant(&self, v: PageVariant) {
        self.lock().page_variant = v;
    }

    pub(crate) fn set_consent_cap(&self, n: u32) {
        self.lock().consent_cap = n;
    }

    pub(crate) fn set_totp_reuse_allowed(&self, allowed: bool) {
        self.lock().totp_reuse_allowed = allowed;
    }

    pub(crate) fn set_mint_interval(&self, interval: Duration) {
        self.lock().mint_interval = interval;
    }

    /// Counts a generateAccessToken attempt for `acct`: false when it came within the
    /// window of the last attempt, which this one restarts (as Dhan's does).
    pub(crate) fn mint_attempt(&self, acct: Acct) -> bool {
        let mut inner = self.lock();
        let now = Instant::now();
        let interval = inner.mint_interval;
        let last = inner.last_mint_attempt.insert(acct, now);
        last.is_none_or(|at| now.duration_since(at) >= interval)
    }

    pub(crate) fn pin_matches(&self, acct: Acct, pin: &str) -> bool {
        pin.trim() == self.accounts[acct].pin
    }

    /// Checks a code against the current step ±1 and, when it is accepted, spends its
    /// step: RFC 6238 §5.2 wants each code to work once.
    pub(crate) fn check_totp(&self, acct: Acct, code: &str) -> TotpVerdict {
        let now = unix_now();
        let totp = &self.totps[acct];
        let Some(step) = totp.check(code.trim(), now) else {
            return TotpVerdict::Invalid;
        };
        let mut inner = self.lock();
        if inner.totp_reuse_allowed {
            return TotpVerdict::Accepted;
        }
        let current = now / totp.step();
        inner
            .used_totp_steps
            .retain(|(_, s)| s.saturating_add(2) >= current);
        if inner.used_totp_steps.insert((acct, step)) {
            TotpVerdict::Accepted
        } else {
            TotpVerdict::Reused
        }
    }

    fn mint(&self, inner: &mut Inner, acct: Acct, kind: TokenKind, lifetime: Duration) -> Minted {
        let now = Utc::now();
        let expires = after(now, lifetime);
        let token = jwt::mint(&self.accounts[acct].client_id, kind, now, expires);
        // Dhan keeps one live token per account: a new one silently ends the others.
        inner.tokens.retain(|_, r| r.acct != acct);
        inner.tokens.insert(
            token.clone(),
            TokenRecord {
                acct,
                kind,
                expires,
            },
        );
        Minted { token, expires }
    }

    /// A token handed out by one of the two login endpoints.
    pub(crate) fn login(&self, acct: Acct) -> Minted {
        let mut inner = self.lock();
        inner.logins[acct] += 1;
        self.mint(&mut inner, acct, TokenKind::App, self.token_lifetime)
    }

    pub(crate) fn issue_token(&self, acct: Acct, kind: TokenKind, lifetime: Duration) -> String {
        let mut inner = self.lock();
        self.mint(&mut inner, acct, kind, lifetime).token
    }

    pub(crate) fn live_token(&self, token: &str) -> Option<LiveToken> {
        let inner = self.lock();
        let record = inner.tokens.get(token)?;
        (record.expires > Utc::now()).then_some(LiveToken {
            acct: record.acct,
            expires: record.expires,
        })
    }

    pub(crate) fn is_live(&self, token: &str) -> bool {
        self.live_token(token).is_some()
    }

    pub(crate) fn renew(&self, token: &str, client_id: &str) -> Result<Minted, RenewRefusal> {
        let mut inner = self.lock();
        let record = inner.tokens.get(token).ok_or(RenewRefusal::Invalid)?;
        let acct = record.acct;
        if self.accounts[acct].client_id != client_id {
            return Err(RenewRefusal::Invalid);
        }
        if record.expires <= Utc::now() {
            return Err(RenewRefusal::Expired);
        }
        if record.kind != TokenKind::SelfWeb {
            return Err(RenewRefusal::NotRenewable);
        }
        inner.tokens.remove(token);
        Ok(self.mint(&mut inner, acct, TokenKind::SelfWeb, self.token_lifetime))
    }

    pub(crate) fn ist_today() -> NaiveDate {
        Utc::now().with_timezone(&jwt::ist()).date_naive()
    }

    /// Consents generated today (IST), all accounts together or one account's.
    pub(crate) fn consents_today(&self, acct: Option<Acct>) -> u32 {
        let today = Self::ist_today();
        self.lock()
            .consents_per_day
            .iter()
            .filter(|((a, day), _)| *day == today && acct.is_none_or(|x| x == *a))
            .map(|(_, n)| n)
            .sum()
    }

    /// A new consentAppId, or None once the account's cap for today (IST) is reached.
    pub(crate) fn generate_consent(&self, acct: Acct) -> Option<String> {
        let mut inner = self.lock();
        let today = Self::ist_today();
        let cap = inner.consent_cap;
        let used = inner.consents_per_day.entry((acct, today)).or_insert(0);
        if *used >= cap {
            return None;
        }
        *used += 1;
        let id = jwt::uuid_like();
        inner.consents.insert(id.clone(), (acct, true));
        Some(id)
    }

    pub(crate) fn consent_usable(&self, consent_app_id: &str) -> bool {
        self.lock()
            .consents
            .get(consent_app_id)
            .is_some_and(|(_, usable)| *usable)
    }

    /// Opens a login session for a usable consent.
    pub(crate) fn open_session(&self, consent_app_id: &str) -> Option<String> {
        let mut inner = self.lock();
        let acct = match inner.consents.get(consent_app_id) {
            Some((acct, true)) => *acct,
            _ => return None,
        };
        inner
            .sessions
            .retain(|_, s| s.created.elapsed() < SESSION_TTL);
        let id = jwt::session_id();
        inner.sessions.insert(
            id.clone(),
            LoginSession {
                consent_app_id: consent_app_id.to_owned(),
                acct,
                stage: Stage::Mobile,
                wrong_entries: 0,
                created: Instant::now(),
            },
        );
        Some(id)
    }

    /// The session's stage, if the session and its consent are both still usable.
    pub(crate) fn session_stage(&self, session: &str) -> Option<Stage> {
        let inner = self.lock();
        let s = inner.sessions.get(session)?;
        inner
            .consents
            .get(&s.consent_app_id)
            .is_some_and(|(_, usable)| *usable)
            .then_some(s.stage)
    }

    /// One submission of the screen the session is on. `force_wrong` makes a correct
    /// entry count as wrong (Fault::WrongCredential).
    pub(crate) fn submit(&self, session: &str, entry: Entry, force_wrong: bool) -> StepOutcome {
        let Some(stage) = self.session_stage(session) else {
            return StepOutcome::Expired;
        };
        let (blocked, acct) = {
            let inner = self.lock();
            let s = inner.sessions.get(session);
            (
                s.is_some_and(|s| s.wrong_entries >= WRONG_ENTRIES_BEFORE_BLOCK),
                s.map_or(0, |s| s.acct),
            )
        };
        let account = &self.accounts[acct];
        if blocked {
            return StepOutcome::Show {
                stage,
                error: Some(ACCOUNT_BLOCKED),
            };
        }
        if entry.answer.is_some() {
            return StepOutcome::Show {
                stage,
                error: Some(NOT_VERIFIED),
            };
        }
        let (accepted, error) = match stage {
            Stage::Mobile => {
                let typed = digits_only(entry.mobile.as_deref().unwrap_or(""));
                let ok = !force_wrong && typed == digits_only(&account.mobile);
                (ok, MOBILE_NOT_REGISTERED)
            }
            Stage::Totp => {
                let code = entry.totp.unwrap_or_default();
                let ok = !force_wrong && self.check_totp(acct, &code) == TotpVerdict::Accepted;
                (ok, TOTP_INVALID)
            }
            Stage::SmsOtp => {
                let code = entry.otp.unwrap_or_default();
                let ok = !force_wrong && code.trim() == self.sms_otp;
                (ok, OTP_INVALID)
            }
            Stage::Pin => {
                let pin = entry.pin.unwrap_or_default();
                let ok = !force_wrong && self.pin_matches(acct, &pin);
                (ok, PIN_INCORRECT)
            }
            Stage::Authorized => return StepOutcome::Authorized,
        };
        let variant = self.page_variant();
        let mut inner = self.lock();
        let Some(s) = inner.sessions.get_mut(session) else {
            return StepOutcome::Expired;
        };
        if accepted {
            s.stage = stage.next(variant);
            return match s.stage {
                Stage::Authorized => StepOutcome::Authorized,
                next => StepOutcome::Show {
                    stage: next,
                    error: None,
                },
            };
        }
        // A wrong mobile number proves nothing about who is typing; only secrets count.
        if stage != Stage::Mobile {
            s.wrong_entries += 1;
        }
        let error = if s.wrong_entries >= WRONG_ENTRIES_BEFORE_BLOCK {
            ACCOUNT_BLOCKED
        } else {
            error
        };
        StepOutcome::Show {
            stage,
            error: Some(error),
        }
    }

    /// Ends an authorized session with a one-time tokenId; the consent is spent with it.
    pub(crate) fn finish(&self, session: &str) -> Option<String> {
        let mut inner = self.lock();
        let s = inner.sessions.get(session)?;
        if s.stage != Stage::Authorized {
            return None;
        }
        let consent = s.consent_app_id.clone();
        let (acct, usable) = inner.consents.get_mut(&consent)?;
        if !*usable {
            return None;
        }
        *usable = false;
        let acct = *acct;
        inner.sessions.remove(session);
        let token_id = jwt::uuid_like();
        inner
            .token_ids
            .insert(token_id.clone(), (acct, Instant::now()));
        Some(token_id)
    }

    /// Exchanges a tokenId once, by the app of the account it was made for.
    pub(crate) fn consume_token_id(&self, acct: Acct, token_id: &str) -> Option<Minted> {
        let mut inner = self.lock();
        // Dhan documents no life for a tokenId: the stand-in gives it the one dhan-login
        // assumes, so that a kept tokenId is refused here once the library would drop it.
        let live = |(owner, made): &(Acct, Instant)| {
            *owner == acct && made.elapsed() <= crate::dhan::TOKEN_ID_LIFETIME
        };
        if !inner.token_ids.get(token_id).is_some_and(live) {
            return None;
        }
        inner.token_ids.remove(token_id);
        inner.logins[acct] += 1;
        Some(self.mint(&mut inner, acct, TokenKind::App, self.token_lifetime))
    }
}
