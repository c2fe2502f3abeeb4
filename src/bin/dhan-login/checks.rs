//! Format checks `init` applies as each value is typed, so a typo is caught before a
//! login spends a TOTP code or a consent on it. Messages never quote the value.
//!
//! The credentials go through the library's validators (the same ones every login runs
//! before sending); only the URL and "not empty" rules are `init`'s own.

/// What is wrong with `value` as `field`, if anything.
pub fn problem(field: &str, value: &str) -> Option<String> {
    match field {
        "pin" | "mobile" | "totp_secret" | "client_id" => {
            dhan_login::config::validate::field(field, value)
                .err()
                .map(|e| e.problem.to_string())
        }
        "login_at" => value.parse::<dhan_login::decide::IstTime>().err(),
        _ if field.ends_with("_url") => match url::Url::parse(value) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => None,
            Ok(_) => Some("must be an http(s) URL".into()),
            Err(e) => Some(format!("is not a URL: {e}")),
        },
        _ if value.trim().is_empty() => Some("is empty".into()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::problem;

    const SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

    #[test]
    fn credentials_use_the_library_rules() {
        assert!(problem("pin", "123456").is_none());
        assert!(problem("pin", "12345").is_some());
        assert!(problem("mobile", "+919999900042").is_some());
        assert!(problem("client_id", "ABC").is_some());
        assert!(problem("totp_secret", SECRET).is_none());
        let uri = format!("otpauth://totp/Dhan:1100000042?secret={SECRET}&digits=8");
        let refused = problem("totp_secret", &uri).expect("8 digits refused");
        assert!(
            !refused.contains(SECRET),
            "the secret is not quoted: {refused}"
        );
    }

    #[test]
    fn urls_must_be_http_and_other_fields_not_empty() {
        assert!(problem("redirect_url", "http://127.0.0.1:8765/dhan").is_none());
        assert!(problem("auth_base_url", "ftp://example.com").is_some());
        assert!(problem("redirect_url", "nope").is_some());
        assert!(problem("api_key", " ").is_some());
        assert!(problem("api_key", "key").is_none());
    }
}
