//! A database of its own for each test, on the throwaway PostgreSQL that
//! scripts/with-postgres starts and names in DHAN_LOGIN_TEST_PG_URL.

/// The server's superuser URL, or None (said on stderr) when DHAN_LOGIN_SKIP_PG_TESTS=1.
/// Without either, the test fails: a PostgreSQL test never skips itself silently.
pub fn admin_url() -> Option<String> {
    if let Ok(url) = std::env::var("DHAN_LOGIN_TEST_PG_URL")
        && !url.is_empty()
    {
        return Some(url);
    }
    if std::env::var("DHAN_LOGIN_SKIP_PG_TESTS").as_deref() == Ok("1") {
        use std::io::Write;
        // Straight to stderr: the test harness would swallow eprintln! of a passing test.
        let _ = writeln!(
            std::io::stderr(),
            "PostgreSQL test skipped because DHAN_LOGIN_SKIP_PG_TESTS=1"
        );
        return None;
    }
    panic!(
        "DHAN_LOGIN_TEST_PG_URL is not set: run the tests through scripts/with-postgres \
         (scripts/test does), or set DHAN_LOGIN_SKIP_PG_TESTS=1 to skip the PostgreSQL tests"
    );
}

/// The URL of a new, empty database.
pub async fn database() -> Option<String> {
    let admin = admin_url()?;
    let name = format!("dl_test_{:016x}", rand::random::<u64>());
    let (client, conn) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
        .await
        .expect("connect to the test server");
    tokio::spawn(conn);
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    let mut url = url::Url::parse(&admin).unwrap();
    url.set_path(&name);
    Some(url.to_string())
}

/// A fresh store key (32 random bytes, base64) in `dir`.
pub fn key_file(dir: &std::path::Path) -> std::path::PathBuf {
    use base64::Engine;
    let path = dir.join("store.key");
    std::fs::write(
        &path,
        base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>()),
    )
    .unwrap();
    path
}

/// Runs the binary on `args` with nothing of the test's environment but PATH: `dir` as its
/// config and state folder (with an empty config file), `store_url` and `store_key` as its
/// state database, a profile from DHAN_* variables. Returns the exit code and all it
/// printed (stdout, then stderr), for tests of what a failing database shows.
pub fn run_on_store(
    args: &[&str],
    dir: &std::path::Path,
    store_url: &str,
    store_key: &std::path::Path,
) -> (Option<i32>, String) {
    let config = dir.join("config.toml");
    std::fs::write(&config, "").unwrap();
    let out = std::process::Command::new(super::BIN)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DHAN_LOGIN_CONFIG", &config)
        .env("DHAN_LOGIN_STATE_DIR", dir)
        .env("DHAN_LOGIN_STORE_URL", store_url)
        .env("DHAN_LOGIN_STORE_KEY_FILE", store_key)
        .env("DHAN_CLIENT_ID", "1100000001")
        .env("DHAN_PIN", "123456")
        .env("DHAN_TOTP_SECRET", "JBSWY3DPEHPK3PXP")
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), all)
}

/// A PostgreSQL cluster of one test's own, for what the shared one must not go through
/// (a restart mid-test, TLS): made with the programs scripts/with-postgres found, in a
/// temporary folder, on a free port; stopped and deleted when dropped.
pub struct Cluster {
    dir: tempfile::TempDir,
    bin: std::path::PathBuf,
    owner: Option<String>,
    port: u16,
    /// Extra `-c name=value` settings for the server.
    settings: Vec<String>,
}

impl Cluster {
    /// A new cluster, started; None when the PostgreSQL tests are skipped.
    pub fn start(settings: &[&str]) -> Option<Cluster> {
        admin_url()?;
        let bin = std::env::var("DHAN_LOGIN_TEST_PG_BIN")
            .expect("DHAN_LOGIN_TEST_PG_BIN: run the tests through scripts/with-postgres");
        let owner = std::env::var("DHAN_LOGIN_TEST_PG_OWNER")
            .ok()
            .filter(|o| !o.is_empty());
        let dir = tempfile::Builder::new()
            .prefix("dhan-login-pg-own-")
            .tempdir()
            .unwrap();
        if let Some(owner) = &owner {
            let status = std::process::Command::new("chown")
                .arg(owner)
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(status.success(), "chown {owner}");
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cluster = Cluster {
            dir,
            bin: bin.into(),
            owner,
            port,
            settings: settings.iter().map(|s| s.to_string()).collect(),
        };
        let data = cluster.data().to_string_lossy().into_owned();
        cluster.run(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        cluster.up();
        Some(cluster)
    }

    pub fn data(&self) -> std::path::PathBuf {
        self.dir.path().join("data")
    }

    /// The superuser URL (database `postgres`).
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Runs one of the server's programs as the cluster's owner.
    pub fn run(&self, program: &str, args: &[&str]) {
        let path = self.bin.join(program);
        let mut cmd = match &self.owner {
            Some(owner) => {
                let mut c = std::process::Command::new("runuser");
                c.args(["-u", owner, "--"]).arg(&path);
                c
            }
            None => std::process::Command::new(&path),
        };
        let out = cmd.args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{program} {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts the server (again) and waits until it accepts connections.
    pub fn up(&self) {
        let mut options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off",
            self.port,
            self.dir.path().display()
        );
        for s in &self.settings {
            options += &format!(" -c {s}");
        }
        let data = self.data().to_string_lossy().into_owned();
        let log = self.dir.path().join("server.log");
        let log = log.to_string_lossy();
        self.run(
            "pg_ctl",
            &[
                "-D", &data, "-l", &log, "-w", "-t", "60", "-o", &options, "start",
            ],
        );
    }

    /// Stops the server: `fast` ends every connection at once, as a restart does.
    pub fn down(&self) {
        let data = self.data().to_string_lossy().into_owned();
        self.run("pg_ctl", &["-D", &data, "-m", "fast", "-w", "stop"]);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data().to_string_lossy().into_owned();
        let path = self.bin.join("pg_ctl");
        let mut cmd = match &self.owner {
            Some(owner) => {
                let mut c = std::process::Command::new("runuser");
                c.args(["-u", owner, "--"]).arg(&path);
                c
            }
            None => std::process::Command::new(&path),
        };
        let _ = cmd
            .args(["-D", &data, "-m", "immediate", "-w", "stop"])
            .output();
    }
}
