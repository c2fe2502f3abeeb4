//! One owner per profile across machines: a lease row (holder, epoch, expiry).
//!
//! The holder renews it every third of the lease; a lease not renewed for `lease_secs`
//! (the holder died, hung or lost the network) passes to the next machine that asks, with
//! the epoch one higher. Every write the holder makes carries its epoch and the database
//! refuses it once the epoch is no longer current (fencing), so a holder that wakes from a
//! pause cannot overwrite what its successor stored. Expiry is judged by the database's
//! clock alone, so clocks that differ between machines do not matter.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use deadpool_postgres::Pool;

use super::failure::db;
use crate::store::{LockError, StoreError};
use crate::sync::lock;

/// Held while a profile's token is obtained (or, by `serve`, between logins too); let go
/// (expired at once) when dropped.
#[derive(Debug)]
pub struct Lease {
    pool: Pool,
    profile: String,
    holder: String,
    epoch: i64,
    length: Duration,
    waited: bool,
    took_over: bool,
    taken_at: Instant,
    renewal: tokio::task::JoinHandle<()>,
    /// When the database last confirmed the lease, or None once it passed to another.
    confirmed: Arc<Mutex<Option<Instant>>>,
    released: bool,
}

/// Another holder has the profile: its name, and how long until its lease lapses unless
/// renewed.
#[derive(Debug, Clone)]
pub(crate) struct HeldElsewhere {
    pub(crate) holder: String,
    pub(crate) lapses_in: Duration,
}

/// A taken over holder's TOTP code may have been spent at most this long before the
/// takeover: Dhan accepts a code for its 30 s step and the one after (a generous bound).
const SPENT_CODE_WINDOW: Duration = Duration::from_secs(2 * crate::dhan::TOTP_STEP_SECS as u64);

/// `host/pid/random`: names this process in `dhan_login_leases` and in messages.
fn process_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        // The node name is what gethostname(2) reads on Linux.
        let uname = rustix::system::uname();
        let host = uname.nodename().to_string_lossy();
        format!(
            "{host}/{}/{:08x}",
            std::process::id(),
            rand::random::<u32>()
        )
    })
}

