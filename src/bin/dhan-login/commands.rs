//! One function per command.

use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, Result, bail};
use clap::CommandFactory;
use dhan_login::{
    Console, ErrorClass, Obtained, Request, SourceKind, TokenManager,
    decide::Verdict,
    manager::{Checked, Rechecked, Verified},
    store::{Lockouts, ProfileState, StoreError, next_ist_midnight},
};

use crate::cli::{Cli, Command, ConfigAction, LoginArgs, OutputArgs, Via};
use crate::console::TerminalConsole;
use crate::echo::EchoOff;
use crate::interrupt::interruptible;
use crate::load::{daemon_first, load_profile, manager, paths};
use crate::output::{Format, StepPrinter, human, print_token, token_json};

pub async fn run(cli: Cli) -> Result<u8> {
    dhan_login::config::check_env(std::env::vars_os())?;
    let quiet = cli.quiet;
    match cli.command {
        Command::Token(args) => {
            let m = daemon_first(&cli.profile, cli.config.as_deref())?;
            let progress = StepPrinter::for_terminal(quiet);
            if args.rejected {
                let r = interruptible(m.rejected(&Request::default(), progress.as_ref())).await??;
                return rechecked(r, &args.output);
            }
            let req = Request {
                valid_until: args.valid_until,
                ..Request::default()
            };
            if args.output.verify {
                return match interruptible(m.token_verified(&req, progress.as_ref())).await?? {
                    Verified::ByDaemon(r) => rechecked(r, &args.output),
                    Verified::Here(got, checked) => print_checked(got, checked, &args.output),
                };
            }
            obtain(&m, req, &args.output, quiet).await
        }
        Command::Login(LoginArgs {
            via,
            output,
            headed,
        }) => {
            let mut profile = load_profile(&cli.profile, cli.config.as_deref())?;
            profile.browser.headed |= headed;
            let m = TokenManager::new(profile);
            let req = Request {
                force: true,
                via: via.map(source_kind),
                console: (std::io::stdin().is_terminal() || matches!(via, Some(Via::Manual)))
                    .then(|| Arc::new(TerminalConsole::new()) as Arc<dyn Console>),
                ..Request::default()
            };
            obtain(&m, req, &output, quiet).await
        }
        Command::Renew(output) => {
            let m = manager(&cli.profile, cli.config.as_deref())?;
            let req = Request {
                force: true,
                via: Some(SourceKind::Renew),
                ..Request::default()
            };
            obtain(&m, req, &output, quiet).await
        }
        Command::Record { out } => {
            let m = manager(&cli.profile, cli.config.as_deref())?;
            std::fs::create_dir_all(&out)
                .with_context(|| format!("cannot create {}", out.display()))?;
            let req = Request {
                force: true,
                via: Some(SourceKind::Browser),
                record_dir: Some(out.clone()),
                ..Request::default()
            };
            let progress = StepPrinter::for_terminal(quiet);
            interruptible(m.token(&req, progress.as_ref())).await??;
            eprintln!("screens recorded in {}", out.display());
            Ok(0)
        }
        Command::Doctor { json } => {
            let m = manager(&cli.profile, cli.config.as_deref())?;
            doctor(&m, json, quiet).await
        }
        Command::Status { json } => {
            status(&manager(&cli.profile, cli.config.as_deref())?, json).await
        }
        Command::Import => {
            let m = manager(&cli.profile, cli.config.as_deref())?;
            let raw = read_secret("Paste the access token from Dhan Web, then Enter: ")?;
            let token = m.import(&raw).await?;
            eprintln!(
                "stored a {} token for client {}, valid until {}",
                token.kind,
                token.client_id,
                token.expires_at.to_rfc3339()
            );
            Ok(0)
        }
        Command::Unlock => {
            let m = manager(&cli.profile, cli.config.as_deref())?;
            if m.unlock().await? {
                eprintln!(
                    "profile `{}` unlocked: automatic logins may try its credentials again",
                    cli.profile
                );
            } else {
                eprintln!("profile `{}` was not locked", cli.profile);
            }
            Ok(0)
        }
        Command::Logout => {
            let m = manager(&cli.profile, cli.config.as_deref())?;
            if m.logout().await? {
                eprintln!("forgot the token of profile `{}`", cli.profile);
            } else {
                eprintln!("profile `{}` had no stored token", cli.profile);
            }
            Ok(0)
        }
        Command::Exec { command, pass_env } => {
            check_pass_env(&pass_env)?;
            let m = daemon_first(&cli.profile, cli.config.as_deref())?;
            let progress = StepPrinter::for_terminal(quiet);
            let got = interruptible(m.token(&Request::default(), progress.as_ref())).await??;
            warn_not_replaced(&got);
            if let Some(e) = &got.unsaved {
                eprintln!(
                    "error: the new token could not be saved ({e}); {} gets it, but the next run logs in again",
                    command.first().map_or("the program", String::as_str)
                );
            }
            exec(&command, &pass_env, &got.token)
        }
        Command::Ip { action } => {
            let m = daemon_first(&cli.profile, cli.config.as_deref())?;
            crate::ip::run(&m, action, quiet).await
        }
        Command::Config { action } => config(&cli.profile, cli.config.as_deref(), action),
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "dhan-login",
                &mut std::io::stdout(),
            );
            Ok(0)
        }
        Command::MockServer(args) => crate::demo::mock_server(args).await,
        Command::Demo { via_totp, page } => crate::demo::demo(via_totp, &page, quiet).await,
        Command::Serve(args) => {
            crate::serve::serve(&cli.profile, cli.config.as_deref(), args).await
        }
        Command::Init(args) => crate::init::run(&cli.profile, cli.config.as_deref(), args).await,
        Command::Man { out } => man(out.as_deref()),
    }
}

