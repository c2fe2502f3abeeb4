//! PostgreSQL's failures as the store reports them, naming no password or parameter.

use super::super::tokens::StoreError;
use super::tls;

/// A database error as the store reports it (tokio-postgres never prints parameters).
pub(crate) fn db(e: impl std::fmt::Display) -> StoreError {
    StoreError::Database {
        message: e.to_string(),
    }
}

/// A connection that could not be made, with its causes: tokio-postgres and deadpool
/// keep the reason (a refused certificate, pg_hba) in the error's source, not its text.
pub(crate) fn unreachable(e: deadpool_postgres::PoolError) -> StoreError {
    use tokio_postgres::error::SqlState;
    if let deadpool_postgres::PoolError::Backend(pg) = &e
        && let Some(code) = pg.code()
        && [
            SqlState::INVALID_PASSWORD,
            SqlState::INVALID_AUTHORIZATION_SPECIFICATION,
            SqlState::INVALID_CATALOG_NAME,
        ]
        .contains(code)
    {
        // The server's own words ("password authentication failed for user …",
        // "database … does not exist") name no password.
        let said = pg
            .as_db_error()
            .map_or_else(|| pg.to_string(), |d| d.message().to_owned());
        return StoreError::Unusable {
            message: format!("the server refused the connection ({said}): check store.url"),
        };
    }
    let mut message = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        let text = tls::refusal(s).unwrap_or_else(|| s.to_string());
        if !message.ends_with(&text) {
            message = format!("{message}: {text}");
        }
        source = s.source();
    }
    StoreError::Database { message }
}
