//! `/metrics` in the Prometheus text format (version 0.0.4).

use std::fmt::Write;

use chrono::{DateTime, Utc};

use super::status::{Phase, Slot};

struct Family {
    name: &'static str,
    help: &'static str,
    kind: &'static str,
    samples: Vec<(String, f64)>,
}

impl Family {
    fn new(name: &'static str, kind: &'static str, help: &'static str) -> Family {
        Family {
            name,
            help,
            kind,
            samples: Vec::new(),
        }
    }

    fn add(&mut self, labels: &[(&str, &str)], value: f64) {
        let mut text = String::new();
        for (i, (k, v)) in labels.iter().enumerate() {
            let sep = if i == 0 { "" } else { "," };
            let _ = write!(text, "{sep}{k}=\"{}\"", escape(v));
        }
        self.samples.push((text, value));
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn seconds(t: DateTime<Utc>) -> f64 {
    t.timestamp_millis() as f64 / 1000.0
}

pub(crate) async fn render<'a>(
    slots: impl Iterator<Item = &'a Slot>,
    now: DateTime<Utc>,
) -> String {
    let mut expiry = Family::new(
        "dhan_login_token_expiry_timestamp_seconds",
        "gauge",
        "When the stored token expires (Unix time).",
    );
    let mut valid = Family::new(
        "dhan_login_token_valid",
        "gauge",
        "1 while the stored token is valid beyond the margin.",
    );
    let mut held = Family::new(
        "dhan_login_held",
        "gauge",
        "1 while a fatal answer stops automatic logins for the profile.",
    );
    let mut next = Family::new(
        "dhan_login_next_check_timestamp_seconds",
        "gauge",
        "When the daemon next refreshes, retries or re-checks (Unix time).",
    );
    let mut success = Family::new(
        "dhan_login_last_success_timestamp_seconds",
        "gauge",
        "The last refresh that worked (Unix time).",
    );
    let mut attempts = Family::new(
        "dhan_login_refresh_attempts_total",
        "counter",
        "Refreshes started by this daemon.",
    );
    let mut failures = Family::new(
        "dhan_login_refresh_failures_total",
        "counter",
        "Refreshes that failed, by error class.",
    );
    let mut logins = Family::new(
        "dhan_login_logins_total",
        "counter",
        "Tokens obtained by this daemon, by source (renew, totp, browser).",
    );
    let mut consents = Family::new(
        "dhan_login_consents_used_today",
        "gauge",
        "generate-consent calls counted today (IST) for the profile's client id.",
    );
    for slot in slots {
        let s = slot.status.borrow().clone();
        let p = [("profile", slot.name.as_str())];
        let token = s.manager.state().await.ok().and_then(|st| st.token);
        if let Some(t) = &token {
            expiry.add(&p, seconds(t.expires_at));
        }
        let is_valid = token
            .as_ref()
            .is_some_and(|t| t.is_valid_for(now, s.manager.profile().margin));
        valid.add(&p, f64::from(u8::from(is_valid)));
        held.add(&p, f64::from(u8::from(matches!(s.phase, Phase::Held(_)))));
        if let Some(t) = s.next_at {
            next.add(&p, seconds(t));
        }
        if let Some(t) = s.last_success {
            success.add(&p, seconds(t));
        }
        attempts.add(&p, s.attempts as f64);
        for (class, n) in &s.failures {
            failures.add(&[p[0], ("class", class)], *n as f64);
        }
        for (source, n) in &s.obtained {
            logins.add(&[p[0], ("source", source)], *n as f64);
        }
        if let Ok(Some(day)) = s.manager.consents_today().await {
            consents.add(&p, f64::from(day.used));
        }
    }
    let mut out = String::new();
    for f in [
        expiry, valid, held, next, success, attempts, failures, logins, consents,
    ] {
        let _ = writeln!(out, "# HELP {} {}", f.name, f.help);
        let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind);
        for (labels, value) in f.samples {
            let _ = writeln!(out, "{}{{{labels}}} {value}", f.name);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        let mut f = Family::new("m", "gauge", "h");
        f.add(&[("profile", "a\"b\\c\nd")], 1.0);
        assert_eq!(f.samples[0].0, r#"profile="a\"b\\c\nd""#);
    }
}
