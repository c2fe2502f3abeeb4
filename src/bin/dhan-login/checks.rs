//! Format checks `init` applies as each value is typed, so a typo is caught before a
//! login spends a TOTP code or a consent on it. Messages never quote the value.
//!
//! These are the same rules `config check` applies; they live behind this one function
//! so that it can call the library's validators once those are public.

use std::sync::Arc;

use secrecy::SecretString;

/// What is wrong with `value` as `field`, if anything.
pub fn problem(field: &str, value: &str) -> Option<String> {
    let digits = |n: usize| value.len() == n && value.chars().all(|c| c.is_ascii_digit());
    match field {
        "client_id" if value.is_empty() || !value.chars().all(|c| c.is_ascii_digit()) => {
            Some("must be the numeric Dhan client id".into())
        }
        "mobile" if !digits(10) => Some("must be the 10-digit mobile number".into()),
        "pin" if !digits(6) => Some("must be the 6-digit PIN".into()),
        "totp_secret" => totp_problem(value),
        _ if field.ends_with("_url") => match url::Url::parse(value) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => None,
            Ok(_) => Some("must be an http(s) URL".into()),
            Err(e) => Some(format!("is not a URL: {e}")),
        },
        _ if value.trim().is_empty() => Some("is empty".into()),
        _ => None,
    }
}

/// Base32 (80 bits or more) or an `otpauth://totp/` URI with the parameters Dhan's
/// authenticator codes use: SHA1, 6 digits, 30 seconds.
fn totp_problem(value: &str) -> Option<String> {
    let clock = Arc::new(dhan_login::SystemClock);
    if let Err(e) = dhan_login::TotpGenerator::new(&SecretString::from(value.to_owned()), clock) {
        return Some(e.to_string());
    }
    let uri = url::Url::parse(value.trim()).ok()?;
    if uri.scheme() != "otpauth" {
        return None;
    }
    if uri.host_str() != Some("totp") {
        return Some("the otpauth:// URI is not a TOTP one (otpauth://totp/…)".into());
    }
    for (key, value) in uri.query_pairs() {
        let (wanted, ok) = match key.to_ascii_lowercase().as_str() {
            "algorithm" => ("SHA1", value.eq_ignore_ascii_case("SHA1")),
            "digits" => ("6", value == "6"),
            "period" => ("30", value == "30"),
            _ => continue,
        };
        if !ok {
            return Some(format!(
                "the otpauth:// URI has {key}={value}; Dhan's codes use {key}={wanted}"
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::problem;

    const SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

    #[test]
    fn digits_fields_want_their_length() {
        assert!(problem("pin", "123456").is_none());
        assert!(problem("pin", "12345").is_some());
        assert!(problem("pin", "12345a").is_some());
        assert!(problem("mobile", "9999900042").is_none());
        assert!(problem("mobile", "+919999900042").is_some());
        assert!(problem("client_id", "1100000042").is_none());
        assert!(problem("client_id", "").is_some());
        assert!(problem("client_id", "ABC").is_some());
    }

    #[test]
    fn totp_takes_base32_and_dhan_shaped_uris_only() {
        assert!(problem("totp_secret", SECRET).is_none());
        assert!(problem("totp_secret", "not base32!").is_some());
        let uri = |q: &str| format!("otpauth://totp/Dhan:1100000042?secret={SECRET}{q}");
        assert!(problem("totp_secret", &uri("")).is_none());
        assert!(problem("totp_secret", &uri("&algorithm=SHA1&digits=6&period=30")).is_none());
        let sha256 = problem("totp_secret", &uri("&algorithm=SHA256")).expect("refused");
        assert!(sha256.contains("algorithm"), "{sha256}");
        assert!(
            !sha256.contains(SECRET),
            "the secret is not quoted: {sha256}"
        );
        assert!(problem("totp_secret", &uri("&digits=8")).is_some());
        assert!(problem("totp_secret", &uri("&period=60")).is_some());
    }

    #[test]
    fn redirect_url_must_be_http() {
        assert!(problem("redirect_url", "http://127.0.0.1:8765/dhan").is_none());
        assert!(problem("redirect_url", "ftp://example.com").is_some());
        assert!(problem("redirect_url", "nope").is_some());
    }
}
