//! A consumer's report that Dhan refused the token it was handed: the token is checked
//! with Dhan's `profile` endpoint, and replaced only when that says it is dead.
//!
//! A refused request is not always a dead token (a data plan lapsed, a wrong client id
//! header, an outage on a data endpoint that misreports itself); and only one token per
//! client is live, so replacing a live one would end the token every other consumer
//! holds. Hence: DH-901 or 401 from `profile` → a new token now (within the mint
//! window); a yes → the same token back, saying so; no answer → the same token back,
//! unverified, and no login.

use serde::{Deserialize, Serialize};

use super::{Request, TokenManager};
use crate::error::Error;
use crate::error_class::ErrorClass;
use crate::progress::Progress;
use crate::store::StoreError;
use crate::token::Token;

/// What checking a reported token found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Verdict {
    /// Dhan's `profile` endpoint accepts the token: it is handed back unchanged.
    Alive,
    /// The token was dead (or there was none): this is a new one.
    Replaced,
    /// Dhan could not be asked (a timeout, a 5xx): the token is handed back unchanged.
    Unverified,
}

impl Verdict {
    /// The snake_case name, as in the daemon's JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Alive => "alive",
            Verdict::Replaced => "replaced",
            Verdict::Unverified => "unverified",
        }
    }
}

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
    /// obtains a new one only if it is dead. `req` says how a login may run.
    pub async fn rejected(
        &self,
        req: &Request,
        progress: &dyn Progress,
    ) -> Result<Rechecked, Error> {
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
        let dead = match self.verify(&stored).await {
            Ok(_) => {
                return Ok(Rechecked {
                    token: stored,
                    verdict: Verdict::Alive,
                    detail: None,
                    unsaved: None,
                });
            }
            Err(e) if e.class() == ErrorClass::TokenInvalid => e,
            Err(e) => {
                return Ok(Rechecked {
                    token: stored,
                    verdict: Verdict::Unverified,
                    detail: Some(e.to_string()),
                    unsaved: None,
                });
            }
        };
        // Another process may have replaced it while Dhan was asked: that one is new.
        let now = self.clock.now();
        if let Some(newer) =
            self.state().await?.token.filter(|t| {
                t.is_live(now) && t.access_token.secret() != stored.access_token.secret()
            })
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
}
