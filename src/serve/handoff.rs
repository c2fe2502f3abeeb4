//! The token and env files other programs read: replaced atomically, mode 0600, so a
//! reader sees the old token or the new one and never half of either.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::store::write_atomic;
use crate::token::Token;

pub(crate) struct Handoff {
    token_file: PathBuf,
    env_file: PathBuf,
    /// Digest of what the files hold, so an unchanged token is not rewritten every wake.
    written: Option<[u8; 32]>,
}

impl Handoff {
    pub(crate) fn new(token_file: PathBuf, env_file: PathBuf) -> Self {
        Handoff {
            token_file,
            env_file,
            written: None,
        }
    }

    pub(crate) fn token_file(&self) -> &Path {
        &self.token_file
    }

    /// Writes both files unless they already hold `token`. The first call after start
    /// always writes: the files may be missing or hold a token from another run.
    pub(crate) fn publish(&mut self, token: &Token) -> std::io::Result<bool> {
        // The env file holds exactly two lines: a value with a newline would add a third.
        token.check().map_err(std::io::Error::other)?;
        let value = token.access_token.secret();
        let mut h = Sha256::new();
        h.update(value.as_bytes());
        h.update(b"\0");
        h.update(token.client_id.as_bytes());
        let digest: [u8; 32] = h.finalize().into();
        if self.written == Some(digest) {
            return Ok(false);
        }
        check_target(&self.token_file)?;
        check_target(&self.env_file)?;
        // No trailing newline: `Files.readString`, `open().read()` and `fs.readFileSync`
        // then hand over exactly the token.
        write_atomic(&self.token_file, value.as_bytes())?;
        let env = format!(
            "DHAN_ACCESS_TOKEN={value}\nDHAN_CLIENT_ID={}\n",
            token.client_id
        );
        write_atomic(&self.env_file, env.as_bytes())?;
        self.written = Some(digest);
        Ok(true)
    }
}

/// Refuses a path that exists and is not a regular file. The files are replaced by a
/// rename, which goes over whatever is there: `token_file = "/dev/null"` as root replaced
/// the device with a file, and a FIFO or socket another program listens on would go too.
pub(crate) fn check_target(path: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_file() => Ok(()),
        Ok(m) => {
            let what = if m.file_type().is_symlink() {
                "a symbolic link"
            } else if m.is_dir() {
                "a folder"
            } else {
                "a device, FIFO or socket"
            };
            Err(std::io::Error::other(format!(
                "{} is {what}, not a regular file: dhan-login replaces the file it hands \
                 the token over in, so it will not write there",
                path.display()
            )))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::SourceKind;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn writes_private_files_once_per_token() {
        let dir = tempfile::tempdir().unwrap();
        let mut h = Handoff::new(dir.path().join("a/t"), dir.path().join("a/e"));
        let exp = Some("2099-01-01T00:00:00");
        let now = chrono::Utc::now();
        let t = Token::from_grant("tok.one.1", Some("42"), exp, SourceKind::Totp, now).unwrap();
        assert!(h.publish(&t).unwrap());
        assert!(!h.publish(&t).unwrap());
        assert_eq!(
            std::fs::read_to_string(dir.path().join("a/t")).unwrap(),
            "tok.one.1"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("a/e")).unwrap(),
            "DHAN_ACCESS_TOKEN=tok.one.1\nDHAN_CLIENT_ID=42\n"
        );
        for f in ["a/t", "a/e"] {
            let mode = std::fs::metadata(dir.path().join(f))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{f}");
        }
        let t2 = Token::from_grant("tok.two.2", Some("42"), exp, SourceKind::Renew, now).unwrap();
        assert!(h.publish(&t2).unwrap());
    }
}
