//! The shared state in PostgreSQL, for several machines serving the same profiles.
//!
//! One pool per database and key in a process, made on first use: connecting, checking
//! the key and migrating happen when a profile first needs its state, so a cached-token
//! path that fails here fails with a message naming the database, never at start-up of an
//! unrelated command.

mod cipher;
mod failure;
mod lease;
mod migrations;
mod tls;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use base64::Engine;
use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};

use cipher::Cipher;
use failure::{db, unreachable};
pub(crate) use lease::HeldElsewhere;
pub use lease::Lease;

use super::attempt::{MintAttempt, MintOutcome, MintWait, wait_for};
use super::fingerprint::FingerprintKey;
use super::ledger::{LedgerDay, PendingConsent, check_client_id, refusal};
use super::lockout::{Lockout, Lockouts, drop_unkeyed};
use super::tokens::{KeptTokenId, ProfileState, StoreError};
use crate::config::StoreSettings;
use crate::secret::Secret;
use crate::sync::lock;
use crate::token::{Token, ist};

/// The `state` column: the profile's state without its secrets, and a kept tokenId
/// sealed like the token (base64, since the column is text). A version that does not
/// know the field drops it on its next write: that run logs in as before.
#[derive(serde::Serialize, serde::Deserialize)]
struct StateColumn {
    #[serde(flatten)]
    state: ProfileState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sealed_token_id: Option<String>,
}

/// The associated data a kept tokenId is sealed with: bound to the profile like the
/// token, and never opened as a token (a profile name has no `/`).
fn token_id_aad(profile: &str) -> String {
    format!("{profile}/tokenId")
}

/// A kept tokenId that does not open (another store key, an altered row) is dropped:
/// the next login spends a consent as it would have without it.
fn open_token_id(cipher: &Cipher, profile: &str, sealed: &str) -> Option<KeptTokenId> {
    let opened = base64::engine::general_purpose::STANDARD
        .decode(sealed)
        .ok()
        .and_then(|bytes| cipher.open(&token_id_aad(profile), &bytes).ok())
        .map(zeroize::Zeroizing::new)
        .and_then(|plain| serde_json::from_slice(&plain).ok());
    if opened.is_none() {
        tracing::warn!(
            profile,
            "the tokenId kept for profile `{profile}` does not decrypt with store.key: it is dropped"
        );
    }
    opened
}

/// A connected, migrated database and the key its tokens are sealed with.
#[derive(Debug)]
struct Ready {
    pool: Pool,
    cipher: Cipher,
    fingerprints: FingerprintKey,
}

/// The state of every profile, in the database named by `[store] url`. Opaque: use it
/// through [`StateBackend`](super::StateBackend), which picks it for a profile whose
/// settings name a database. It connects, checks `store.key` and migrates the schema on
/// first use, not when it is made.
#[derive(Debug)]
pub struct PgBackend {
    settings: Arc<StoreSettings>,
    ready: tokio::sync::OnceCell<Arc<Ready>>,
}

/// Pools by database and key: profiles (and config reloads) share one per process.
fn pools() -> &'static Mutex<HashMap<String, Arc<Ready>>> {
    static POOLS: OnceLock<Mutex<HashMap<String, Arc<Ready>>>> = OnceLock::new();
    POOLS.get_or_init(Default::default)
}

impl PgBackend {
    pub(crate) fn new(settings: &Arc<StoreSettings>) -> Arc<PgBackend> {
        Arc::new(PgBackend {
            settings: settings.clone(),
            ready: tokio::sync::OnceCell::new(),
        })
    }