fn source_kind(v: Via) -> SourceKind {
    match v {
        Via::Renew => SourceKind::Renew,
        Via::Totp => SourceKind::Totp,
        Via::Browser => SourceKind::Browser,
        Via::Manual => SourceKind::Manual,
    }
}

/// Obtains and prints a token (a running `serve`'s, when the manager knows one).
async fn obtain(m: &TokenManager, req: Request, out: &OutputArgs, quiet: bool) -> Result<u8> {
    let progress = StepPrinter::for_terminal(quiet);
    let got = interruptible(m.token(&req, progress.as_ref())).await??;
    print_obtained(got, out)
}

/// Prints a token this process checked with Dhan (`--verify`), saying when it could not.
fn print_checked(got: Obtained, checked: Checked, out: &OutputArgs) -> Result<u8> {
    match checked {
        Checked::Accepted(info) => {
            tracing::info!(client = ?info.client_id, "token verified with Dhan's profile endpoint");
        }
        Checked::Unreachable(e) => eprintln!(
            "warning: Dhan's profile endpoint could not be asked ({e}); the token is kept unverified"
        ),
    }
    print_obtained(got, out)
}

fn print_obtained(got: Obtained, out: &OutputArgs) -> Result<u8> {
    warn_not_replaced(&got);
    print_token(&got.token, format_of(out))?;
    match got.unsaved {
        // Printed, because Dhan has already killed the old token; failed, because the
        // next run will have to log in again.
        Some(e) => Err(anyhow::Error::new(e).context(
            "the new token (printed above) could not be saved; the token it replaced was set aside, so the next run logs in again",
        )),
        None => Ok(0),
    }
}

/// Says that the token handed out was due to be replaced and could not be, and how long
/// it has left.
fn warn_not_replaced(got: &Obtained) {
    if let Some(e) = &got.not_replaced {
        let left = got.token.expires_at - chrono::Utc::now();
        eprintln!(
            "warning: the stored token was due to be replaced and could not be ({e}); it is handed out as it is, with {} left (it expires at {})",
            duration_words(left),
            dhan_login::decide::ist_wall_clock(got.token.expires_at)
        );
    }
}

