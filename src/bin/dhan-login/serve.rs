//! `serve`: the daemon in the foreground until SIGTERM/SIGINT.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use dhan_login::{
    ConfigError,
    serve::{Daemon, Env as ServeEnv, ServeSettings},
};

use crate::cli::ServeArgs;
use crate::load::config;

pub async fn serve(default_profile: &str, file: Option<&Path>, args: ServeArgs) -> Result<u8> {
    // Watch the signals before anyone can learn that we are up: a SIGTERM sent right
    // after the ready line must reach this handler, not the default action.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot watch SIGTERM")?;
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .context("cannot watch SIGINT")?;

    let file = config(file)?;
    let env: ServeEnv = Arc::new(|k: &str| std::env::var(k).ok());
    let mut settings = ServeSettings::from_config(&file, &*env)?;
    if let Some(listen) = &args.listen {
        settings.set_listen(listen)?;
    }
    settings.allow_remote |= args.allow_remote;
    if let Some(socket) = args.socket {
        settings.socket = Some(socket);
    }
    let names = if args.all {
        let names = file.profile_names();
        if names.is_empty() {
            return Err(ConfigError::Field {
                field: "profiles".into(),
                message: format!(
                    "--all: {} has no [profiles.NAME] table",
                    file.paths().config_file.display()
                ),
            }
            .into());
        }
        names
    } else if args.profiles.is_empty() {
        vec![default_profile.to_owned()]
    } else {
        let mut names = args.profiles;
        names.sort();
        names.dedup();
        names
    };

    let key_file = settings.key_file.clone();
    let socket = settings.socket.clone();
    let daemon = Daemon::start(settings, &file, env, &names).await?;
    let addr = daemon.local_addr();
    // The first line of stdout is the contract for scripts and tests: where we listen.
    let ready = serde_json::json!({
        "listen": addr.to_string(),
        "socket": socket,
        "profiles": names,
        "key_file": key_file,
    });
    println!("{ready}");
    let _ = std::io::stdout().flush();
    tracing::info!(
        "serving {} profile(s) on http://{addr}; SIGTERM or Ctrl-C stops",
        names.len()
    );
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::info!("stopping: aborting logins under way");
    daemon.shutdown().await;
    Ok(0)
}
