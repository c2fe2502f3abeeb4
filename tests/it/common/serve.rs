//! `dhan-login serve` as a real process, for the serve_* tests: the profiles and `[serve]`
//! tables they configure, the daemon with its stderr kept for failure messages, and
//! "machines" sharing one PostgreSQL database for the replica tests.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dhan_login::mock::{MockAccount, MockOptions, MockServer};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

use super::{Sandbox, run};

/// Not the stand-in's PIN: Dhan (the stand-in) rejects it.
pub const WRONG_PIN: &str = "864213";

/// How a profile may obtain a token.
#[derive(Clone, Copy)]
pub enum Login {
    /// No credentials: RenewToken on the stored token is the only way.
    RenewOnly,
    /// PIN + TOTP.
    Totp,
    /// PIN + TOTP with a PIN the stand-in rejects.
    WrongPin,
    /// Everything the browser login needs too.
    #[cfg(feature = "browser")]
    Browser,
}

/// A `[profiles.NAME]` table pointing at `server`. The margin is 1.2 s so that tokens
/// living a few seconds count as valid.
pub fn profile(name: &str, server: &MockServer, login: Login) -> String {
    account_profile(name, server, server.account(), login)
}

/// [`profile`] for one of the stand-in's accounts.
pub fn account_profile(name: &str, server: &MockServer, a: &MockAccount, login: Login) -> String {
    let mut t = format!(
        "[profiles.{name}]\nclient_id = \"{}\"\nauth_base_url = \"{}\"\napi_base_url = \"{}\"\n\
         margin_minutes = 0.02\nlock_wait_secs = 20\n",
        a.client_id,
        server.auth_base_url().as_str().trim_end_matches('/'),
        server.api_base_url()
    );
    let pin = match login {
        Login::RenewOnly => return t,
        Login::WrongPin => WRONG_PIN,
        Login::Totp => &a.pin,
        #[cfg(feature = "browser")]
        Login::Browser => &a.pin,
    };
    t += &format!("pin = \"{pin}\"\ntotp_secret = \"{}\"\n", a.totp_secret);
    #[cfg(feature = "browser")]
    if let Login::Browser = login {
        t += &format!(
            "mobile = \"{}\"\napi_key = \"{}\"\napi_secret = \"{}\"\nredirect_url = \"{}\"\n",
            a.mobile, a.api_key, a.api_secret, a.redirect_url
        );
    }
    t
}

/// The `[serve]` table: refresh `ahead_secs` before expiry, no jitter, fast retries.
pub fn serve_table(ahead_secs: f64) -> String {
    format!(
        "[serve]\nrefresh_ahead_minutes = {}\njitter_minutes = 0\nretry_min_secs = 0.2\n\
         retry_max_secs = 1\n",
        ahead_secs / 60.0
    )
}

/// A sandbox whose config file holds `toml`.
pub fn configured(toml: &str) -> Sandbox {
    let sandbox = Sandbox::new();
    sandbox.write_config(toml);
    sandbox
}

/// A stand-in whose tokens live `secs` seconds.
pub fn short_lived(secs: u64) -> MockOptions {
    MockOptions {
        token_lifetime: Duration::from_secs(secs),
        ..MockOptions::default()
    }
}

/// The sandboxed binary reading the sandbox's config file.
pub fn cli(sandbox: &Sandbox) -> std::process::Command {
    let mut cmd = sandbox.command();
    cmd.env("DHAN_LOGIN_CONFIG", sandbox.config_path());
    cmd
}

/// Stores a token made "on Dhan Web" with `cmd` (a sandboxed binary), as a user would
/// with `import`.
pub async fn import_with(mut cmd: std::process::Command, profile: &str, token: &str) {
    cmd.args(["--profile", profile, "import"]);
    run(cmd, Some(token.as_bytes())).await.assert_ok();
}

/// [`import_with`] into the sandbox's own state.
pub async fn import(sandbox: &Sandbox, profile: &str, token: &str) {
    import_with(cli(sandbox), profile, token).await;
}

/// Polls `check` every 100 ms until it holds, or panics after `limit` saying `what`.
pub async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < limit, "not within {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The `Authorization` header the sandbox's serve.key makes.
pub fn key_of(sandbox: &Sandbox) -> String {
    let text = std::fs::read_to_string(sandbox.state_dir().join("serve.key")).expect("serve.key");
    format!("Bearer {}", text.trim())
}

