//! The access token and what we know about it without asking Dhan.

use std::fmt;

use base64::Engine;
use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A DhanHQ access token. Debug and Display never show it; `secret()` is the one way in.
#[derive(Clone)]
pub struct AccessToken(SecretString);

impl AccessToken {
    /// Wraps a token value. Nothing is checked here: [`Token::from_grant`] and
    /// [`Token::check`] check the shape.
    pub fn new(value: impl Into<String>) -> Self {
        Self(SecretString::from(value.into()))
    }

    /// The value itself, to send to Dhan or hand to the program that needs it. Anything
    /// that prints it (a log line, an error) leaks a credential.
    pub fn secret(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken(****)")
    }
}

impl PartialEq for AccessToken {
    fn eq(&self, other: &Self) -> bool {
        self.secret() == other.secret()
    }
}

// The store must persist the value; serialising is the one deliberate exposure.
impl Serialize for AccessToken {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.secret())
    }
}

impl<'de> Deserialize<'de> for AccessToken {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(AccessToken::new)
    }
}

/// Who the token was minted for, from the JWT's `tokenConsumerType` claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum TokenKind {
    /// Created on Dhan Web: RenewToken extends it indefinitely.
    #[serde(rename = "SELF")]
    SelfWeb,
    /// Minted by an API login (PIN+TOTP or consent): reportedly not renewable.
    #[serde(rename = "APP")]
    App,
    /// The claim is missing or names a kind we do not know.
    #[serde(rename = "UNKNOWN")]
    #[default]
    Unknown,
}

impl TokenKind {
    /// The claim's value as Dhan spells it: `SELF`, `APP` or `UNKNOWN`.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::SelfWeb => "SELF",
            TokenKind::App => "APP",
            TokenKind::Unknown => "UNKNOWN",
        }
    }
}

impl fmt::Display for TokenKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a token was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// RenewToken extended a stored token.
    Renew,
    /// The PIN + TOTP API login.
    Totp,
    /// The headless browser on the consent page.
    Browser,
    /// A person logged in on the consent page and the redirect was caught.
    Manual,
    /// `dhan-login import`: a token obtained elsewhere.
    Import,
}

impl SourceKind {
    /// The lowercase name used in JSON, `--via` and the state file (`renew`, `totp`…).
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Renew => "renew",
            SourceKind::Totp => "totp",
            SourceKind::Browser => "browser",
            SourceKind::Manual => "manual",
            SourceKind::Import => "import",
        }
    }
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A token with the facts every consumer needs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Token {
    /// The value to send as `access-token`; never printed by Debug.
    pub access_token: AccessToken,
    /// The Dhan client id the token acts for (digits).
    pub client_id: String,
    /// When Dhan stops accepting it: the earlier of the login's `expiryTime` and the
    /// JWT's `exp`.
    pub expires_at: DateTime<Utc>,
    /// Who it was minted for, which decides whether RenewToken can extend it.
    pub kind: TokenKind,
    /// How it was obtained.
    pub source: SourceKind,
    /// When this process (or the one that stored it) received it.
    pub obtained_at: DateTime<Utc>,
}

/// A token as it leaves the process: `dhan-login token --json` prints it, the daemon
/// serves it on `GET /token/{profile}` and `ask_daemon` reads it back. One type for the
/// three, so that they cannot drift apart; README documents the keys.
#[derive(Debug, Serialize, Deserialize)]
pub struct TokenJson {
    /// The token value (serialised in clear: this type exists to hand it over).
    pub access_token: AccessToken,
    /// The Dhan client id the token acts for.
    pub client_id: String,
    /// RFC 3339, UTC, whole seconds.
    #[serde(serialize_with = "whole_seconds")]
    pub expires_at: DateTime<Utc>,
    /// `SELF`, `APP` or `UNKNOWN`.
    pub kind: TokenKind,
    /// How the token was obtained (`renew`, `totp`…).
    pub source: SourceKind,
}

impl From<&Token> for TokenJson {
    fn from(t: &Token) -> Self {
        TokenJson {
            access_token: t.access_token.clone(),
            client_id: t.client_id.clone(),
            expires_at: t.expires_at,
            kind: t.kind,
            source: t.source,
        }
    }
}

impl TokenJson {
    /// The token, as received at `now`.
    pub fn into_token(self, now: DateTime<Utc>) -> Token {
        Token {
            access_token: self.access_token,
            client_id: self.client_id,
            expires_at: self.expires_at,
            kind: self.kind,
            source: self.source,
            obtained_at: now,
        }
    }
}

fn whole_seconds<S: Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

