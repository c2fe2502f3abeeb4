//! A running `dhan-login serve`, seen from a consumer: where it listens, the key it must
//! prove it holds (`key`, `challenge`), and the client that asks it for a profile's
//! token or reports a token Dhan refused. Below `manager`, so that a library user's
//! `TokenManager` asks the daemon first exactly as `dhan-login token` does; the daemon
//! (`serve`) answers with the same `key` and `challenge`.

// Both sides of the handshake stay in one file each, tested against each other; a build
// without the daemon (feature `serve`) uses only the consumer's side.
#[cfg_attr(not(feature = "serve"), allow(dead_code))]
pub(crate) mod challenge;
mod client;
#[cfg_attr(not(feature = "serve"), allow(dead_code))]
pub(crate) mod key;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

pub(crate) use client::{ask_token, report_rejected};

use crate::config::{Config, ConfigError, Overrides};

/// Where the daemon listens unless `serve.listen` says otherwise.
#[cfg(feature = "serve")]
pub(crate) const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 7787);

/// A daemon to ask first: where it answers, and the file with the key it shares with its
/// consumers (the key itself never crosses the wire).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonAddr {
    /// Where a consumer connects (an unspecified `listen` address is reached on loopback).
    pub addr: SocketAddr,
    /// The key file the daemon made (`serve.key_file`).
    pub key_file: PathBuf,
}

impl DaemonAddr {
    /// The daemon `serve.listen` (or `DHAN_LOGIN_SERVE_LISTEN`) names; `None` when
    /// neither sets it, and then no daemon is asked.
    pub fn from_config(
        config: &Config,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<DaemonAddr>, ConfigError> {
        Ok(listen(config, env)?.map(|listen| DaemonAddr {
            addr: client_addr(listen),
            key_file: key_file(config, env),
        }))
    }
}

/// `serve.listen` with the environment on top, when either sets it.
pub(crate) fn listen(
    config: &Config,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<SocketAddr>, ConfigError> {
    Overrides(env)
        .var("DHAN_LOGIN_SERVE_LISTEN")
        .or_else(|| config.serve().listen.clone())
        .map(|raw| parse_listen("serve.listen", &raw))
        .transpose()
}

/// `serve.key_file` with the environment on top; `serve.key` in the state folder.
pub(crate) fn key_file(config: &Config, env: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    let env = Overrides(env);
    env.var("DHAN_LOGIN_SERVE_KEY_FILE")
        .or_else(|| {
            let p = config.serve().key_file.as_ref()?;
            Some(p.to_string_lossy().into_owned())
        })
        .map(|p| env.expand_home(Path::new(&p)))
        .unwrap_or_else(|| config.paths().state_dir.join("serve.key"))
}

/// `ADDR:PORT`, or `localhost:PORT`; `name` is the setting the error names.
pub(crate) fn parse_listen(name: &str, raw: &str) -> Result<SocketAddr, ConfigError> {
    let raw = raw.trim();
    let field = |message: String| ConfigError::Field {
        field: name.to_owned(),
        message,
    };
    if let Some(port) = raw.strip_prefix("localhost:") {
        let port = port
            .parse::<u16>()
            .map_err(|_| field(format!("`{raw}`: `{port}` is not a port")))?;
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    raw.parse().map_err(|_| {
        field(format!(
            "`{raw}` is not ADDR:PORT (e.g. 127.0.0.1:7787 or [::1]:7787)"
        ))
    })
}

/// Where a client connects: an unspecified address (0.0.0.0) is reached on loopback.
pub(crate) fn client_addr(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}
