//! Typing a secret without it showing on the terminal.

use std::os::fd::RawFd;

/// Turns terminal echo off until dropped.
pub struct EchoOff {
    fd: RawFd,
    saved: Option<libc::termios>,
}

impl EchoOff {
    /// On stdin.
    pub fn new() -> Self {
        Self::on(0)
    }

    /// On the terminal open as `fd`, which must stay open until this is dropped.
    pub fn on(fd: RawFd) -> Self {
        // SAFETY: tcgetattr/tcsetattr on `fd` with a zeroed, then filled, termios; a fd
        // that is no terminal makes tcgetattr fail and nothing is changed.
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
