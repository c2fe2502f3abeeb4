//! `dhan-login init`: writes one profile of the config file, asking in a terminal or
//! taking `DHAN_*` variables and flags without one. Other profiles, the `[serve]` and
//! `[notify]` tables and every comment of an existing file are kept as they were.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::Path;

use anyhow::{Context as _, Result, bail};
use clap::Args;
use dhan_login::{ConfigError, TokenManager};
use toml_edit::{DocumentMut, Item, Table, value};

use crate::checks;
use crate::config_file;
use crate::keepers::{self, Keeper};
use crate::readiness;

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Dhan client id (else DHAN_CLIENT_ID; asked in a terminal).
    #[arg(long, value_name = "ID")]
    pub client_id: Option<String>,
    /// Redirect URL registered with the API key (else DHAN_REDIRECT_URL).
    #[arg(long, value_name = "URL")]
    pub redirect_url: Option<String>,
    /// Base URL of Dhan's auth host (else DHAN_AUTH_BASE_URL); only to use a stand-in.
    #[arg(long, value_name = "URL")]
    pub auth_base_url: Option<String>,
    /// Base URL of Dhan's API (else DHAN_API_BASE_URL); only to use a stand-in.
    #[arg(long, value_name = "URL")]
    pub api_base_url: Option<String>,
    /// The daily login time, HH:MM IST (else DHAN_LOGIN_AT); 08:00 is proposed.
    #[arg(long, value_name = "HH:MM")]
    pub login_at: Option<String>,
    /// Where the secrets go (asked in a terminal when a password manager is on PATH;
    /// else inline in the config file, mode 0600).
    #[arg(long, value_enum, value_name = "WHERE")]
    pub secrets: Option<Keeper>,
    /// Ask nothing, even in a terminal: every value comes from DHAN_* variables and flags.
    #[arg(long)]
    pub no_input: bool,
}

/// One field `init` can write.
struct Field {
    name: &'static str,
    env: &'static str,
    /// Kept inline or in a password manager, never printed, typed without echo.
    secret: bool,
    /// The question in a terminal; `None` for the fields only flags and variables set.
    question: Option<&'static str>,
    required: bool,
}

const FIELDS: &[Field] = &[
    Field {
        name: "client_id",
        env: "DHAN_CLIENT_ID",
        secret: false,
        question: Some("Client id (Dhan Web → profile)"),
        required: true,
    },
    Field {
        name: "mobile",
        env: "DHAN_MOBILE",
        secret: true,
        question: Some("Mobile number, 10 digits (the browser login types it)"),
        required: false,
    },
    Field {
        name: "pin",
        env: "DHAN_PIN",
        secret: true,
        question: Some("PIN, 6 digits"),
        required: false,
    },
    Field {
        name: "totp_secret",
        env: "DHAN_TOTP_SECRET",
        secret: true,
        question: Some("TOTP secret, base32 or the otpauth:// text of the QR code"),
        required: false,
    },
    Field {
        name: "api_key",
        env: "DHAN_API_KEY",
        secret: true,
        question: Some("API key (Dhan Web → DhanHQ Trading APIs)"),
        required: false,
    },
    Field {
        name: "api_secret",
        env: "DHAN_API_SECRET",
        secret: true,
        question: Some("API secret"),
        required: false,
    },
    Field {
        name: "redirect_url",
        env: "DHAN_REDIRECT_URL",
        secret: false,
        question: Some("Redirect URL registered with the API key"),
        required: false,
    },
    Field {
        name: "login_at",
        env: "DHAN_LOGIN_AT",
        secret: false,
        question: Some(LOGIN_AT_QUESTION),
        required: false,
    },
    Field {
        name: "auth_base_url",
        env: "DHAN_AUTH_BASE_URL",
        secret: false,
        question: None,
        required: false,
    },
    Field {
        name: "api_base_url",
        env: "DHAN_API_BASE_URL",
        secret: false,
        question: None,
        required: false,
    },
];

/// Why 08:00 is proposed, in one line: a token lives 24 h from the clock time it was
/// made and every new one ends the old, so one login before the market opens keeps
/// the day's token unchanged through the session.
macro_rules! login_at_why {
    () => {
        "before the 09:15 open, so the day's token is never replaced mid-session"
    };
}

const LOGIN_AT_QUESTION: &str = concat!(
    "Daily login time, HH:MM IST (08:00 proposed: ",
    login_at_why!(),
    ")"
);

fn field_error(field: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Field {
        field: field.to_owned(),
        message: message.into(),
    }
}

