//! Gets a DhanHQ access token from Rust through the library: the same profile, cache and
//! login chain (cached → RenewToken → PIN + TOTP → browser) as `dhan-login token`, then
//! checks the token with Dhan's profile endpoint as `dhan-login token --verify` does.
//!
//! ```text
//! cargo run --example token [PROFILE]
//! ```
//!
//! The profile is read as the command line reads it: the config file
//! (`DHAN_LOGIN_CONFIG`, default `~/.config/dhan-login/config.toml`) with the `DHAN_*`
//! variables on top; PROFILE defaults to `DHAN_LOGIN_PROFILE`, then `default`.

use anyhow::Context as _;
use dhan_login::{Checked, NoProgress, Paths, Profile, Request, TokenManager};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // A browser login may leave Chromium orphans: this program takes them in to reap them
    // (process-wide, which is why the library leaves it to the program).
    #[cfg(feature = "browser")]
    dhan_login::become_subreaper();
    let env = |key: &str| std::env::var(key).ok();
    let name = std::env::args()
        .nth(1)
        .or_else(|| env("DHAN_LOGIN_PROFILE"))
        .unwrap_or_else(|| "default".into());
    // [readme:rust-library]
    let paths = Paths::from_env(&env)?;
    let profile = Profile::load(&name, &paths, &env)
        .with_context(|| format!("cannot load profile {name}"))?;

    let manager = TokenManager::new(profile);
    // One manager per profile, asked as often as you like: it logs in only when the
    // stored token runs out (a login spends Dhan's daily consent budget).
    let req = Request::default();
    let got = manager.token(&req, &NoProgress).await?;
    // Checked with Dhan: a token a login elsewhere ended is replaced at once; Dhan
    // unreachable says nothing about the token, which is kept.
    let (obtained, checked) = manager.verified(got, &req, &NoProgress).await?;
    let token = &obtained.token;
    // [/readme]

    println!("token (library): {}", token.access_token.secret());
    // What Dhan says of the token, not what the store remembered.
    match checked {
        Checked::Accepted(info) => println!(
            "profile: client {}, valid until {}",
            info.client_id.as_deref().unwrap_or("?"),
            info.token_validity
                .map_or_else(|| "?".to_string(), |t| t.to_rfc3339())
        ),
        Checked::Unreachable(e) => println!("profile: not checked, Dhan unreachable ({e})"),
    }
    println!(
        "came from: {}",
        if obtained.cached {
            "the store".to_string()
        } else {
            format!("a login ({})", token.source)
        }
    );
    Ok(())
}
