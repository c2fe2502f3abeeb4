//! Helpers for the browser end-to-end tests: a stand-in with a fresh consent per case,
//! a per-case log capture, and the checks that nothing of a session survives it and that
//! no secret reached the logs or the artifacts.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dhan_login::mock::{MockOptions, MockServer};
use dhan_login::{
    NoProgress, Progress,
    browser::{BrowserError, ConsentLogin, Scrubber, capture_token_id},
    config::BrowserSettings,
    totp::{SystemClock, TotpGenerator},
};
use secrecy::{ExposeSecret, SecretString};
use tempfile::TempDir;
use tracing::instrument::WithSubscriber;
use url::Url;

use super::unix_now;

/// Everything a log line was written with, for one case only.
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    fn subscriber(&self) -> impl tracing::Subscriber + Send + Sync + 'static {
        let sink = self.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            // A timestamp's six digits of microseconds once equalled a TOTP code of the
            // case, and the secrets check failed a clean login: no times in these lines.
            .without_time()
            .with_writer(move || sink.clone())
            .finish()
    }
}

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Records the step names in order, to check the progress contract, and when each
/// step ended.
pub struct Steps {
    t0: std::time::Instant,
    started: Mutex<Vec<String>>,
    finished: Mutex<Vec<(String, Duration)>>,
}

impl Default for Steps {
    fn default() -> Self {
        Steps {
            t0: std::time::Instant::now(),
            started: Mutex::default(),
            finished: Mutex::default(),
        }
    }
}

impl Steps {
    pub fn started(&self) -> Vec<String> {
        self.started.lock().unwrap().clone()
    }

    /// Time from creation to the end of `step`.
    pub fn ended(&self, step: &str) -> Option<Duration> {
        self.finished
            .lock()
            .unwrap()
            .iter()
            .find(|(s, _)| s == step)
            .map(|(_, at)| *at)
    }

    /// Each step's own duration, in order.
    pub fn durations(&self) -> Vec<(String, Duration)> {
        let ends = self.finished.lock().unwrap().clone();
        let mut prev = Duration::ZERO;
        ends.into_iter()
            .map(|(s, at)| {
                let d = at.saturating_sub(prev);
                prev = at;
                (s, d)
            })
            .collect()
    }
}

impl Progress for Steps {
    fn step_started(&self, step: &str) {
        self.started.lock().unwrap().push(step.to_string());
    }

    fn step_finished(&self, step: &str, _elapsed: Duration) {
        self.finished
            .lock()
            .unwrap()
            .push((step.to_string(), self.t0.elapsed()));
    }
}

/// Waits until the current 30 s TOTP step has at least `left` to run, so that the
/// generator's own wait for a fresh step stays out of a timing.
pub async fn fresh_totp_window(left: Duration) {
    loop {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        if 30.0 - now % 30.0 >= left.as_secs_f64() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// At most this many Chromiums at once, whatever `--test-threads` says: the cases time
/// pages against step timeouts, and ten browsers starting on two cores miss them.
fn browser_slots() -> &'static tokio::sync::Semaphore {
    static SLOTS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    SLOTS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        tokio::sync::Semaphore::new(cores.clamp(2, 4))
    })
}

/// One stand-in with one fresh consent, and a private artifacts folder.
pub struct Case {
    _slot: tokio::sync::SemaphorePermit<'static>,
    pub server: MockServer,
    pub consent_id: String,
    pub dir: TempDir,
    pub settings: BrowserSettings,
    pub logs: Logs,
    started_unix: u64,
}

/// Routes `log` records (tungstenite logs raw WebSocket messages through it) into
/// tracing, as the CLI's subscriber does, so that the per-case capture would see them
/// if the driver did not mute the transport.
fn bridge_log_records() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(std::io::sink)
            .try_init();
    });
}

impl Case {
    pub async fn start(opts: MockOptions) -> Case {
        bridge_log_records();
        // As the binary does: orphans of each Chromium are then ours to reap.
        dhan_login::browser::become_subreaper();
        let slot = browser_slots()
            .acquire()
            .await
            .expect("the semaphore is never closed");
        let server = MockServer::start(opts).await.expect("stand-in starts");
        let consent_id = generate_consent(&server).await;
        let dir = tempfile::tempdir().expect("temp dir");
        let mut settings = BrowserSettings::with_defaults(dir.path());
        settings.step_timeout = Duration::from_secs(10);
        settings.overall_timeout = Duration::from_secs(40);
        Case {
            _slot: slot,
            server,
            consent_id,
            dir,
            settings,
            logs: Logs::default(),
            started_unix: unix_now(),
        }
    }

    pub fn consent_url(&self) -> Url {
        self.server.consent_login_url(&self.consent_id)
    }

    pub fn artifacts_dir(&self) -> &Path {
        &self.settings.artifacts_dir
    }

    /// Logs in with the stand-in's account, except for what the caller overrides.
    pub async fn login(&self, with: Login<'_>) -> Result<SecretString, BrowserError> {
        let account = self.server.account();
        let secret =
            SecretString::from(with.totp_secret.unwrap_or(&account.totp_secret).to_string());
        let totp = TotpGenerator::new(&secret, Arc::new(SystemClock)).expect("totp secret");
        let mobile = SecretString::from(account.mobile.clone());
        let pin = SecretString::from(with.pin.unwrap_or(&account.pin).to_string());
        let scrubber = Scrubber::new()
            .with(&account.mobile)
            .with(pin.expose_secret())
            .with(&self.consent_id);
        let no_progress = NoProgress;
        let login = ConsentLogin {
            consent_url: with.consent_url.unwrap_or_else(|| self.consent_url()),
            redirect_url: with.redirect,
            mobile: &mobile,
            pin: &pin,
            totp: Some(&totp),
            otp: with.otp,
            scrubber,
            progress: with.progress.unwrap_or(&no_progress),
            record_dir: with.record_dir,
        };
        capture_token_id(&self.settings, login)
            .with_subscriber(self.logs.subscriber())
            .await
    }