/// `2 h 05 min`, `12 min`: how long a token has left, to the minute.
fn duration_words(d: chrono::Duration) -> String {
    let minutes = d.num_minutes().max(0);
    match (minutes / 60, minutes % 60) {
        (0, m) => format!("{m} min"),
        (h, m) => format!("{h} h {m:02} min"),
    }
}

/// Prints a token a check of the stored one produced, saying what the check found.
fn rechecked(r: Rechecked, out: &OutputArgs) -> Result<u8> {
    let detail = r.detail.as_deref().unwrap_or("no detail");
    match r.verdict {
        Verdict::Alive => eprintln!(
            "Dhan's profile endpoint accepts the token: it is unchanged (a refusal came from something else: the client id sent with it, the data plan, the endpoint)"
        ),
        Verdict::Replaced => eprintln!("the token was dead ({detail}): this is a new one"),
        Verdict::Unverified => {
            eprintln!(
                "Dhan's profile endpoint could not be asked ({detail}): the token is unchanged"
            )
        }
        _ => {}
    }
    print_token(&r.token, format_of(out))?;
    match r.unsaved {
        Some(e) => Err(anyhow::Error::new(e).context(
            "the new token (printed above) could not be saved; the token it replaced was set aside, so the next run logs in again",
        )),
        None => Ok(0),
    }
}

fn format_of(out: &OutputArgs) -> Format {
    if out.json {
        Format::Json
    } else if out.env {
        Format::Env
    } else {
        Format::Plain
    }
}

