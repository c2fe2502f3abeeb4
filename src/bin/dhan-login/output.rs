//! What the binary prints: tokens in three shapes, progress lines, logging setup.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use dhan_login::{Progress, Token, token::TokenJson};
use tracing_subscriber::EnvFilter;

pub fn init_logging(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        _ => "trace",
    };
    // DHAN_LOGIN_LOG takes tracing's filter syntax for finer control.
    let mut filter = std::env::var("DHAN_LOGIN_LOG")
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| {
            EnvFilter::new(format!(
                "{level},chromiumoxide=error,hyper=warn,reqwest=warn"
            ))
        });
    // At debug the PostgreSQL driver logs every statement with its parameters (lockouts,
    // consentAppIds, lease holders), whatever filter was asked for.
    for quiet in [
        "tokio_postgres=info",
        "deadpool=info",
        "deadpool_postgres=info",
    ] {
        if let Ok(d) = quiet.parse() {
            filter = filter.add_directive(d);
        }
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}

/// How a token is printed.
#[derive(Clone, Copy)]
pub enum Format {
    Plain,
    Json,
    Env,
}

pub fn token_json(token: &Token) -> serde_json::Value {
    // Strings and enums only: serialising cannot fail.
    serde_json::json!(TokenJson::from(token))
}

/// Prints a token, after checking it has the shape of one: a value with a newline in it
/// would be a second line of `--env` output (an `LD_PRELOAD=` for whoever evals it).
pub fn print_token(token: &Token, format: Format) -> Result<(), dhan_login::Error> {
    token.check()?;
    match format {
        Format::Plain => println!("{}", token.access_token.secret()),
        Format::Json => println!("{}", token_json(token)),
        Format::Env => {
            println!("DHAN_ACCESS_TOKEN={}", token.access_token.secret());
            println!("DHAN_CLIENT_ID={}", token.client_id);
        }
    }
    Ok(())
}

/// Set once from `--progress`: benchmarks and logs want step lines from a pipe too.
pub static FORCE_PROGRESS: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// Step lines with timings on stderr, for people watching a login.
pub struct StepPrinter {
    start: Instant,
    current: Mutex<Option<String>>,
}

impl StepPrinter {
    pub fn new() -> Self {
        StepPrinter {
            start: Instant::now(),
            current: Mutex::new(None),
        }
    }

    /// A printer when stderr is a terminal (or `--progress`) and not `--quiet`, else
    /// silence.
    pub fn for_terminal(quiet: bool) -> Box<dyn Progress> {
        let forced = FORCE_PROGRESS.load(std::sync::atomic::Ordering::Relaxed);
        if !quiet && (forced || std::io::stderr().is_terminal()) {
            Box::new(StepPrinter::new())
        } else {
            Box::new(dhan_login::NoProgress)
        }
    }
}

impl Progress for StepPrinter {
    fn step_started(&self, step: &str) {
        if let Ok(mut c) = self.current.lock() {
            *c = Some(step.to_owned());
        }
        eprintln!("[{:>6.2}s] {step} …", self.start.elapsed().as_secs_f64());
    }

    fn step_finished(&self, step: &str, elapsed: Duration) {
        eprintln!(
            "[{:>6.2}s] {step} done in {} ms",
            self.start.elapsed().as_secs_f64(),
            elapsed.as_millis()
        );
    }
}

/// "5 h 12 min" for status lines.
pub fn human(d: chrono::Duration) -> String {
    let secs = d.num_seconds();
    if secs <= 0 {
        return "expired".into();
    }
    let (h, m) = (secs / 3600, (secs % 3600) / 60);
    if h > 0 {
        format!("{h} h {m} min")
    } else if m > 0 {
        format!("{m} min")
    } else {
        format!("{secs} s")
    }
}