/// Why a token value could not be turned into a [`Token`]. No message shows the value.
#[derive(Debug, thiserror::Error, PartialEq)]
#[non_exhaustive]
pub enum TokenError {
    /// Neither the login's answer nor the JWT says when the token expires.
    #[error("the token has no expiry: no usable expiryTime and no `exp` claim")]
    NoExpiry,
    /// Neither the caller nor the JWT's `dhanClientId` claim gives a client id.
    #[error("the token names no client id and none is configured")]
    NoClientId,
    /// The value is not `header.payload.signature` in base64url: it could carry a
    /// newline into an env file, or be an error page taken for a token.
    #[error("the access token is not JWT-shaped (three base64url parts; the value is not shown)")]
    NotJwt,
    /// The client id is empty, longer than 32 characters or not all digits.
    #[error("the client id is not all digits (the value is not shown)")]
    BadClientId,
    /// The token's expiry (RFC 3339) is already past when it is received.
    #[error("the token expired at {0} before it was received: is the clock right?")]
    Expired(String),
}

/// Longer than any JWT Dhan issues (about 400 bytes), short enough for any env var.
const MAX_TOKEN_LEN: usize = 8192;

/// Checks an access token's shape: three non-empty base64url parts joined by dots, so no
/// control character, space or `=`-line can ride along into `--env`, `.env` or `exec`.
fn check_token_value(value: &str) -> Result<(), TokenError> {
    let b64 = |p: &str| {
        !p.is_empty()
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'='))
    };
    let parts: Vec<&str> = value.split('.').collect();
    if value.len() > MAX_TOKEN_LEN || parts.len() != 3 || !parts.iter().all(|p| b64(p)) {
        return Err(TokenError::NotJwt);
    }
    Ok(())
}

/// Checks a client id: Dhan's are all digits.
fn check_client_id(id: &str) -> Result<(), TokenError> {
    if id.is_empty() || id.len() > 32 || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TokenError::BadClientId);
    }
    Ok(())
}

impl Token {
    /// Builds a token from what a login answered. `expiry_time` is Dhan's IST timestamp;
    /// when it is missing or unreadable the JWT `exp` claim decides.
    pub fn from_grant(
        value: &str,
        client_id: Option<&str>,
        expiry_time: Option<&str>,
        source: SourceKind,
        now: DateTime<Utc>,
    ) -> Result<Token, TokenError> {
        check_token_value(value)?;
        let claims = Claims::peek(value).unwrap_or_default();
        let stated = expiry_time.and_then(parse_ist);
        let claimed = claims.exp.and_then(|s| Utc.timestamp_opt(s, 0).single());
        // Whichever ends first: Dhan rejects the token at its `exp` whatever the body said.
        let expires_at = match (stated, claimed) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b).ok_or(TokenError::NoExpiry)?,
        };
        if expires_at <= now {
            return Err(TokenError::Expired(expires_at.to_rfc3339()));
        }
        let client_id = client_id
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .or(claims.client_id)
            .ok_or(TokenError::NoClientId)?;
        check_client_id(&client_id)?;
        Ok(Token {
            access_token: AccessToken::new(value),
            client_id,
            expires_at,
            kind: claims.kind,
            source,
            obtained_at: now,
        })
    }

    /// Checks what will be printed or handed over: a token read back from a file or a
    /// daemon was not necessarily built by `from_grant`.
    pub fn check(&self) -> Result<(), TokenError> {
        check_token_value(self.access_token.secret())?;
        check_client_id(&self.client_id)
    }

    /// True while the token stays valid for more than `margin` from `now`.
    pub fn is_valid_for(&self, now: DateTime<Utc>, margin: chrono::Duration) -> bool {
        self.expires_at - now > margin
    }

    /// True until the token expires (with no margin: it may expire in flight).
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.expires_at > now
    }
}

/// The claims we read from a JWT payload, without checking its signature: only Dhan can,
/// and all we want is expiry and kind without a network call.
#[derive(Debug, Default, PartialEq)]
struct Claims {
    client_id: Option<String>,
    exp: Option<i64>,
    kind: TokenKind,
}

