//! Shared helpers for the CLI integration tests: a sandboxed environment for the binary,
//! a stand-in of Dhan serving from the test's own runtime, and a way to run the binary as
//! a child process while the stand-in keeps answering.
//!
//! Tests using the stand-in must run on `#[tokio::test(flavor = "multi_thread")]`: the
//! binary is a separate process, and the stand-in serves from the test's runtime while the
//! test awaits the child.

#[cfg(feature = "browser")]
pub mod browser_support;
pub mod cli;
pub mod pg;
pub mod pty;
pub mod serve;
pub mod stand_in;

use std::ffi::OsStr;
use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use dhan_login::mock::{MockOptions, MockServer};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_dhan-login");

/// No single run of the binary may take longer than this: a hang is a failure, not a
/// stuck test suite.
/// A login may first wait up to 30 s for a TOTP step no earlier run used.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(45);

/// A per-test home: HOME, the XDG folders, the state folder and the config file all live
/// in one temporary folder, so that nothing of the developer's machine leaks in and
/// nothing of the test leaks out.
pub struct Sandbox {
    dir: TempDir,
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Sandbox {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("dhan-login-cli-")
            .tempdir()
            .expect("temporary folder for the test");
        std::fs::create_dir_all(dir.path().join("home")).expect("sandbox HOME");
        Sandbox { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn home(&self) -> PathBuf {
        self.path().join("home")
    }

    /// `DHAN_LOGIN_STATE_DIR`. Not created up front: the binary creates it, so the test
    /// can check the mode it chose.
    pub fn state_dir(&self) -> PathBuf {
        self.path().join("state")
    }

    /// `$STATE/tokens/<profile>.json`.
    pub fn token_file(&self, profile: &str) -> PathBuf {
        self.state_dir()
            .join("tokens")
            .join(format!("{profile}.json"))
    }

    /// Where `write_config` puts the file (absent until then).
    pub fn config_path(&self) -> PathBuf {
        self.path().join("config.toml")
    }

    /// Writes a config file, mode 0600 (inline secrets in it must not trigger the
    /// "readable by others" warning), and returns its path for `DHAN_LOGIN_CONFIG`.
    pub fn write_config(&self, toml: &str) -> PathBuf {
        let path = self.config_path();
        std::fs::write(&path, toml).expect("write the config file");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .expect("chmod the config file");
        path
    }

    /// The binary with a clean environment: PATH, HOME and the XDG folders into the
    /// sandbox, the state folder in it, no mint window between logins, no DHAN_*
    /// variable at all.
    ///
    /// `DHAN_LOGIN_CONFIG` is left unset on purpose: a file named there must exist (a
    /// missing one is a configuration error), while the default location under the
    /// sandbox's `XDG_CONFIG_HOME` never exists unless a test writes it. Tests that want a
    /// config file call `write_config` and set the variable.
    pub fn command(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(BIN);
        let xdg = self.path().join("xdg");
        cmd.env_clear()
            .env(
                "PATH",
                std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()),
            )
            .env("HOME", self.home())
            .env("XDG_CONFIG_HOME", xdg.join("config"))
            .env("XDG_STATE_HOME", xdg.join("state"))
            .env("XDG_DATA_HOME", xdg.join("data"))
            .env("XDG_CACHE_HOME", xdg.join("cache"))
            .env("DHAN_LOGIN_STATE_DIR", self.state_dir())
            // Tests log in back to back against a stand-in on loopback; the mint window's
            // own tests set it back.
            .env("DHAN_LOGIN_MINT_INTERVAL_SECS", "0")
            .current_dir(self.path());
        cmd
    }
}

/// A stand-in of Dhan and a sandbox whose commands carry the stand-in's demo account.
pub struct Stand {
    pub server: MockServer,
    pub sandbox: Sandbox,
}

impl Stand {
    /// Must be called inside a multi-threaded tokio runtime (see the module docs).
    pub async fn start() -> Stand {
        Self::start_with(MockOptions::default()).await
    }

    pub async fn start_with(opts: MockOptions) -> Stand {
        let server = MockServer::start(opts)
            .await
            .expect("the stand-in of Dhan starts");
        Stand {
            server,
            sandbox: Sandbox::new(),
        }
    }

