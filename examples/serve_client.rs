//! Asks a running `dhan-login serve` for a profile's token, the way `dhan-login token`
//! does before it would log in itself: a program that only reads the token never starts
//! a login that competes with the daemon's.
//!
//! ```text
//! dhan-login serve &
//! cargo run --example serve_client [PROFILE]
//! ```
//!
//! The daemon is found as the command line finds it: `[serve] listen` of the config file
//! or `DHAN_LOGIN_SERVE_LISTEN`, and the key in `serve.key` of the state folder
//! (`DHAN_LOGIN_STATE_DIR`), which never crosses the wire (README, "serve"). PROFILE
//! defaults to `DHAN_LOGIN_PROFILE`, then `default`.

use dhan_login::{
    Paths,
    serve::{ServeSettings, ask_daemon},
};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let env = |key: &str| std::env::var(key).ok();
    let name = std::env::args()
        .nth(1)
        .or_else(|| env("DHAN_LOGIN_PROFILE"))
        .unwrap_or_else(|| "default".into());
    // [readme:rust-serve]
    let paths = Paths::from_env(&env)?;
    let settings = ServeSettings::load(&paths, &env)?;

    // `None`: no daemon is configured, none answers, or it does not serve this profile.
    // A program that must not log in itself stops there; `dhan-login token` would go on
    // to log in under the lock the daemon also takes.
    let Some(token) = ask_daemon(&settings, &name).await? else {
        anyhow::bail!(
            "no dhan-login serve answers for profile {name} at {} (is it running? is serve.listen set?)",
            settings.client_addr()
        );
    };
    // [/readme]
    println!("token (serve): {}", token.access_token.secret());
    println!(
        "daemon: client {}, valid until {}",
        token.client_id,
        token.expires_at.to_rfc3339()
    );
    Ok(())
}