    /// Every TOTP code of the account's secret (and of `extra`) from the case's start
    /// until now, give or take a step: what may have been typed.
    pub fn totp_codes(&self, extra: Option<&str>) -> Vec<String> {
        let mut out = Vec::new();
        let mut secrets = vec![self.server.account().totp_secret.clone()];
        secrets.extend(extra.map(str::to_string));
        for s in secrets {
            let bytes = totp_rs::Secret::try_from_base32(&s).expect("base32");
            let totp = totp_rs::Builder::new()
                .with_secret(bytes)
                .build_noncompliant();
            let mut t = self.started_unix.saturating_sub(30);
            while t <= unix_now() + 60 {
                out.push(totp.generate(t).to_string());
                t += 30;
            }
        }
        out
    }

    /// Secrets that must appear in no log line and no artifact.
    pub fn secrets(&self, token_id: Option<&str>, extra_totp: Option<&str>) -> Vec<String> {
        let a = self.server.account();
        let mut v = vec![a.mobile.clone(), a.pin.clone(), self.consent_id.clone()];
        v.extend(self.totp_codes(extra_totp));
        v.extend(token_id.map(str::to_string));
        v
    }

    /// The profile dir and session id the driver logged when it started Chromium.
    pub fn session_markers(&self) -> Option<(PathBuf, String)> {
        let text = self.logs.text();
        let line = text.lines().find(|l| l.contains("starting Chromium"))?;
        let field = |name: &str| {
            let start = line.find(&format!("{name}="))? + name.len() + 1;
            let rest = &line[start..];
            Some(rest.split_whitespace().next()?.to_string())
        };
        Some((PathBuf::from(field("profile_dir")?), field("session")?))
    }

    /// Nothing of the session is left: no process naming its profile or carrying its
    /// session marker, and no profile directory.
    pub fn assert_clean(&self) {
        let Some((profile, session)) = self.session_markers() else {
            panic!(
                "the driver did not log its profile dir:\n{}",
                self.logs.text()
            );
        };
        assert!(
            !profile.exists(),
            "profile dir {} survived",
            profile.display()
        );
        let left = session_processes(&profile, &session);
        assert!(left.is_empty(), "Chromium processes survived: {left:?}");
    }

    /// No secret in the captured logs.
    pub fn assert_logs_clean(&self, secrets: &[String]) {
        let text = self.logs.text();
        for s in secrets {
            assert!(
                !text.contains(s.as_str()),
                "a secret reached the logs:\n{text}"
            );
        }
    }

    pub async fn consume(&self, token_id: &SecretString) -> serde_json::Value {
        let a = self.server.account();
        let mut url = self.server.auth_base_url();
        url.set_path("/app/consumeApp-consent");
        url.query_pairs_mut()
            .append_pair("tokenId", token_id.expose_secret());
        let resp = reqwest::Client::new()
            .get(url)
            .header("app_id", &a.api_key)
            .header("app_secret", &a.api_secret)
            .send()
            .await
            .expect("consume request");
        assert_eq!(
            resp.status().as_u16(),
            200,
            "consumeApp-consent refused the tokenId"
        );
        resp.json().await.expect("consume body")
    }
}

/// What a case changes from the account's own values.
#[derive(Default)]
pub struct Login<'a> {
    /// Instead of the stand-in's consent page.
    pub consent_url: Option<Url>,
    pub totp_secret: Option<&'a str>,
    pub pin: Option<&'a str>,
    pub redirect: Option<&'a Url>,
    pub record_dir: Option<&'a Path>,
    pub progress: Option<&'a dyn Progress>,
    pub otp: Option<&'a dyn dhan_login::browser::OtpSource>,
}

async fn generate_consent(server: &MockServer) -> String {
    let a = server.account();
    let mut url = server.auth_base_url();
    url.set_path("/app/generate-consent");
    url.query_pairs_mut().append_pair("client_id", &a.client_id);
    let body: serde_json::Value = reqwest::Client::new()
        .post(url)
        .header("app_id", &a.api_key)
        .header("app_secret", &a.api_secret)
        .send()
        .await
        .expect("generate-consent request")
        .json()
        .await
        .expect("generate-consent body");
    body["consentAppId"]
        .as_str()
        .expect("consentAppId in the answer")
        .to_string()
}

fn nul_fields(path: PathBuf) -> Vec<String> {
    std::fs::read(path)
        .map(|b| {
            b.split(|c| *c == 0)
                .map(|f| String::from_utf8_lossy(f).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Live processes whose command line names `profile` or whose environment carries the
/// session marker.
pub fn session_processes(profile: &Path, session: &str) -> Vec<String> {
    let profile = profile.display().to_string();
    let marker = format!("DHAN_LOGIN_BROWSER_SESSION={session}");
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let base = PathBuf::from(format!("/proc/{pid}"));
        let cmdline = nul_fields(base.join("cmdline"));
        let hit = cmdline.iter().any(|a| a.contains(&profile))
            || nul_fields(base.join("environ")).contains(&marker);
        if hit {
            out.push(format!("{pid}: {}", cmdline.join(" ")));
        }
    }
    out
}

/// Every regular file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}
