//! The database schema, one numbered step at a time. A step, once released, never
//! changes: a later change is a new step. Steps run in one transaction under an advisory
//! lock, so replicas starting together apply each exactly once.

use tokio_postgres::Client;

use super::failure::db;
use crate::store::StoreError;

/// `(version, SQL)`, in order.
const STEPS: &[(i32, &str)] = &[
    (
        1,
        "
    CREATE TABLE dhan_login_profiles (
        profile    text PRIMARY KEY,
        -- The token, sealed with store.key (format byte, nonce, AES-256-GCM); never plain.
        token      bytea,
        -- Everything else the profile remembers (renewable, last error, TOTP step), as JSON.
        state      text NOT NULL,
        -- The lease epoch of the last fenced write: an older one may not overwrite it.
        epoch      bigint NOT NULL DEFAULT 0,
        updated_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE dhan_login_leases (
        profile    text PRIMARY KEY,
        holder     text NOT NULL,
        epoch      bigint NOT NULL,
        expires_at timestamptz NOT NULL
    );
    CREATE TABLE dhan_login_lockouts (
        profile  text PRIMARY KEY,
        lockouts text NOT NULL
    );
    CREATE TABLE dhan_login_consents (
        client_id text NOT NULL,
        day       text NOT NULL,
        used      integer NOT NULL,
        exhausted boolean NOT NULL DEFAULT false,
        PRIMARY KEY (client_id, day)
    );
    CREATE TABLE dhan_login_pending_consents (
        client_id      text PRIMARY KEY,
        consent_app_id text NOT NULL,
        created_at_ms  bigint NOT NULL
    );
    ",
    ),
    (
        2,
        "
    -- The last generateAccessToken attempt per client id: Dhan's 2-minute window counts
    -- from the last attempt, by any machine.
    CREATE TABLE dhan_login_mints (
        client_id text PRIMARY KEY,
        at_ms     bigint NOT NULL,
        outcome   text NOT NULL
    );
    ",
    ),
    (
        3,
        "
    -- When the stored token was obtained, for a token a consumer reported to a replica
    -- that may not replace it (standing by, or logins off) and Dhan's profile endpoint
    -- called dead: the lease holder reads it and replaces that token.
    ALTER TABLE dhan_login_profiles ADD COLUMN reported_dead_ms bigint;
    ",
    ),
];

/// The newest schema this binary knows.
pub(super) const KNOWN: i32 = 3;

/// A constant key for `pg_advisory_xact_lock`: "dhanlgin" in ASCII.
const LOCK_KEY: i64 = 0x6468_616e_6c67_696e;

/// Brings the schema up to `KNOWN`; refuses a database that is already past it.
pub(super) async fn apply(client: &mut Client) -> Result<i32, StoreError> {
    let tx = client.transaction().await.map_err(db)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY])
        .await
        .map_err(db)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS dhan_login_schema (
             version    integer PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )
    .await
    .map_err(db)?;
    let row = tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM dhan_login_schema",
            &[],
        )
        .await
        .map_err(db)?;
    let found: i32 = row.get(0);
    if found > KNOWN {
        return Err(StoreError::SchemaTooNew {
            found,
            known: KNOWN,
        });
    }
    for (version, sql) in STEPS.iter().filter(|(v, _)| *v > found) {
        tx.batch_execute(sql).await.map_err(db)?;
        tx.execute(
            "INSERT INTO dhan_login_schema (version) VALUES ($1)",
            &[version],
        )
        .await
        .map_err(db)?;
        tracing::info!(version, "state database schema migrated");
    }
    tx.commit().await.map_err(db)?;
    Ok(KNOWN)
}
