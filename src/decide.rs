//! Which token a caller gets: the stored one, or a new one, and why. One pure function
//! of the stored token, the profile's rules, the caller's request and the time, so that
//! every rule is tested with a fixed clock and the CLI, the daemon and a library user
//! decide alike.
//!
//! [`plan`] is the whole decision for one request, taken in stages as the manager learns
//! the facts (the daemon's answer, the store, the ownership); [`after_failure`] says what
//! a failed login leaves. The manager and the sources only do what these say.
//!
//! The rules follow how Dhan's tokens live (docs/DHAN_TOKENS.md): one live token per
//! client, so every new one ends the token every other consumer holds; a token dies 24 h
//! after it was minted, at that clock time. With a daily `login_at`, a token is replaced
//! once a day at that time and never between two of them while it lives.

mod plan;
mod rules;
#[cfg(test)]
mod tests;
mod time;
mod verdict;

pub use plan::{
    AfterFailure, Daemon, Facts, NoRenewal, Obtain, Owned, OwnerPlan, Plan, Renewal, after_failure,
    as_owner, plan,
};
pub use rules::{Ask, Decision, Logins, Rules, Why, decide};
use rules::{asks_daemon, takes_daemons};
pub(crate) use rules::{serves_cached, spent_step_floor};
#[cfg(feature = "serve")]
pub(crate) use time::daily_login_after;
pub use time::{IstTime, ist_wall_clock};
pub use verdict::Verdict;
pub(crate) use verdict::{replaced_meanwhile, verdict};
