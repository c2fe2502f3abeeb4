//! What a failed (or recorded) login leaves behind for a human: a step log with timings
//! and the selector candidates that matched, the page's HTML and a screenshot. All of it
//! must be safe to paste into a public bug report, so typed values are removed from the
//! page first and every text goes through the scrubber.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chromiumoxide::Page;
use chromiumoxide::cdp::browser_protocol::page::CaptureScreenshotFormat;
use chromiumoxide::page::ScreenshotParams;

use super::dom;
use super::error::{Artifacts, Step};
use super::scrub::{SharedScrubber, scrub_with};

/// Bounds the page operations while saving artifacts (each one while recording, all of
/// them together after a failure): the page may be the reason for the failure, and a
/// hung screenshot must not hang the error report. A page still waiting for its first
/// document answers none of them, so one shared limit keeps that report 5 s after the
/// timeout instead of 10 s (measured on a page held back for a minute).
const PAGE_OP_LIMIT: Duration = Duration::from_secs(5);

struct Entry {
    step: Step,
    start: Duration,
    took: Option<Duration>,
    outcome: Option<String>,
    matched: Vec<(String, String)>,
    notes: Vec<String>,
}

/// Steps with their offsets from the start, durations and matched selectors.
pub(crate) struct StepLog {
    t0: Instant,
    started_utc: chrono::DateTime<chrono::Utc>,
    entries: Vec<Entry>,
}

impl StepLog {
    pub(crate) fn new() -> Self {
        StepLog {
            t0: Instant::now(),
            started_utc: chrono::Utc::now(),
            entries: Vec::new(),
        }
    }

    pub(crate) fn start(&mut self, step: Step) {
        self.entries.push(Entry {
            step,
            start: self.t0.elapsed(),
            took: None,
            outcome: None,
            matched: Vec::new(),
            notes: Vec::new(),
        });
    }

    /// Ends the current step. `outcome` must already be scrubbed.
    pub(crate) fn finish(&mut self, outcome: Result<(), String>) -> Duration {
        let now = self.t0.elapsed();
        match self.entries.last_mut() {
            Some(e) if e.took.is_none() => {
                let took = now.saturating_sub(e.start);
                e.took = Some(took);
                e.outcome = Some(match outcome {
                    Ok(()) => "ok".into(),
                    Err(why) => format!("FAILED: {why}"),
                });
                took
            }
            _ => Duration::ZERO,
        }
    }

    pub(crate) fn matched(&mut self, field: &str, candidate: &str) {
        let Some(e) = self.entries.last_mut() else {
            return;
        };
        if e.matched.iter().any(|(f, c)| f == field && c == candidate) {
            return;
        }
        tracing::debug!(step = %e.step, field, candidate, "selector candidate matched");
        e.matched.push((field.to_owned(), candidate.to_owned()));
    }

    /// A remark on the current step. Must not hold secrets (it is scrubbed again when
    /// written, but logs see it first).
    pub(crate) fn note(&mut self, text: impl Into<String>) {
        if let Some(e) = self.entries.last_mut() {
            e.notes.push(text.into());
        }
    }

    /// Matches of one step, for the record of a screen.
    pub(crate) fn matches_of(&self, step: Step) -> Vec<(String, String)> {
        self.entries
            .iter()
            .filter(|e| e.step == step)
            .flat_map(|e| e.matched.iter().cloned())
            .collect()
    }

    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "dhan-login browser step log, started {}",
            self.started_utc.format("%Y-%m-%dT%H:%M:%S%.3fZ")
        );
        let _ = writeln!(out, "{:>9}  {:<8} {:>8}  result", "start", "step", "took");
        for e in &self.entries {
            let took = e
                .took
                .map(|d| format!("{:.3}s", d.as_secs_f64()))
                .unwrap_or_else(|| "-".into());
            let _ = writeln!(
                out,
                "{:>9}  {:<8} {:>8}  {}",
                format!("+{:.3}s", e.start.as_secs_f64()),
                e.step.as_str(),
                took,
                e.outcome.as_deref().unwrap_or("(unfinished)")
            );
            for (field, candidate) in &e.matched {
                let _ = writeln!(out, "{:>21}matched {field}: `{candidate}`", "");
            }
            for note in &e.notes {
                let _ = writeln!(out, "{:>21}note: {note}", "");
            }
        }
        out
    }
}

