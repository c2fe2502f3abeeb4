//! The secret-leak test: every CLI path runs with `-vvv` and `DHAN_LOGIN_LOG=trace`, and
//! no secret may reach stderr (logs, errors) or the stdout of a command whose job is not
//! to print the token. Also: the token file is private, and the state folder holds no
//! login secret.
//!
//! Failure messages name the kind of secret and the command, never the secret itself:
//! these tests must stay safe to run against real credentials.

use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use common::{Run, Sandbox, Stand, jwt_claims, run, run_manual_login, totp_code_at, unix_now};
use dhan_login::mock::TokenKind;

/// One value that must not leak, and what to call it in a failure message.
struct Secret {
    kind: String,
    value: String,
    /// Digits only: matched as a whole number, not inside a longer run of digits.
    numeric: bool,
}

#[derive(Default)]
struct Secrets(Vec<Secret>);

impl Secrets {
    fn add(&mut self, kind: impl Into<String>, value: impl Into<String>) {
        let value = value.into();
        assert!(
            value.len() >= 4,
            "a secret this short cannot be searched for"
        );
        let numeric = value.chars().all(|c| c.is_ascii_digit());
        if !self.0.iter().any(|s| s.value == value) {
            self.0.push(Secret {
                kind: kind.into(),
                value,
                numeric,
            });
        }
    }

    /// Every TOTP code valid during `[from, to]` (Unix s), ±2 steps.
    fn add_totp_codes(&mut self, secret: &str, from: u64, to: u64) {
        for step in (from / 30).saturating_sub(2)..=(to / 30 + 2) {
            self.add(
                format!("TOTP code (step {step})"),
                totp_code_at(secret, step * 30),
            );
        }
    }
}

/// `HH:MM:SS.` right before a match: the fraction of a log timestamp, not a leak.
fn after_clock_time(b: &[u8], at: usize) -> bool {
    at >= 9 && {
        let p = &b[at - 9..at];
        p[8] == b'.'
            && p[2] == b':'
            && p[5] == b':'
            && [0, 1, 3, 4, 6, 7].iter().all(|&i| p[i].is_ascii_digit())
    }
}

fn occurs(text: &str, secret: &Secret) -> bool {
    if !secret.numeric {
        return text.contains(&secret.value);
    }
    let b = text.as_bytes();
    let mut from = 0;
    while let Some(pos) = text[from..].find(&secret.value) {
        let at = from + pos;
        let end = at + secret.value.len();
        let digit_before = at > 0 && b[at - 1].is_ascii_digit();
        let digit_after = b.get(end).is_some_and(u8::is_ascii_digit);
        if !digit_before && !digit_after && !after_clock_time(b, at) {
            return true;
        }
        from = at + 1;
    }
    false
}

/// A JWT-shaped run (`eyJ….….…`), whoever's it is: logs must mask every token.
fn has_jwt(text: &str) -> bool {
    let mut rest = text;
    while let Some(pos) = rest.find("eyJ") {
        let candidate = &rest[pos..];
        let run: String = candidate
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            .collect();
        let parts: Vec<&str> = run.split('.').collect();
        if parts.len() >= 3 && parts[..3].iter().all(|p| p.len() >= 4) {
            return true;
        }
        rest = &candidate[3..];
    }
    false
}

