//! Obtains and keeps a DhanHQ API access token without a human in the loop.
//!
//! Dhan's trading API wants an access token that lives about 24 hours, and each way of
//! getting one has a cost: a consent-based login spends one of 25 consents a day, a
//! rejected PIN sent again is how accounts get locked, and a new token silently ends the
//! one another program is using. This crate gets a token by the cheapest path that works, stores it
//! for every later caller, and refuses to repeat what Dhan has refused. The
//! `dhan-login` command line and daemon are built on it; a Rust program can use it
//! directly.
//!
//! # The token-source chain
//!
//! [`TokenManager::token`] first hands out the stored token while it has more than the
//! profile's margin left (30 minutes by default). Otherwise it tries, in order:
//!
//! 1. **renew**: `RenewToken` on the stored token, while it is still live.
//! 2. **totp**: the PIN and a TOTP code to `generateAccessToken`; one request, no browser.
//! 3. **browser** (feature `browser`): generate-consent, then headless Chromium fills the
//!    consent page (mobile, TOTP or SMS/e-mail code, PIN), catches the redirect's
//!    `tokenId` and exchanges it with consumeApp-consent.
//! 4. **manual**: the consent page's address is shown on a [`Console`] and a person logs
//!    in; only when the [`Request`] carries one.
//!
//! A source that is not configured is skipped. One that fails for a passing reason (the
//! network, a page that did not load) hands over to the next. One that Dhan refuses
//! (wrong credentials, consent limit, rate limit) or that is misconfigured stops the
//! chain at once, because another path would send the same refused secrets. When no
//! source works, the error lists every attempt ([`error::ChainFailure`]).
//! [`source::TokenSource`] and [`source::run_chain`] are public for tests and tools that
//! run a chain of their own.
//!
//! # Profiles and the manager
//!
//! A [`Profile`] is one Dhan account: its client id, where each secret comes from (a
//! [`SecretRef`]: inline, a file, or a command such as a password manager, read only
//! when a login needs it), where Dhan is, and where the state is kept. Read it the way
//! the command line does with [`Paths::from_env`] and [`Profile::load`] (a TOML file
//! with `DHAN_*` variables on top), or build one in code with [`Profile::builder`].
//!
//! A [`TokenManager`] (made with [`TokenManager::new`], or [`TokenManager::builder`] to
//! replace its [`Clock`], state backend or lock wait) obtains that profile's tokens.
//! Keep one per profile and share it: concurrent callers wait for one login, and
//! separate processes take a lock per profile, so twenty processes started together
//! cause one login. A [`Progress`] receives the login's steps ([`NoProgress`] ignores
//! them).
//!
//! [`TokenManager::from_config`] makes the manager `dhan-login token` uses, from a
//! [`Config`] (the file read once): beside a running `dhan-login serve` (`[serve]
//! listen`) it takes the daemon's token instead of logging in, and
//! [`TokenManager::token_verified`] ([`manager::Verified`]) lets the daemon check and
//! replace a token Dhan refused, so a program decides exactly as `dhan-login token
//! --verify` does.
//!
//! The root holds what such a program names; the rest is under its module: [`manager`]
//! (the builder and the answers of a checked token), [`token`], [`error`] (every error
//! [`Error`] wraps, and the chain's report), [`source`] (the chain, for tools that run
//! one of their own), [`totp`], [`store`], [`config`], [`api`] and [`decide`].
//!
//! # Where tokens and state are kept
//!
//! By default under the profile's state folder ([`Paths::from_env`]: `DHAN_LOGIN_STATE_DIR`,
//! else `~/.local/state/dhan-login` on Linux): `tokens/PROFILE.json` (the token and the
//! last TOTP step used, mode 0600, replaced atomically), `locks/PROFILE.lock`,
//! `consents/CLIENT_ID.json` (the day's consent count and a pending consent, reused
//! rather than spending another), `lockouts/PROFILE.json` (credentials Dhan rejected,
//! as a hash) and `artifacts/` (what a failed browser login saw, secrets removed).
//! Several machines can share one PostgreSQL database instead ([`config::StoreSettings`],
//! [`store::PgBackend`]): tokens are encrypted there and a lease replaces the file lock.
//!
//! # Errors
//!
//! Every fallible call returns [`Error`], whose [`Error::class`] is an [`ErrorClass`]:
//! branch on that, not on the message. `Config` and `CredentialRejected` need a person
//! (fix the configuration or the secrets; rejected credentials are refused locally until
//! they change or [`TokenManager::unlock`] is called), `ConsentLimit` lasts until
//! midnight IST, `RateLimited` and `Transient` are worth a later retry
//! ([`Error::retry_after`] says when, if Dhan did). Messages and `Debug` output never
//! contain a PIN, TOTP secret, API secret, token or tokenId.
//!
//! # Features
//!
//! The defaults are what the `dhan-login` binary needs; a program that only wants a token
//! takes `default-features = false, features = ["browser"]` and compiles no command line,
//! web server or PostgreSQL client.
//!
//! - `browser`: the headless Chromium login and `dhan-login doctor`'s page inspection,
//!   through `chromiumoxide`, in the `browser` module. Without it the chain is renew,
//!   PIN + TOTP and manual. A program using the browser login should call
//!   `browser::become_subreaper` once at start-up so that Chromium's orphans are reaped.
//! - `postgres`: [`store::StateBackend::Postgres`], the state in a shared PostgreSQL
//!   database. Without it [`store::PgBackend`] still exists but refuses every call: `[store] url`
//!   is then a configuration error that names the feature.
//! - `serve`: the `serve` module, the daemon (`serve::Daemon`, `serve::ServeSettings`,
//!   `serve::ask_daemon`). [`TokenManager::from_config`] asks a running daemon first
//!   without it.
//! - `mock`: the `mock` module, the local stand-in of Dhan (the example below uses it).
//! - `cli`: the binary (clap, anyhow, tracing-subscriber, toml_edit); takes `serve`,
//!   `mock` and `postgres`.
//!
//! # Example
//!
//! A token through the PIN + TOTP path, against `mock`, the crate's own stand-in of
//! Dhan on a loopback port (point the base URLs at Dhan, or leave them out, for the real
//! thing):
//!
//! ```
//! use dhan_login::mock::{MockOptions, MockServer};
//! use dhan_login::{ErrorClass, NoProgress, Profile, Request, SecretRef, SourceKind, TokenManager};
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dhan = MockServer::start(MockOptions::default()).await?;
//! let account = dhan.account().clone();
//! let state = tempfile::tempdir()?;
//!
//! let profile = Profile::builder("bot", state.path())
//!     .client_id(&account.client_id)
//!     .pin(SecretRef::inline(&account.pin))
//!     .totp_secret(SecretRef::inline(&account.totp_secret))
//!     .auth_base_url(dhan.auth_base_url())
//!     .api_base_url(dhan.api_base_url())
//!     .build()?;
//! let manager = TokenManager::new(profile);
//!
//! // Nothing stored yet and nothing to renew: a PIN + TOTP login.
//! let first = manager.token(&Request::default(), &NoProgress).await?;
//! assert!(!first.cached);
//! assert_eq!(first.token.source, SourceKind::Totp);
//! assert_eq!(first.token.client_id, account.client_id);
//! assert!(state.path().join("tokens/bot.json").exists());
//!
//! // Asked again, the manager hands out the stored token: no second login.
//! let again = manager.token(&Request::default(), &NoProgress).await?;
//! assert!(again.cached);
//! assert_eq!(again.token.access_token.secret(), first.token.access_token.secret());
//! assert_eq!(dhan.logins(), 1);
//!
//! // What Dhan says of the token (its profile endpoint).
//! let info = manager.verify(&again.token).await?;
//! assert_eq!(info.client_id, Some(account.client_id.clone()));
//!
//! // A wrong PIN is refused, and the error says so without showing it.
//! # let other_state = tempfile::tempdir()?;
//! let wrong = Profile::builder("wrong-pin", other_state.path())
//!     .client_id(&account.client_id)
//!     .pin(SecretRef::inline("000000"))
//!     .totp_secret(SecretRef::inline(&account.totp_secret))
//!     .auth_base_url(dhan.auth_base_url())
//!     .api_base_url(dhan.api_base_url())
//!     .build()?;
//! let err = TokenManager::new(wrong)
//!     .token(&Request::default(), &NoProgress)
//!     .await
//!     .unwrap_err();
//! assert_eq!(err.class(), ErrorClass::CredentialRejected);
//! assert!(!err.to_string().contains("000000"));
//! # dhan.shutdown().await;
//! # Ok(())
//! # }
//! ```

// The public API is on purpose: every public item documented, nothing public that a
// user cannot name, and every public type printable without a secret.
#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]

pub mod api;
#[cfg(feature = "browser")]
pub mod browser;
pub mod config;
mod console;
mod daemon;
pub mod decide;
mod dhan;
pub mod error;
mod error_class;
pub mod manager;
#[cfg(feature = "mock")]
pub mod mock;
mod progress;
mod redact;
mod secret;
#[cfg(feature = "serve")]
pub mod serve;
pub mod source;
pub mod store;
mod sync;
pub mod token;
pub mod totp;

// What a program that wants a token names; everything else is reached by its module's
// path. tests/it/layers.rs keeps this root at 30 names at most (modules included).
pub use config::{Config, ConfigError, Paths, Profile, SecretRef};
pub use console::{Console, ConsoleFuture};
pub use error::Error;
pub use error_class::ErrorClass;
pub use manager::{Obtained, Request, TokenManager};
pub use progress::{NoProgress, Progress};
pub use secret::Secret;
pub use token::{SourceKind, Token};
pub use totp::Clock;
