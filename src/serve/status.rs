//! What the daemon knows about each profile, shared by its scheduler (the only writer)
//! and the HTTP routes, plus the views of it that the routes return. Never a token.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio::sync::{Notify, watch};

use crate::token::Token;

use crate::decide::{Logins, daily_login_after};
use crate::error_class::ErrorClass;
use crate::manager::TokenManager;
use crate::store::next_ist_midnight;
use crate::sync::lock;

/// A token told apart from its successor without keeping its value.
type Seen = (DateTime<Utc>, DateTime<Utc>);

fn seen(t: &Token) -> Seen {
    (t.expires_at, t.obtained_at)
}

/// One served profile.
pub(crate) struct Slot {
    pub(crate) name: String,
    pub(crate) status: watch::Sender<Status>,
    /// A token Dhan's `profile` endpoint called dead after a consumer reported it: the
    /// scheduler replaces it at once, whatever its expiry says.
    dead: Mutex<Option<Seen>>,
    /// Wakes the scheduler when a token is reported dead.
    pub(crate) wake: Notify,
}

impl Slot {
    /// Marks `t` dead and wakes the scheduler to replace it.
    pub(crate) fn report_dead(&self, t: &Token) {
        *lock(&self.dead) = Some(seen(t));
        self.wake.notify_one();
    }

    /// Whether `t` was reported dead; a mark for another token is dropped (replaced).
    pub(crate) fn is_dead(&self, t: &Token) -> bool {
        let mut dead = lock(&self.dead);
        match *dead {
            Some(d) if d == seen(t) => true,
            Some(_) => {
                *dead = None;
                false
            }
            None => false,
        }
    }

    pub(crate) fn new(name: &str, manager: Arc<TokenManager>) -> Self {
        Slot {
            dead: Mutex::new(None),
            wake: Notify::new(),
            name: name.to_owned(),
            status: watch::Sender::new(Status {
                manager,
                phase: Phase::Starting,
                next_at: None,
                last_success: None,
                last_failure: None,
                attempts: 0,
                failures: BTreeMap::new(),
                obtained: BTreeMap::new(),
            }),
        }
    }
}

#[derive(Clone)]
pub(crate) struct Status {
    /// The manager built from the latest profile load; reading through it applies the
    /// same margin as `dhan-login token`.
    pub(crate) manager: Arc<TokenManager>,
    pub(crate) phase: Phase,
    /// When the scheduler next refreshes, retries or re-checks.
    pub(crate) next_at: Option<DateTime<Utc>>,
    pub(crate) last_success: Option<DateTime<Utc>>,
    pub(crate) last_failure: Option<Failure>,
    /// Refreshes started by this daemon.
    pub(crate) attempts: u64,
    /// Failed refreshes by error class.
    pub(crate) failures: BTreeMap<&'static str, u64>,
    /// Tokens this daemon obtained, by source.
    pub(crate) obtained: BTreeMap<&'static str, u64>,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Phase {
    Starting,
    /// Holding a token; the next refresh is at `next_at`.
    Waiting,
    Refreshing,
    /// The last refresh failed with something that may pass; next try at `next_at`.
    Retrying,
    /// A fatal answer: no login until a human acts (or the consent day ends).
    Held(Hold),
    /// Another replica on the shared database holds the profile and refreshes it; this
    /// one serves the token it stores and takes over if its lease lapses.
    Standby,
    /// This host never logs in (`login = "never"`) and no live token is stored: it
    /// serves the one another host stores as soon as there is one.
    Awaiting,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Hold {
    /// Dhan rejected these credentials: until the configuration changes or `unlock`.
    Lockout { since: DateTime<Utc> },
    /// The day's consents are used up: until 00:00 IST.
    ConsentLimit { until: DateTime<Utc> },
}

#[derive(Clone, Debug)]
pub(crate) struct Failure {
    pub(crate) at: DateTime<Utc>,
    pub(crate) class: ErrorClass,
    pub(crate) message: String,
}

impl Phase {
    pub(crate) fn as_str(&self) -> &'static str {
        match self {
            Phase::Starting => "starting",
            Phase::Waiting => "ok",
            Phase::Refreshing => "refreshing",
            Phase::Retrying => "retrying",
            Phase::Held(_) => "held",
            Phase::Standby => "standby",
            Phase::Awaiting => "awaiting",
        }
    }