    /// Every DHAN_* variable a login needs, pointing at the stand-in's demo account.
    pub fn account_env(&self) -> Vec<(&'static str, String)> {
        let a = self.server.account();
        vec![
            ("DHAN_CLIENT_ID", a.client_id.clone()),
            ("DHAN_MOBILE", a.mobile.clone()),
            ("DHAN_PIN", a.pin.clone()),
            ("DHAN_TOTP_SECRET", a.totp_secret.clone()),
            ("DHAN_API_KEY", a.api_key.clone()),
            ("DHAN_API_SECRET", a.api_secret.clone()),
            ("DHAN_REDIRECT_URL", a.redirect_url.clone()),
            (
                "DHAN_AUTH_BASE_URL",
                self.server
                    .auth_base_url()
                    .as_str()
                    .trim_end_matches('/')
                    .to_owned(),
            ),
            ("DHAN_API_BASE_URL", self.server.api_base_url().to_string()),
        ]
    }

    /// The sandboxed binary with the demo account in its environment.
    pub fn command(&self) -> std::process::Command {
        self.command_in(&self.sandbox)
    }

    /// The demo account's binary in another sandbox: a second machine, with a state of
    /// its own (its own token, lockout, consent ledger and last TOTP step).
    pub fn command_in(&self, sandbox: &Sandbox) -> std::process::Command {
        let mut cmd = sandbox.command();
        cmd.envs(self.account_env());
        cmd
    }

    /// `command()` with these arguments.
    pub fn cli<I, S>(&self, args: I) -> std::process::Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.command();
        cmd.args(args);
        cmd
    }

    /// `cli()` with a PIN the stand-in rejects.
    pub fn cli_wrong_pin<I, S>(&self, args: I) -> std::process::Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.cli(args);
        cmd.env("DHAN_PIN", "000000");
        cmd
    }

    /// Runs the binary with these arguments and no stdin.
    pub async fn run<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        run(self.cli(args), None).await
    }
}

/// What one run of the binary did.
pub struct Run {
    /// The arguments, for messages (the environment is never shown: it holds secrets).
    pub args: String,
    /// None when a signal ended the process.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Run {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// Panics, showing the run, unless it exited 0.
    #[track_caller]
    pub fn assert_ok(&self) -> &Self {
        assert!(self.success(), "expected exit 0:\n{self}");
        self
    }

    /// Panics, showing the run, unless it exited with `code`.
    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, Some(code), "expected exit {code}:\n{self}");
        self
    }

    /// Asserts the exit code of a failure of `class` (`ErrorClass::exit_code`).
    #[track_caller]
    pub fn assert_class(&self, class: dhan_login::ErrorClass) -> &Self {
        self.assert_code(cli::exit_of(class))
    }

    /// stdout without the final newline.
    pub fn out(&self) -> &str {
        self.stdout.trim_end_matches('\n')
    }

    /// stdout parsed as one JSON value.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("stdout is not one JSON value ({e}):\n{self}"))
    }
}

/// Shows the whole run. Only for tests whose outputs may be printed: the secret-leak
/// tests never format a `Run`.
impl fmt::Display for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "$ dhan-login {}\nexit: {:?} after {} ms",
            self.args,
            self.code,
            self.elapsed.as_millis()
        )?;
        writeln!(f, "--- stdout ---\n{}", self.stdout)?;
        write!(f, "--- stderr ---\n{}", self.stderr)
    }
}

