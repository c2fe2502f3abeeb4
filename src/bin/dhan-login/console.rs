//! The library's `Console` over this process's terminal: messages on stderr, pasted lines
//! from stdin, a code typed unseen on the controlling terminal.

use std::io::{BufRead, Write};

use dhan_login::{Console, ConsoleFuture};
use secrecy::SecretString;
use tokio::sync::{Mutex, mpsc};

use crate::echo::EchoOff;

type Lines = mpsc::UnboundedReceiver<std::io::Result<String>>;

pub struct TerminalConsole {
    /// stdin's lines, read by a thread started on the first ask.
    lines: Mutex<Option<Lines>>,
}

impl TerminalConsole {
    pub fn new() -> Self {
        TerminalConsole {
            lines: Mutex::new(None),
        }
    }
}

/// A plain thread, not tokio's stdin: tokio reads stdin on its blocking pool, and the
/// runtime waits for that read at exit, so a login finished by the redirect would hang
/// until Enter. A detached thread does not hold the process.
fn read_stdin() -> Lines {
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

impl Console for TerminalConsole {
    fn say(&self, text: &str) {
        eprintln!("{text}");
    }

    fn read_line(&self) -> ConsoleFuture<'_, Option<String>> {
        Box::pin(async move {
            // The lock and the channel are cancel-safe: a dropped read loses no line.
            let mut lines = self.lines.lock().await;
            lines
                .get_or_insert_with(read_stdin)
                .recv()
                .await
                .transpose()
        })
    }

    fn read_hidden<'a>(&'a self, prompt: &'a str) -> ConsoleFuture<'a, SecretString> {
        let prompt = prompt.to_owned();
        Box::pin(async move {
            let (tx, rx) = tokio::sync::oneshot::channel();
            // A plain thread for the same reason as stdin: a read of the terminal cannot
            // be cancelled, and the blocking pool would keep the runtime from ending.
            std::thread::spawn(move || {
                let _ = tx.send(ask_terminal(&prompt));
            });
            rx.await
                .map_err(|_| std::io::Error::other("the terminal prompt ended without an answer"))?
        })
    }
}

/// Asks on the controlling terminal (not stdin, which may be a pipe), without echo.
fn ask_terminal(prompt: &str) -> std::io::Result<SecretString> {
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(|e| std::io::Error::new(e.kind(), format!("no terminal to ask on: {e}")))?;
    let mut out = &tty;
    write!(out, "{prompt}")?;
    out.flush()?;
    let mut line = String::new();
    {
        let _echo = EchoOff::on(&tty);
        std::io::BufReader::new(&tty).read_line(&mut line)?;
    }
    writeln!(out)?;
    Ok(SecretString::from(line.trim().to_owned()))
}
