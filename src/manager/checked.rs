//! A token checked with Dhan's `profile` endpoint (`token --verify`): one Dhan refuses
//! (DH-901, ended by a login elsewhere) is replaced at once; Dhan unreachable says
//! nothing about the token, which is kept and starts nothing. Beside a daemon the
//! manager knows, the daemon checks and replaces its own token.

use super::{Obtained, Rechecked, Request, TokenManager};
use crate::api::ProfileInfo;
use crate::decide::{Verdict, verdict};
use crate::error::Error;
use crate::progress::Progress;
use crate::token::Token;

impl TokenManager {
    /// A token from `token`, checked with Dhan's `profile`:
    /// one Dhan refuses (DH-901, killed by a login elsewhere) is replaced at once, unless
    /// another process has replaced it already. Dhan unreachable (a timeout, a 5xx) says
    /// nothing about the token: it is kept, and no login is started for it.
    pub async fn verified(
        &self,
        got: Obtained,
        req: &Request,
        progress: &dyn Progress,
    ) -> Result<(Obtained, Checked), Error> {
        let err = match self.verify(&got.token).await {
            Ok(info) => return Ok((got, Checked::Accepted(info))),
            Err(e) => e,
        };
        match verdict(Some(err.class())) {
            Some(Verdict::Unverified) => return Ok((got, Checked::Unreachable(err))),
            Some(Verdict::Replaced) if got.cached => {}
            _ => return Err(err),
        }
        tracing::warn!("Dhan refused the stored token ({err}); obtaining a new one");
        let again = Request {
            refused: Some(got.token.clone()),
            ..req.clone()
        };
        let got = self.token(&again, progress).await?;
        match self.verify(&got.token).await {
            Ok(info) => Ok((got, Checked::Accepted(info))),
            Err(e) if verdict(Some(e.class())) == Some(Verdict::Unverified) => {
                Ok((got, Checked::Unreachable(e)))
            }
            Err(e) => Err(e),
        }
    }

    /// What `dhan-login token --verify` does: beside a daemon the manager knows, the
    /// daemon checks its token with Dhan and replaces it if dead (never a login here,
    /// which would end the token it hands out); else [`token`](Self::token), then
    /// [`verified`](Self::verified).
    pub async fn token_verified(
        &self,
        req: &Request,
        progress: &dyn Progress,
    ) -> Result<Verified, Error> {
        if let Some(r) = self.daemon_rechecked().await? {
            return Ok(Verified::ByDaemon(r));
        }
        let got = self.token(req, progress).await?;
        let (got, checked) = self.verified(got, req, progress).await?;
        Ok(Verified::Here(got, checked))
    }

    /// Checks a token with Dhan (`--verify`).
    pub async fn verify(&self, token: &Token) -> Result<ProfileInfo, Error> {
        Ok(self.api.profile(token.access_token.secret()).await?)
    }
}

/// What Dhan's `profile` said of a token [`TokenManager::verified`] hands out.
#[derive(Debug)]
pub enum Checked {
    /// Dhan accepted it.
    Accepted(ProfileInfo),
    /// Dhan could not be asked (timeout, connection error, 5xx): the token is kept.
    Unreachable(Error),
}

/// A token checked with Dhan, and by whom: [`TokenManager::token_verified`].
#[derive(Debug)]
pub enum Verified {
    /// The daemon checked (and, if dead, replaced) its token.
    ByDaemon(Rechecked),
    /// This process obtained the token and checked it.
    Here(Obtained, Checked),
}
