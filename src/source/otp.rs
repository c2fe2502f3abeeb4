//! Where the code Dhan sends by SMS or e-mail comes from, for accounts whose consent page
//! asks for one instead of a TOTP: a command (`otp_command`, e.g. a script that reads an
//! SMS forwarder) or, in a terminal, the person at it. Asked only once that screen is
//! shown; a TOTP is never typed there.

use std::future::Future;
use std::io::{BufRead, Write};
use std::pin::Pin;
use std::time::Duration;

use secrecy::SecretString;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::browser::OtpSource;
use crate::config::command::Group;

/// An SMS takes a while to arrive; a command waiting for one may need most of a minute.
const COMMAND_LIMIT: Duration = Duration::from_secs(120);

/// Runs `sh -c COMMAND`; the first line of its output is the code.
pub(crate) struct CommandOtp {
    pub command: String,
}

impl OtpSource for CommandOtp {
    fn code(&self) -> Pin<Box<dyn Future<Output = Result<SecretString, String>> + Send + '_>> {
        Box::pin(async move {
            // Its own process group, killed whole when the login is dropped (SIGTERM).
            let mut group = Group::spawn(&self.command).map_err(|e| format!("otp_command {e}"))?;
            let stdout = group
                .stdout()
                .ok_or_else(|| "otp_command has no output".to_string())?;
            let mut line = String::new();
            let read = tokio::time::timeout(COMMAND_LIMIT, async {
                BufReader::new(stdout).read_line(&mut line).await
            })
            .await;
            // Whatever it still does, it has answered (or failed to): it ends here.
            group.kill().await;
            match read {
                Err(_) => Err(format!(
                    "otp_command gave no line within {} s",
                    COMMAND_LIMIT.as_secs()
                )),
                Ok(Err(e)) => Err(format!("otp_command output could not be read: {e}")),
                Ok(Ok(0)) => Err("otp_command printed nothing".into()),
                Ok(Ok(_)) => Ok(SecretString::from(line.trim().to_string())),
            }
        })
    }
}

/// Asks on the controlling terminal, without echo.
pub(crate) struct TerminalOtp;

impl OtpSource for TerminalOtp {
    fn code(&self) -> Pin<Box<dyn Future<Output = Result<SecretString, String>> + Send + '_>> {
        Box::pin(async move {
            let (tx, rx) = tokio::sync::oneshot::channel();
            // A plain thread: a read of the terminal cannot be cancelled, and tokio's
            // blocking pool would keep the runtime from shutting down behind it.
            std::thread::spawn(move || {
                let _ = tx.send(ask_terminal());
            });
            rx.await
                .map_err(|_| "the terminal prompt ended without an answer".to_string())?
        })
    }
}

fn ask_terminal() -> Result<SecretString, String> {
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(|e| format!("no terminal to ask for the OTP: {e}"))?;
    let mut out = &tty;
    let _ = write!(
        out,
        "The login page asks for the code Dhan sent by SMS or e-mail. OTP (not shown): "
    );
    let _ = out.flush();
    let line = {
        let _echo = EchoOff::on(&tty);
        let mut line = String::new();
        std::io::BufReader::new(&tty)
            .read_line(&mut line)
            .map_err(|e| format!("the OTP could not be read: {e}"))?;
        line
    };
    let _ = writeln!(out);
    Ok(SecretString::from(line.trim().to_string()))
}

/// Turns echo off on a terminal until dropped.
struct EchoOff {
    fd: i32,
    saved: Option<libc::termios>,
}

impl EchoOff {
    fn on(tty: &std::fs::File) -> Self {
        use std::os::fd::AsRawFd;
        let fd = tty.as_raw_fd();
        // SAFETY: tcgetattr/tcsetattr on an open terminal fd with a zeroed, then filled,
        // termios; the fd outlives this guard (it borrows the file's lifetime by use).
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(fd, &mut t) != 0 {
                return EchoOff { fd, saved: None };
            }
            let saved = t;
            t.c_lflag &= !libc::ECHO;
            libc::tcsetattr(fd, libc::TCSANOW, &t);
            EchoOff {
                fd,
                saved: Some(saved),
            }
        }
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        if let Some(t) = self.saved {
            // SAFETY: restores the attributes read in `on` on the same fd.
            unsafe {
                libc::tcsetattr(self.fd, libc::TCSANOW, &t);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[tokio::test]
    async fn the_first_line_of_the_command_is_the_code() {
        let otp = CommandOtp {
            command: "printf ' 482913 \\nmore\\n'".into(),
        };
        assert_eq!(otp.code().await.unwrap().expose_secret(), "482913");
    }

    #[tokio::test]
    async fn a_silent_or_failing_command_says_so_without_output() {
        let otp = CommandOtp {
            command: "exit 3".into(),
        };
        let e = otp.code().await.unwrap_err();
        assert!(e.contains("printed nothing"), "{e}");
    }
}