    /// The pool, connecting and migrating on first use.
    async fn ready(&self) -> Result<&Ready, StoreError> {
        let ready = self
            .ready
            .get_or_try_init(|| async {
                // A setting's own errors already name it ("store.key: cannot read …"):
                // said once, not "store.key: store.key: …".
                let config_error = |field: &str, e: crate::config::ConfigError| {
                    let said = e.to_string();
                    StoreError::Unusable {
                        message: if said.starts_with(field) {
                            said
                        } else {
                            format!("{field}: {said}")
                        },
                    }
                };
                let url = self
                    .settings
                    .url
                    .as_ref()
                    .ok_or_else(|| db("no store url"))?
                    .load()
                    .await
                    .map_err(|e| config_error("store.url", e))?;
                let key = self
                    .settings
                    .key
                    .as_ref()
                    .ok_or_else(|| StoreError::Unusable {
                        message: "store.key_file or store.key_command is required".into(),
                    })?
                    .load()
                    .await
                    .map_err(|e| config_error("store.key", e))?;
                let id = {
                    let mut h = Sha256::new();
                    h.update(url.expose_secret().as_bytes());
                    h.update([0]);
                    h.update(key.expose_secret().as_bytes());
                    format!("{:x}", h.finalize())
                };
                if let Some(r) = lock(pools()).get(&id) {
                    return Ok(r.clone());
                }
                let cipher = Cipher::from_key(key)?;
                // From the store key, which the database never sees: a dump of the
                // lockouts alone cannot be searched for a PIN.
                let fingerprints = FingerprintKey::derived_from(key.expose_secret().as_bytes());
                let pool = connect(url.expose_secret())?;
                let mut client = pool.get().await.map_err(unreachable)?;
                migrations::apply(&mut client).await?;
                drop(client);
                let ready = Arc::new(Ready {
                    pool,
                    cipher,
                    fingerprints,
                });
                lock(pools()).insert(id, ready.clone());
                Ok::<_, StoreError>(ready)
            })
            .await?;
        Ok(ready)
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.ready().await?.pool.get().await.map_err(unreachable)
    }

    pub(crate) async fn load(&self, profile: &str) -> Result<ProfileState, StoreError> {
        let ready = self.ready().await?;
        let client = ready.pool.get().await.map_err(unreachable)?;
        let row = client
            .query_opt(
                "SELECT token, state, reported_dead_ms FROM dhan_login_profiles WHERE profile = $1",
                &[&profile],
            )
            .await
            .map_err(db)?;
        let Some(row) = row else {
            return Ok(ProfileState {
                renewable: true,
                ..Default::default()
            });
        };
        let sealed: Option<Vec<u8>> = row.get(0);
        let state: String = row.get(1);
        let reported_dead: Option<i64> = row.get(2);
        let column: StateColumn = serde_json::from_str(&state).map_err(|e| {
            db(format!(
                "the stored state of profile `{profile}` does not parse ({e})"
            ))
        })?;
        let mut state = column.state;
        state.kept_token_id = column
            .sealed_token_id
            .and_then(|sealed| open_token_id(&ready.cipher, profile, &sealed));
        state.token = match sealed {
            None => None,
            // A token sealed with another key (store.key was replaced) can never be
            // opened: treated as absent, the next login stores one under the new key
            // instead of every command failing until someone edits the row.
            Some(sealed) => match ready.cipher.open(profile, &sealed) {
                Ok(plain) => Some(serde_json::from_slice::<Token>(&plain).map_err(|e| {
                    db(format!(
                        "the stored token of profile `{profile}` does not parse ({e})"
                    ))
                })?),
                Err(e) => {
                    tracing::warn!("{e}; it counts as absent, and the next login replaces it");
                    None
                }
            },
        };
        state.reported_dead = reported_dead.and_then(DateTime::from_timestamp_millis);
        Ok(state)
    }