impl Lease {
    pub(super) async fn acquire(
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
                    let mut taken = Lease::start(pool, profile, holder, epoch, lease, took_over);
                    taken.waited = waited;
                    return Ok(taken);
                }
                Ok(Err(current)) => {
                    if started.elapsed() >= wait {
                        return Err(LockError::Leased {
                            profile: profile.to_owned(),
                            holder: current.holder,
                            waited: wait,
                        });
                    }
                    if !waited {
                        tracing::info!(
                            profile,
                            holder = %current.holder,
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

    /// Takes the lease if it is free or lapsed, without waiting.
    pub(super) async fn try_acquire(
        pool: Pool,
        profile: &str,
        lease: Duration,
    ) -> Result<Result<Lease, HeldElsewhere>, StoreError> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let holder = format!(
            "{}/keeper-{}",
            process_id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        Ok(match try_take(&pool, profile, &holder, lease).await? {
            Ok((epoch, took_over)) => {
                Ok(Lease::start(pool, profile, holder, epoch, lease, took_over))
            }
            Err(elsewhere) => Err(elsewhere),
        })
    }

    fn start(
        pool: Pool,
        profile: &str,
        holder: String,
        epoch: i64,
        length: Duration,
        took_over: bool,
    ) -> Lease {
        tracing::debug!(profile, epoch, "lease taken");
        let confirmed = Arc::new(Mutex::new(Some(Instant::now())));
        let renewal = tokio::spawn(renew(
            pool.clone(),
            profile.to_owned(),
            holder.clone(),
            epoch,
            length,
            confirmed.clone(),
        ));
        Lease {
            pool,
            profile: profile.to_owned(),
            holder,
            epoch,
            length,
            waited: false,
            took_over,
            taken_at: Instant::now(),
            renewal,
            confirmed,
            released: false,
        }
    }

    /// The lease's epoch: one higher for each new holder of the profile. Every write
    /// made under the lease carries it, and the database refuses one from an older epoch.
    pub fn epoch(&self) -> i64 {
        self.epoch
    }

    /// True while the lease is surely still this holder's: the database confirmed it
    /// within the last two thirds of its length (one renewal may have been missed). A
    /// lease that passed to another holder, or that the database has not confirmed for
    /// longer (it is unreachable), may be someone else's: act as a non-holder.
    pub fn is_current(&self) -> bool {
        lock(&self.confirmed).is_some_and(|at| at.elapsed() < self.length * 2 / 3)
    }

    /// This holder's name, `host/pid/random/seq`, as other processes see it in
    /// `LockError::Leased`.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// True when another holder had the profile first (and may have stored a token).
    pub fn waited(&self) -> bool {
        self.waited
    }

    /// True when the previous holder's lease lapsed instead of being let go, recently
    /// enough that it may have submitted a TOTP code it never recorded (it died or froze
    /// mid-login). A lease held for longer is past that.
    pub fn took_over(&self) -> bool {
        self.took_over && self.taken_at.elapsed() < SPENT_CODE_WINDOW
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
/// (a released lease has no holder), or who holds it now.
///
/// The row is read `FOR UPDATE` before it is changed, in one transaction: the holder it
/// names is then the one whose lease is replaced. (A single `INSERT … ON CONFLICT` that
/// read the previous holder in a CTE saw the statement's snapshot, so a release that
/// committed while it ran was taken for a lapsed holder: a false takeover.)
async fn try_take(
    pool: &Pool,
    profile: &str,
    holder: &str,
    lease: Duration,
) -> Result<Result<(i64, bool), HeldElsewhere>, StoreError> {
    let mut client = pool.get().await.map_err(super::failure::unreachable)?;
    let tx = client.transaction().await.map_err(db)?;
    let current = tx
        .query_opt(
            "SELECT holder, expires_at <= now(),
                    greatest(extract(epoch FROM expires_at - now()), 0)::float8
             FROM dhan_login_leases WHERE profile = $1 FOR UPDATE",
            &[&profile],
        )
        .await
        .map_err(db)?;
    let secs = lease.as_secs_f64();
    let taken = match &current {
        None => tx
            .query_opt(
                "INSERT INTO dhan_login_leases (profile, holder, epoch, expires_at)
                 VALUES ($1, $2, 1, now() + make_interval(secs => $3))
                 ON CONFLICT (profile) DO NOTHING
                 RETURNING epoch",
                &[&profile, &holder, &secs],
            )
            .await
            .map_err(db)?
            .map(|r| (r.get(0), false)),
        Some(row) if row.get::<_, bool>(1) => {
            let previous: String = row.get(0);
            let r = tx
                .query_one(
                    "UPDATE dhan_login_leases
                     SET holder = $2, epoch = epoch + 1,
                         expires_at = now() + make_interval(secs => $3)
                     WHERE profile = $1
                     RETURNING epoch",
                    &[&profile, &holder, &secs],
                )
                .await
                .map_err(db)?;
            Some((r.get(0), !previous.is_empty()))
        }
        Some(_) => None,
    };
    tx.commit().await.map_err(db)?;
    if let Some(taken) = taken {
        return Ok(Ok(taken));
    }
    // Held, or made by another holder between our read and our insert.
    let (holder, lapses_in) = current.map_or((String::new(), 0.0), |r| (r.get(0), r.get(2)));
    Ok(Err(HeldElsewhere {
        holder,
        lapses_in: Duration::try_from_secs_f64(lapses_in).unwrap_or_default(),
    }))
}

/// Extends the lease every third of its length until it is dropped or lost, noting each
/// confirmation in `confirmed` (None once lost).
async fn renew(
    pool: Pool,
    profile: String,
    holder: String,
    epoch: i64,
    lease: Duration,
    confirmed: Arc<Mutex<Option<Instant>>>,
) {
    let note = |at: Option<Instant>| *lock(&confirmed) = at;
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
            Ok(1) => note(Some(Instant::now())),
            Ok(_) => {
                note(None);
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
