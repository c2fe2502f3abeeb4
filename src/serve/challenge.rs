//! The handshake our own client (`token`, `exec`) uses with the daemon, so that whatever
//! listens on the configured port learns nothing it could use:
//!
//! 1. the client sends a random nonce (`POST /v1/challenge`); the daemon answers a nonce
//!    of its own and a proof, HMAC-SHA256 over both nonces under the key;
//! 2. only when the proof checks out does the client ask for the token, with an HMAC over
//!    both nonces and the request line instead of the key; the daemon takes each of its
//!    nonces once, within 30 s;
//! 3. the daemon answers the token sealed (AES-256-GCM) under a key derived from both
//!    nonces, so that a relay in between reads nothing either.
//!
//! The key never crosses the wire: the HMAC key is the SHA-256 of the key file's text,
//! which is also all the daemon keeps in memory. Plain HTTP clients keep the simpler
//! `Authorization: Bearer` route (README, "serve").

use crate::sync::lock;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_lc_rs::aead::{AES_256_GCM, Aad, Nonce, RandomizedNonceKey};
use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;

use super::key::ApiKey;

pub(crate) const NONCE_LEN: usize = 32;
/// The scheme of the `Authorization` header of step 2.
pub(crate) const SCHEME: &str = "DhanLogin-HMAC";

/// Each use of the key has its own label, so that no answer of one step is valid in
/// another.
const PROOF: &[u8] = b"dhan-login serve v1: daemon proof";
const REQUEST: &[u8] = b"dhan-login serve v1: client request";
const SEAL: &[u8] = b"dhan-login serve v1: answer key";

/// How long a challenge may wait for its request: the client asks at once.
const CHALLENGE_TTL: Duration = Duration::from_secs(30);
/// Open challenges kept; past it the oldest goes, so a flood costs memory no more.
const MAX_OPEN: usize = 256;
const AEAD_NONCE_LEN: usize = 12;

pub(crate) type RawNonce = [u8; NONCE_LEN];

pub(crate) fn fresh_nonce() -> RawNonce {
    let mut n = [0u8; NONCE_LEN];
    rand::rng().fill_bytes(&mut n);
    n
}

pub(crate) fn encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub(crate) fn decode_nonce(text: &str) -> Option<RawNonce> {
    URL_SAFE_NO_PAD.decode(text.trim()).ok()?.try_into().ok()
}

fn sign(key: &ApiKey, label: &[u8], parts: &[&[u8]]) -> hmac::Tag {
    let mut ctx = hmac::Context::with_key(&key.hmac_key());
    ctx.update(label);
    for p in parts {
        ctx.update(p);
    }
    ctx.sign()
}

/// Whether `tag` is the HMAC of these parts (compared in constant time).
fn verify(key: &ApiKey, label: &[u8], parts: &[&[u8]], tag: &[u8]) -> bool {
    let mut data = label.to_vec();
    for p in parts {
        data.extend_from_slice(p);
    }
    hmac::verify(&key.hmac_key(), &data, tag).is_ok()
}

/// Step 1, the daemon's answer to `client`: its proof of holding the key.
pub(crate) fn proof(key: &ApiKey, client: &RawNonce, daemon: &RawNonce) -> Vec<u8> {
    sign(key, PROOF, &[client, daemon]).as_ref().to_vec()
}

pub(crate) fn proof_holds(key: &ApiKey, client: &RawNonce, daemon: &RawNonce, tag: &[u8]) -> bool {
    verify(key, PROOF, &[client, daemon], tag)
}

/// Step 2, the client's MAC over the request line (`GET /v1/profiles/NAME/token`).
pub(crate) fn request_mac(
    key: &ApiKey,
    client: &RawNonce,
    daemon: &RawNonce,
    request_line: &str,
) -> Vec<u8> {
    sign(key, REQUEST, &[daemon, client, request_line.as_bytes()])
        .as_ref()
        .to_vec()
}

/// The AEAD key of one exchange's answer.
fn answer_key(key: &ApiKey, client: &RawNonce, daemon: &RawNonce) -> Option<RandomizedNonceKey> {
    // An HMAC-SHA256 tag is exactly as long as an AES-256 key.
    RandomizedNonceKey::new(&AES_256_GCM, sign(key, SEAL, &[daemon, client]).as_ref()).ok()
}

/// Step 3: the answer's body sealed for this exchange, bound to the request line.
pub(crate) fn seal(
    key: &ApiKey,
    client: &RawNonce,
    daemon: &RawNonce,
    request_line: &str,
    plain: &[u8],
) -> Option<String> {
    let mut body = plain.to_vec();
    let nonce = answer_key(key, client, daemon)?
        .seal_in_place_append_tag(Aad::from(request_line.as_bytes()), &mut body)
        .ok()?;
    let mut out = nonce.as_ref().to_vec();
    out.extend_from_slice(&body);
    Some(encode(&out))
}

