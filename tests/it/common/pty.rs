//! The binary in a pseudo-terminal, for what it does only when a person is at it.

/// The binary in a pseudo-terminal; every byte it shows is returned with the outcome.
pub struct Pty {
    pub session: rexpect::session::PtySession,
    seen: String,
}

impl Pty {
    /// rexpect turns the terminal's echo off; a user's terminal has it on, and hiding
    /// what is typed is the program's job: `stty echo` first.
    pub fn spawn(sandboxed: std::process::Command) -> Pty {
        let mut cmd = std::process::Command::new("/bin/sh");
        cmd.env_clear()
            .arg("-c")
            .arg("stty echo && exec \"$@\"")
            .arg("sh")
            .arg(sandboxed.get_program())
            .args(sandboxed.get_args());
        for (k, v) in sandboxed.get_envs() {
            if let Some(v) = v {
                cmd.env(k, v);
            }
        }
        if let Some(dir) = sandboxed.get_current_dir() {
            cmd.current_dir(dir);
        }
        let session = rexpect::session::spawn_command(cmd, Some(30_000)).expect("spawn in a pty");
        Pty {
            session,
            seen: String::new(),
        }
    }

    #[track_caller]
    pub fn expect(&mut self, text: &str) {
        match self.session.exp_string(text) {
            Ok(before) => {
                self.seen.push_str(&before);
                self.seen.push_str(text);
            }
            Err(e) => panic!("waited for {text:?}: {e}\nso far:\n{}", self.seen),
        }
    }

    pub fn answer(&mut self, line: &str) {
        self.session.send_line(line).expect("type into the pty");
    }

    /// Everything until the program exits, and its exit status.
    pub fn finish(mut self) -> (String, i32) {
        let rest = self.session.exp_eof().expect("the program ends");
        self.seen.push_str(&rest);
        let status = self.session.process_mut().wait().expect("wait");
        let code = match status {
            rexpect::process::WaitStatus::Exited(_, code) => code,
            other => panic!("ended by {other:?}"),
        };
        (self.seen, code)
    }
}
