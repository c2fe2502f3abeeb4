//! `dhan-login serve`: keeps each served profile's token fresh and hands it to other
//! programs, so that none of them ever logs in.
//!
//! Layout: `settings` reads the `[serve]`/`[notify]` tables, `scheduler` runs one refresh
//! loop per profile, `status` is what the loops share with the `http` routes and
//! `metrics`, `handoff` writes the token and env files, `key` guards the token route,
//! `notify` posts failure events, and `clock` notices suspend/resume. The side a consumer
//! asks a running daemon with is `crate::daemon`, below the manager that uses it.

mod clock;
mod handoff;
mod http;
mod keeper;
mod metrics;
mod notify;
mod plan;
mod scheduler;
mod settings;
mod status;

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinHandle;

pub use scheduler::Env;
pub use settings::{NotifySettings, ServeSettings};

use crate::config::{Config, ConfigError, check_client_ids};
use crate::daemon::key;
use crate::error::Error;
use crate::error_class::ErrorClass;
use crate::manager::TokenManager;
use crate::token::Token;
use plan::Timing;
use scheduler::{Parts, Scheduler, stopped};
use status::Slot;

/// The profile's token from the daemon `settings` describe. `None` when no daemon is
/// configured (`serve.listen` unset), none answers, or it does not serve this profile:
/// then the caller logs in itself, under the same file lock the daemon uses.
///
/// The key never leaves this process: whatever answers must first prove it holds the key;
/// one that cannot is refused as a configuration error (exit 2), and the caller does not
/// log in itself either, since a daemon with another key may be running.
/// [`TokenManager::token`] asks it first when the manager knows the daemon.
pub async fn ask_daemon(settings: &ServeSettings, profile: &str) -> Result<Option<Token>, Error> {
    crate::daemon::ask_token(settings.daemon().as_ref(), profile).await
}

/// How long shutdown waits for a task before aborting it.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// A running daemon. Stop it with `shutdown`; dropping it leaves the tasks running.
pub struct Daemon {
    addr: SocketAddr,
    socket: Option<PathBuf>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Daemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Daemon")
            .field("addr", &self.addr)
            .field("socket", &self.socket)
            .field("tasks", &self.tasks.len())
            .finish_non_exhaustive()
    }
}

impl Daemon {
    /// Loads every profile from `file` (a reload reads the file again), makes the
    /// key, binds the endpoint and starts refreshing. Must run inside a tokio runtime.
    pub async fn start(
        settings: ServeSettings,
        file: &Config,
        env: Env,
        profiles: &[String],
    ) -> Result<Daemon, Error> {
        settings.check_listen()?;
        if profiles.is_empty() {
            return Err(config("profiles", "no profile to serve".into()));
        }
        let paths = Arc::new(file.paths().clone());
        let mut slots = BTreeMap::new();
        let mut files = HashSet::new();
        // Every profile loads now: a typo fails the start, not a refresh at 3 a.m.
        let loaded = profiles
            .iter()
            .map(|name| file.profile(name, &*env))
            .collect::<Result<Vec<_>, _>>()?;
        check_client_ids(&loaded)?;
        // One HTTP client for every profile: each would otherwise hold its own pool and
        // TLS configuration (1,000 profiles: 23 MiB idle, 171 MiB once all had called Dhan).
        let http = crate::api::http_client()?;
        for profile in loaded {
            let name = &profile.name.clone();
            if settings.refresh_ahead <= profile.margin.to_std().unwrap_or_default() {
                tracing::warn!(
                    profile = %name,
                    "serve.refresh_ahead_minutes is not above margin_minutes: tokens will count as expiring before they are refreshed"
                );
            }
            let manager = Arc::new(
                TokenManager::builder(profile)
                    .http_client(http.clone())
                    .build(),
            );
            for (key, file) in [
                ("serve.token_file", settings.token_file_for(name)),
                ("serve.env_file", settings.env_file_for(name)),
            ] {
                handoff::check_target(&file).map_err(|e| config(key, e.to_string()))?;
                if !files.insert(file.clone()) {
                    return Err(config(
                        key,
                        format!(
                            "{} would serve more than one profile: put {{profile}} in the path",
                            file.display()
                        ),
                    ));
                }
            }
            slots.insert(name.clone(), Arc::new(Slot::new(name, manager)));
        }
        let key = Arc::new(key::ApiKey::load_or_create(&settings.key_file)?);
        let listener = tokio::net::TcpListener::bind(settings.listen)
            .await
            .map_err(|e| other(format!("cannot listen on {}: {e}", settings.listen)))?;
        let addr = listener.local_addr()?;
        let unix = settings.socket.as_deref().map(bind_unix).transpose()?;

        let (stop, stop_rx) = watch::channel(false);
        let nudge = Arc::new(Notify::new());
        let notifier = Arc::new(notify::Notifier::new(&settings.notify)?);
        let timing = Timing {
            ahead: settings.refresh_ahead,
            jitter: settings.jitter,
            retry_min: settings.retry_min,
            retry_max: settings.retry_max,
            warn_before: settings.notify.warn_before,
        };
        let mut tasks = vec![tokio::spawn(clock::watch_jumps(
            nudge.clone(),
            stop_rx.clone(),
        ))];
        for (name, slot) in &slots {
            let scheduler = Scheduler::new(Parts {
                slot: slot.clone(),
                paths: paths.clone(),
                env: env.clone(),
                timing,
                files: (settings.token_file_for(name), settings.env_file_for(name)),
                notifier: notifier.clone(),
                nudge: nudge.clone(),
                stop: stop_rx.clone(),
                http: http.clone(),
            });
            tasks.push(tokio::spawn(scheduler.run()));
        }
        let app = http::router(http::App {
            slots: Arc::new(slots),
            key,
            challenges: Default::default(),
            stop: stop_rx.clone(),
        });
        tasks.push(tokio::spawn(serve_on(
            listener,
            app.clone(),
            stop_rx.clone(),
        )));
        if let Some(unix) = unix {
            tasks.push(tokio::spawn(serve_on(unix, app, stop_rx)));
        }
        tracing::info!(%addr, profiles = ?profiles, "serving");
        Ok(Daemon {
            addr,
            socket: settings.socket,
            stop,
            tasks,
        })
    }

