//! The handshake our own client (`token`, `exec`) uses with the daemon, so that whatever
//! listens on the configured port learns nothing it could use:
//!
//! 1. the client sends a random nonce (`POST /v1/challenge`); the daemon answers a nonce
//!    of its own and a proof, HMAC-SHA256 over both nonces under the key;
//! 2. only when the proof checks out does the client ask for the token, with an HMAC over
//!    both nonces and the request line instead of the key, and its nonce again; the
//!    daemon answers each of its nonces once, within 30 s, and stores nothing until then
//!    (its nonce carries its expiry and a tag under a key of the daemon's own);
//! 3. the daemon answers the token sealed (AES-256-GCM) under a key derived from the key
//!    and both nonces with HKDF-SHA256 (RFC 5869), so that a relay in between reads
//!    nothing either.
//!
//! The key never crosses the wire: the HMAC key is the SHA-256 of the key file's text,
//! which is also all the daemon keeps in memory. Plain HTTP clients keep the simpler
//! `Authorization: Bearer` route (README, "serve").

use crate::sync::lock;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_lc_rs::aead::{AES_256_GCM, Aad, Nonce, RandomizedNonceKey};
use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use zeroize::Zeroizing;

use super::key::ApiKey;

pub(crate) const NONCE_LEN: usize = 32;
/// The scheme of the `Authorization` header of step 2.
pub(crate) const SCHEME: &str = "DhanLogin-HMAC";
/// Step 2 repeats the client nonce in this header: the daemon keeps no challenge, so it
/// learns the nonce from the request and checks it against its own nonce's tag. A
/// daemon older than this ignores the header.
pub(crate) const CLIENT_NONCE_HEADER: &str = "x-dhan-login-client-nonce";

/// Each use of the key has its own label, so that no answer of one step is valid in
/// another.
const PROOF: &[u8] = b"dhan-login serve v1: daemon proof";
const REQUEST: &[u8] = b"dhan-login serve v1: client request";
/// v2: the answer key is an HKDF output; v1 used an HMAC tag as the key.
const SEAL: &[u8] = b"dhan-login serve v2: answer key";

/// How long a challenge may wait for its request: the client asks at once.
const CHALLENGE_TTL: Duration = Duration::from_secs(30);
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

/// The AEAD key bytes of one exchange's answer: HKDF-SHA256 with both nonces (daemon's
/// first) as the salt, the key as the input and the label as the info. HKDF is the
/// construction made for turning a key and public randomness into a new key; the two
/// nonces are the per-exchange randomness its salt is for.
fn answer_key_bytes(
    key: &ApiKey,
    client: &RawNonce,
    daemon: &RawNonce,
) -> Option<Zeroizing<[u8; 32]>> {
    let mut salt = [0u8; 2 * NONCE_LEN];
    salt[..NONCE_LEN].copy_from_slice(daemon);
    salt[NONCE_LEN..].copy_from_slice(client);
    let mut bytes = Zeroizing::new([0u8; 32]);
    key.hkdf_prk(&salt)
        .expand(&[SEAL], &AES_256_GCM)
        .ok()?
        .fill(bytes.as_mut())
        .ok()?;
    Some(bytes)
}

fn answer_key(key: &ApiKey, client: &RawNonce, daemon: &RawNonce) -> Option<RandomizedNonceKey> {
    RandomizedNonceKey::new(
        &AES_256_GCM,
        answer_key_bytes(key, client, daemon)?.as_ref(),
    )
    .ok()
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

/// The random part of a daemon nonce; then 8 bytes of expiry and 8 of tag.
const RANDOM_LEN: usize = 16;
const EXPIRY_END: usize = RANDOM_LEN + 8;
/// The tag's label, under the daemon's own key (never the serve key).
const ISSUED: &[u8] = b"dhan-login serve v2: issued challenge";

/// The daemon's challenges, with nothing kept per challenge issued: a daemon nonce
/// carries its own expiry and a tag under a random key of this process (so only this
/// process's nonces, unaltered, for that client nonce, pass). A flood of challenges
/// therefore costs no memory and cannot push out a slow client's, as the table of open
/// challenges this replaced could (256 entries, oldest evicted). Replays are stopped by
/// remembering the nonces *answered* until they expire, and answering one takes the serve
/// key, so no one without it can grow that list.
pub(crate) struct Challenges {
    own: hmac::Key,
    started: Instant,
    answered: Mutex<HashMap<[u8; RANDOM_LEN], u64>>,
}

impl Default for Challenges {
    fn default() -> Self {
        let mut own = [0u8; 32];
        rand::rng().fill_bytes(&mut own);
        Challenges {
            own: hmac::Key::new(hmac::HMAC_SHA256, &own),
            started: Instant::now(),
            answered: Mutex::new(HashMap::new()),
        }
    }
}

impl std::fmt::Debug for Challenges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Challenges").finish_non_exhaustive()
    }
}

impl Challenges {
    /// Milliseconds since this daemon started: a clock no one can set back.
    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn tag(&self, head: &[u8], client: &RawNonce) -> hmac::Tag {
        let mut ctx = hmac::Context::with_key(&self.own);
        ctx.update(ISSUED);
        ctx.update(head);
        ctx.update(client);
        ctx.sign()
    }