    /// A refresh is under way or about to be (here, or by the replica holding the
    /// profile): a token request may wait for it.
    pub(crate) fn busy(&self) -> bool {
        matches!(self, Phase::Starting | Phase::Refreshing | Phase::Standby)
    }
}

/// Why a profile on a host that never logs in has no token, for people.
pub(crate) const AWAITING: &str = "no live token, and logins are off on this host (login = \"never\"): waiting for a token from another host";

impl Hold {
    pub(crate) fn class(&self) -> ErrorClass {
        match self {
            Hold::Lockout { .. } => ErrorClass::CredentialRejected,
            Hold::ConsentLimit { .. } => ErrorClass::ConsentLimit,
        }
    }

    /// What ends the hold, for people.
    pub(crate) fn lifted_by(&self) -> &'static str {
        match self {
            Hold::Lockout { .. } => {
                "a changed PIN/TOTP/mobile/API secret in the configuration, or `dhan-login unlock`"
            }
            Hold::ConsentLimit { .. } => "the next IST day (00:00 IST)",
        }
    }

    fn view(&self) -> Value {
        let (since, until) = match self {
            Hold::Lockout { since } => (Some(*since), None),
            Hold::ConsentLimit { until } => (None, Some(*until)),
        };
        json!({
            "class": self.class(),
            "since": since,
            "until": until,
            "lifted_by": self.lifted_by(),
        })
    }
}

/// Whether a profile is fine for `/healthz`, and if not, why.
pub(crate) async fn health(status: &Status) -> Result<(), String> {
    if let Phase::Held(_) = status.phase {
        return Err("held after a fatal answer; see /v1/profiles".into());
    }
    match status.manager.cached().await {
        Ok(Some(_)) => Ok(()),
        Ok(None) if status.phase == Phase::Awaiting => Err(AWAITING.into()),
        Ok(None) => Err("no token valid beyond the margin".into()),
        Err(e) => Err(format!("cannot read the stored token: {e}")),
    }
}

/// `/v1/profiles` entry: everything but the token.
pub(crate) async fn view(slot: &Slot, now: DateTime<Utc>) -> Value {
    let s = slot.status.borrow().clone();
    let m = &s.manager;
    let state = m.state().await.ok();
    let token = state.as_ref().and_then(|st| st.token.as_ref()).map(|t| {
        json!({
            "client_id": t.client_id,
            "expires_at": t.expires_at,
            "seconds_left": (t.expires_at - now).num_seconds().max(0),
            "valid": t.is_valid_for(now, m.profile().margin),
            "kind": t.kind.as_str(),
            "source": t.source.as_str(),
            "obtained_at": t.obtained_at,
        })
    });
    let consents = m.consents_today().await.ok().flatten().map(|d| {
        json!({
            "used_today": d.used,
            "cap": m.profile().consent_cap,
            "exhausted": d.exhausted,
            "resets_at": next_ist_midnight(now),
        })
    });
    // The daily login replacing the stored token: the first `login_at` after it was
    // obtained (past: due now), the scheduler's wake-up adding its jitter (`next_at`).
    let login_at = m.profile().login_at;
    let next_daily_login = login_at.map(|at| {
        state
            .as_ref()
            .and_then(|st| st.token.as_ref())
            .map_or_else(|| at.next(now), |t| daily_login_after(at, t.obtained_at))
    });
    // While closed a login here is refused without a request: say until when.
    let mint_window = m.mint_wait().await.ok().flatten().map(|w| {
        json!({
            "closed_until": w.next_at,
            "closed_until_ist": w.next_at_ist(),
            "last_attempt_at": w.last.at,
            "last_outcome": w.last.outcome.as_str(),
        })
    });
    let logins = match m.profile().logins {
        Logins::Allowed => "auto",
        Logins::Never => "never",
    };
    let held = match &s.phase {
        Phase::Held(h) => h.view(),
        _ => Value::Null,
    };
    json!({
        "name": slot.name,
        "state": s.phase.as_str(),
        "healthy": health(&s).await.is_ok(),
        "token": token,
        "next_at": s.next_at,
        "login_at": login_at.map(|at| at.to_string()),
        "next_daily_login_at": next_daily_login,
        "logins": logins,
        "mint_window": mint_window,
        "last_success_at": s.last_success,
        "last_error": s.last_failure.as_ref().map(|f| json!({
            "at": f.at,
            "class": f.class,
            "message": f.message,
        })),
        "held": held,
        "attempts": s.attempts,
        "failures": s.failures,
        "obtained": s.obtained,
        "consents": consents,
    })
}