fn config_error(field: &str, message: impl Into<String>) -> anyhow::Error {
    field_error(field, message).into()
}

pub async fn run(profile: &str, config: Option<&Path>, args: InitArgs) -> Result<u8> {
    // The name every other command would refuse is refused before anything is asked.
    dhan_login::store::check_profile_name(profile)
        .map_err(|e| config_error("--profile", e.to_string()))?;
    let paths = crate::load::paths(config)?;
    let file = config_file::target(&paths.config_file);
    let doc = read_document(&file)?;
    let exists = doc.get("profiles").and_then(|p| p.get(profile)).is_some();
    let interactive = !args.no_input && std::io::stdin().is_terminal();
    if interactive {
        restore_terminal_on_interrupt();
    }
    let mut ui = Terminal::new(interactive);

    let given = |f: &Field| -> Option<(String, &'static str)> {
        let flag = match f.name {
            "client_id" => args.client_id.clone(),
            "redirect_url" => args.redirect_url.clone(),
            "auth_base_url" => args.auth_base_url.clone(),
            "api_base_url" => args.api_base_url.clone(),
            "login_at" => args.login_at.clone(),
            _ => None,
        };
        flag.map(|v| (v, "flag"))
            .or_else(|| {
                std::env::var(f.env)
                    .ok()
                    .filter(|v| !v.trim().is_empty())
                    .map(|v| (v, f.env))
            })
            .map(|(v, from)| (v.trim().to_owned(), from))
    };

    if interactive {
        ui.say(&format!(
            "dhan-login init: profile `{profile}` in {}",
            file.display()
        ));
        if exists
            && !ui.confirm(&format!(
                "Profile `{profile}` exists: update the fields you enter (the others stay)?"
            ))?
        {
            ui.say("Nothing written.");
            return Ok(0);
        }
        ui.say("Each value is checked as you type it; secrets are not shown. Enter skips an optional one.");
    }
    let keeper = choose_keeper(&mut ui, args.secrets)?;

    let mut values: Vec<(&'static Field, String)> = Vec::new();
    let mut bad: Vec<ConfigError> = Vec::new();
    for f in FIELDS {
        let value = match given(f) {
            Some((v, from)) => {
                if let Some(p) = line_break(&v).or_else(|| checks::problem(f.name, &v)) {
                    if interactive {
                        ui.say(&format!("{} from {from}: {p}", f.name));
                    }
                    bad.push(field_error(f.name, format!("{p} (from {from})")));
                    continue;
                }
                if interactive && f.question.is_some() {
                    ui.say(&format!("{}: taken from {from}", f.name));
                }
                Some(v)
            }
            None => match f.question {
                Some(q) if interactive => ask(&mut ui, f, q, keeper)?,
                _ => None,
            },
        };
        match value {
            Some(v) => values.push((f, v)),
            None if f.required => bad.push(field_error(
                f.name,
                format!("missing: set {} or --{}", f.env, f.name.replace('_', "-")),
            )),
            None => {}
        }
    }
    let has = |name: &str| values.iter().any(|(f, _)| f.name == name);
    if has("api_key") != has("api_secret") {
        let lacking = if has("api_key") {
            "api_secret"
        } else {
            "api_key"
        };
        bad.push(field_error(
            lacking,
            "api_key and api_secret go together: give both or neither",
        ));
    }
    if !bad.is_empty() {
        return Err(ConfigError::Several(bad)).context("nothing written");
    }

    let mut kept_in = Vec::new();
    let mut entries: Vec<(&'static Field, String, String)> = Vec::new();
    for (f, v) in &values {
        if f.secret && keeper != Keeper::Inline {
            let command = keepers::keep(keeper, profile, f.name, v)
                .with_context(|| format!("{}: cannot keep it in {}", f.name, keeper.describe()))?;
            check_read_back(f.name, &command, v, keeper)?;
            entries.push((f, format!("{}_command", f.name), command));
            kept_in.push(f.name);
        } else {
            entries.push((f, f.name.to_owned(), v.clone()));
        }
    }
    // The file as it is now, not as it was before the questions: another init (or an
    // editor) may have written it since. Only this profile's fields are laid over it.
    let lock = config_file::lock(&file)?;
    let mut doc = read_document(&file)?;
    let table = profile_table(&mut doc, profile)?;
    for (f, key, v) in &entries {
        for suffix in ["", "_file", "_command"] {
            table.remove(&format!("{}{suffix}", f.name));
        }
        table.insert(key, value(v.as_str()));
    }
    let has_login_at = table.contains_key("login_at");
    let mode = config_file::write(&file, doc.to_string().as_bytes(), &lock)?;
    drop(lock);

    println!(
        "wrote profile `{profile}` to {} (mode {mode:04o}{})",
        file.display(),
        if kept_in.is_empty() {
            String::new()
        } else {
            format!("; {} in {}", kept_in.join(", "), keeper.describe())
        }
    );
    if !has_login_at {
        println!(concat!(
            "tip: add login_at = \"08:00\" to the profile (",
            login_at_why!(),
            ")"
        ));
    }
    report(profile, &paths).await?;
    Ok(0)
}

/// What the written profile can do, read back from the file alone (no variable).
async fn report(profile: &str, paths: &dhan_login::Paths) -> Result<()> {
    // Every table of the file is checked by the read, `[serve]` and `[notify]` too.
    let loaded = dhan_login::Config::load(paths)?.profile(profile, &|_| None)?;
    let problems = loaded.check();
    let m = TokenManager::new(loaded);
    let state = m.state().await.ok();
    let lockouts = match &state {
        Some(st) => m.lockouts(st).await.ok(),
        None => None,
    };
    let consents = m.consents_today().await.ok().flatten();
    let paths = readiness::assess(
        m.profile(),
        state.as_ref(),
        lockouts.as_ref(),
        consents.as_ref(),
        chrono::Utc::now(),
    );
    println!("login paths:");
    readiness::print(&paths);
    for p in &problems {
        println!("  problem: {}: {}", p.field, p.message);
    }
    let flag = if profile == "default" {
        String::new()
    } else {
        format!(" --profile {profile}")
    };
    let next =
        readiness::next_command(&paths).replacen("dhan-login", &format!("dhan-login{flag}"), 1);
    println!("next: {next}");
    Ok(())
}

/// Long enough to type a GPG passphrase into the pinentry `pass show` may open.
const READ_BACK_LIMIT: std::time::Duration = std::time::Duration::from_secs(120);

/// A line break inside a value would end it early in the file or in a password
/// manager's input (`security -i` would run the rest as a second command).
fn line_break(value: &str) -> Option<String> {
    value
        .contains(['\n', '\r'])
        .then(|| "holds a line break".to_owned())
}

/// The secret a `*_command` prints must be the one typed (or, for a reference, a valid one).
fn check_read_back(field: &str, command: &str, typed: &str, keeper: Keeper) -> Result<()> {
    let got = keepers::read_back(command, READ_BACK_LIMIT)
        .with_context(|| format!("{field}: {} cannot read it back", keeper.describe()))?;
    if keeper.takes_reference() {
        if let Some(p) = checks::problem(field, &got) {
            return Err(config_error(
                field,
                format!("the op:// reference gives a value that {p}"),
            ));
        }
    } else if got != typed {
        return Err(config_error(
            field,
            format!("`{command}` prints another value than the one stored"),
        ));
    }
    Ok(())
}

fn choose_keeper(ui: &mut Terminal, given: Option<Keeper>) -> Result<Keeper> {
    if let Some(k) = given {
        if k.takes_reference() && !ui.interactive {
            return Err(config_error(
                "--secrets op",
                "takes op:// references, which init asks for in a terminal",
            ));
        }
        return Ok(k);
    }
    let found = Keeper::available();
    if !ui.interactive || found.is_empty() {
        return Ok(Keeper::Inline);
    }
    let mut options = found;
    options.push(Keeper::Inline);
    ui.say("Where should the secrets be kept?");
    for (i, k) in options.iter().enumerate() {
        ui.say(&format!("  {}) {}", i + 1, k.describe()));
    }
    loop {
        let answer = ui.line("Choice [1]: ", false)?;
        let answer = answer.trim();
        if answer.is_empty() {
            return Ok(options[0]);
        }
        match answer.parse::<usize>() {
            Ok(n) if (1..=options.len()).contains(&n) => return Ok(options[n - 1]),
            _ => ui.say(&format!("  type a number from 1 to {}", options.len())),
        }
    }
}

/// Asks for one field until its value passes the checks; `None` when skipped.
fn ask(ui: &mut Terminal, f: &Field, question: &str, keeper: Keeper) -> Result<Option<String>> {
    let reference = f.secret && keeper.takes_reference();
    let prompt = format!(
        "{question}{}{}: ",
        if reference {
            " — op:// reference"
        } else {
            ""
        },
        if f.required { "" } else { " (Enter skips)" }
    );
    loop {
        let answer = ui.line(&prompt, f.secret && !reference)?;
        let answer = answer.trim();
        if answer.is_empty() {
            if f.required {
                ui.say(&format!("  {} is needed", f.name));
                continue;
            }
            return Ok(None);
        }
        let problem = if reference {
            (!answer.starts_with("op://")).then(|| "an op:// reference starts with op://".into())
        } else {
            line_break(answer).or_else(|| checks::problem(f.name, answer))
        };
        match problem {
            Some(p) => ui.say(&format!("  {}: {p}; again", f.name)),
            None => return Ok(Some(answer.to_owned())),
        }
    }
}

fn read_document(file: &Path) -> Result<DocumentMut> {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(DocumentMut::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", file.display())),
    };
    // The parser's own message quotes the line, which may hold a secret: name the place.
    text.parse::<DocumentMut>().map_err(|e| {
        let at = e.span().map(|s| {
            let before = &text[..s.start.min(text.len())];
            format!(" at line {}", before.matches('\n').count() + 1)
        });
        ConfigError::Parse {
            path: file.to_path_buf(),
            message: format!(
                "not valid TOML{}; init changes only a valid file",
                at.unwrap_or_default()
            ),
        }
        .into()
    })
}

/// `[profiles.NAME]`, created when missing.
fn profile_table<'a>(doc: &'a mut DocumentMut, name: &str) -> Result<&'a mut Table> {
    let profiles = doc
        .entry("profiles")
        .or_insert_with(|| {
            let mut t = Table::new();
            t.set_implicit(true);
            Item::Table(t)
        })
        .as_table_mut()
        .ok_or_else(|| config_error("profiles", "is not a table"))?;
    profiles
        .entry(name)
        .or_insert_with(|| Item::Table(Table::new()))
        .as_table_mut()
        .ok_or_else(|| config_error(&format!("profiles.{name}"), "is not a table"))
}

