//! RenewToken: a live token, renewed in place — no login at all.

use super::context::{BoxFuture, Context, Outcome, TokenSource};
use crate::error::Error;
use crate::token::{SourceKind, TokenKind};

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
            // Dhan renews only tokens made on Dhan Web; an API login's token gets HTTP
            // 500 DH-905. The JWT says which it is, so nothing is sent for an APP token.
            if current.kind == TokenKind::App {
                return Outcome::NotApplicable(
                    "the stored token was made by an API login (APP): Dhan renews only Dhan Web (SELF) tokens".into(),
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