/// The permission bits of `path`.
pub fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// The token file and the env file the daemon hands a profile's token over in.
pub fn handoff_files(sandbox: &Sandbox, profile: &str) -> (PathBuf, PathBuf) {
    let dir = sandbox.state_dir().join("serve");
    (
        dir.join(format!("{profile}.token")),
        dir.join(format!("{profile}.env")),
    )
}

/// `dhan-login serve` as a child process, stderr collected for failure messages.
pub struct Daemon {
    pub child: tokio::process::Child,
    pub addr: String,
    stderr: Arc<Mutex<String>>,
    http: reqwest::Client,
}

impl Daemon {
    /// `dhan-login --profile PROFILE ARGS…` run from the `elsewhere` state folder and
    /// pointed at this daemon with its key file: a consumer on the same host.
    pub fn consumer(
        &self,
        elsewhere: &Sandbox,
        key_file: &Path,
        profile: &str,
        args: &[&str],
    ) -> std::process::Command {
        let mut cmd = cli(elsewhere);
        cmd.args(["--profile", profile]).args(args);
        cmd.env("DHAN_LOGIN_SERVE_LISTEN", &self.addr)
            .env("DHAN_LOGIN_SERVE_KEY_FILE", key_file);
        cmd
    }

    /// Starts `serve` with these arguments (plus `--listen 127.0.0.1:0` unless given) and
    /// waits for its ready line.
    pub async fn start(mut cmd: std::process::Command, args: &[&str]) -> Daemon {
        cmd.arg("-v").arg("serve").args(args);
        if !args.contains(&"--listen") {
            cmd.args(["--listen", "127.0.0.1:0"]);
        }
        let mut cmd = tokio::process::Command::from(cmd);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("start dhan-login serve");
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        let pipe = child.stderr.take().expect("piped stderr");
        tokio::spawn(async move {
            let mut lines = BufReader::new(pipe).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut first = String::new();
        let read =
            tokio::time::timeout(Duration::from_secs(15), stdout.read_line(&mut first)).await;
        if !matches!(read, Ok(Ok(n)) if n > 0) {
            tokio::time::sleep(Duration::from_millis(200)).await;
            panic!(
                "serve printed no ready line; stderr:\n{}",
                stderr.lock().unwrap()
            );
        }
        let ready: Value = serde_json::from_str(&first).expect("the ready line is JSON");
        Daemon {
            child,
            addr: ready["listen"].as_str().expect("listen address").to_owned(),
            stderr,
            // No pooled connections: the daemon closes a keep-alive connection after its
            // 10 s header timeout, and a request racing that close fails with a reset.
            http: reqwest::Client::builder()
                .no_proxy()
                .pool_max_idle_per_host(0)
                .build()
                .unwrap(),
        }
    }

    /// Starts `serve` in the sandbox and waits (up to 40 s: a login may wait for a fresh
    /// TOTP step) until it holds a token for every profile.
    pub async fn with_tokens(sandbox: &Sandbox, args: &[&str]) -> Daemon {
        let d = Daemon::start(cli(sandbox), args).await;
        eventually(Duration::from_secs(40), "a first token", || async {
            d.health().await == 200
        })
        .await;
        d
    }

    pub fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    pub async fn get(&self, path: &str, key: Option<&str>) -> (u16, String) {
        let mut req = self.http.get(format!("http://{}{path}", self.addr));
        if let Some(k) = key {
            req = req.header("Authorization", k);
        }
        let resp = req.send().await.expect("the daemon answers");
        let status = resp.status().as_u16();
        (status, resp.text().await.expect("a body"))
    }

    pub async fn json(&self, path: &str) -> Value {
        let (_, body) = self.get(path, None).await;
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {body}"))
    }

    /// `/v1/profiles` entry of `name`.
    pub async fn profile(&self, name: &str) -> Value {
        let all = self.json("/v1/profiles").await;
        all["profiles"]
            .as_array()
            .and_then(|a| a.iter().find(|p| p["name"] == name).cloned())
            .unwrap_or_else(|| panic!("no profile {name} in {all}"))
    }

    pub async fn health(&self) -> u16 {
        self.get("/healthz", None).await.0
    }

    /// The access token the token route hands out for `profile`, or its status and body
    /// when it hands out none.
    pub async fn token(&self, profile: &str, key: &str) -> Result<String, (u16, String)> {
        let (status, body) = self
            .get(&format!("/v1/profiles/{profile}/token"), Some(key))
            .await;
        if status != 200 {
            return Err((status, body));
        }
        let v: Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("the token route: not JSON ({e}): {body}"));
        Ok(v["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no access_token in {v}"))
            .to_owned())
    }