/// Creates `path` and any missing parents readable by the owner only.
fn private_dir(path: &Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(path)
}

fn private_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path)?.write_all(bytes)
}

async fn bounded<T, E: std::fmt::Display>(
    f: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, String> {
    until(tokio::time::Instant::now() + PAGE_OP_LIMIT, f).await
}

/// `f`, unless `at` comes first. Not even started once `at` has passed: a page that
/// let one operation run out will not answer the next.
async fn until<T, E: std::fmt::Display>(
    at: tokio::time::Instant,
    f: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, String> {
    let out_of_time = || format!("no answer within {}s", PAGE_OP_LIMIT.as_secs());
    if tokio::time::Instant::now() >= at {
        return Err(out_of_time());
    }
    match tokio::time::timeout_at(at, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(out_of_time()),
    }
}

/// Writes the failure artifacts into a new folder under `root`.
pub(crate) async fn save_failure(
    root: &Path,
    page: Option<&Page>,
    step: Step,
    log: &StepLog,
    error: &str,
    scrubber: &SharedScrubber,
) -> Artifacts {
    let name = format!(
        "{}-{}-{:04x}",
        chrono::Utc::now().format("%Y%m%d-%H%M%S"),
        step.as_str(),
        rand::random::<u16>()
    );
    let dir = root.join(name);
    if let Err(e) = private_dir(&dir) {
        return Artifacts::Failed(format!("cannot create {}: {e}", dir.display()));
    }
    let mut problems: Vec<String> = Vec::new();
    if let Some(page) = page {
        let at = tokio::time::Instant::now() + PAGE_OP_LIMIT;
        // Inputs first: the screenshot and the HTML must not show typed digits.
        let cleared = match until(at, dom::clear_inputs(page)).await {
            Ok(_) => true,
            Err(e) => {
                problems.push(format!("clearing inputs failed ({e}); no screenshot taken"));
                false
            }
        };
        match until(at, dom::html(page)).await {
            Ok(html) => {
                if let Err(e) = private_file(
                    &dir.join("page.html"),
                    scrub_with(scrubber, &html).as_bytes(),
                ) {
                    problems.push(format!("page.html: {e}"));
                }
            }
            Err(e) => problems.push(format!("page.html: {e}")),
        }
        if cleared {
            let params = ScreenshotParams::builder()
                .format(CaptureScreenshotFormat::Png)
                .build();
            match until(at, page.screenshot(params)).await {
                Ok(png) => {
                    if let Err(e) = private_file(&dir.join("screenshot.png"), &png) {
                        problems.push(format!("screenshot.png: {e}"));
                    }
                }
                Err(e) => problems.push(format!("screenshot.png: {e}")),
            }
        }
    } else {
        problems.push("no page was open: no screenshot or HTML".into());
    }
    let mut text = log.render();
    let _ = writeln!(text, "\nerror: {error}");
    for p in &problems {
        let _ = writeln!(text, "artifact problem: {p}");
    }
    if let Err(e) = private_file(
        &dir.join("steps.log"),
        scrub_with(scrubber, &text).as_bytes(),
    ) {
        return Artifacts::Failed(format!(
            "cannot write {}: {e}",
            dir.join("steps.log").display()
        ));
    }
    Artifacts::Saved(dir)
}

/// `dhan-login record`: each screen's DOM and the candidates that matched on it.
pub(crate) struct Recorder {
    dir: PathBuf,
    screens: usize,
}

impl Recorder {
    pub(crate) fn new(dir: &Path) -> std::io::Result<Self> {
        private_dir(dir)?;
        Ok(Recorder {
            dir: dir.to_path_buf(),
            screens: 0,
        })
    }

    /// Saves the current DOM as `NN-<screen>.html` and the matches as `NN-<screen>.json`.
    /// Failures are logged, never fatal: recording must not break a login.
    pub(crate) async fn screen(
        &mut self,
        page: &Page,
        screen: &str,
        matched: &[(String, String)],
        scrubber: &SharedScrubber,
    ) {
        self.screens += 1;
        let stem = format!("{:02}-{screen}", self.screens);
        let url = match bounded(page.url()).await {
            Ok(Some(u)) => scrub_with(scrubber, &u),
            _ => String::new(),
        };
        let html = match bounded(dom::html(page)).await {
            Ok(h) => scrub_with(scrubber, &h),
            Err(e) => format!("<!-- could not read the page: {e} -->"),
        };
        let json = serde_json::json!({
            "screen": screen,
            "url": url,
            "matched": matched
                .iter()
                .map(|(field, candidate)| serde_json::json!({"field": field, "candidate": candidate}))
                .collect::<Vec<_>>(),
        });
        let pretty = serde_json::to_string_pretty(&json).unwrap_or_default();
        for (name, bytes) in [
            (format!("{stem}.html"), html.into_bytes()),
            (
                format!("{stem}.json"),
                scrub_with(scrubber, &pretty).into_bytes(),
            ),
        ] {
            let path = self.dir.join(&name);
            let _ = std::fs::remove_file(&path);
            if let Err(e) = private_file(&path, &bytes) {
                tracing::warn!(path = %path.display(), error = %e, "could not save a recorded screen");
            }
        }
    }

    /// The whole step log, once the login has ended either way.
    pub(crate) fn finish(&self, log: &StepLog, outcome: &str, scrubber: &SharedScrubber) {
        let path = self.dir.join("steps.log");
        let _ = std::fs::remove_file(&path);
        let text = format!("{}\noutcome: {outcome}\n", log.render());
        if let Err(e) = private_file(&path, scrub_with(scrubber, &text).as_bytes()) {
            tracing::warn!(path = %path.display(), error = %e, "could not save the step log");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_spent_budget_starts_no_further_page_operation() {
        let past = tokio::time::Instant::now();
        let never = async { panic!("started after the budget ran out") };
        let got: Result<(), String> = until::<(), String>(past, never).await;
        assert_eq!(got, Err("no answer within 5s".to_string()));
        let soon = tokio::time::Instant::now() + Duration::from_millis(50);
        let slow = tokio::time::sleep(Duration::from_secs(60));
        let got = until(soon, async {
            slow.await;
            Ok::<(), String>(())
        })
        .await;
        assert_eq!(got, Err("no answer within 5s".to_string()));
    }

    #[test]
    fn log_lists_steps_matches_and_notes() {
        let mut log = StepLog::new();
        log.start(Step::Launch);
        log.finish(Ok(()));
        log.start(Step::Pin);
        log.matched("pin_screen", "text=Enter PIN");
        log.note("waited for pin_boxes");
        log.finish(Err("pin_boxes missing".into()));
        let text = log.render();
        assert!(text.contains("launch"), "{text}");
        assert!(
            text.contains("matched pin_screen: `text=Enter PIN`"),
            "{text}"
        );
        assert!(text.contains("FAILED: pin_boxes missing"), "{text}");
        assert!(text.contains("note: waited for pin_boxes"), "{text}");
    }

    #[cfg(unix)]
    #[test]
    fn artifact_folders_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a/b");
        private_dir(&dir).unwrap();
        for d in [root.path().join("a"), dir.clone()] {
            let mode = std::fs::metadata(&d).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700, "{}", d.display());
        }
        private_file(&dir.join("f"), b"x").unwrap();
        let mode = std::fs::metadata(dir.join("f"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
    }
}