    /// Writes the state. Under a lease the write lands only while that lease is still
    /// the profile's current one, and never over a write of a newer epoch.
    pub(crate) async fn save(
        &self,
        profile: &str,
        state: &ProfileState,
        lease: Option<&Lease>,
    ) -> Result<(), StoreError> {
        let ready = self.ready().await?;
        let sealed = match &state.token {
            None => None,
            Some(t) => {
                let plain = serde_json::to_vec(t).map_err(db)?;
                Some(ready.cipher.seal(profile, &plain)?)
            }
        };
        let sealed_token_id = match &state.kept_token_id {
            None => None,
            Some(kept) => {
                let plain = zeroize::Zeroizing::new(serde_json::to_vec(kept).map_err(db)?);
                let sealed = ready.cipher.seal(&token_id_aad(profile), &plain)?;
                Some(base64::engine::general_purpose::STANDARD.encode(sealed))
            }
        };
        let rest = StateColumn {
            state: ProfileState {
                token: None,
                kept_token_id: None,
                ..state.clone()
            },
            sealed_token_id,
        };
        let rest = serde_json::to_string(&rest).map_err(db)?;
        let client = ready.pool.get().await.map_err(unreachable)?;
        let Some(lease) = lease else {
            client
                .execute(
                    "INSERT INTO dhan_login_profiles AS p (profile, token, state)
                     VALUES ($1, $2, $3)
                     ON CONFLICT (profile) DO UPDATE
                     SET token = EXCLUDED.token, state = EXCLUDED.state, updated_at = now()",
                    &[&profile, &sealed, &rest],
                )
                .await
                .map_err(db)?;
            return Ok(());
        };
        // FOR SHARE: a takeover committed meanwhile is seen (and refuses this write), one
        // in progress waits until this write is done.
        let written = client
            .execute(
                "WITH current AS (
                     SELECT 1 FROM dhan_login_leases
                     WHERE profile = $1 AND holder = $4 AND epoch = $5 FOR SHARE
                 )
                 INSERT INTO dhan_login_profiles AS p (profile, token, state, epoch)
                 SELECT $1, $2, $3, $5 FROM current
                 ON CONFLICT (profile) DO UPDATE
                 SET token = EXCLUDED.token, state = EXCLUDED.state,
                     epoch = EXCLUDED.epoch, updated_at = now()
                 WHERE p.epoch <= EXCLUDED.epoch",
                &[&profile, &sealed, &rest, &lease.holder(), &lease.epoch()],
            )
            .await
            .map_err(db)?;
        if written == 0 {
            return Err(StoreError::Fenced {
                profile: profile.to_owned(),
                epoch: lease.epoch(),
            });
        }
        Ok(())
    }

    /// Drops the stored token if it is still `read`, in one transaction (a logout must
    /// not drop a successor's token). The rest of the stored state is left as it is: a
    /// login may have changed it (its TOTP step) since it was read.
    pub(crate) async fn forget(&self, profile: &str, read: &Token) -> Result<bool, StoreError> {
        let ready = self.ready().await?;
        let mut client = ready.pool.get().await.map_err(unreachable)?;
        let tx = client.transaction().await.map_err(db)?;
        let sealed: Option<Vec<u8>> = tx
            .query_opt(
                "SELECT token FROM dhan_login_profiles WHERE profile = $1 FOR UPDATE",
                &[&profile],
            )
            .await
            .map_err(db)?
            .and_then(|r| r.get(0));
        let Some(sealed) = sealed else {
            return Ok(false);
        };
        let stored: Token =
            serde_json::from_slice(&ready.cipher.open(profile, &sealed)?).map_err(|e| {
                db(format!(
                    "the stored token of profile `{profile}` does not parse ({e})"
                ))
            })?;
        if stored.access_token.secret() != read.access_token.secret() {
            tracing::warn!(
                profile,
                "another dhan-login stored a newer token since it was read: it is kept"
            );
            return Ok(false);
        }
        tx.execute(
            "UPDATE dhan_login_profiles SET token = NULL, updated_at = now() WHERE profile = $1",
            &[&profile],
        )
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(true)
    }

    /// Drops the stored token (dead: Dhan replaced it), keeping the rest of the state.
    pub(crate) async fn set_aside(&self, profile: &str) -> Result<(), StoreError> {
        self.client()
            .await?
            .execute(
                "UPDATE dhan_login_profiles SET token = NULL, updated_at = now()
                 WHERE profile = $1",
                &[&profile],
            )
            .await
            .map_err(db)?;
        Ok(())
    }

    /// Notes that the stored token obtained at `obtained_at` is dead, for the lease holder
    /// to replace. Touches nothing else: no lease is needed.
    pub(crate) async fn report_dead(
        &self,
        profile: &str,
        obtained_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.client()
            .await?
            .execute(
                "UPDATE dhan_login_profiles SET reported_dead_ms = $2 WHERE profile = $1",
                &[&profile, &obtained_at.timestamp_millis()],
            )
            .await
            .map_err(db)?;
        Ok(())
    }

    /// Waits up to `wait` for the profile's lease.
    pub(crate) async fn lease(
        &self,
        profile: &str,
        wait: std::time::Duration,
    ) -> Result<Lease, StoreError> {
        let ready = self.ready().await?;
        Ok(Lease::acquire(ready.pool.clone(), profile, self.settings.lease, wait).await?)
    }

    /// Takes the profile's lease if nobody holds it, without waiting.
    pub(crate) async fn try_lease(
        &self,
        profile: &str,
    ) -> Result<Result<Lease, HeldElsewhere>, StoreError> {
        let ready = self.ready().await?;
        Lease::try_acquire(ready.pool.clone(), profile, self.settings.lease).await
    }

    pub(crate) async fn fingerprint_key(&self) -> Result<FingerprintKey, StoreError> {
        Ok(self.ready().await?.fingerprints.clone())
    }

    pub(crate) async fn lockouts(&self, profile: &str) -> Result<Lockouts, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT lockouts FROM dhan_login_lockouts WHERE profile = $1",
                &[&profile],
            )
            .await
            .map_err(db)?;
        drop(client);
        let mut lockouts = parse_lockouts(profile, row.map(|r| r.get(0)));
        if let Lockouts::Recorded(all) = &mut lockouts
            && drop_unkeyed(all)
        {
            // An older version's unkeyed hash could be searched for the PIN: replace the
            // row now (best effort; the lockouts hold either way).
            let _ = self
                .change_lockouts(profile, |all| {
                    drop_unkeyed(all);
                })
                .await;
        }
        Ok(lockouts)
    }

    /// Read, change and write one profile's lockouts under a row lock.
    async fn change_lockouts(
        &self,
        profile: &str,
        change: impl FnOnce(&mut Vec<Lockout>),
    ) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        tx.execute(
            "INSERT INTO dhan_login_lockouts (profile, lockouts) VALUES ($1, '[]')
             ON CONFLICT (profile) DO NOTHING",
            &[&profile],
        )
        .await
        .map_err(db)?;
        let text: String = tx
            .query_one(
                "SELECT lockouts FROM dhan_login_lockouts WHERE profile = $1 FOR UPDATE",
                &[&profile],
            )
            .await
            .map_err(db)?
            .get(0);
        // An unreadable row already locks every path: leave it for `unlock`.
        let Lockouts::Recorded(mut all) = parse_lockouts(profile, Some(text)) else {
            return Ok(false);
        };
        let before = all.clone();
        change(&mut all);
        let changed = all != before;
        if changed {
            let text = serde_json::to_string(&all).map_err(db)?;
            tx.execute(
                "UPDATE dhan_login_lockouts SET lockouts = $2 WHERE profile = $1",
                &[&profile, &text],
            )
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(changed)
    }

    pub(crate) async fn add_lockout(
        &self,
        profile: &str,
        lockout: Lockout,
    ) -> Result<(), StoreError> {
        self.change_lockouts(profile, |all| {
            all.retain(|l| l.secrets != lockout.secrets || l.fingerprint != lockout.fingerprint);
            all.push(lockout);
        })
        .await
        .map(|_| ())
    }

    pub(crate) async fn clear_covered(
        &self,
        profile: &str,
        worked: &[Secret],
    ) -> Result<(), StoreError> {
        self.change_lockouts(profile, |all| {
            all.retain(|l| !l.covered_by(worked));
        })
        .await
        .map(|_| ())
    }

    pub(crate) async fn clear_lockouts(&self, profile: &str) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let removed = client
            .execute(
                "DELETE FROM dhan_login_lockouts WHERE profile = $1 AND lockouts <> '[]'",
                &[&profile],
            )
            .await
            .map_err(db)?;
        Ok(removed > 0)
    }

    pub(crate) async fn ledger_today(
        &self,
        client_id: &str,
        now: DateTime<Utc>,
    ) -> Result<LedgerDay, StoreError> {
        check_client_id(client_id)?;
        let client = self.client().await?;
        let today = now.with_timezone(&ist()).date_naive();
        let day = today.to_string();
        let counts = client
            .query_opt(
                "SELECT used, exhausted FROM dhan_login_consents
                 WHERE client_id = $1 AND day = $2",
                &[&client_id, &day],
            )
            .await
            .map_err(db)?;
        let pending = client
            .query_opt(
                "SELECT consent_app_id, created_at_ms FROM dhan_login_pending_consents
                 WHERE client_id = $1",
                &[&client_id],
            )
            .await
            .map_err(db)?
            .map(|r| PendingConsent {
                consent_app_id: r.get(0),
                created_at: DateTime::from_timestamp_millis(r.get(1)).unwrap_or_default(),
            });
        let (used, exhausted) = counts.map_or((0, false), |r| (r.get::<_, i32>(0), r.get(1)));
        Ok(LedgerDay {
            day: Some(today),
            used: u32::try_from(used).unwrap_or(0),
            exhausted,
            pending,
        })
    }

    /// Counts one consent in a single statement that also checks the cap: concurrent
    /// callers on any number of machines never together pass it.
    pub(crate) async fn reserve(
        &self,
        client_id: &str,
        now: DateTime<Utc>,
        cap: u32,
    ) -> Result<(), StoreError> {
        check_client_id(client_id)?;
        let day = now.with_timezone(&ist()).date_naive().to_string();
        let cap_i = i32::try_from(cap).unwrap_or(i32::MAX);
        if cap_i > 0 {
            let client = self.client().await?;
            let counted = client
                .query_opt(
                    "INSERT INTO dhan_login_consents AS c (client_id, day, used)
                     VALUES ($1, $2, 1)
                     ON CONFLICT (client_id, day) DO UPDATE SET used = c.used + 1
                     WHERE c.used < $3 AND NOT c.exhausted
                     RETURNING used",
                    &[&client_id, &day, &cap_i],
                )
                .await
                .map_err(db)?;
            if counted.is_some() {
                return Ok(());
            }
        }
        let today = self.ledger_today(client_id, now).await?;
        Err(refusal(&today, cap, now).unwrap_or_else(|| {
            // Someone else's consent was counted between the two statements.
            refusal(&LedgerDay { used: cap, ..today }, cap, now)
                .unwrap_or_else(|| db("the consent ledger changed while it was read"))
        }))
    }

    pub(crate) async fn unreserve(
        &self,
        client_id: &str,
        reserved_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        check_client_id(client_id)?;
        let day = reserved_at.with_timezone(&ist()).date_naive().to_string();
        self.client()
            .await?
            .execute(
                "UPDATE dhan_login_consents SET used = used - 1
                 WHERE client_id = $1 AND day = $2 AND used > 0",
                &[&client_id, &day],
            )
            .await
            .map_err(db)?;
        Ok(())
    }

    pub(crate) async fn mark_exhausted(
        &self,
        client_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        check_client_id(client_id)?;
        let day = now.with_timezone(&ist()).date_naive().to_string();
        self.client()
            .await?
            .execute(
                "INSERT INTO dhan_login_consents AS c (client_id, day, used, exhausted)
                 VALUES ($1, $2, 0, true)
                 ON CONFLICT (client_id, day) DO UPDATE SET exhausted = true",
                &[&client_id, &day],
            )
            .await
            .map_err(db)?;
        Ok(())
    }

    pub(crate) async fn set_pending(
        &self,
        client_id: &str,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        check_client_id(client_id)?;
        self.client()
            .await?
            .execute(
                "INSERT INTO dhan_login_pending_consents (client_id, consent_app_id, created_at_ms)
                 VALUES ($1, $2, $3)
                 ON CONFLICT (client_id) DO UPDATE
                 SET consent_app_id = EXCLUDED.consent_app_id,
                     created_at_ms = EXCLUDED.created_at_ms",
                &[&client_id, &id, &now.timestamp_millis()],
            )
            .await
            .map_err(db)?;
        Ok(())
    }

    pub(crate) async fn clear_pending(&self, client_id: &str, id: &str) -> Result<(), StoreError> {
        check_client_id(client_id)?;
        self.client()
            .await?
            .execute(
                "DELETE FROM dhan_login_pending_consents
                 WHERE client_id = $1 AND consent_app_id = $2",
                &[&client_id, &id],
            )
            .await
            .map_err(db)?;
        Ok(())
    }
}