    /// The bound TCP address (the port is known here when `listen` asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Aborts logins under way (the browser's guard kills Chromium), lets the endpoint
    /// answer what it is answering, and waits for every task.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for mut task in self.tasks {
            if tokio::time::timeout(SHUTDOWN_GRACE, &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
        if let Some(path) = self.socket {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// A connection that has not sent a request's headers within this time is closed (hyper
/// answers 408). This also ends idle keep-alive connections, so a flood of silent
/// connections frees its slots on its own.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// The most connections served at once: the file-descriptor limit less a reserve for the
/// daemon's own files and outgoing requests, and never more than 4096. Connections beyond
/// it wait in the kernel's backlog instead of taking descriptors from the daemon.
fn connection_cap() -> usize {
    const RESERVE: u64 = 128;
    use rustix::process::{Resource, getrlimit};
    // No soft limit (`None`) is unlimited.
    let soft = getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX);
    soft.saturating_sub(RESERVE).clamp(16, 4096) as usize
}

/// HTTP/1 on `listener` with a header timeout and a connection cap (a bare `axum::serve`
/// has neither). On stop, no new connection is taken, open ones finish the request they
/// are answering, and this returns once all are closed.
async fn serve_on<L>(mut listener: L, app: axum::Router, mut stop: watch::Receiver<bool>)
where
    L: axum::serve::Listener,
{
    let cap = connection_cap();
    let slots = Arc::new(Semaphore::new(cap));
    loop {
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = stopped(&mut stop) => break,
        };
        let (io, _) = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopped(&mut stop) => break,
        };
        let service = TowerToHyperService::new(app.clone());
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let _slot = permit;
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT);
            let conn = builder.serve_connection(TokioIo::new(io), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => return,
                _ = stopped(&mut stop) => conn.as_mut().graceful_shutdown(),
            }
            let _ = conn.await;
        });
    }
    // Every slot back means every connection is closed.
    let _ = slots.acquire_many(cap as u32).await;
}

/// A socket file left by a daemon that died is replaced. The socket is made owner-only
/// right after binding; in between, the key still guards the token route.
fn bind_unix(path: &std::path::Path) -> Result<tokio::net::UnixListener, Error> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(config(
                "serve.socket",
                format!("{} exists and is not a socket", path.display()),
            ));
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(other(format!(
                "{} is in use by another running daemon",
                path.display()
            )));
        }
        std::fs::remove_file(path)?;
    }
    let listener = tokio::net::UnixListener::bind(path)
        .map_err(|e| other(format!("cannot listen on {}: {e}", path.display())))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

fn config(field: &str, message: String) -> Error {
    Error::Config(ConfigError::Field {
        field: field.to_owned(),
        message,
    })
}

fn other(message: String) -> Error {
    Error::Refused {
        class: ErrorClass::Other,
        message,
    }
}