fn describe_args(cmd: &std::process::Command) -> String {
    cmd.get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs the binary to completion as a child process, feeding `stdin` (or nothing: stdin
/// is /dev/null, never the test's terminal). The stand-in keeps serving meanwhile.
pub async fn run(cmd: std::process::Command, stdin: Option<&[u8]>) -> Run {
    run_within(cmd, stdin, RUN_TIMEOUT).await
}

/// `run` with another limit, for runs that must wait for a fresh 30 s TOTP step.
pub async fn run_within(cmd: std::process::Command, stdin: Option<&[u8]>, limit: Duration) -> Run {
    let args = describe_args(&cmd);
    let mut cmd = tokio::process::Command::from(cmd);
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .kill_on_drop(true);
    let started = std::time::Instant::now();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start `dhan-login {args}`: {e}"));
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("piped stdin");
        // A child that exits without reading its stdin closes the pipe: not our error.
        let _ = pipe.write_all(input).await;
        drop(pipe);
    }
    // Read as it comes, so that a run past its limit still shows what it said.
    let mut out_pipe = child.stdout.take().expect("piped stdout");
    let mut err_pipe = child.stderr.take().expect("piped stderr");
    let said = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
    let stdout = tokio::spawn(async move {
        let mut buf = Vec::new();
        let _ = out_pipe.read_to_end(&mut buf).await;
        buf
    });
    let stderr = tokio::spawn({
        let said = said.clone();
        async move {
            let mut chunk = [0u8; 4096];
            while let Ok(n) = err_pipe.read(&mut chunk).await {
                if n == 0 {
                    break;
                }
                said.lock().unwrap().extend_from_slice(&chunk[..n]);
            }
        }
    });
    let status = match tokio::time::timeout(limit, child.wait()).await {
        Ok(status) => status.unwrap_or_else(|e| panic!("cannot wait for `dhan-login {args}`: {e}")),
        Err(_) => {
            let _ = child.start_kill();
            let said = String::from_utf8_lossy(&said.lock().unwrap()).into_owned();
            panic!("`dhan-login {args}` did not finish in {limit:?}; its stderr so far:\n{said}");
        }
    };
    let stdout = stdout.await.expect("stdout reader");
    stderr.await.expect("stderr reader");
    let stderr = String::from_utf8_lossy(&said.lock().unwrap()).into_owned();
    Run {
        args,
        code: status.code(),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr,
        elapsed: started.elapsed(),
    }
}

/// Runs a command that needs no stand-in (help, completions), synchronously.
pub fn run_blocking(mut cmd: std::process::Command) -> Run {
    let args = describe_args(&cmd);
    let started = std::time::Instant::now();
    let output = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run `dhan-login {args}`: {e}"));
    Run {
        args,
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        elapsed: started.elapsed(),
    }
}

/// The claims of a JWT-shaped token (header.payload.signature, base64url), or None when
/// the value does not have that shape.
pub fn jwt_claims(token: &str) -> Option<serde_json::Value> {
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 || parts.iter().any(|p| p.is_empty()) {
        return None;
    }
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).ok()?).ok()?;
    header.get("alg")?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).ok()?).ok()
}

/// `at` as an IST time of day with seconds, the form `login_at` and `--valid-until`
/// also take: the tests put the daily login time a few seconds from the real clock,
/// since a child process has no clock to inject.
pub fn ist_time_of_day(at: chrono::DateTime<chrono::Utc>) -> String {
    let ist = chrono::FixedOffset::east_opt(19800).expect("+05:30");
    at.with_timezone(&ist).format("%H:%M:%S").to_string()
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs()
}

/// The RFC 6238 code (SHA-1, 6 digits, 30 s) of a base32 secret at a Unix time.
pub fn totp_code_at(secret: &str, unix_secs: u64) -> String {
    totp_rs::Builder::new()
        .with_secret(totp_rs::Secret::try_from_base32(secret).expect("base32 TOTP secret"))
        .build_noncompliant()
        .generate(unix_secs)
        .to_string()
}

/// The value of `<input ... name="NAME" value="...">` in a page.
fn hidden_value(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')?;
    Some(html[start..start + end].to_owned())
}

/// Logs in on the stand-in's Classic consent page the way a person would (mobile, TOTP,
/// PIN, one form post each) and returns the redirect's Location, which carries the
/// one-time tokenId. The stand-in must allow TOTP reuse if the test logs in with the same
/// code elsewhere in this 30 s step.
pub async fn complete_consent_login(server: &MockServer, consent_url: &str) -> String {
    // A person's browser, reduced to form posts: the server-rendered screens.
    server.set_page_variant(dhan_login::mock::PageVariant {
        spa: false,
        ..dhan_login::mock::PageVariant::default()
    });
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("HTTP client");
    let page = http
        .get(consent_url)
        .send()
        .await
        .expect("consent page answers")
        .text()
        .await
        .expect("consent page body");
    let session = hidden_value(&page, "session").expect("the consent page has a session field");
    let a = server.account();
    let code = totp_code_at(&a.totp_secret, unix_now());
    let screens = [
        ("mobileNumber", a.mobile.clone()),
        ("totp", code),
        ("pin", a.pin.clone()),
    ];
    let mut last = None;
    for (field, value) in screens {
        let resp = http
            .post(consent_url)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(
                url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("session", &session)
                    .append_pair(field, &value)
                    .finish(),
            )
            .send()
            .await
            .expect("consent form post answers");
        last = Some(resp);
    }
    let resp = last.expect("three posts");
    assert_eq!(
        resp.status().as_u16(),
        302,
        "the PIN screen should redirect with the tokenId"
    );
    resp.headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .expect("a Location header")
        .to_owned()
}