    /// [`Daemon::token`] once the daemon has one (within `limit`).
    pub async fn served_token(&self, profile: &str, key: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            match self.token(profile, key).await {
                Ok(token) => return token,
                Err((status, body)) => assert!(
                    Instant::now() < deadline,
                    "no token within {limit:?}: {status} {body}\n{}",
                    self.log()
                ),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGTERM, then the exit code (None: killed by a signal).
    pub async fn terminate(mut self) -> (Option<i32>, String) {
        let pid = self.child.id().expect("still running") as libc::pid_t;
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        let status = tokio::time::timeout(Duration::from_secs(15), self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("no exit 15 s after SIGTERM; stderr:\n{}", self.log()))
            .expect("wait for serve");
        tokio::time::sleep(Duration::from_millis(100)).await;
        (status.code(), self.log())
    }

    /// SIGTERM, and the daemon must end with 0.
    pub async fn stop(self) {
        let (code, log) = self.terminate().await;
        assert_eq!(code, Some(0), "SIGTERM ends the daemon with 0:\n{log}");
    }
}

/// Starts a daemon for each command and its arguments, all at once (they race for the
/// same profiles), each waited for until ready; in the order given.
pub async fn start_all(
    starts: impl IntoIterator<Item = (std::process::Command, Vec<String>)>,
) -> Vec<Daemon> {
    let tasks: Vec<_> = starts
        .into_iter()
        .map(|(cmd, args)| {
            tokio::spawn(async move {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                Daemon::start(cmd, &args).await
            })
        })
        .collect();
    let mut daemons = Vec::new();
    for task in tasks {
        daemons.push(task.await.expect("a daemon started"));
    }
    daemons
}

/// A database and store key that several machines share.
pub struct SharedStore {
    pub url: String,
    key: PathBuf,
    /// The key's folder, kept while any machine may read the key.
    dir: Arc<tempfile::TempDir>,
}

impl SharedStore {
    /// On a new database of the shared test server; None when the PostgreSQL tests are
    /// skipped (said on stderr).
    pub async fn new() -> Option<SharedStore> {
        Some(SharedStore::at(super::pg::database().await?))
    }

    /// On the database at `url`.
    pub fn at(url: String) -> SharedStore {
        let dir = tempfile::tempdir().expect("a folder for the store key");
        SharedStore {
            url,
            key: super::pg::key_file(dir.path()),
            dir: Arc::new(dir),
        }
    }

    /// A machine with `config` on this store.
    pub fn machine(&self, config: &str) -> Machine {
        Machine {
            sandbox: configured(config),
            db: self.url.clone(),
            store_key: self.key.clone(),
            _store_dir: self.dir.clone(),
        }
    }

    /// `count` machines with the same config.
    pub fn machines(&self, count: usize, config: &str) -> Vec<Machine> {
        (0..count).map(|_| self.machine(config)).collect()
    }
}

/// One of several "machines" sharing a database: a state folder (with its own
/// serve.key) and config of its own, the shared database and store key.
pub struct Machine {
    pub sandbox: Sandbox,
    db: String,
    store_key: PathBuf,
    _store_dir: Arc<tempfile::TempDir>,
}

impl Machine {
    /// The binary as this machine runs it: its sandbox, the shared store.
    pub fn command(&self) -> std::process::Command {
        let mut cmd = cli(&self.sandbox);
        cmd.env("DHAN_LOGIN_STORE_URL", &self.db)
            .env("DHAN_LOGIN_STORE_KEY_FILE", &self.store_key);
        cmd
    }

    /// The `Authorization` header for this machine's daemon.
    pub fn key(&self) -> String {
        key_of(&self.sandbox)
    }
}
