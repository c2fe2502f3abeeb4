//! One owner per profile across machines: a lease row (holder, epoch, expiry).
//!
//! The holder renews it every third of the lease; a lease not renewed for `lease_secs`
//! (the holder died, hung or lost the network) passes to the next machine that asks, with
//! the epoch one higher. Every write the holder makes carries its epoch and the database
//! refuses it once the epoch is no longer current (fencing), so a holder that wakes from a
//! pause cannot overwrite what its successor stored. Expiry is judged by the database's
//! clock alone, so clocks that differ between machines do not matter.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use deadpool_postgres::Pool;

use super::db;
use crate::store::{LockError, StoreError};

/// Held while a profile's token is obtained; let go (expired at once) when dropped.
#[derive(Debug)]
pub struct Lease {
    pool: Pool,
    profile: String,
    holder: String,
    epoch: i64,
    waited: bool,
    took_over: bool,
    renewal: tokio::task::JoinHandle<()>,
    released: bool,
}

/// `host/pid/random`: names this process in `dhan_login_leases` and in messages.
fn process_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        let mut buf = [0u8; 256];
        // SAFETY: the buffer is valid for its length; gethostname writes at most that.
        let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
        let host = if rc == 0 {
            let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
            String::from_utf8_lossy(&buf[..end]).into_owned()
        } else {
            "unknown-host".to_owned()
        };
        format!(
            "{host}/{}/{:08x}",
            std::process::id(),
            rand::random::<u32>()
        )
    })
}

impl Lease {
    pub async fn acquire(
        pool: Pool,
        profile: &str,
        lease: Duration,
        wait: Duration,
    ) -> Result<Lease, LockError> {
        // Each acquisition is its own holder, so two tasks of one process never share one.
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let holder = format!("{}/{}", process_id(), SEQ.fetch_add(1, Ordering::Relaxed));
        let started = Instant::now();
        let mut waited = false;
        loop {
            match try_take(&pool, profile, &holder, lease).await {
                Ok(Ok((epoch, took_over))) => {
                    tracing::debug!(profile, epoch, "lease taken");
                    let renewal = tokio::spawn(renew(
                        pool.clone(),
                        profile.to_owned(),
                        holder.clone(),
                        epoch,
                        lease,
                    ));
                    return Ok(Lease {
                        pool,
                        profile: profile.to_owned(),
                        holder,
                        epoch,
                        waited,
                        took_over,
                        renewal,
                        released: false,
                    });
                }
                Ok(Err(current)) => {
                    if started.elapsed() >= wait {
                        return Err(LockError::Leased {
                            profile: profile.to_owned(),
                            holder: current,
                            waited: wait,
                        });
                    }
                    if !waited {
                        tracing::info!(
                            profile,
                            holder = %current,
                            "another dhan-login holds the profile's lease; waiting for it"
                        );
                    }
                }
                // The database is unreachable: keep trying within the wait, then say why.
                Err(e) => {
                    if started.elapsed() >= wait {
                        return Err(LockError::Io {
                            path: format!("dhan_login_leases[{profile}]").into(),
                            source: std::io::Error::other(e.to_string()),
                        });
                    }
                }
            }
            waited = true;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub fn epoch(&self) -> i64 {
        self.epoch
    }

    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// True when another holder had the profile first (and may have stored a token).
    pub fn waited(&self) -> bool {
        self.waited
    }

    /// True when the previous holder's lease lapsed instead of being let go: it died or
    /// froze mid-login, maybe after submitting a TOTP code it never recorded.
    pub fn took_over(&self) -> bool {
        self.took_over
    }
}

impl Lease {
    /// Expires the lease now, so the next holder need not wait for it to lapse.
    pub async fn release(mut self) {
        self.renewal.abort();
        self.released = true;
        let (pool, profile, holder, epoch) = (
            self.pool.clone(),
            self.profile.clone(),
            self.holder.clone(),
            self.epoch,
        );
        expire(pool, profile, holder, epoch).await;
    }
}

async fn expire(pool: Pool, profile: String, holder: String, epoch: i64) {
    let released = async {
        pool.get()
            .await
            .map_err(db)?
            .execute(
                "UPDATE dhan_login_leases SET expires_at = now(), holder = ''
                 WHERE profile = $1 AND holder = $2 AND epoch = $3",
                &[&profile, &holder, &epoch],
            )
            .await
            .map_err(db)
    };
    if let Err(e) = released.await {
        tracing::debug!(profile, "lease not released, it will lapse: {e}");
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.renewal.abort();
        if self.released {
            return;
        }
        // Dropped without `release` (an error or a cancelled task): let go in the
        // background; without a runtime it lapses on its own.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(expire(
                self.pool.clone(),
                self.profile.clone(),
                self.holder.clone(),
                self.epoch,
            ));
        }
    }
}

/// The epoch of a new lease and whether it was taken from a holder whose lease lapsed
/// (a released lease has no holder), or the current holder's name.
async fn try_take(
    pool: &Pool,
    profile: &str,
    holder: &str,
    lease: Duration,
) -> Result<Result<(i64, bool), String>, StoreError> {
    let client = pool.get().await.map_err(db)?;
    let taken = client
        .query_opt(
            "WITH previous AS (SELECT holder FROM dhan_login_leases WHERE profile = $1)
             INSERT INTO dhan_login_leases AS l (profile, holder, epoch, expires_at)
             VALUES ($1, $2, 1, now() + make_interval(secs => $3))
             ON CONFLICT (profile) DO UPDATE
             SET holder = EXCLUDED.holder, epoch = l.epoch + 1, expires_at = EXCLUDED.expires_at
             WHERE l.expires_at <= now()
             RETURNING epoch, coalesce((SELECT holder FROM previous), '') <> ''",
            &[&profile, &holder, &lease.as_secs_f64()],
        )
        .await
        .map_err(db)?;
    if let Some(row) = taken {
        return Ok(Ok((row.get(0), row.get(1))));
    }
    let current = client
        .query_opt(
            "SELECT holder FROM dhan_login_leases WHERE profile = $1",
            &[&profile],
        )
        .await
        .map_err(db)?
        .map(|r| r.get::<_, String>(0))
        .unwrap_or_default();
    Ok(Err(current))
}

/// Extends the lease every third of its length until it is dropped or lost.
async fn renew(pool: Pool, profile: String, holder: String, epoch: i64, lease: Duration) {
    loop {
        tokio::time::sleep(lease / 3).await;
        let renewed = async {
            pool.get()
                .await
                .map_err(db)?
                .execute(
                    "UPDATE dhan_login_leases
                     SET expires_at = now() + make_interval(secs => $4)
                     WHERE profile = $1 AND holder = $2 AND epoch = $3",
                    &[&profile, &holder, &epoch, &lease.as_secs_f64()],
                )
                .await
                .map_err(db)
        };
        match renewed.await {
            Ok(1) => {}
            Ok(_) => {
                tracing::warn!(
                    profile,
                    epoch,
                    "the lease passed to another holder; what this login stores will be refused"
                );
                return;
            }
            // Keep trying: the database may be restarting, and the lease may still be ours.
            Err(e) => tracing::warn!(profile, "cannot renew the lease: {e}"),
        }
    }
}
