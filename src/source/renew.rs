//! RenewToken: a live token, renewed in place — no login at all.

use super::{BoxFuture, Context, Outcome, TokenSource};
use crate::error::Error;
use crate::token::SourceKind;

pub(super) struct RenewSource;

impl TokenSource for RenewSource {
    fn kind(&self) -> SourceKind {
        SourceKind::Renew
    }

    fn obtain<'a>(&'a self, cx: &'a Context<'a>) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let now = cx.clock.now();
            let Some(current) = cx.current else {
                return Outcome::NotApplicable("no stored token to renew".into());
            };
            if !current.is_live(now) {
                return Outcome::NotApplicable(
                    "the stored token has expired; Dhan renews only live tokens".into(),
                );
            }
            if !cx.renewable {
                return Outcome::NotApplicable("Dhan refused to renew this token before".into());
            }
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
