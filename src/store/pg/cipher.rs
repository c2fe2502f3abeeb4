//! Tokens at rest in the database: AES-256-GCM (aws-lc-rs, the library rustls already
//! links), a fresh random nonce per write, the profile name as associated data so that a
//! row copied onto another profile does not open.

use aws_lc_rs::aead::{AES_256_GCM, Aad, Nonce, RandomizedNonceKey};
use base64::Engine;
use secrecy::{ExposeSecret, SecretString};

use crate::store::StoreError;

/// The format byte in front of every ciphertext, so the layout can change later.
const V1: u8 = 1;
const NONCE_LEN: usize = 12;

pub(super) struct Cipher {
    key: RandomizedNonceKey,
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cipher(..)")
    }
}

impl Cipher {
    /// From the configured key: 32 random bytes in base64 (`openssl rand -base64 32`).
    pub(super) fn from_key(key: &SecretString) -> Result<Cipher, StoreError> {
        let bad = |why: &str| StoreError::Unusable {
            message: format!(
                "store.key: {why} (expected 32 random bytes in base64, e.g. the output of `openssl rand -base64 32`)"
            ),
        };
        let bytes = zeroize::Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(key.expose_secret().trim())
                .map_err(|_| bad("not base64"))?,
        );
        if bytes.len() != 32 {
            return Err(bad(&format!("{} bytes", bytes.len())));
        }
        let key = RandomizedNonceKey::new(&AES_256_GCM, &bytes).map_err(|_| bad("rejected"))?;
        Ok(Cipher { key })
    }

    pub(super) fn seal(&self, profile: &str, plain: &[u8]) -> Result<Vec<u8>, StoreError> {
        let mut body = plain.to_vec();
        let nonce = self
            .key
            .seal_in_place_append_tag(Aad::from(profile.as_bytes()), &mut body)
            .map_err(|_| StoreError::Database {
                message: "cannot encrypt the token".into(),
            })?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + body.len());
        out.push(V1);
        out.extend_from_slice(nonce.as_ref());
        out.extend_from_slice(&body);
        Ok(out)
    }

    pub(super) fn open(&self, profile: &str, sealed: &[u8]) -> Result<Vec<u8>, StoreError> {
        let refused = || StoreError::Database {
            message: format!(
                "the stored token of profile `{profile}` does not decrypt: store.key differs from the key it was written with, or the row was altered"
            ),
        };
        if sealed.len() < 1 + NONCE_LEN || sealed[0] != V1 {
            return Err(refused());
        }
        let nonce =
            Nonce::try_assume_unique_for_key(&sealed[1..1 + NONCE_LEN]).map_err(|_| refused())?;
        let mut body = sealed[1 + NONCE_LEN..].to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(profile.as_bytes()), &mut body)
            .map_err(|_| refused())?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> SecretString {
        SecretString::from(base64::engine::general_purpose::STANDARD.encode([byte; 32]))
    }

    #[test]
    fn sealed_tokens_open_only_with_their_key_and_profile() {
        let c = Cipher::from_key(&key(7)).unwrap();
        let sealed = c.seal("p", b"eyJ.secret.token").unwrap();
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        assert_eq!(c.open("p", &sealed).unwrap(), b"eyJ.secret.token");
        assert!(c.open("q", &sealed).is_err());
        let other = Cipher::from_key(&key(8)).unwrap();
        assert!(other.open("p", &sealed).is_err());
        // Two writes of the same token differ: the nonce is fresh each time.
        assert_ne!(sealed, c.seal("p", b"eyJ.secret.token").unwrap());
    }

    #[test]
    fn a_key_of_the_wrong_size_is_named() {
        let short = SecretString::from(base64::engine::general_purpose::STANDARD.encode([1; 16]));
        let e = Cipher::from_key(&short).unwrap_err().to_string();
        assert!(e.contains("store.key") && e.contains("16 bytes"), "{e}");
        assert!(Cipher::from_key(&SecretString::from("not base64!")).is_err());
    }
}
