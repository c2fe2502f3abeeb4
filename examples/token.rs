//! Gets a DhanHQ access token from Rust through the library, deciding as
//! `dhan-login token --verify` does: a running `dhan-login serve` first, else the same
//! profile, cache and login chain (cached → RenewToken → PIN + TOTP → browser), and the
//! token checked with Dhan's profile endpoint.
//!
//! ```text
//! cargo run --example token [PROFILE]
//! ```
//!
//! The profile is read as the command line reads it: the config file
//! (`DHAN_LOGIN_CONFIG`, default `~/.config/dhan-login/config.toml`) with the `DHAN_*`
//! variables on top, and the daemon where `[serve] listen` (`DHAN_LOGIN_SERVE_LISTEN`)
//! says; PROFILE defaults to `DHAN_LOGIN_PROFILE`, then `default`.

use anyhow::Context as _;
use dhan_login::{
    Config, NoProgress, Paths, Request, TokenManager,
    decide::Verdict,
    manager::{Checked, Verified},
};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // A browser login may leave Chromium orphans: this program takes them in to reap them
    // (process-wide, which is why the library leaves it to the program).
    #[cfg(feature = "browser")]
    dhan_login::browser::become_subreaper();
    let env = |key: &str| std::env::var(key).ok();
    let name = std::env::args()
        .nth(1)
        .or_else(|| env("DHAN_LOGIN_PROFILE"))
        .unwrap_or_else(|| "default".into());
    // [readme:rust-library]
    let config = Config::load(&Paths::from_env(&env)?)?;
    let manager = TokenManager::from_config(&config, &name, &env)
        .with_context(|| format!("cannot load profile {name}"))?;

    // One manager per profile, asked as often as you like: it takes a running daemon's
    // token, else logs in only when the stored token runs out (a login spends Dhan's
    // daily consent budget). Checked with Dhan: a token a login elsewhere ended is
    // replaced at once; Dhan unreachable says nothing about the token, which is kept.
    let got = manager
        .token_verified(&Request::default(), &NoProgress)
        .await?;
    // [/readme]

    // What Dhan says of the token, not what the store remembered.
    let (token, checked, came_from) = match got {
        Verified::ByDaemon(r) => {
            let checked = match r.verdict {
                Verdict::Unverified => None,
                _ => Some((r.token.client_id.clone(), Some(r.token.expires_at))),
            };
            (r.token, checked, "the daemon".to_string())
        }
        Verified::Here(got, checked) => {
            let checked = match checked {
                Checked::Accepted(info) => Some((
                    info.client_id.unwrap_or_else(|| "?".into()),
                    info.token_validity,
                )),
                Checked::Unreachable(_) => None,
            };
            let from = if got.cached {
                "the store".to_string()
            } else {
                format!("a login ({})", got.token.source)
            };
            (got.token, checked, from)
        }
    };
    println!("token (library): {}", token.access_token.secret());
    match checked {
        Some((client, until)) => println!(
            "profile: client {client}, valid until {}",
            until.map_or_else(|| "?".to_string(), |t| t.to_rfc3339())
        ),
        None => println!("profile: not checked, Dhan unreachable"),
    }
    println!("came from: {came_from}");
    Ok(())
}
