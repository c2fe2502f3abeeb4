//! What the binary teaches without logging in: `--help` of every subcommand, shell
//! completions, and `mock-server`'s first line.

use crate::common;

use std::time::Duration;

use common::{Sandbox, run_blocking};
use dhan_login::ErrorClass;
use serde_json::Value;

/// The subcommands listed under `Commands:` in a help text (without `help`).
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| l.trim() != "Commands:")
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

/// The exit codes `--help` and README's table give are the library's, class by class:
/// the tests assert classes, so this is what holds the documented numbers.
#[test]
fn help_and_readme_give_each_class_its_exit_code() {
    let sandbox = Sandbox::new();
    let help = run_blocking({
        let mut c = sandbox.command();
        c.arg("--help");
        c
    });
    help.assert_ok();
    let help = help.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    for (class, in_help, in_readme) in [
        (ErrorClass::Other, "other error", "other error"),
        (
            ErrorClass::Config,
            "usage or configuration error",
            "usage or configuration error",
        ),
        (
            ErrorClass::CredentialRejected,
            "credentials rejected",
            "credentials rejected",
        ),
        (
            ErrorClass::ConsentLimit,
            "daily consent limit reached",
            "daily consent limit reached",
        ),
        (
            ErrorClass::Transient,
            "network or temporary failure",
            "network or temporary failure",
        ),
        (
            ErrorClass::RateLimited,
            "network or temporary failure",
            "network or temporary failure (timeouts, 5xx, rate limit)",
        ),
        (ErrorClass::LoginsOff, "no live token", "no live token"),
    ] {
        let code = class.exit_code();
        assert!(
            help.contains(&format!("{code} {in_help}")),
            "--help does not give {class} exit {code}: {help}"
        );
        assert!(
            readme.contains(&format!("| {code} | {in_readme}")),
            "README's table does not give {class} exit {code}"
        );
    }
}

#[test]
fn every_subcommand_help_has_an_example() {
    let sandbox = Sandbox::new();
    let top = run_blocking({
        let mut c = sandbox.command();
        c.arg("--help");
        c
    });
    top.assert_ok();
    assert!(top.stdout.contains("Example"), "{top}");
    assert!(
        top.stdout.contains("Exit codes"),
        "top-level help documents exit codes"
    );

    let mut pending: Vec<Vec<String>> = subcommands(&top.stdout)
        .into_iter()
        .map(|c| vec![c])
        .collect();
    let expected = [
        "token",
        "login",
        "renew",
        "status",
        "import",
        "unlock",
        "logout",
        "exec",
        "config",
        "completions",
        "mock-server",
        "demo",
        "record",
    ];
    for name in expected {
        assert!(
            pending.iter().any(|p| p[0] == name),
            "`{name}` is not listed in --help"
        );
    }

    let mut missing = Vec::new();
    let mut seen = 0;
    while let Some(path) = pending.pop() {
        seen += 1;
        let mut cmd = sandbox.command();
        cmd.args(&path).arg("--help");
        let r = run_blocking(cmd);
        r.assert_ok();
        if !r.stdout.contains("Example") {
            missing.push(path.join(" "));
        }
        for sub in subcommands(&r.stdout) {
            let mut deeper = path.clone();
            deeper.push(sub);
            pending.push(deeper);
        }
    }
    assert!(
        seen >= expected.len() + 2,
        "config's subcommands were not walked"
    );
    assert!(
        missing.is_empty(),
        "these subcommands have no Example in --help: {missing:?}"
    );
}

#[test]
fn completions_bash_prints_a_script() {
    let sandbox = Sandbox::new();
    let mut cmd = sandbox.command();
    cmd.args(["completions", "bash"]);
    let r = run_blocking(cmd);
    r.assert_ok();
    assert!(r.stdout.contains("dhan-login"), "{r}");
    assert!(
        r.stdout.contains("complete "),
        "not a bash completion script"
    );
    assert!(
        r.stdout.contains("mock-server"),
        "subcommands are completed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn mock_server_prints_the_demo_account_as_its_first_line() {
    use tokio::io::AsyncBufReadExt;

    let sandbox = Sandbox::new();
    let mut cmd = tokio::process::Command::from(sandbox.command());
    cmd.args(["mock-server", "--port", "0"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    let mut child = cmd.spawn().expect("start mock-server");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let first = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .expect("mock-server printed nothing within 10 s")
        .expect("read stdout")
        .expect("mock-server closed stdout without a line");

    let v: Value = serde_json::from_str(&first)
        .unwrap_or_else(|e| panic!("first line is not JSON ({e}): {first}"));
    let obj = v.as_object().expect("one JSON object");
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "api_base_url",
            "api_key",
            "api_secret",
            "auth_base_url",
            "client_id",
            "mobile",
            "pin",
            "redirect_url",
            "sms_otp",
            "totp_secret"
        ]
    );

    // It serves: an unknown token gets Dhan's DH-901 from the advertised API base.
    let api = obj["api_base_url"].as_str().expect("api_base_url");
    let resp = reqwest::Client::new()
        .get(format!("{}/profile", api.trim_end_matches('/')))
        .header("access-token", "nope")
        .send()
        .await
        .expect("the advertised API base answers");
    assert_eq!(resp.status().as_u16(), 401);

    child.kill().await.expect("stop mock-server");
}

#[tokio::test(flavor = "multi_thread")]
async fn mock_server_with_a_page_seed_prints_what_it_drew() {
    use tokio::io::AsyncBufReadExt;

    let sandbox = Sandbox::new();
    let mut cmd = tokio::process::Command::from(sandbox.command());
    cmd.args(["mock-server", "--port", "0", "--page-seed", "42"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    let mut child = cmd.spawn().expect("start mock-server");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let first = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .expect("mock-server printed nothing within 10 s")
        .expect("read stdout")
        .expect("mock-server closed stdout without a line");
    let v: Value = serde_json::from_str(&first).expect("first line is JSON");
    let page = &v["page"];
    assert_eq!(page["seed"], 42, "{first}");
    for dimension in ["rendering", "origin", "second_factor", "redraw", "decoys"] {
        assert!(!page[dimension].is_null(), "{dimension} missing: {first}");
    }
    for screen in ["mobile", "totp", "otp", "pin"] {
        for dimension in ["words", "inputs", "button", "enable", "submit", "form"] {
            assert!(
                !page[screen][dimension].is_null(),
                "{screen}.{dimension} missing: {first}"
            );
        }
    }
    child.kill().await.expect("stop mock-server");
}