/// The plain answer, or `None` when it was not sealed by the key holder for this
/// exchange.
pub(crate) fn open(
    key: &ApiKey,
    client: &RawNonce,
    daemon: &RawNonce,
    request_line: &str,
    sealed: &str,
) -> Option<Vec<u8>> {
    let bytes = URL_SAFE_NO_PAD.decode(sealed.trim()).ok()?;
    if bytes.len() < AEAD_NONCE_LEN {
        return None;
    }
    let (nonce, body) = bytes.split_at(AEAD_NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    let mut body = body.to_vec();
    let plain = answer_key(key, client, daemon)?
        .open_in_place(nonce, Aad::from(request_line.as_bytes()), &mut body)
        .ok()?;
    Some(plain.to_vec())
}

struct Open {
    client: RawNonce,
    daemon: RawNonce,
    at: Instant,
}

/// The daemon's open challenges: each is redeemed at most once, within its lifetime.
#[derive(Default)]
pub(crate) struct Challenges {
    open: Mutex<VecDeque<Open>>,
}

impl Challenges {
    /// Step 1: a fresh daemon nonce for `client`, and the proof.
    pub(crate) fn issue(&self, key: &ApiKey, client: RawNonce) -> (RawNonce, Vec<u8>) {
        let daemon = fresh_nonce();
        let now = Instant::now();
        let mut open = lock(&self.open);
        open.retain(|c| now.duration_since(c.at) < CHALLENGE_TTL);
        if open.len() >= MAX_OPEN {
            open.pop_front();
        }
        open.push_back(Open {
            client,
            daemon,
            at: now,
        });
        (daemon, proof(key, &client, &daemon))
    }

    /// Step 2: the client nonce of the challenge `daemon` when `mac` signs `request_line`
    /// for it. The challenge is gone afterwards, whatever the verdict.
    pub(crate) fn redeem(
        &self,
        key: &ApiKey,
        daemon: &RawNonce,
        mac: &[u8],
        request_line: &str,
    ) -> Option<RawNonce> {
        let now = Instant::now();
        let taken = {
            let mut open = lock(&self.open);
            let at = open.iter().position(|c| &c.daemon == daemon)?;
            open.remove(at)?
        };
        if now.duration_since(taken.at) >= CHALLENGE_TTL {
            return None;
        }
        verify(
            key,
            REQUEST,
            &[daemon, &taken.client, request_line.as_bytes()],
            mac,
        )
        .then_some(taken.client)
    }
}

/// `Authorization: DhanLogin-HMAC <daemon nonce>.<mac>` → both, decoded.
pub(crate) fn parse_authorization(value: &str) -> Option<(RawNonce, Vec<u8>)> {
    let (scheme, rest) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case(SCHEME) {
        return None;
    }
    let (nonce, mac) = rest.trim().split_once('.')?;
    Some((decode_nonce(nonce)?, URL_SAFE_NO_PAD.decode(mac).ok()?))
}

pub(crate) fn authorization(daemon: &RawNonce, mac: &[u8]) -> String {
    format!("{SCHEME} {}.{}", encode(daemon), encode(mac))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = "GET /v1/profiles/p/token";

    #[test]
    fn an_exchange_holds_only_with_the_key_once_and_for_its_request() {
        let key = ApiKey::from_text("the-key");
        let other = ApiKey::from_text("another-key");
        let challenges = Challenges::default();
        let client = fresh_nonce();
        let (daemon, proof) = challenges.issue(&key, client);
        assert!(proof_holds(&key, &client, &daemon, &proof));
        assert!(!proof_holds(&other, &client, &daemon, &proof));
        assert!(!proof_holds(&key, &fresh_nonce(), &daemon, &proof));

        let mac = request_mac(&key, &client, &daemon, LINE);
        let wrong_line = request_mac(&key, &client, &daemon, "GET /v1/profiles/q/token");
        assert_eq!(
            challenges.redeem(&key, &daemon, &wrong_line, LINE),
            None,
            "a MAC for another profile does not open this one"
        );
        // The failed try used the challenge up: even the right MAC is refused now.
        assert_eq!(challenges.redeem(&key, &daemon, &mac, LINE), None);

        let (daemon, _) = challenges.issue(&key, client);
        let mac = request_mac(&key, &client, &daemon, LINE);
        assert_eq!(challenges.redeem(&key, &daemon, &mac, LINE), Some(client));
        assert_eq!(
            challenges.redeem(&key, &daemon, &mac, LINE),
            None,
            "a replay"
        );
    }

    #[test]
    fn a_sealed_answer_opens_only_for_its_exchange() {
        let key = ApiKey::from_text("the-key");
        let (client, daemon) = (fresh_nonce(), fresh_nonce());
        let sealed = seal(&key, &client, &daemon, LINE, b"{\"access_token\":\"eyJ\"}").unwrap();
        assert!(!sealed.contains("access_token"));
        assert_eq!(
            open(&key, &client, &daemon, LINE, &sealed).as_deref(),
            Some(&b"{\"access_token\":\"eyJ\"}"[..])
        );
        assert!(open(&key, &daemon, &client, LINE, &sealed).is_none());
        assert!(open(&key, &client, &daemon, "GET /other", &sealed).is_none());
        assert!(open(&ApiKey::from_text("x"), &client, &daemon, LINE, &sealed).is_none());
        assert!(open(&key, &client, &daemon, LINE, "bm9w").is_none());
    }

    #[test]
    fn the_header_round_trips_and_junk_is_refused() {
        let (daemon, mac) = (fresh_nonce(), vec![7u8; 32]);
        let header = authorization(&daemon, &mac);
        assert_eq!(parse_authorization(&header), Some((daemon, mac)));
        for junk in [
            "",
            "Bearer abc",
            "DhanLogin-HMAC",
            "DhanLogin-HMAC abc",
            "DhanLogin-HMAC c2hvcnQ.AAAA",
        ] {
            assert_eq!(parse_authorization(junk), None, "{junk}");
        }
    }
}
