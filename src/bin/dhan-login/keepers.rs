//! Where `init` keeps a secret: inline in the 0600 config file, or in a password manager
//! found on PATH, referenced by a `*_command` that prints it back.
//!
//! A secret goes to a manager on its standard input, never on a command line (which
//! every local user can read in `ps`), and is read back once to prove the command works.

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use clap::ValueEnum;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Keeper {
    /// In the config file itself (written mode 0600).
    Inline,
    /// `pass` (the standard Unix password manager).
    Pass,
    /// The desktop's Secret Service (GNOME Keyring, KWallet) through `secret-tool`.
    SecretTool,
    /// 1Password's `op`: a reference to an item you already keep there.
    Op,
    /// The macOS keychain through `security`.
    Security,
}

impl Keeper {
    pub fn program(self) -> Option<&'static str> {
        match self {
            Keeper::Inline => None,
            Keeper::Pass => Some("pass"),
            Keeper::SecretTool => Some("secret-tool"),
            Keeper::Op => Some("op"),
            Keeper::Security => Some("security"),
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Keeper::Inline => "the config file (mode 0600)",
            Keeper::Pass => "pass",
            Keeper::SecretTool => "secret-tool (Secret Service keyring)",
            Keeper::Op => "1Password (op read, from an op:// reference you give)",
            Keeper::Security => "the macOS keychain (security)",
        }
    }

    /// True when the user types a reference to an existing item rather than the secret.
    pub fn takes_reference(self) -> bool {
        self == Keeper::Op
    }

    /// The managers found on PATH, in the order they are offered.
    pub fn available() -> Vec<Keeper> {
        [
            Keeper::Pass,
            Keeper::SecretTool,
            Keeper::Op,
            Keeper::Security,
        ]
        .into_iter()
        .filter(|k| k.program().is_some_and(on_path))
        .collect()
    }
}

fn on_path(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            std::fs::metadata(dir.join(program))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

/// Single quotes for `sh -c`, which runs every `*_command`.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The item name a secret gets in a manager: one per profile and field.
fn item(profile: &str, field: &str) -> String {
    format!("dhan-login/{profile}/{field}")
}

/// Stores `value` in `keeper` and returns the `*_command` that prints it. For `Op`,
/// `value` is the `op://` reference and nothing is stored.
pub fn keep(keeper: Keeper, profile: &str, field: &str, value: &str) -> Result<String> {
    let name = item(profile, field);
    let command = match keeper {
        Keeper::Inline => bail!("an inline secret has no command"),
        Keeper::Pass => {
            feed(
                Command::new("pass").args(["insert", "--multiline", "--force", &name]),
                &format!("{value}\n"),
            )?;
            format!("pass show {}", shell_quote(&name))
        }
        Keeper::SecretTool => {
            let label = format!("dhan-login {profile} {field}");
            feed(
                Command::new("secret-tool").args([
                    "store",
                    "--label",
                    &label,
                    "application",
                    "dhan-login",
                    "item",
                    &name,
                ]),
                value,
            )?;
            format!(
                "secret-tool lookup application dhan-login item {}",
                shell_quote(&name)
            )
        }
        Keeper::Op => {
            if !value.starts_with("op://") {
                bail!("{field}: a 1Password reference starts with op:// (vault/item/field)");
            }
            format!("op read {}", shell_quote(value))
        }
        Keeper::Security => {
            // `security -i` reads its commands from stdin: the secret stays off argv.
            let line = format!(
                "add-generic-password -U -a dhan-login -s \"{name}\" -w \"{}\"\n",
                value.replace('\\', r"\\").replace('"', "\\\"")
            );
            feed(Command::new("security").arg("-i"), &line)?;
            format!(
                "security find-generic-password -a dhan-login -s {} -w",
                shell_quote(&name)
            )
        }
    };
    Ok(command)
}

/// Runs `cmd` with `input` on its stdin; its output goes nowhere (it may echo).
fn feed(cmd: &mut Command, input: &str) -> Result<()> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot run {program}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.as_bytes())
            .with_context(|| format!("cannot write to {program}"))?;
    }
    let status = child
        .wait()
        .with_context(|| format!("{program} did not end"))?;
    if !status.success() {
        bail!("{program} could not store the secret ({status})");
    }
    Ok(())
}

/// The first line `command` prints, as `*_command` is read at login time.
pub fn read_back(command: &str, limit: Duration) -> Result<String> {
    use std::io::Read as _;
    use std::os::unix::process::CommandExt as _;
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(command)
        // A group of its own, so that the whole of it (sh, the manager, gpg) can be
        // killed when it does not answer in time.
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("cannot run sh")?;
    let mut stdout = child.stdout.take().context("no stdout pipe")?;
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        stdout.read_to_end(&mut out).map(|_| out)
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            // The group this function started: its leader is not reaped yet.
            let group = rustix::process::Pid::from_child(&child);
            let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
            let _ = child.wait();
            bail!("`{command}` did not answer within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    if !status.success() {
        bail!("`{command}` failed ({status})");
    }
    let out = reader
        .join()
        .map_err(|_| anyhow::anyhow!("reading `{command}` failed"))??;
    let text = String::from_utf8(out).context("the command printed non-UTF-8")?;
    Ok(text.lines().next().unwrap_or("").trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_sh() {
        let tricky = "it's a \"name\" $HOME `x`";
        let out = read_back(
            &format!("printf '%s\\n' {}", shell_quote(tricky)),
            Duration::from_secs(60),
        )
        .expect("sh");
        assert_eq!(out, tricky);
    }

    #[test]
    fn a_read_back_that_never_answers_is_killed_at_its_limit() {
        let started = Instant::now();
        let e = read_back("sleep 30; echo late", Duration::from_millis(300))
            .unwrap_err()
            .to_string();
        assert!(e.contains("did not answer"), "{e}");
        // Killed with its group: the call did not wait for `sleep` to end.
        assert!(started.elapsed() < Duration::from_secs(25));
    }

    #[test]
    fn op_wants_a_reference() {
        assert!(keep(Keeper::Op, "default", "pin", "123456").is_err());
        let cmd = keep(Keeper::Op, "default", "pin", "op://Private/Dhan/pin").expect("ok");
        assert_eq!(cmd, "op read 'op://Private/Dhan/pin'");
    }
}
