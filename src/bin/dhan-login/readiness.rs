//! "Will tomorrow work?": which login paths a profile can take, and what each one lacks.
//! Shared by `init` (right after writing a profile) and `status`.
//!
//! It looks at what is configured and at the stored state, and reads no secret: a
//! password manager is not run, and `config check` is the way to check the values.

use chrono::{DateTime, Utc};
use dhan_login::{
    Profile, SourceKind,
    source::{needs, sends, uses_otp_command},
    store::{LedgerDay, Lockouts, ProfileState, next_ist_midnight},
    token::TokenKind,
};

/// One login path and whether it can run.
pub struct PathReadiness {
    pub path: &'static str,
    pub ready: bool,
    /// Why not, or what to know when it is ready.
    pub detail: String,
    /// Runs without a human.
    pub automatic: bool,
}

/// Every path, cheapest first (the order the chain tries them).
pub fn assess(
    profile: &Profile,
    state: Option<&ProfileState>,
    lockouts: Option<&Lockouts>,
    consents: Option<&LedgerDay>,
    now: DateTime<Utc>,
) -> Vec<PathReadiness> {
    // A lockout holds while the rejected values stay configured; telling whether they
    // changed means reading them, so a recorded one counts here.
    let locked = |kind: SourceKind| -> Option<String> {
        match lockouts? {
            Lockouts::Unreadable { path, .. } => Some(format!(
                "the lockout file {} cannot be read: `dhan-login unlock` after checking",
                path.display()
            )),
            Lockouts::Recorded(all) => all
                .iter()
                .filter(|l| l.holds_for(sends(kind), uses_otp_command(kind, profile)))
                .max_by_key(|l| l.at)
                .map(|l| {
                    format!(
                        "Dhan rejected {} at {}: fix it (a changed value lifts this), or `dhan-login unlock` after checking",
                        l.secrets.join(", "),
                        l.at.to_rfc3339()
                    )
                }),
        }
    };
    let consent_note = consents
        .filter(|d| d.exhausted || d.used >= profile.consent_cap)
        .map(|_| {
            format!(
                "; no consent left today, again from {}",
                next_ist_midnight(now).to_rfc3339()
            )
        })
        .unwrap_or_default();

    let renew = match state.and_then(|s| s.token.as_ref().map(|t| (t, s.renewable))) {
        None => (
            false,
            "needs a token made on Dhan Web: `dhan-login import`".to_owned(),
        ),
        Some((t, _)) if t.kind == TokenKind::App => (
            false,
            "the stored token comes from an API login (APP): Dhan reportedly renews only Dhan Web tokens, so it is not counted on".into(),
        ),
        Some((t, _)) if !t.is_live(now) => (
            false,
            format!(
                "the stored token expired at {}; Dhan renews only live tokens",
                t.expires_at.to_rfc3339()
            ),
        ),
        Some((_, false)) => (false, "Dhan refused to renew the stored token".into()),
        Some((t, true)) => (
            true,
            format!(
                "renews the {} token each day while it is live (now until {})",
                t.kind,
                t.expires_at.to_rfc3339()
            ),
        ),
    };

    let path = |kind: SourceKind, ok: &str| match needs(kind, profile) {
        Err(missing) => (false, missing.to_string()),
        Ok(()) => match locked(kind) {
            Some(l) => (false, l),
            None => (true, ok.to_owned()),
        },
    };
    let totp_path = path(SourceKind::Totp, "needs TOTP enabled on the Dhan account");
    let browser_path = match (path(SourceKind::Browser, ""), browser(profile)) {
        ((true, _), Ok(path)) => (
            true,
            format!("{} on the consent page{consent_note}", path.display()),
        ),
        ((true, _), Err(why)) => (false, why),
        ((false, detail), _) => (false, format!("{detail}{consent_note}")),
    };
    let (manual_ready, manual_detail) = path(SourceKind::Manual, "needs you at a browser");
    let manual_path = (manual_ready, format!("{manual_detail}{consent_note}"));

    [
        ("renew", renew, true),
        ("totp", totp_path, true),
        ("browser", browser_path, true),
        ("manual", manual_path, false),
    ]
    .into_iter()
    .map(|(path, (ready, detail), automatic)| PathReadiness {
        path,
        ready,
        detail,
        automatic,
    })
    .collect()
}

/// The Chromium a browser login would start, or why there is none.
#[cfg(feature = "browser")]
fn browser(profile: &Profile) -> Result<std::path::PathBuf, String> {
    dhan_login::browser::find_browser(&profile.browser).map_err(|e| e.to_string())
}

#[cfg(not(feature = "browser"))]
fn browser(_: &Profile) -> Result<std::path::PathBuf, String> {
    Err("this build has no browser support".into())
}

/// One line per path, for people.
pub fn print(paths: &[PathReadiness]) {
    for p in paths {
        println!(
            "  {:<8} {}  {}",
            p.path,
            if p.ready { "ready" } else { "no   " },
            p.detail
        );
    }
}

/// One sentence answering "will tomorrow work?".
pub fn verdict(paths: &[PathReadiness]) -> String {
    let auto: Vec<&str> = paths
        .iter()
        .filter(|p| p.ready && p.automatic)
        .map(|p| p.path)
        .collect();
    if !auto.is_empty() {
        format!("yes, without you ({})", auto.join(", then "))
    } else if paths.iter().any(|p| p.ready) {
        "only with you at a browser (manual)".into()
    } else {
        "no: no login path is complete (`dhan-login init`)".into()
    }
}

/// The one command to run next for a freshly written profile.
pub fn next_command(paths: &[PathReadiness]) -> &'static str {
    let ready = |name: &str| paths.iter().any(|p| p.path == name && p.ready);
    if ready("totp") {
        "dhan-login token"
    } else if ready("browser") {
        "dhan-login login --via browser"
    } else if ready("manual") {
        "dhan-login login --via manual"
    } else {
        "dhan-login import    # a token made on Dhan Web"
    }
}
