//! Reading an answer with a size cap and a deadline: a server that streams forever (a
//! broken proxy, a hostile endpoint) must cost a bounded amount of memory and time.

use std::time::Duration;

use tokio::time::Instant;

/// Far above any answer of Dhan's (a few hundred bytes) or of the daemon's.
pub(crate) const MAX_BODY: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub(crate) enum BodyError {
    #[error("the answer is larger than {} KiB; not read further", .0 / 1024)]
    TooLarge(usize),
    #[error("the answer did not arrive in full within {0:?}")]
    Deadline(Duration),
    #[error("the answer broke off: {0}")]
    Transport(reqwest::Error),
}

/// The body of `resp` as text (lossily decoded), read until `cap` bytes or `deadline`.
pub(crate) async fn read_capped(
    mut resp: reqwest::Response,
    cap: usize,
    deadline: Instant,
) -> Result<String, BodyError> {
    if resp.content_length().is_some_and(|n| n > cap as u64) {
        return Err(BodyError::TooLarge(cap));
    }
    let limit = deadline.saturating_duration_since(Instant::now());
    let read = async {
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| BodyError::Transport(e.without_url()))?
        {
            if body.len() + chunk.len() > cap {
                return Err(BodyError::TooLarge(cap));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    };
    let body = tokio::time::timeout_at(deadline, read)
        .await
        .map_err(|_| BodyError::Deadline(limit))??;
    Ok(String::from_utf8_lossy(&body).into_owned())
}
