//! Where the code Dhan sends by SMS or e-mail comes from, for accounts whose consent page
//! asks for one instead of a TOTP: a command (`otp_command`, e.g. a script that reads an
//! SMS forwarder) or the person at the program's `Console`. Asked only once that screen is
//! shown; a TOTP is never typed there.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::browser::OtpSource;
use crate::config::command::Group;
use crate::console::Console;

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

/// Asks the person at the console, who reads the code off their phone or mailbox.
pub(crate) struct ConsoleOtp<'a>(pub &'a dyn Console);

impl OtpSource for ConsoleOtp<'_> {
    fn code(&self) -> Pin<Box<dyn Future<Output = Result<SecretString, String>> + Send + '_>> {
        Box::pin(async move {
            let code = self
                .0
                .read_hidden(
                    "The login page asks for the code Dhan sent by SMS or e-mail. OTP (not shown): ",
                )
                .await
                .map_err(|e| format!("the OTP could not be read: {e}"))?;
            Ok(SecretString::from(code.expose_secret().trim().to_owned()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