async fn status(m: &TokenManager, json: bool) -> Result<u8> {
    let state = match m.state().await {
        // A report on a folder it may not write: what a login would do after moving the
        // file aside (no token), said instead of failing the whole report.
        Err(dhan_login::Error::Store(e @ StoreError::CorruptKept { .. })) => {
            tracing::warn!("{e}");
            ProfileState::default()
        }
        other => other?,
    };
    let lockouts = m.lockouts(&state).await?;
    let locked = lockout_summary(&lockouts);
    let consents = m.consents_today().await?;
    let now = chrono::Utc::now();
    let profile = &m.profile().name;
    let ips = crate::ip::last_seen(m);
    let paths = crate::readiness::assess(
        m.profile(),
        Some(&state),
        Some(&lockouts),
        consents.as_ref(),
        now,
    );
    let mint_wait = m.mint_wait().await?;
    let login_at = m.profile().login_at;
    let next_daily_login = login_at.map(|at| {
        state
            .token
            .as_ref()
            .map_or_else(|| at.next(now), |t| at.next(t.obtained_at))
    });
    if json {
        let token = state.token.as_ref().map(|t| {
            let mut v = token_json(t);
            if let Some(o) = v.as_object_mut() {
                o.remove("access_token");
                o.insert(
                    "seconds_left".into(),
                    (t.expires_at - now).num_seconds().max(0).into(),
                );
                o.insert("obtained_at".into(), t.obtained_at.to_rfc3339().into());
                o.insert("valid".into(), t.is_live(now).into());
            }
            v
        });
        let v = serde_json::json!({
            "profile": profile,
            "token": token,
            "renewable": state.renewable,
            "login_at": login_at.map(|at| at.to_string()),
            "next_daily_login_at": next_daily_login.map(|t| t.to_rfc3339()),
            "logins": if m.profile().logins == dhan_login::decide::Logins::Never { "never" } else { "auto" },
            "mint_window": mint_wait.as_ref().map(|w| serde_json::json!({
                "closed_until": w.next_at.to_rfc3339(),
                "closed_until_ist": w.next_at_ist(),
                "last_attempt_at": w.last.at.to_rfc3339(),
                "last_outcome": w.last.outcome.as_str(),
            })),
            "last_error": state.last_error,
            "locked": locked.as_ref().map(|(at, secrets, message)| serde_json::json!({"at": at, "secrets": secrets, "message": message})),
            "consents": consents.as_ref().map(|d| serde_json::json!({
                "used_today": d.used,
                "cap": m.profile().consent_cap,
                "exhausted": d.exhausted,
                "pending": d.pending.is_some(),
                "resets_at": next_ist_midnight(now).to_rfc3339(),
            })),
            "static_ip": ips.as_ref().map(|s| serde_json::json!({
                "primary": s.ips.primary,
                "secondary": s.ips.secondary,
                "modify_date_primary": s.ips.modify_date_primary,
                "modify_date_secondary": s.ips.modify_date_secondary,
                "seen_at": s.at.to_rfc3339(),
            })),
            "tomorrow": crate::readiness::verdict(&paths),
            "paths": paths.iter().map(|p| (p.path.to_owned(), serde_json::json!({
                "ready": p.ready,
                "automatic": p.automatic,
                "detail": p.detail,
            }))).collect::<serde_json::Map<_, _>>(),
        });
        println!("{v}");
        return Ok(0);
    }
    println!("profile:    {profile}");
    match &state.token {
        Some(t) => {
            println!("client id:  {}", t.client_id);
            println!(
                "expires:    {} ({})",
                t.expires_at.to_rfc3339(),
                if t.is_live(now) {
                    format!("{} left", human(t.expires_at - now))
                } else {
                    "expired".into()
                }
            );
            println!("kind:       {}", t.kind);
            println!("source:     {} at {}", t.source, t.obtained_at.to_rfc3339());
            println!(
                "renewable:  {}",
                if state.renewable {
                    "yes"
                } else {
                    "no (Dhan refused)"
                }
            );
        }
        None => println!("token:      none stored"),
    }
    if let (Some(at), Some(next)) = (login_at, next_daily_login) {
        let when = if next <= now {
            "due now: the next `token` call logs in".to_owned()
        } else {
            format!("in {}", human(next - now))
        };
        println!(
            "daily login: {at} IST, next {} ({when})",
            dhan_login::decide::ist_wall_clock(next)
        );
    }
    if let Some(w) = &mint_wait {
        println!(
            "mint window: closed until {} (generateAccessToken tried at {}, {}; one attempt per {} s)",
            w.next_at_ist(),
            dhan_login::decide::ist_wall_clock(w.last.at),
            w.last.outcome.as_str(),
            m.profile().mint_interval.as_secs()
        );
    }
    if m.profile().logins == dhan_login::decide::Logins::Never {
        let waiting = if state.token.as_ref().is_some_and(|t| t.is_live(now)) {
            ""
        } else {
            "; no live token: waiting for one from another host"
        };
        println!("logins:     never on this host (login = \"never\"){waiting}");
    }
    if let Some(d) = &consents {
        println!(
            "consents:   {} of {} used today (IST){}{}",
            d.used,
            m.profile().consent_cap,
            if d.exhausted {
                ", Dhan says the limit is reached"
            } else {
                ""
            },
            if d.pending.is_some() {
                ", one pending (will be reused)"
            } else {
                ""
            }
        );
    }
    if let Some((at, secrets, _)) = &locked {
        println!(
            "locked:     since {}: automatic logins will not send {} again (`dhan-login unlock`)",
            at.to_rfc3339(),
            secrets.join(", ")
        );
    }
    if let Some(e) = &state.last_error {
        println!(
            "last error: {} ({}) {}",
            e.at.to_rfc3339(),
            e.class,
            e.message
        );
    }
    if let Some(s) = &ips {
        let show = |ip: &Option<String>| ip.as_deref().unwrap_or("none").to_owned();
        println!(
            "static ip:  primary {}, secondary {} (as `ip show` saw it at {})",
            show(&s.ips.primary),
            show(&s.ips.secondary),
            s.at.to_rfc3339()
        );
    }
    println!("tomorrow:   {}", crate::readiness::verdict(&paths));
    crate::readiness::print(&paths);
    Ok(0)
}

