//! Typing a secret without it showing on the terminal.

use std::os::fd::AsFd;

use rustix::termios::{LocalModes, OptionalActions, Termios, tcgetattr, tcsetattr};

/// Turns terminal echo off until dropped.
pub struct EchoOff<F: AsFd> {
    fd: F,
    saved: Option<Termios>,
}

impl EchoOff<std::io::Stdin> {
    /// On stdin.
    pub fn new() -> Self {
        Self::on(std::io::stdin())
    }
}

impl<F: AsFd> EchoOff<F> {
    /// On the terminal open as `fd`; a descriptor that is no terminal is left as it is.
    pub fn on(fd: F) -> Self {
        let Ok(saved) = tcgetattr(&fd) else {
            return EchoOff { fd, saved: None };
        };
        let mut quiet = saved.clone();
        quiet.local_modes.remove(LocalModes::ECHO);
        let _ = tcsetattr(&fd, OptionalActions::Now, &quiet);
        EchoOff {
            fd,
            saved: Some(saved),
        }
    }
}

impl<F: AsFd> Drop for EchoOff<F> {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let _ = tcsetattr(&self.fd, OptionalActions::Now, t);
        }
    }
}