/// Starts `cmd` with stdin at EOF and stdout and stderr piped, for a test that watches it
/// while it runs; it is killed if the test drops it.
pub fn spawn_piped(cmd: std::process::Command) -> tokio::process::Child {
    let args = describe_args(&cmd);
    tokio::process::Command::from(cmd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start `dhan-login {args}`: {e}"))
}

/// Runs `login --via manual` (already in `cmd`'s arguments) the way a person would: waits
/// for the consent URL on stderr, logs in on that page, pastes the redirected URL on
/// stdin. Returns the run and the pasted URL (it holds the tokenId).
pub async fn run_manual_login(cmd: std::process::Command, server: &MockServer) -> (Run, String) {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

    let args = describe_args(&cmd);
    let mut cmd = tokio::process::Command::from(cmd);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let started = std::time::Instant::now();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start `dhan-login {args}`: {e}"));
    let mut stdin = child.stdin.take().expect("piped stdin");
    let mut stdout = child.stdout.take().expect("piped stdout");
    let stderr = child.stderr.take().expect("piped stderr");

    // stderr is read to its end in the background; each line also goes to `lines` so the
    // test can react to the consent URL while the child waits for the paste.
    let (tx, mut lines) = tokio::sync::mpsc::unbounded_channel::<String>();
    let stderr_task = tokio::spawn(async move {
        let mut all = String::new();
        let mut reader = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = reader.next_line().await {
            all.push_str(&line);
            all.push('\n');
            let _ = tx.send(line);
        }
        all
    });
    let stdout_task = tokio::spawn(async move {
        let mut all = String::new();
        let _ = stdout.read_to_string(&mut all).await;
        all
    });

    let consent_url = tokio::time::timeout(RUN_TIMEOUT, async {
        while let Some(line) = lines.recv().await {
            if let Some(at) = line.find("http") {
                let url = line[at..].trim();
                if url.contains("consentApp-login?consentAppId=") {
                    return Some(url.to_owned());
                }
            }
        }
        None
    })
    .await
    .ok()
    .flatten();
    let Some(consent_url) = consent_url else {
        let _ = child.kill().await;
        let stderr = stderr_task.await.unwrap_or_default();
        panic!("`dhan-login {args}` printed no consent URL; stderr:\n{stderr}");
    };
    let location = complete_consent_login(server, &consent_url).await;
    stdin
        .write_all(format!("{location}\n").as_bytes())
        .await
        .expect("paste the redirected URL");
    drop(stdin);

    let status = tokio::time::timeout(RUN_TIMEOUT, child.wait())
        .await
        .unwrap_or_else(|_| panic!("`dhan-login {args}` did not finish in {RUN_TIMEOUT:?}"))
        .expect("wait for the child");
    let run = Run {
        args,
        code: status.code(),
        stdout: stdout_task.await.unwrap_or_default(),
        stderr: stderr_task.await.unwrap_or_default(),
        elapsed: started.elapsed(),
    };
    (run, location)
}

/// True (and says so on stderr) when the developer opted out of tests that start
/// Chromium with DHAN_LOGIN_SKIP_BROWSER_TESTS=1. CI never sets it.
#[cfg(feature = "browser")]
pub fn browser_tests_skipped(test: &str) -> bool {
    let skip = std::env::var("DHAN_LOGIN_SKIP_BROWSER_TESTS").is_ok_and(|v| v == "1");
    if skip {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "browser test {test}: skipped because DHAN_LOGIN_SKIP_BROWSER_TESTS=1"
        );
    }
    skip
}