/// The latest lockout: when, which secrets, and why.
fn lockout_summary(l: &Lockouts) -> Option<(chrono::DateTime<chrono::Utc>, Vec<String>, String)> {
    match l {
        Lockouts::Recorded(all) => all
            .iter()
            .max_by_key(|l| l.at)
            .map(|l| (l.at, l.secrets.clone(), l.message.clone())),
        Lockouts::Unreadable {
            path,
            reason,
            since,
        } => Some((
            *since,
            vec!["every credential".into()],
            format!(
                "the lockout file {} cannot be read: {reason}",
                path.display()
            ),
        )),
    }
}

fn config(name: &str, file: Option<&std::path::Path>, action: ConfigAction) -> Result<u8> {
    // The page profile is built in: it needs no config file, nor a home to find one in.
    match action {
        ConfigAction::PageProfile => page_profile(),
        ConfigAction::Path => {
            let paths = paths(file)?;
            println!("config: {}", paths.config_file.display());
            println!("state:  {}", paths.state_dir.display());
            Ok(0)
        }
        ConfigAction::Check => {
            let paths = paths(file)?;
            let file = dhan_login::Config::load(&paths)?;
            let env = |k: &str| std::env::var(k).ok();
            let (profile, bad) = file.profile_lenient(name, &env)?;
            let mut problems: Vec<String> = bad.iter().map(ToString::to_string).collect();
            problems.extend(
                profile
                    .check()
                    .iter()
                    .map(|p| format!("{}: {}", p.field, p.message)),
            );
            // Another profile on the same client id would log this one out.
            for other in file.profile_names().iter().filter(|n| *n != name) {
                let (other, _) = file.profile_lenient(other, &env)?;
                if let Err(e) = dhan_login::config::check_client_ids([&profile, &other]) {
                    problems.push(e.to_string());
                }
            }
            if problems.is_empty() {
                println!(
                    "profile `{name}` is valid ({})",
                    paths.config_file.display()
                );
                return Ok(0);
            }
            eprintln!("profile `{name}` has {} problem(s):", problems.len());
            for p in &problems {
                eprintln!("  {p}");
            }
            Ok(ErrorClass::Config.exit_code())
        }
    }
}

#[cfg(feature = "browser")]
fn page_profile() -> Result<u8> {
    print!("{}", dhan_login::browser::SelectorProfile::built_in_toml());
    Ok(0)
}

#[cfg(not(feature = "browser"))]
fn page_profile() -> Result<u8> {
    bail!("this dhan-login was built without the `browser` feature: it has no page profile")
}

#[cfg(not(feature = "browser"))]
async fn doctor(_: &TokenManager, _: bool, _: bool) -> Result<u8> {
    bail!(
        "this dhan-login was built without the `browser` feature: there is no browser to inspect the page with"
    )
}

#[cfg(feature = "browser")]
async fn doctor(m: &TokenManager, json: bool, quiet: bool) -> Result<u8> {
    let progress = StepPrinter::for_terminal(quiet);
    let found = interruptible(m.doctor(progress.as_ref())).await??;
    let report = &found.report;
    let ok = report.screen == "mobile";
    let artifacts = match &report.artifacts {
        dhan_login::browser::Artifacts::Saved(dir) => Some(dir.display().to_string()),
        _ => None,
    };
    let sandbox = dhan_login::browser::browser_sandbox();
    if json {
        let out = serde_json::json!({
            "ok": ok,
            "consent": if found.consent_reused { "reused" } else { "generated" },
            "screen": report.screen,
            "reasons": report.reasons,
            "artifacts": artifacts,
            "browser": sandbox,
        });
        println!("{out}");
    } else {
        println!(
            "API key: accepted ({} consent)",
            if found.consent_reused {
                "reused the pending"
            } else {
                "generated one"
            }
        );
        if let Some(sandbox) = &sandbox {
            println!("browser: {sandbox}");
        }
        println!("consent page: shows the `{}` screen", report.screen);
        for r in &report.reasons {
            println!("  - {r}");
        }
        if let Some(dir) = &artifacts {
            println!("screenshot, page and step log: {dir}");
        }
        println!(
            "nothing was typed; the consent stays pending and the next login reuses it{}",
            if ok {
                ""
            } else {
                ". The page is not the mobile screen a login starts on: see README, \"When Dhan changes its page\""
            }
        );
    }
    Ok(if ok { 0 } else { ErrorClass::Other.exit_code() })
}

