//! A consumer's report that Dhan refused the token it was handed: the token is checked
//! with Dhan's `profile` endpoint, and replaced only when that says it is dead.
//!
//! A refused request is not always a dead token (a data plan lapsed, a wrong client id
//! header, an outage on a data endpoint that misreports itself); and only one token per
//! client is live, so replacing a live one would end the token every other consumer
//! holds. Hence: DH-901 or 401 from `profile` → a new token now (within the mint
//! window); a yes → the same token back, saying so; no answer → the same token back,
//! unverified, and no login.

use super::{Request, TokenManager};
use crate::decide::{Verdict, replaced_meanwhile, verdict};
use crate::error::Error;
use crate::progress::Progress;
use crate::store::StoreError;
use crate::token::Token;

/// The token after a check, and what the check found.
#[derive(Debug)]
pub struct Rechecked {
    /// The token to use now.
    pub token: Token,
    /// Whether it is the reported one, and why.
    pub verdict: Verdict,
    /// Why the token could not be checked (`Unverified`), or why it was dead.
    pub detail: Option<String>,
    /// Set when the new token could not be saved (see [`super::Obtained::unsaved`]).
    pub unsaved: Option<StoreError>,
}

impl TokenManager {
    /// A consumer says Dhan refused the stored token: checks it with `profile`, and
    /// obtains a new one only if it is dead. `req` says how a login may run. Beside a
    /// daemon the manager knows, the daemon checks and replaces: never a login here,
    /// which would end the token it hands out.
    pub async fn rejected(
        &self,
        req: &Request,
        progress: &dyn Progress,
    ) -> Result<Rechecked, Error> {
        if let Some(r) = self.daemon_rechecked().await? {
            return Ok(r);
        }
        let now = self.clock.now();
        let stored = self.state().await?.token.filter(|t| t.is_live(now));
        let Some(stored) = stored else {
            let got = self.token(req, progress).await?;
            return Ok(Rechecked {
                token: got.token,
                verdict: Verdict::Replaced,
                detail: Some("no live token was stored".into()),
                unsaved: got.unsaved,
            });
        };
        // A check that failed for another reason (an unreadable answer) says nothing
        // either: the token comes back, unverified.
        let answer = self.verify(&stored).await.err();
        let found = verdict(answer.as_ref().map(Error::class)).unwrap_or(Verdict::Unverified);
        let dead = match (found, answer) {
            (Verdict::Replaced, Some(e)) => e,
            (verdict, answer) => {
                return Ok(Rechecked {
                    token: stored,
                    verdict,
                    detail: answer.map(|e| e.to_string()),
                    unsaved: None,
                });
            }
        };
        // Another process may have replaced it while Dhan was asked: that one is new.
        let now = self.clock.now();
        if let Some(newer) = self
            .state()
            .await?
            .token
            .filter(|t| replaced_meanwhile(t, &stored, now))
        {
            return Ok(Rechecked {
                token: newer,
                verdict: Verdict::Replaced,
                detail: Some(dead.to_string()),
                unsaved: None,
            });
        }
        let force = Request {
            force: true,
            ..req.clone()
        };
        let got = self.token(&force, progress).await?;
        Ok(Rechecked {
            token: got.token,
            verdict: Verdict::Replaced,
            detail: Some(dead.to_string()),
            unsaved: got.unsaved,
        })
    }

    /// The daemon's check of the profile's token, when the manager knows a daemon and it
    /// answers.
    pub(super) async fn daemon_rechecked(&self) -> Result<Option<Rechecked>, Error> {
        let answer =
            crate::daemon::report_rejected(self.daemon.as_ref(), &self.profile.name).await?;
        Ok(answer.map(|r| Rechecked {
            token: r.token,
            verdict: r.verdict,
            detail: r.detail,
            unsaved: None,
        }))
    }
}