impl PgBackend {
    pub(crate) async fn last_mint(
        &self,
        client_id: &str,
    ) -> Result<Option<MintAttempt>, StoreError> {
        check_client_id(client_id)?;
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT at_ms, outcome FROM dhan_login_mints WHERE client_id = $1",
                &[&client_id],
            )
            .await
            .map_err(db)?;
        Ok(row.map(|r| MintAttempt {
            at: DateTime::from_timestamp_millis(r.get(0)).unwrap_or_default(),
            outcome: MintOutcome::parse(r.get(1)),
        }))
    }

    /// Records an attempt at `now` in one statement that also checks the window: two
    /// replicas never both pass it.
    pub(crate) async fn reserve_mint(
        &self,
        client_id: &str,
        now: DateTime<Utc>,
        interval: std::time::Duration,
    ) -> Result<Result<MintAttempt, MintWait>, StoreError> {
        check_client_id(client_id)?;
        let at_ms = now.timestamp_millis();
        let interval_ms = i64::try_from(interval.as_millis()).unwrap_or(i64::MAX);
        let attempt = MintAttempt {
            at: DateTime::from_timestamp_millis(at_ms).unwrap_or(now),
            outcome: MintOutcome::Sent,
        };
        let recorded = self
            .client()
            .await?
            .query_opt(
                "INSERT INTO dhan_login_mints AS m (client_id, at_ms, outcome)
                 VALUES ($1, $2, $3)
                 ON CONFLICT (client_id) DO UPDATE
                 SET at_ms = EXCLUDED.at_ms, outcome = EXCLUDED.outcome
                 WHERE m.at_ms <= $2 - $4
                 RETURNING at_ms",
                &[&client_id, &at_ms, &attempt.outcome.as_str(), &interval_ms],
            )
            .await
            .map_err(db)?;
        if recorded.is_some() {
            return Ok(Ok(attempt));
        }
        let last = self.last_mint(client_id).await?;
        Ok(Err(wait_for(client_id, last, now, interval)
            .unwrap_or_else(|| {
                // The row moved between the two statements: another attempt just now.
                MintWait {
                    client_id: client_id.to_owned(),
                    last: MintAttempt { at: now, ..attempt },
                    next_at: now + chrono::Duration::from_std(interval).unwrap_or_default(),
                    wait: interval,
                }
            })))
    }

    pub(crate) async fn record_mint(
        &self,
        client_id: &str,
        attempt: MintAttempt,
        outcome: MintOutcome,
    ) -> Result<(), StoreError> {
        check_client_id(client_id)?;
        self.client()
            .await?
            .execute(
                "UPDATE dhan_login_mints SET outcome = $3 WHERE client_id = $1 AND at_ms = $2",
                &[
                    &client_id,
                    &attempt.at.timestamp_millis(),
                    &outcome.as_str(),
                ],
            )
            .await
            .map_err(db)?;
        Ok(())
    }
}

/// A row that does not parse locks every path, as an unreadable lockout file does.
fn parse_lockouts(profile: &str, text: Option<String>) -> Lockouts {
    let Some(text) = text else {
        return Lockouts::Recorded(Vec::new());
    };
    match serde_json::from_str::<Vec<Lockout>>(&text) {
        Ok(all) => Lockouts::Recorded(all),
        Err(e) => Lockouts::Unreadable {
            path: PathBuf::from(format!("dhan_login_lockouts[{profile}]")),
            reason: e.to_string(),
            since: DateTime::UNIX_EPOCH,
        },
    }
}

/// A pool on `url` (plain TCP or a Unix socket; no TLS in this version).
fn connect(url: &str) -> Result<Pool, StoreError> {
    let (config, tls) = tls::config(url)?;
    let manager = Manager::from_config(
        config,
        tls,
        ManagerConfig {
            // A connection the server dropped (a restart) is noticed and replaced.
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(8)
        .runtime(Runtime::Tokio1)
        .create_timeout(Some(std::time::Duration::from_secs(5)))
        .wait_timeout(Some(std::time::Duration::from_secs(10)))
        .recycle_timeout(Some(std::time::Duration::from_secs(5)))
        .build()
        .map_err(db)
}
