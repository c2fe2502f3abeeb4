//! Turning Dhan's answers into classified errors.
//!
//! auth.dhan.co documents no error bodies, so three shapes are accepted (the `errorCode`
//! object, `{"status":"error","message"}` and plain text) and the raw body is kept,
//! scrubbed, for the user to read.

use serde::Deserialize;

use crate::error::ErrorClass;

/// Cap on the body kept in an error: enough to read, not a page of HTML.
const BODY_KEEP: usize = 600;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{endpoint}: credentials rejected (HTTP {status}): {body}")]
    CredentialRejected {
        endpoint: &'static str,
        status: u16,
        body: String,
    },
    #[error("{endpoint}: daily consent limit reached (HTTP {status}): {body}")]
    ConsentLimit {
        endpoint: &'static str,
        status: u16,
        body: String,
    },
    #[error("{endpoint}: access token invalid or expired (HTTP {status}): {body}")]
    TokenInvalid {
        endpoint: &'static str,
        status: u16,
        body: String,
    },
    #[error("{endpoint}: rate limited (HTTP {status}): {body}")]
    RateLimited {
        endpoint: &'static str,
        status: u16,
        body: String,
    },
    #[error("{endpoint}: temporary failure: {detail}")]
    Transient {
        endpoint: &'static str,
        detail: String,
    },
    #[error("{endpoint}: unexpected answer (HTTP {status}): {detail}; body: {body}")]
    UnexpectedBody {
        endpoint: &'static str,
        status: u16,
        detail: String,
        body: String,
    },
    #[error("{endpoint}: refused (HTTP {status}): {body}")]
    Refused {
        endpoint: &'static str,
        status: u16,
        body: String,
    },
}

impl ApiError {
    pub fn class(&self) -> ErrorClass {
        match self {
            ApiError::CredentialRejected { .. } => ErrorClass::CredentialRejected,
            ApiError::ConsentLimit { .. } => ErrorClass::ConsentLimit,
            ApiError::TokenInvalid { .. } => ErrorClass::TokenInvalid,
            ApiError::RateLimited { .. } => ErrorClass::RateLimited,
            ApiError::Transient { .. } => ErrorClass::Transient,
            ApiError::UnexpectedBody { .. } => ErrorClass::UnexpectedBody,
            ApiError::Refused { .. } => ErrorClass::Other,
        }
    }
}

/// The error fields we look for, in whichever shape they come.
#[derive(Debug, Default, Deserialize)]
struct ErrorFields {
    #[serde(rename = "errorCode")]
    error_code: Option<serde_json::Value>,
    #[serde(rename = "errorMessage")]
    error_message: Option<String>,
    #[serde(rename = "errorType")]
    error_type: Option<String>,
    message: Option<String>,
}

/// Whether an endpoint takes the user's credentials, so that a bare 4xx from it means
/// "wrong credentials" — the conservative reading, since retrying one locks accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Credentials,
    Token,
    Other,
}

/// Reads a non-success answer, or a 200 whose body says `"status":"error"`.
pub fn classify(endpoint: &'static str, kind: Kind, status: u16, scrubbed_body: &str) -> ApiError {
    let fields: ErrorFields = serde_json::from_str(scrubbed_body).unwrap_or_default();
    let code = match &fields.error_code {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => String::new(),
    };
    let text = [
        fields.error_message.as_deref(),
        fields.message.as_deref(),
        fields.error_type.as_deref(),
        Some(scrubbed_body),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" ")
    .to_ascii_lowercase();
    let body = shorten(scrubbed_body);

    if code.eq_ignore_ascii_case("CONSENT_LIMIT_EXCEED") || text.contains("consent limit") {
        return ApiError::ConsentLimit {
            endpoint,
            status,
            body,
        };
    }
    match code.as_str() {
        "DH-901" => {
            return ApiError::TokenInvalid {
                endpoint,
                status,
                body,
            };
        }
        "DH-904" => {
            return ApiError::RateLimited {
                endpoint,
                status,
                body,
            };
        }
        "DH-908" | "DH-909" => {
            return ApiError::Transient {
                endpoint,
                detail: format!("HTTP {status}: {body}"),
            };
        }
        _ => {}
    }
    if status == 429 || text.contains("too many requests") {
        return ApiError::RateLimited {
            endpoint,
            status,
            body,
        };
    }
    if status >= 500 {
        return ApiError::Transient {
            endpoint,
            detail: format!("HTTP {status}: {body}"),
        };
    }
    let says_credentials = [
        "pin",
        "totp",
        "otp",
        "password",
        "credential",
        "app_secret",
        "secret",
        "blocked",
        "attempt",
    ]
    .iter()
    .any(|w| text.contains(w));
    match kind {
        // 400/401 from a login endpoint is Dhan saying no. A 404 or 405 is a wrong base
        // URL or a proxy: locking the credentials for it would outlive the fix.
        Kind::Credentials if matches!(status, 400 | 401) || says_credentials => {
            ApiError::CredentialRejected {
                endpoint,
                status,
                body,
            }
        }
        Kind::Token if status == 401 => ApiError::TokenInvalid {
            endpoint,
            status,
            body,
        },
        _ => ApiError::Refused {
            endpoint,
            status,
            body,
        },
    }
}

pub fn shorten(body: &str) -> String {
    let body = body.trim();
    if body.is_empty() {
        return "(empty body)".to_owned();
    }
    if body.len() <= BODY_KEEP {
        return body.to_owned();
    }
    let mut end = BODY_KEEP;
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &body[..end], body.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_error_shapes_are_read() {
        let e = classify(
            "profile",
            Kind::Token,
            401,
            r#"{"errorType":"Invalid_Authentication","errorCode":"DH-901","errorMessage":"expired"}"#,
        );
        assert_eq!(e.class(), ErrorClass::TokenInvalid);
        let e = classify(
            "generateAccessToken",
            Kind::Credentials,
            400,
            r#"{"status":"error","message":"Invalid TOTP"}"#,
        );
        assert_eq!(e.class(), ErrorClass::CredentialRejected);
        let e = classify(
            "generate-consent",
            Kind::Credentials,
            400,
            "Consent limit Exceeded",
        );
        assert_eq!(e.class(), ErrorClass::ConsentLimit);
        let e = classify("RenewToken", Kind::Token, 503, "<html>down</html>");
        assert_eq!(e.class(), ErrorClass::Transient);
        assert!(e.to_string().contains("<html>down</html>"));
    }
}