    /// Step 1: a fresh daemon nonce for `client`, and the proof.
    pub(crate) fn issue(&self, key: &ApiKey, client: RawNonce) -> (RawNonce, Vec<u8>) {
        let mut daemon = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut daemon[..RANDOM_LEN]);
        let expires = self
            .now_ms()
            .saturating_add(u64::try_from(CHALLENGE_TTL.as_millis()).unwrap_or(u64::MAX));
        daemon[RANDOM_LEN..EXPIRY_END].copy_from_slice(&expires.to_be_bytes());
        let tag = self.tag(&daemon[..EXPIRY_END], &client);
        daemon[EXPIRY_END..].copy_from_slice(&tag.as_ref()[..NONCE_LEN - EXPIRY_END]);
        (daemon, proof(key, &client, &daemon))
    }

    /// Step 2: true when `daemon` is a nonce this process issued to `client` and not yet
    /// answered, within its lifetime, and `mac` signs `request_line` for both.
    pub(crate) fn redeem(
        &self,
        key: &ApiKey,
        daemon: &RawNonce,
        client: &RawNonce,
        mac: &[u8],
        request_line: &str,
    ) -> bool {
        let tag = self.tag(&daemon[..EXPIRY_END], client);
        let issued = aws_lc_rs::constant_time::verify_slices_are_equal(
            &tag.as_ref()[..NONCE_LEN - EXPIRY_END],
            &daemon[EXPIRY_END..],
        )
        .is_ok();
        let mut expiry = [0u8; 8];
        expiry.copy_from_slice(&daemon[RANDOM_LEN..EXPIRY_END]);
        let expires = u64::from_be_bytes(expiry);
        let now = self.now_ms();
        if !issued
            || now >= expires
            || !verify(
                key,
                REQUEST,
                &[daemon, client, request_line.as_bytes()],
                mac,
            )
        {
            return false;
        }
        let mut random = [0u8; RANDOM_LEN];
        random.copy_from_slice(&daemon[..RANDOM_LEN]);
        let mut answered = lock(&self.answered);
        answered.retain(|_, until| *until > now);
        answered.insert(random, expires).is_none()
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
        assert!(
            !challenges.redeem(&key, &daemon, &client, &wrong_line, LINE),
            "a MAC for another profile does not open this one"
        );
        assert!(!challenges.redeem(&other, &daemon, &client, &mac, LINE));
        // Another client nonce, or a daemon nonce altered or not issued here.
        let stranger = fresh_nonce();
        let mac_for_stranger = request_mac(&key, &stranger, &daemon, LINE);
        assert!(!challenges.redeem(&key, &daemon, &stranger, &mac_for_stranger, LINE));
        let mut altered = daemon;
        altered[RANDOM_LEN] ^= 1;
        let mac_altered = request_mac(&key, &client, &altered, LINE);
        assert!(!challenges.redeem(&key, &altered, &client, &mac_altered, LINE));
        let elsewhere = Challenges::default();
        assert!(!elsewhere.redeem(&key, &daemon, &client, &mac, LINE));

        assert!(challenges.redeem(&key, &daemon, &client, &mac, LINE));
        assert!(
            !challenges.redeem(&key, &daemon, &client, &mac, LINE),
            "a replay"
        );
    }

    /// A flood of challenges (what any local user can send) used to push a slow client's
    /// out of the 256-entry table; nothing is kept per challenge now.
    #[test]
    fn a_flood_of_challenges_leaves_a_slow_clients_standing() {
        let key = ApiKey::from_text("the-key");
        let challenges = Challenges::default();
        let slow = fresh_nonce();
        let (daemon, _) = challenges.issue(&key, slow);
        for _ in 0..10_000 {
            challenges.issue(&key, fresh_nonce());
        }
        assert!(
            lock(&challenges.answered).is_empty(),
            "a flood stores nothing"
        );
        let mac = request_mac(&key, &slow, &daemon, LINE);
        assert!(challenges.redeem(&key, &daemon, &slow, &mac, LINE));
    }

    #[test]
    fn an_expired_challenge_is_refused_and_answered_ones_are_forgotten_when_they_expire() {
        let key = ApiKey::from_text("the-key");
        let challenges = Challenges {
            started: Instant::now() - 2 * CHALLENGE_TTL,
            ..Challenges::default()
        };
        let client = fresh_nonce();
        let (daemon, _) = challenges.issue(&key, client);
        // Issued "now"; a copy whose expiry lies before it cannot be made without the
        // daemon's own key, so age it by issuing under an earlier clock.
        let earlier = Challenges {
            started: challenges.started + CHALLENGE_TTL + Duration::from_secs(1),
            own: challenges.own.clone(),
            answered: Mutex::new(HashMap::new()),
        };
        let (old, _) = earlier.issue(&key, client);
        let mac = request_mac(&key, &client, &old, LINE);
        assert!(
            !challenges.redeem(&key, &old, &client, &mac, LINE),
            "expired"
        );
        // An answer remembered from long ago goes with the next one.
        lock(&challenges.answered).insert([0; RANDOM_LEN], 1);
        let mac = request_mac(&key, &client, &daemon, LINE);
        assert!(challenges.redeem(&key, &daemon, &client, &mac, LINE));
        assert_eq!(lock(&challenges.answered).len(), 1);
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

    /// RFC 5869 written out with plain HMAC-SHA256: PRK = HMAC(salt, IKM), and the first
    /// 32 bytes of output are HMAC(PRK, info || 0x01).
    #[test]
    fn the_answer_key_is_hkdf_of_the_key_under_both_nonces() {
        let key = ApiKey::from_text("the-key");
        let (client, daemon) = (fresh_nonce(), fresh_nonce());
        let salt = [&daemon[..], &client[..]].concat();
        let prk = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, &salt),
            &<sha2::Sha256 as sha2::Digest>::digest(b"the-key"),
        );
        let okm = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, prk.as_ref()),
            &[SEAL, &[1u8]].concat(),
        );
        let derived = answer_key_bytes(&key, &client, &daemon).unwrap();
        assert_eq!(derived.as_ref(), okm.as_ref());
        let swapped = answer_key_bytes(&key, &daemon, &client).unwrap();
        assert_ne!(derived.as_ref(), swapped.as_ref());
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
