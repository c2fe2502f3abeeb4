//! The `dhan-login` binary: parse, run, map the outcome to an exit code.

mod checks;
mod cli;
mod commands;
mod config_file;
mod console;
mod demo;
mod echo;
mod hardening;
mod init;
mod interrupt;
mod ip;
mod keepers;
mod load;
mod output;
mod readiness;
mod serve;

use std::process::ExitCode;

use clap::Parser;
use dhan_login::ErrorClass;

use cli::Cli;

/// Exit codes beside the library's per class (`ErrorClass::exit_code`), documented in
/// README and `--help`.
pub mod exit {
    /// SIGINT or SIGTERM ended the command: no class of failure, the shell's convention.
    pub const INTERRUPTED: u8 = 130;
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Before any thread or child exists: Chromium's orphans are then ours to reap. The
    // library leaves this process-wide choice to the program.
    #[cfg(feature = "browser")]
    dhan_login::browser::become_subreaper();
    output::init_logging(cli.verbose, cli.quiet);
    // Before a secret is read from a file or a command, and before any thread exists.
    hardening::protect();
    output::FORCE_PROGRESS.store(cli.progress, std::sync::atomic::Ordering::Relaxed);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(ErrorClass::Other.exit_code());
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(code_for(&e))
        }
    }
}

fn code_for(e: &anyhow::Error) -> u8 {
    let class = e
        .chain()
        .find_map(|c| c.downcast_ref::<dhan_login::Error>().map(|e| e.class()))
        .or_else(|| {
            e.chain()
                .find_map(|c| c.downcast_ref::<dhan_login::ConfigError>())
                .map(|_| ErrorClass::Config)
        });
    match class {
        Some(class) if class.exit_code() != ErrorClass::Other.exit_code() => class.exit_code(),
        _ if e
            .chain()
            .any(|c| c.downcast_ref::<interrupt::Interrupted>().is_some()) =>
        {
            exit::INTERRUPTED
        }
        _ => ErrorClass::Other.exit_code(),
    }
}
