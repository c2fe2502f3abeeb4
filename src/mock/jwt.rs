//! Token strings, ids and Dhan's time formats.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use rand::RngCore;

use super::TokenKind;

/// Dhan states times in IST without saying so: the client's own offset, one definition.
pub(crate) use crate::token::ist;

/// `expiryTime` as Dhan writes it: IST wall-clock time, milliseconds, no offset.
pub(crate) fn expiry_time(at: DateTime<Utc>) -> String {
    at.with_timezone(&ist())
        .format("%Y-%m-%dT%H:%M:%S%.3f")
        .to_string()
}

/// `tokenValidity` of /v2/profile: `DD/MM/YYYY HH:MM` in IST.
pub(crate) fn token_validity(at: DateTime<Utc>) -> String {
    at.with_timezone(&ist())
        .format("%d/%m/%Y %H:%M")
        .to_string()
}

/// `dataValidity` of /v2/profile: `YYYY-MM-DD HH:MM:SS.0`, IST.
pub(crate) fn data_validity(at: DateTime<Utc>) -> String {
    at.with_timezone(&ist())
        .format("%Y-%m-%d %H:%M:%S.0")
        .to_string()
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    rand::rng().fill_bytes(&mut bytes);
    bytes
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A version-4-looking UUID, the shape Dhan's consentAppId has.
pub(crate) fn uuid_like() -> String {
    let mut b = random_bytes::<16>();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex(&b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// An opaque id for login sessions.
pub(crate) fn session_id() -> String {
    hex(&random_bytes::<16>())
}

/// A JWT-shaped token: real header and claims, random bytes where the signature goes.
/// Nothing verifies it; the server recognises its own tokens by their exact string.
pub(crate) fn mint(
    client_id: &str,
    kind: TokenKind,
    issued: DateTime<Utc>,
    expires: DateTime<Utc>,
) -> String {
    let header = serde_json::json!({"alg": "HS512", "typ": "JWT"});
    let claims = serde_json::json!({
        "iss": "dhan",
        "partnerId": "",
        "exp": expires.timestamp(),
        "iat": issued.timestamp(),
        "tokenConsumerType": kind.as_str(),
        "dhanClientId": client_id,
        "userRegion": "IN",
        // Two tokens minted in the same second must still differ.
        "jti": uuid_like(),
    });
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode(random_bytes::<64>()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn expiry_is_ist_wall_clock_without_offset() {
        let at = Utc.with_ymd_and_hms(2025, 12, 31, 18, 30, 0).unwrap();
        assert_eq!(expiry_time(at), "2026-01-01T00:00:00.000");
        assert_eq!(token_validity(at), "01/01/2026 00:00");
    }

    #[test]
    fn token_carries_claims() {
        let now = Utc::now();
        let t = mint("42", TokenKind::SelfWeb, now, now);
        let parts: Vec<&str> = t.split('.').collect();
        assert_eq!(parts.len(), 3);
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(claims["tokenConsumerType"], "SELF");
        assert_eq!(claims["dhanClientId"], "42");
        assert_eq!(claims["exp"], now.timestamp());
        assert_ne!(t, mint("42", TokenKind::SelfWeb, now, now));
    }

    #[test]
    fn uuid_like_has_uuid_shape() {
        let id = uuid_like();
        let lens: Vec<usize> = id.split('-').map(str::len).collect();
        assert_eq!(lens, [8, 4, 4, 4, 12]);
    }
}