impl Claims {
    fn peek(jwt: &str) -> Option<Claims> {
        let payload = jwt.split('.').nth(1)?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload.trim_end_matches('='))
            .ok()?;
        let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        let client_id = match value.get("dhanClientId") {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(serde_json::Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        let kind = match value.get("tokenConsumerType").and_then(|v| v.as_str()) {
            Some(k) if k.eq_ignore_ascii_case("SELF") => TokenKind::SelfWeb,
            Some(k) if k.eq_ignore_ascii_case("APP") => TokenKind::App,
            _ => TokenKind::Unknown,
        };
        Some(Claims {
            client_id,
            exp: value.get("exp").and_then(|v| v.as_i64()),
            kind,
        })
    }
}

/// India Standard Time, the zone Dhan's timestamps are in although they carry no offset.
pub(crate) fn ist() -> FixedOffset {
    // 5 h 30 min east is always in range.
    FixedOffset::east_opt(crate::dhan::IST_OFFSET_SECS).unwrap_or_else(|| unreachable!())
}

/// Reads Dhan's `expiryTime` (`2026-01-01T00:00:00` with or without `.mmm`, IST, no
/// offset) as a UTC instant. A value that does carry an offset is honoured.
pub fn parse_ist(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(dt.with_timezone(&Utc));
    }
    let naive = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f"))
        .ok()?;
    ist()
        .from_local_datetime(&naive)
        .single()
        .map(|dt| dt.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(payload: serde_json::Value) -> String {
        let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.sig",
            e.encode(br#"{"alg":"HS512"}"#),
            e.encode(payload.to_string())
        )
    }

    #[test]
    fn ist_without_offset_is_five_thirty_ahead_of_utc() {
        let want = Utc.with_ymd_and_hms(2025, 12, 31, 18, 30, 0).unwrap();
        assert_eq!(parse_ist("2026-01-01T00:00:00.000"), Some(want));
        assert_eq!(parse_ist("2026-01-01T00:00:00"), Some(want));
        assert_eq!(parse_ist("2026-01-01T00:00:00+05:30"), Some(want));
        assert_eq!(parse_ist("01/01/2026"), None);
    }

    #[test]
    fn expiry_falls_back_to_exp_claim_and_kind_comes_from_claims() {
        let t = jwt(
            serde_json::json!({"dhanClientId":"1000000001","exp":4_102_444_800_i64,"tokenConsumerType":"SELF"}),
        );
        let tok =
            Token::from_grant(&t, None, Some("garbage"), SourceKind::Import, Utc::now()).unwrap();
        assert_eq!(tok.expires_at.timestamp(), 4_102_444_800_i64);
        assert_eq!(tok.kind, TokenKind::SelfWeb);
        assert_eq!(tok.client_id, "1000000001");
    }

    #[test]
    fn the_earlier_of_expiry_time_and_exp_wins_and_expired_is_refused() {
        let exp = 1767225600; // 2026-01-01T00:00:00Z
        let t = jwt(serde_json::json!({"dhanClientId":"1","exp":exp}));
        let before = Utc.timestamp_opt(exp - 3600, 0).unwrap();
        let tok = Token::from_grant(
            &t,
            None,
            Some("2099-01-01T00:00:00"),
            SourceKind::Totp,
            before,
        )
        .unwrap();
        assert_eq!(tok.expires_at.timestamp(), exp);
        let after = Utc.timestamp_opt(exp + 1, 0).unwrap();
        let e = Token::from_grant(&t, None, None, SourceKind::Totp, after);
        assert!(matches!(e, Err(TokenError::Expired(_))), "{e:?}");
    }

    #[test]
    fn no_expiry_anywhere_is_an_error() {
        let err = Token::from_grant(
            "eyJh.eyJw.c2ln",
            Some("1"),
            None,
            SourceKind::Totp,
            Utc::now(),
        );
        assert_eq!(err, Err(TokenError::NoExpiry));
    }

    #[test]
    fn only_jwt_shaped_tokens_and_numeric_client_ids_are_taken() {
        let exp = Some("2030-01-01T00:00:00");
        let now = Utc::now();
        for bad in [
            "opaque",
            "a.b",
            "a..c",
            "eyJh.eyJw.sig\nLD_PRELOAD=/tmp/x.so",
            "eyJh.eyJw.sig\r",
            "eyJh.eyJw.s ig",
            "eyJh.eyJw.sig.more",
        ] {
            let e = Token::from_grant(bad, Some("1"), exp, SourceKind::Totp, now);
            assert_eq!(e, Err(TokenError::NotJwt), "{bad:?}");
        }
        for bad in ["", "12a4", "1\n2", "1 2"] {
            let e = Token::from_grant("eyJh.eyJw.c2ln", Some(bad), exp, SourceKind::Totp, now);
            let want = if bad.is_empty() {
                // An empty configured id defers to the claims, which name none here.
                TokenError::NoClientId
            } else {
                TokenError::BadClientId
            };
            assert_eq!(e, Err(want), "{bad:?}");
        }
        assert!(
            Token::from_grant(
                "eyJh.eyJw.c2ln",
                Some("1100000042"),
                exp,
                SourceKind::Totp,
                now
            )
            .is_ok()
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// JWT peeking takes any text, and any payload that decodes.
        #[test]
        fn peek_takes_anything(
            raw in ".{0,64}",
            payload in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..96),
        ) {
            let _ = Claims::peek(&raw);
            let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
            let _ = Claims::peek(&format!("eyJh.{}.sig", e.encode(&payload)));
        }
    }

    #[test]
    fn debug_never_shows_the_value() {
        let t = AccessToken::new("very-secret-value");
        assert!(!format!("{t:?}").contains("very-secret"));
    }
}
