//! The shape of each credential, checked before anything is sent: Dhan counts a malformed
//! PIN or code as a failed attempt, and failed attempts lock accounts. Used by the login
//! paths, `config check` and `init`; errors name the field, never the value.

use secrecy::SecretString;

use crate::totp::{SystemClock, TotpError, TotpGenerator};

/// A value that cannot be what its field needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct Invalid {
    /// The profile field (`pin`, `mobile`, `totp_secret`, `client_id`).
    pub field: &'static str,
    /// What is wrong with the value.
    pub problem: Problem,
}

/// Why a value cannot be what its field needs. The messages never quote the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    /// The value is empty.
    #[error("is empty")]
    Empty,
    /// Only the length is told: the value itself is a secret.
    #[error("must be exactly {want} digits (the value given has {got} characters)")]
    Digits {
        /// How many digits the field takes (6 for a PIN, 10 for a mobile number).
        want: usize,
        /// How many characters the value has.
        got: usize,
    },
    /// The client id holds something other than ASCII digits.
    #[error("must hold digits only (the numeric Dhan client id)")]
    NotDigits,
    /// The TOTP secret is not base32, or its URI asks for what Dhan does not use (not
    /// SHA1, 6 digits, 30 s); the text says which, without the secret.
    #[error("{0}")]
    Totp(String),
    /// A space, newline or other control character: the value goes into an HTTP header,
    /// where Dhan never sees it whole (every login then failed as "temporary").
    #[error("holds a space, line break or other control character (it is sent in an HTTP header)")]
    NotAHeaderValue,
}

/// The 6-digit trading PIN.
pub fn pin(value: &str) -> Result<(), Invalid> {
    digits("pin", value, 6)
}

/// The 10-digit mobile number the consent page asks for.
pub fn mobile(value: &str) -> Result<(), Invalid> {
    digits("mobile", value, 10)
}

/// The numeric Dhan client id.
pub fn client_id(value: &str) -> Result<(), Invalid> {
    let invalid = |problem| Invalid {
        field: "client_id",
        problem,
    };
    if value.is_empty() {
        return Err(invalid(Problem::Empty));
    }
    if !value.chars().all(|c| c.is_ascii_digit()) {
        return Err(invalid(Problem::NotDigits));
    }
    Ok(())
}

/// A base32 TOTP secret or an `otpauth://` URI whose parameters Dhan accepts (SHA1,
/// 6 digits, 30 s).
pub fn totp_secret(value: &str) -> Result<(), Invalid> {
    let secret = SecretString::from(value.to_owned());
    TotpGenerator::new(&secret, std::sync::Arc::new(SystemClock))
        .map(|_| ())
        .map_err(|e: TotpError| Invalid {
            field: "totp_secret",
            // TotpError's messages start with the field's name, which Invalid (and every
            // caller that prints a Problem) puts in front already.
            problem: Problem::Totp(e.to_string().trim_start_matches("totp_secret ").to_owned()),
        })
}

/// The API key or secret of a Dhan app: printable ASCII without spaces, as sent in the
/// generate-consent headers.
pub fn api_credential(field: &'static str, value: &str) -> Result<(), Invalid> {
    if value.is_empty() {
        return Err(Invalid {
            field,
            problem: Problem::Empty,
        });
    }
    if !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Invalid {
            field,
            problem: Problem::NotAHeaderValue,
        });
    }
    Ok(())
}

/// The validator of a secret field, for code that goes through fields by name.
pub fn field(name: &str, value: &str) -> Result<(), Invalid> {
    match name {
        "pin" => pin(value),
        "mobile" => mobile(value),
        "totp_secret" => totp_secret(value),
        "client_id" => client_id(value),
        "api_key" => api_credential("api_key", value),
        "api_secret" => api_credential("api_secret", value),
        _ => Ok(()),
    }
}

fn digits(field: &'static str, value: &str, want: usize) -> Result<(), Invalid> {
    let got = value.chars().count();
    if got == 0 {
        return Err(Invalid {
            field,
            problem: Problem::Empty,
        });
    }
    if got != want || !value.chars().all(|c| c.is_ascii_digit()) {
        return Err(Invalid {
            field,
            problem: Problem::Digits { want, got },
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_field_has_its_shape() {
        assert!(pin("135790").is_ok());
        for bad in ["13579", "1357901", "13579a", "", "١٣٥٧٩٠"] {
            let e = pin(bad).unwrap_err();
            assert_eq!(e.field, "pin");
            assert!(!bad.is_empty() || e.problem == Problem::Empty);
        }
        assert!(mobile("9999900042").is_ok());
        assert!(mobile("99999OOO42").is_err());
        assert!(mobile("999990004").is_err());
        assert!(client_id("1100000042").is_ok());
        assert_eq!(client_id("11000x").unwrap_err().problem, Problem::NotDigits);
        assert!(totp_secret("MOCKDHANDEMOTOTPSECRETMOCKDHAN23").is_ok());
        let e = totp_secret("otpauth://totp/D:1?secret=MOCKDHANDEMOTOTPSECRETMOCKDHAN23&digits=8")
            .unwrap_err();
        assert_eq!(e.field, "totp_secret");
        assert!(!e.to_string().contains("MOCKDHAN"), "{e}");
    }

    #[test]
    fn a_bad_totp_secret_names_the_field_once() {
        for bad in ["JBSWY3DP", "not base32 !!"] {
            let e = totp_secret(bad).unwrap_err().to_string();
            assert!(e.starts_with("totp_secret: "), "{e}");
            assert_eq!(e.matches("totp_secret").count(), 1, "{e}");
        }
        let e = totp_secret("JBSWY3DP").unwrap_err();
        assert_eq!(
            e.problem.to_string(),
            "decodes to 5 bytes; at least 10 (80 bits) are needed"
        );
    }

    #[test]
    fn messages_never_hold_the_value() {
        let e = pin("98765").unwrap_err().to_string();
        assert!(!e.contains("98765"), "{e}");
        assert!(e.starts_with("pin: must be exactly 6 digits"), "{e}");
    }
}