/// Ctrl-C while a secret is typed would leave the terminal without echo: on SIGINT or
/// SIGTERM, put back the settings the terminal had at the start and leave (nothing has
/// been written: the file is written once, after the last answer).
fn restore_terminal_on_interrupt() {
    use rustix::termios::{OptionalActions, tcgetattr, tcsetattr};
    let saved = tcgetattr(std::io::stdin()).ok();
    // Both handlers are installed here, before the first prompt: installed by the task
    // below, a Ctrl-C typed before that task first ran killed the process outright, echo
    // off (seen in 3 of 30 runs).
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return;
    };
    tokio::spawn(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        if let Some(t) = saved {
            let _ = tcsetattr(std::io::stdin(), OptionalActions::Now, &t);
        }
        eprintln!("\ninit interrupted: nothing written");
        std::process::exit(i32::from(crate::exit::INTERRUPTED));
    });
}

/// Questions on stderr, answers from stdin; secrets typed without echo.
struct Terminal {
    interactive: bool,
}

impl Terminal {
    fn new(interactive: bool) -> Self {
        Terminal { interactive }
    }

    fn say(&mut self, text: &str) {
        eprintln!("{text}");
    }

    fn line(&mut self, prompt: &str, hidden: bool) -> Result<String> {
        // Echo goes off before the prompt shows: what is typed after it is never shown.
        let _echo = hidden.then(crate::echo::EchoOff::new);
        eprint!("{prompt}");
        let _ = std::io::stderr().flush();
        let mut line = String::new();
        let n = std::io::stdin().lock().read_line(&mut line)?;
        if hidden {
            eprintln!();
        }
        if n == 0 {
            bail!("input ended: nothing written");
        }
        Ok(line)
    }

    fn confirm(&mut self, question: &str) -> Result<bool> {
        let answer = self.line(&format!("{question} [y/N] "), false)?;
        Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "Yes"))
    }
}

#[cfg(test)]
mod tests {
    use dhan_login::Secret;

    use super::FIELDS;

    /// `init` asks for every secret a profile can hold, under the library's key and
    /// variable, and keeps it with the other secrets.
    #[test]
    fn init_asks_for_every_secret_the_library_knows() {
        for s in Secret::ALL {
            let field = FIELDS.iter().find(|f| f.name == s.key());
            let field = field.unwrap_or_else(|| panic!("init does not ask for {s}"));
            assert_eq!(field.env, s.env());
            assert!(field.secret, "{s}");
        }
        for f in FIELDS.iter().filter(|f| f.secret) {
            assert!(
                Secret::from_key(f.name).is_some(),
                "{} is no Secret",
                f.name
            );
        }
    }
}