/// Reads one line of stdin without echo when it is a terminal.
fn read_secret(prompt: &str) -> Result<String> {
    let stdin = std::io::stdin();
    let value = if stdin.is_terminal() {
        eprint!("{prompt}");
        let _echo = EchoOff::new();
        let mut line = String::new();
        stdin.read_line(&mut line)?;
        eprintln!();
        line
    } else {
        let mut all = String::new();
        stdin.lock().read_to_string(&mut all)?;
        all
    };
    let value = value.trim().to_owned();
    if value.is_empty() {
        bail!("no token given on stdin");
    }
    Ok(value)
}

/// The man page on stdout, or every page into `out`.
fn man(out: Option<&std::path::Path>) -> Result<u8> {
    let cmd = Cli::command();
    match out {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            clap_mangen::generate_to(cmd, dir)
                .with_context(|| format!("cannot write the man pages into {}", dir.display()))?;
        }
        None => clap_mangen::Man::new(cmd).render(&mut std::io::stdout())?,
    }
    Ok(0)
}

/// What minted the token: never passed to the program, even when named.
const LOGIN_SECRETS: [&str; 5] = [
    "DHAN_PIN",
    "DHAN_TOTP_SECRET",
    "DHAN_API_SECRET",
    "DHAN_API_KEY",
    "DHAN_MOBILE",
];

/// Refuses `--pass-env` of a login secret, before any login is made for nothing.
fn check_pass_env(pass: &[String]) -> Result<()> {
    if let Some(secret) = pass.iter().find(|n| LOGIN_SECRETS.contains(&n.as_str())) {
        anyhow::bail!(dhan_login::ConfigError::Field {
            field: "--pass-env".into(),
            message: format!("{secret} is a login secret: it is never passed to the program"),
        });
    }
    Ok(())
}

/// Replaces this process with the program, token in its environment. Of the DHAN_*
/// variables it gets the token, the client id and those named in `pass`: the rest
/// (DHAN_LOGIN_STORE_URL with the database password, a webhook's bot token, the OTP
/// command) is dhan-login's own business, and a bot that logs its environment must
/// not give it away.
fn exec(command: &[String], pass: &[String], token: &dhan_login::Token) -> Result<u8> {
    use std::os::unix::process::CommandExt;
    let (program, args) = command
        .split_first()
        .context("exec needs a program to run")?;
    // Exactly two variables go to the program, and each holds one value.
    token.check().map_err(dhan_login::Error::from)?;
    crate::hardening::release_for_exec();
    let mut child = std::process::Command::new(program);
    child.args(args);
    for (name, _) in std::env::vars_os() {
        let dhan = name.as_encoded_bytes().starts_with(b"DHAN_");
        if dhan && !pass.iter().any(|p| name == p.as_str()) {
            child.env_remove(&name);
        }
    }
    let err = child
        .env("DHAN_ACCESS_TOKEN", token.access_token.secret())
        .env("DHAN_CLIENT_ID", &token.client_id)
        .exec();
    eprintln!(
        "error: cannot run {}: {err}",
        PathBuf::from(program).display()
    );
    // The shell's codes: 127 not found, 126 found but not runnable.
    Ok(if err.kind() == std::io::ErrorKind::NotFound {
        127
    } else {
        126
    })
}
