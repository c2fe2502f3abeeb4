//! RenewToken: a live token, renewed in place — no login at all.

use super::context::{BoxFuture, Context, Outcome, TokenSource};
use crate::decide::Renewal;
use crate::error::Error;
use crate::token::SourceKind;

pub(super) struct RenewSource;

impl TokenSource for RenewSource {
    fn kind(&self) -> SourceKind {
        SourceKind::Renew
    }

    fn obtain<'a>(&'a self, cx: &'a Context<'a>) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            // Whether to renew is the manager's plan (`decide::as_owner`), not this file's.
            let current = match cx.renew {
                Renewal::Try(current) => current,
                Renewal::Skip(why) => return Outcome::NotApplicable(why.to_string()),
            };
            let now = cx.clock.now();
            cx.progress.step_started("renew");
            let started = std::time::Instant::now();
            let result = cx.api.renew(current).await;
            cx.progress.step_finished("renew", started.elapsed());
            // A renewal refusal says nothing about the user's credentials: never fatal.
            match result.map_err(Error::from).and_then(|g| {
                g.into_token(&current.client_id, SourceKind::Renew, now)
                    .map_err(Error::from)
            }) {
                Ok(token) => Outcome::Obtained(token),
                Err(e) => Outcome::Failed(e),
            }
        })
    }
}