/// `tokenId=<value>` with a value that is not masked.
fn has_token_id_param(text: &str) -> bool {
    text.match_indices("tokenId=").any(|(at, m)| {
        let value: String = text[at + m.len()..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
            .collect();
        !value.is_empty()
    })
}

/// What a command's stdout is for.
#[derive(Clone, Copy, PartialEq)]
enum Stdout {
    /// Nothing secret: checked for every secret.
    Plain,
    /// The token (token, login, renew): checked for every secret but access tokens.
    Token,
    /// The exec child's own output: not checked.
    Child,
}

struct Transcript {
    label: String,
    run: Run,
    stdout: Stdout,
}

#[derive(Default)]
struct Recorder {
    transcripts: Vec<Transcript>,
}

impl Recorder {
    fn keep(&mut self, label: &str, run: Run, stdout: Stdout) -> &Run {
        self.transcripts.push(Transcript {
            label: label.to_owned(),
            run,
            stdout,
        });
        &self.transcripts.last().expect("just pushed").run
    }

    /// Every leak, as "what, where": never the value.
    fn leaks(&self, secrets: &Secrets) -> Vec<String> {
        let mut found = Vec::new();
        for t in &self.transcripts {
            let stdout_checked = match t.stdout {
                Stdout::Plain => true,
                // A failed token command has no token to print.
                Stdout::Token => true,
                Stdout::Child => false,
            };
            let stdout_may_hold_token = t.stdout == Stdout::Token && t.run.success();
            for s in &secrets.0 {
                if occurs(&t.run.stderr, s) {
                    found.push(format!("{} in stderr of `{}`", s.kind, t.label));
                }
                let is_token = s.kind.starts_with("access token");
                if stdout_checked
                    && !(is_token && stdout_may_hold_token)
                    && occurs(&t.run.stdout, s)
                {
                    found.push(format!("{} in stdout of `{}`", s.kind, t.label));
                }
            }
            if has_jwt(&t.run.stderr) {
                found.push(format!("a JWT-shaped token in stderr of `{}`", t.label));
            }
            if has_token_id_param(&t.run.stderr) {
                found.push(format!("an unmasked tokenId= in stderr of `{}`", t.label));
            }
            if t.stdout == Stdout::Plain && has_jwt(&t.run.stdout) {
                found.push(format!("a JWT-shaped token in stdout of `{}`", t.label));
            }
        }
        found
    }

    /// Checks that a step went as planned without printing the run (it may hold secrets).
    #[track_caller]
    fn expect_code(&self, code: i32) {
        let t = self.transcripts.last().expect("a run");
        assert_eq!(
            t.run.code,
            Some(code),
            "`{}` exited {:?}, expected {code} (output not shown: it may hold secrets)",
            t.label,
            t.run.code
        );
    }
}

/// The binary with trace logging everywhere.
fn loud(mut cmd: std::process::Command, args: &[&str]) -> std::process::Command {
    cmd.env("DHAN_LOGIN_LOG", "trace").arg("-vvv").args(args);
    cmd
}

/// The single token line of a successful token-printing run.
#[track_caller]
fn token_line(rec: &Recorder) -> String {
    rec.expect_code(0);
    let t = rec.transcripts.last().expect("a run");
    let line = t.run.stdout.trim().to_owned();
    assert!(
        jwt_claims(&line).is_some(),
        "`{}` did not print one JWT-shaped token",
        t.label
    );
    line
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("cannot stat {}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test(flavor = "multi_thread")]
async fn no_secret_reaches_logs_or_non_token_output() {
    let s = Stand::start().await;
    // Several sandboxes log in against one stand-in within one 30 s step: each may pick
    // the same code, which is fine for this test (it is about output, not about Dhan).
    s.server.set_totp_reuse_allowed(true);
    let account = s.server.account().clone();
    let started = unix_now();
    let mut rec = Recorder::default();
    let mut tokens: Vec<String> = Vec::new();

    // --- machine A: the everyday paths, in one state folder -----------------------------
    let a = &s.sandbox;
    rec.keep(
        "token",
        run(loud(s.command(), &["token"]), None).await,
        Stdout::Token,
    );
    tokens.push(token_line(&rec));
    let r = rec.keep(
        "token --json --verify",
        run(loud(s.command(), &["token", "--json", "--verify"]), None).await,
        Stdout::Token,
    );
    assert!(r.success(), "`token --json --verify` failed");
    rec.keep(
        "token --env",
        run(loud(s.command(), &["token", "--env"]), None).await,
        Stdout::Token,
    );
    rec.expect_code(0);
    rec.keep(
        "status",
        run(loud(s.command(), &["status"]), None).await,
        Stdout::Plain,
    );
    rec.expect_code(0);
    rec.keep(
        "status --json",
        run(loud(s.command(), &["status", "--json"]), None).await,
        Stdout::Plain,
    );
    rec.expect_code(0);
    let r = rec.keep(
        "exec -- sh -c …",
        run(
            loud(
                s.command(),
                &[
                    "exec",
                    "--",
                    "sh",
                    "-c",
                    "test -n \"$DHAN_ACCESS_TOKEN\" && echo child-saw-token",
                ],
            ),
            None,
        )
        .await,
        Stdout::Child,
    );
    assert!(
        r.success() && r.stdout.contains("child-saw-token"),
        "the exec child did not get a token"
    );
    rec.keep(
        "config check",
        run(loud(s.command(), &["config", "check"]), None).await,
        Stdout::Plain,
    );
    rec.expect_code(0);

    let web = s
        .server
        .issue_token(TokenKind::SelfWeb, Duration::from_secs(24 * 3600));
    tokens.push(web.clone());
    rec.keep(
        "import (a Dhan Web token on stdin)",
        run(loud(s.command(), &["import"]), Some(web.as_bytes())).await,
        Stdout::Plain,
    );
    rec.expect_code(0);
    rec.keep(
        "renew",
        run(loud(s.command(), &["renew"]), None).await,
        Stdout::Token,
    );
    tokens.push(token_line(&rec));
    rec.keep(
        "renew --json",
        run(loud(s.command(), &["renew", "--json"]), None).await,
        Stdout::Token,
    );
    rec.expect_code(0);
    let renewed = serde_json::from_str::<serde_json::Value>(
        rec.transcripts.last().expect("a run").run.stdout.trim(),
    )
    .ok()
    .and_then(|v| v["access_token"].as_str().map(str::to_owned))
    .expect("renew --json prints an access_token");
    tokens.push(renewed);

    // The token file, while it holds a token: private, in a private folder.
    let token_file = a.token_file("default");
    assert_eq!(mode(&token_file), 0o600, "token file mode");
    assert_eq!(
        mode(token_file.parent().expect("tokens folder")),
        0o700,
        "tokens folder mode"
    );
    assert_eq!(mode(&a.state_dir()), 0o700, "state folder mode");
    let stored: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&token_file).expect("read the token file"))
            .expect("the token file is JSON");
    if let Some(t) = stored["token"]["access_token"].as_str() {
        tokens.push(t.to_owned());
    }

    let garbage = "garbage-token-pasted-by-mistake-7Qx9";
    tokens.push(garbage.to_owned());
    rec.keep(
        "import (garbage on stdin)",
        run(loud(s.command(), &["import"]), Some(garbage.as_bytes())).await,
        Stdout::Plain,
    );
    assert_ne!(
        rec.transcripts.last().expect("a run").run.code,
        Some(0),
        "a garbage token was imported"
    );
    rec.keep(
        "logout",
        run(loud(s.command(), &["logout"]), None).await,
        Stdout::Plain,
    );
    rec.expect_code(0);
    rec.keep(
        "status (after logout)",
        run(loud(s.command(), &["status"]), None).await,
        Stdout::Plain,
    );
    rec.expect_code(0);

    // --- machine B: a forced PIN + TOTP login ---------------------------------------------
    let b = Sandbox::new();
    rec.keep(
        "login --via totp",
        run(loud(s.command_in(&b), &["login", "--via", "totp"]), None).await,
        Stdout::Token,
    );
    tokens.push(token_line(&rec));

    // --- machine C: a wrong PIN, then the locked profile --------------------------------
    let c = Sandbox::new();
    let wrong_pin = "246801";
    let mut cmd = s.command_in(&c);
    cmd.env("DHAN_PIN", wrong_pin);
    rec.keep(
        "login --via totp (wrong PIN)",
        run(loud(cmd, &["login", "--via", "totp"]), None).await,
        Stdout::Token,
    );
    rec.expect_code(3);
    let mut cmd = s.command_in(&c);
    cmd.env("DHAN_PIN", wrong_pin);
    rec.keep(
        "token (wrong PIN, locked)",
        run(loud(cmd, &["token"]), None).await,
        Stdout::Token,
    );
    rec.expect_code(3);
    // A PIN of the wrong length and a mobile with letters: refused before any request,
    // the field named, the value not.
    let short_pin = "24680";
    let mut cmd = s.command_in(&c);
    cmd.env("DHAN_PIN", short_pin);
    rec.keep(
        "login --via totp (5-digit PIN)",
        run(loud(cmd, &["login", "--via", "totp"]), None).await,
        Stdout::Token,
    );
    rec.expect_code(2);
    let bad_mobile = "99999OOO42";
    let mut cmd = s.command_in(&c);
    cmd.env("DHAN_MOBILE", bad_mobile);
    rec.keep(
        "login --via browser (mobile with letters)",
        run(loud(cmd, &["login", "--via", "browser"]), None).await,
        Stdout::Token,
    );
    rec.expect_code(2);
    rec.keep(
        "status --json (after a rejection)",
        run(loud(s.command_in(&c), &["status", "--json"]), None).await,
        Stdout::Plain,
    );
    rec.expect_code(0);

    // --- machine D: Dhan unreachable --------------------------------------------------------
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    let dead = format!(
        "http://127.0.0.1:{}",
        listener.local_addr().expect("address").port()
    );
    drop(listener);
    let d = Sandbox::new();
    let mut cmd = s.command_in(&d);
    cmd.env("DHAN_AUTH_BASE_URL", &dead);
    rec.keep(
        "login --via totp (unreachable)",
        run(loud(cmd, &["login", "--via", "totp"]), None).await,
        Stdout::Token,
    );
    rec.expect_code(5);
    let d2 = Sandbox::new();
    let mut cmd = s.command_in(&d2);
    cmd.env("DHAN_AUTH_BASE_URL", &dead)
        .env("DHAN_API_BASE_URL", format!("{dead}/v2"));
    rec.keep(
        "token (whole chain, unreachable)",
        run(loud(cmd, &["token"]), None).await,
        Stdout::Token,
    );
    rec.expect_code(5);

    // --- machine E: a manual consent login, the one path a tokenId goes through --------
    let e = Sandbox::new();
    let mut cmd = loud(s.command_in(&e), &["login", "--via", "manual"]);
    cmd.env(
        "DHAN_REDIRECT_URL",
        "https://redirect.invalid/dhan/callback",
    );
    let (r, location) = run_manual_login(cmd, &s.server).await;
    rec.keep("login --via manual", r, Stdout::Token);
    tokens.push(token_line(&rec));
    let token_id = url::Url::parse(&location)
        .ok()
        .and_then(|u| {
            u.query_pairs()
                .find(|(k, _)| k == "tokenId")
                .map(|(_, v)| v.into_owned())
        })
        .expect("the redirect carries a tokenId");

    // --- what must not appear -----------------------------------------------------------
    let mut secrets = Secrets::default();
    secrets.add("PIN", account.pin.clone());
    secrets.add("wrong PIN", wrong_pin);
    secrets.add("5-digit PIN", short_pin);
    secrets.add("mobile with letters", bad_mobile);
    secrets.add("mobile number", account.mobile.clone());
    secrets.add("TOTP secret", account.totp_secret.clone());
    secrets.add("API secret", account.api_secret.clone());
    secrets.add("tokenId", token_id);
    secrets.add_totp_codes(&account.totp_secret, started, unix_now());
    for (i, t) in tokens.iter().enumerate() {
        secrets.add(format!("access token #{i}"), t.clone());
    }

    assert!(
        rec.transcripts
            .iter()
            .filter(|t| t.run.stderr.contains("TRACE"))
            .count()
            >= rec.transcripts.len() / 2,
        "trace logging was not on: this test would prove nothing"
    );
    let mut leaks = rec.leaks(&secrets);

    // The state folders: only the token file may hold a token, and no file any login
    // secret.
    for (name, sandbox) in [("A", a), ("B", &b), ("C", &c), ("D", &d), ("E", &e)] {
        for file in files_under(&sandbox.state_dir()) {
            let text =
                String::from_utf8_lossy(&std::fs::read(&file).unwrap_or_default()).into_owned();
            let is_token_file = file.parent().and_then(Path::file_name) == Some("tokens".as_ref())
                && file.extension() == Some("json".as_ref());
            let shown = file
                .strip_prefix(sandbox.state_dir())
                .unwrap_or(&file)
                .display()
                .to_string();
            for secret in &secrets.0 {
                let token = secret.kind.starts_with("access token");
                if (!token || !is_token_file) && occurs(&text, secret) {
                    leaks.push(format!(
                        "{} in state file {shown} of machine {name}",
                        secret.kind
                    ));
                }
            }
        }
    }

    assert!(
        leaks.is_empty(),
        "{} leak(s):\n  {}",
        leaks.len(),
        leaks.join("\n  ")
    );
}

/// Mistakes people make in a config file, each next to a real secret. The parse error
/// must name the field and the line, not quote the secret back.
#[tokio::test(flavor = "multi_thread")]
async fn config_file_mistakes_never_echo_secrets() {
    let s = Stand::start().await;
    let a = s.server.account().clone();
    let head = format!(
        "[profiles.default]\nclient_id = \"{}\"\nauth_base_url = \"{}\"\napi_base_url = \"{}\"\n",
        a.client_id,
        s.server.auth_base_url().as_str().trim_end_matches('/'),
        s.server.api_base_url()
    );
    let cases: Vec<(&str, String, &str, String)> = vec![
        (
            "PIN written as a number",
            format!("pin = {}\ntotp_secret = \"{}\"\n", a.pin, a.totp_secret),
            "PIN",
            a.pin.clone(),
        ),
        (
            "misspelled totp_secret key",
            format!("pin = \"{}\"\ntotp_secert = \"{}\"\n", a.pin, a.totp_secret),
            "TOTP secret",
            a.totp_secret.clone(),
        ),
        (
            "api-secret with a dash",
            format!(
                "pin = \"{}\"\ntotp_secret = \"{}\"\napi_key = \"{}\"\napi-secret = \"{}\"\n",
                a.pin, a.totp_secret, a.api_key, a.api_secret
            ),
            "API secret",
            a.api_secret.clone(),
        ),
        (
            "unterminated PIN string",
            format!("pin = \"{}\ntotp_secret = \"{}\"\n", a.pin, a.totp_secret),
            "PIN",
            a.pin.clone(),
        ),
        (
            "TOTP secret that is not base32",
            format!(
                "pin = \"{}\"\ntotp_secret = \"{}!!\"\n",
                a.pin, a.totp_secret
            ),
            "TOTP secret",
            a.totp_secret.clone(),
        ),
        (
            "PIN of the wrong shape",
            format!(
                "pin = \"{}99\"\ntotp_secret = \"{}\"\n",
                a.pin, a.totp_secret
            ),
            "PIN",
            format!("{}99", a.pin),
        ),
    ];

    let mut leaks = Vec::new();
    for (case, body, kind, value) in cases {
        let sandbox = Sandbox::new();
        let path = sandbox.write_config(&format!("{head}{body}"));
        let secret = Secret {
            kind: kind.to_owned(),
            numeric: value.chars().all(|c| c.is_ascii_digit()),
            value,
        };
        for args in [&["config", "check"][..], &["token"][..]] {
            let mut cmd = loud(sandbox.command(), args);
            cmd.env("DHAN_LOGIN_CONFIG", &path);
            let r = run(cmd, None).await;
            let label = format!("{} ({case})", args.join(" "));
            if r.success() {
                leaks.push(format!("`{label}` accepted the broken config"));
            }
            for (stream, text) in [("stderr", &r.stderr), ("stdout", &r.stdout)] {
                if occurs(text, &secret) {
                    leaks.push(format!("{} in {stream} of `{label}`", secret.kind));
                }
            }
        }
    }
    assert!(
        leaks.is_empty(),
        "{} leak(s):\n  {}",
        leaks.len(),
        leaks.join("\n  ")
    );
}

/// `exec` hands the program a token; it has no reason to hand it the credentials that
/// mint new tokens. A bot that logs its environment or a crash reporter that uploads it
/// would otherwise give away the PIN and TOTP secret, i.e. the account.
#[tokio::test(flavor = "multi_thread")]
async fn exec_child_environment_holds_no_login_secrets() {
    let s = Stand::start().await;
    let a = s.server.account().clone();
    let r = run(s.cli(["exec", "--", "env"]), None).await;
    assert_eq!(r.code, Some(0), "exec -- env failed");
    assert!(
        r.stdout.contains("DHAN_ACCESS_TOKEN="),
        "the child got no token"
    );
    let mut leaks = Vec::new();
    for (kind, value) in [
        ("PIN", &a.pin),
        ("TOTP secret", &a.totp_secret),
        ("API secret", &a.api_secret),
        ("mobile number", &a.mobile),
    ] {
        let found = r
            .stdout
            .lines()
            .any(|l| l.split_once('=').is_some_and(|(_, v)| v == value.as_str()));
        if found {
            leaks.push(kind);
        }
    }
    assert!(
        leaks.is_empty(),
        "the exec child's environment holds: {leaks:?}"
    );
}

/// The detectors themselves: a leak test that cannot see a leak proves nothing.
#[test]
fn leak_detectors_find_what_they_look_for() {
    let mut secrets = Secrets::default();
    secrets.add("PIN", "135790");
    secrets.add("TOTP secret", "JBSWY3DPEHPK3PXP");
    let pin = &secrets.0[0];
    let totp = &secrets.0[1];
    assert!(occurs("pin=135790&totp=1", pin));
    assert!(occurs("135790", pin));
    assert!(occurs("PIN \"135790\" rejected", pin));
    // Inside a longer number it is another number, and a log timestamp's microseconds
    // are not a leak.
    assert!(!occurs("exp=1135790123", pin));
    assert!(!occurs("2026-11-25T18:32:35.135790Z DEBUG x", pin));
    assert!(occurs("secret=JBSWY3DPEHPK3PXP", totp));
    assert!(!occurs("secret=****", totp));

    assert!(has_jwt("token eyJhbGciOi.eyJzdWIiOiIx.c2lnbmF0dXJl end"));
    assert!(!has_jwt("token **** end, eyJ alone"));
    assert!(has_token_id_param("GET /cb?tokenId=abc-123 HTTP/1.1"));
    assert!(!has_token_id_param("GET /cb?tokenId=**** HTTP/1.1"));

    let mut codes = Secrets::default();
    codes.add_totp_codes("JBSWY3DPEHPK3PXP", 1_000_000_000, 1_000_000_000);
    assert_eq!(codes.0.len(), 5, "±2 steps around one instant");
    assert!(
        codes
            .0
            .iter()
            .any(|c| c.value == totp_code_at("JBSWY3DPEHPK3PXP", 1_000_000_000))
    );
}
