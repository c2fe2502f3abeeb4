//! The key of the token route: made on first run, mode 0600, compared in constant time
//! as a bearer key or used for the HMACs of the challenge (`challenge.rs`).

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::error_class::ErrorClass;
use crate::store::write_atomic;

/// Only the key's digest is kept in memory.
pub(crate) struct ApiKey {
    digest: [u8; 32],
}

impl ApiKey {
    /// Reads the key at `path`, creating it when there is none.
    pub(crate) fn load_or_create(path: &Path) -> Result<ApiKey, Error> {
        if !path.exists() {
            create(path)?;
        }
        Ok(ApiKey::from_text(&read(path)?))
    }

    /// The key a client read from the key file.
    pub(crate) fn from_text(key: &str) -> ApiKey {
        ApiKey {
            digest: digest(key.trim().as_bytes()),
        }
    }

    /// The key of the challenge's HMACs: the digest, so that neither side needs more
    /// than what the daemon keeps.
    pub(crate) fn hmac_key(&self) -> aws_lc_rs::hmac::Key {
        aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &self.digest)
    }

    /// HKDF-Extract (RFC 5869) of the digest under `salt`, for keys derived per exchange.
    pub(crate) fn hkdf_prk(&self, salt: &[u8]) -> aws_lc_rs::hkdf::Prk {
        aws_lc_rs::hkdf::Salt::new(aws_lc_rs::hkdf::HKDF_SHA256, salt).extract(&self.digest)
    }

    /// Whether `presented` is the key. Both sides are hashed first, so that neither the
    /// comparison's length nor where it stops says anything about the key.
    pub(crate) fn matches(&self, presented: &str) -> bool {
        let other = digest(presented.as_bytes());
        let diff = self
            .digest
            .iter()
            .zip(other.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        std::hint::black_box(diff) == 0
    }
}

/// The key as a client sends it.
pub(crate) fn read(path: &Path) -> Result<String, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| refused(path, e))?;
    let key = text.trim().to_owned();
    if key.is_empty() {
        return Err(Error::Refused {
            class: ErrorClass::Config,
            message: format!("the key file {} is empty", path.display()),
        });
    }
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            "{} is readable by group/others: run `chmod 600 {}`",
            path.display(),
            path.display()
        );
    }
    Ok(key)
}

/// Writes a fresh key beside the final name, then links it into place: two daemons
/// starting together both end up with whichever key won, never one each.
fn create(path: &Path) -> Result<(), Error> {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let mut text = Vec::with_capacity(65);
    for b in bytes {
        write!(text, "{b:02x}")?;
    }
    text.push(b'\n');
    let staged = path.with_extension(format!("new-{:08x}", rand::random::<u32>()));
    write_atomic(&staged, &text).map_err(|e| refused(&staged, e))?;
    let linked = std::fs::hard_link(&staged, path);
    let _ = std::fs::remove_file(&staged);
    match linked {
        Ok(()) => {
            tracing::info!(path = %path.display(), "created the key of the token endpoint");
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(refused(path, e)),
    }
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn refused(path: &Path, e: std::io::Error) -> Error {
    Error::Refused {
        class: ErrorClass::Other,
        message: format!("key file {}: {e}", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_made_once_private_and_matched_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state").join("serve.key");
        let key = ApiKey::load_or_create(&path).unwrap();
        let text = read(&path).unwrap();
        assert_eq!(text.len(), 64);
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(key.matches(&text));
        assert!(!key.matches(&text[..63]));
        assert!(!key.matches(""));
        let again = ApiKey::load_or_create(&path).unwrap();
        assert!(again.matches(&text), "an existing key is kept");
        let leftovers = std::fs::read_dir(path.parent().unwrap()).unwrap().count();
        assert_eq!(leftovers, 1, "no staged file stays behind");
    }
}
