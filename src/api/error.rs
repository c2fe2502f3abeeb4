//! Turning Dhan's answers into classified errors.
//!
//! auth.dhan.co documents no error bodies, so three shapes are accepted (the `errorCode`
//! object, `{"status":"error","message"}` and plain text) and the raw body is kept,
//! scrubbed, for the user to read.

use std::time::Duration;

use serde::Deserialize;

use crate::dhan::TOTP_STEP;
use crate::error_class::ErrorClass;

/// Cap on the body kept in an error: enough to read, not a page of HTML.
const BODY_KEEP: usize = 600;

/// What went wrong with one call to Dhan, classified for the caller's decision (retry,
/// stop, fix the credentials). Every variant names the `endpoint` (`generateAccessToken`,
/// `generate-consent`, `consumeApp-consent`, `RenewToken`, `profile`, `getIP`, `setIP`, `modifyIP`); a `body` is Dhan's
/// answer with the PIN, TOTP code, API secret, tokenId or token the request carried
/// scrubbed out, cut to 600 bytes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// A login endpoint said the PIN, TOTP code, API key or secret is wrong, or the
    /// account is blocked. Sending them again may lock the account.
    #[error("{endpoint}: credentials rejected (HTTP {status}): {body}")]
    CredentialRejected {
        /// The call that was refused.
        endpoint: &'static str,
        /// The HTTP status of the answer.
        status: u16,
        /// The answer, scrubbed and shortened.
        body: String,
    },
    /// generate-consent refused: the client id has used its consents for the IST day.
    #[error("{endpoint}: daily consent limit reached (HTTP {status}): {body}")]
    ConsentLimit {
        /// The call that was refused.
        endpoint: &'static str,
        /// The HTTP status of the answer.
        status: u16,
        /// The answer, scrubbed and shortened.
        body: String,
    },
    /// The access token sent (RenewToken, profile) is expired, revoked or not Dhan's.
    #[error("{endpoint}: access token invalid or expired (HTTP {status}): {body}")]
    TokenInvalid {
        /// The call that was refused.
        endpoint: &'static str,
        /// The HTTP status of the answer.
        status: u16,
        /// The answer, scrubbed and shortened.
        body: String,
    },
    /// Dhan wants a pause: HTTP 429, its rate-limit code, a token asked for within two
    /// minutes of the last, or a TOTP code already used (wait for the next 30 s step).
    #[error("{endpoint}: rate limited (HTTP {status}){}: {body}", retry_hint(*.retry_after))]
    RateLimited {
        /// The call that was refused.
        endpoint: &'static str,
        /// The HTTP status of the answer.
        status: u16,
        /// How long Dhan wants us to wait, when it said.
        retry_after: Option<Duration>,
        /// The answer, scrubbed and shortened.
        body: String,
    },
    /// Worth retrying later: no connection, a timeout, an answer cut off, HTTP 5xx.
    #[error("{endpoint}: temporary failure: {detail}")]
    Transient {
        /// The call that failed.
        endpoint: &'static str,
        /// What happened, without the request's URL (it may hold the PIN).
        detail: String,
    },
    /// The request never left this machine: no connection could be made (refused, no
    /// such host, the TLS handshake failed). Dhan saw nothing, so nothing was spent.
    #[error("{endpoint}: temporary failure, nothing sent: {detail}")]
    Unsent {
        /// The call that could not be made.
        endpoint: &'static str,
        /// What happened, without the request's URL (it may hold the PIN).
        detail: String,
    },
    /// An answer that cannot be read as the endpoint's (no token in it, not JSON, over
    /// 1 MiB): an API change, or something between us and Dhan.
    #[error("{endpoint}: unexpected answer (HTTP {status}): {detail}; body: {body}")]
    UnexpectedBody {
        /// The call whose answer could not be read.
        endpoint: &'static str,
        /// The HTTP status of the answer.
        status: u16,
        /// What was wrong with it.
        detail: String,
        /// The answer, scrubbed and shortened (empty when not kept).
        body: String,
    },
    /// Any other refusal (a 404 from a wrong base URL, a proxy's page): nothing it says
    /// is taken to be about the credentials.
    #[error("{endpoint}: refused (HTTP {status}): {body}")]
    Refused {
        /// The call that was refused.
        endpoint: &'static str,
        /// The HTTP status of the answer.
        status: u16,
        /// The answer, scrubbed and shortened.
        body: String,
    },
}

fn retry_hint(after: Option<Duration>) -> String {
    after.map_or_else(String::new, |d| {
        format!("; try again after {} s", d.as_secs())
    })
}

impl ApiError {
    /// The endpoint that answered.
    pub fn endpoint(&self) -> &'static str {
        match self {
            ApiError::CredentialRejected { endpoint, .. }
            | ApiError::ConsentLimit { endpoint, .. }
            | ApiError::TokenInvalid { endpoint, .. }
            | ApiError::RateLimited { endpoint, .. }
            | ApiError::Transient { endpoint, .. }
            | ApiError::Unsent { endpoint, .. }
            | ApiError::UnexpectedBody { endpoint, .. }
            | ApiError::Refused { endpoint, .. } => endpoint,
        }
    }

    /// How long to wait before asking again, when Dhan said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ApiError::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The kind of failure, as the command line's exit codes and the daemon see it.
    pub fn class(&self) -> ErrorClass {
        match self {
            ApiError::CredentialRejected { .. } => ErrorClass::CredentialRejected,
            ApiError::ConsentLimit { .. } => ErrorClass::ConsentLimit,
            ApiError::TokenInvalid { .. } => ErrorClass::TokenInvalid,
            ApiError::RateLimited { .. } => ErrorClass::RateLimited,
            ApiError::Transient { .. } | ApiError::Unsent { .. } => ErrorClass::Transient,
            ApiError::UnexpectedBody { .. } => ErrorClass::UnexpectedBody,
            ApiError::Refused { .. } => ErrorClass::Other,
        }
    }
}

/// The error fields of Dhan's JSON answers, in whichever of its shapes they come.
#[derive(Debug, Default, Deserialize)]
struct ErrorFields {
    #[serde(rename = "errorCode")]
    error_code: Option<serde_json::Value>,
    #[serde(rename = "errorMessage")]
    error_message: Option<String>,
    #[serde(rename = "errorType")]
    error_type: Option<String>,
    message: Option<String>,
    status: Option<String>,
}

/// What Dhan's JSON said: its error code and the words of its messages. Only this is
/// read for a verdict; an HTML page from a proxy or CDN says nothing about the account.
struct Said {
    code: String,
    words: Vec<String>,
}

impl Said {
    /// None unless the body is a JSON object carrying at least one of Dhan's error fields.
    fn parse(body: &str) -> Option<Said> {
        let f: ErrorFields = serde_json::from_str(body.trim()).ok()?;
        let code = match &f.error_code {
            Some(serde_json::Value::String(s)) => s.trim().to_owned(),
            Some(serde_json::Value::Null) | None => String::new(),
            Some(v) => v.to_string(),
        };
        let texts = [
            f.error_message.as_deref(),
            f.message.as_deref(),
            f.error_type.as_deref(),
        ];
        if code.is_empty() && f.status.is_none() && texts.iter().all(Option::is_none) {
            return None;
        }
        let words = texts
            .into_iter()
            .flatten()
            .flat_map(|t| t.split(|c: char| !c.is_alphanumeric()))
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect();
        Some(Said { code, words })
    }

    /// Whether the messages hold these words one after the other (whole words only).
    fn says(&self, phrase: &str) -> bool {
        let want: Vec<&str> = phrase.split(' ').collect();
        self.words
            .windows(want.len())
            .any(|w| w.iter().zip(&want).all(|(a, b)| a == b))
    }

    fn names_credentials(&self) -> bool {
        CREDENTIAL_WORDS.iter().any(|w| self.says(w))
    }
}

/// Words with which a login endpoint says the credentials were wrong.
const CREDENTIAL_WORDS: [&str; 11] = [
    "pin",
    "totp",
    "otp",
    "password",
    "credential",
    "credentials",
    "secret",
    "app_secret",
    "blocked",
    "attempts",
    "unauthorized",
];

/// Whether an endpoint takes the user's credentials, so that a 400/401 in Dhan's JSON
/// from it means "wrong credentials": the conservative reading, since retrying one locks
/// accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Credentials,
    Token,
    Other,
}

/// Reads a non-success answer, or a 200 whose body says `"status":"error"`.
pub(crate) fn classify(
    endpoint: &'static str,
    kind: Kind,
    status: u16,
    scrubbed_body: &str,
) -> ApiError {
    let said = Said::parse(scrubbed_body);
    let body = shorten(scrubbed_body);
    if let Some(s) = &said {
        if s.code.eq_ignore_ascii_case("CONSENT_LIMIT_EXCEED") || s.says("consent limit") {
            return ApiError::ConsentLimit {
                endpoint,
                status,
                body,
            };
        }
        match s.code.as_str() {
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
                    retry_after: None,
                    body,
                };
            }
            // RenewToken's "not allowed for this token type" comes as HTTP 500: a
            // verdict on the token's kind, never an outage to retry nor a credential.
            "DH-905" if endpoint == "RenewToken" => {
                return ApiError::Refused {
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
        // The code was right but spent: by a login of another machine or process (one
        // that died mid-login), or by the user's authenticator elsewhere. Nothing about
        // the PIN or the secret is wrong, so it must not lock them: wait for the next
        // 30 s step, as for a rate limit.
        if kind == Kind::Credentials && s.says("already used") {
            return ApiError::RateLimited {
                endpoint,
                status,
                retry_after: Some(TOTP_STEP),
                body,
            };
        }
        // Dhan counts its 2 minutes from the last attempt, this one included: the next
        // may go `MINT_INTERVAL` after it, never a credential verdict.
        if s.says("every 2 minutes") {
            return ApiError::RateLimited {
                endpoint,
                status,
                retry_after: Some(crate::dhan::MINT_INTERVAL),
                body,
            };
        }
        if s.says("too many requests") || s.says("rate limit") {
            return ApiError::RateLimited {
                endpoint,
                status,
                retry_after: None,
                body,
            };
        }
    }
    if status == 429 {
        return ApiError::RateLimited {
            endpoint,
            status,
            retry_after: None,
            body,
        };
    }
    if status >= 500 {
        return ApiError::Transient {
            endpoint,
            detail: format!("HTTP {status}: {body}"),
        };
    }
    match (kind, &said) {
        // A 400/401 from a login endpoint in Dhan's JSON is Dhan saying no. A 404 or 405
        // is a wrong base URL or a proxy: locking the credentials for it would outlive
        // the fix.
        (Kind::Credentials, Some(s)) if matches!(status, 400 | 401) || s.names_credentials() => {
            ApiError::CredentialRejected {
                endpoint,
                status,
                body,
            }
        }
        (Kind::Token, _) if status == 401 => ApiError::TokenInvalid {
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

pub(crate) fn shorten(body: &str) -> String {
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
    use proptest::prelude::*;

    use ErrorClass::*;
    use Kind::{Credentials as Login, Other as Neutral, Token};

    const GEN: &str = "generateAccessToken";

    /// (endpoint kind, HTTP status, body, expected class): what each answer means.
    const TABLE: &[(Kind, u16, &str, ErrorClass)] = &[
        // Dhan's answers, as its v2 docs and public scripts show them.
        (
            Login,
            200,
            r#"{"status":"error","message":"Invalid Pin"}"#,
            CredentialRejected,
        ),
        (
            Login,
            400,
            r#"{"status":"error","message":"Invalid TOTP"}"#,
            CredentialRejected,
        ),
        (
            Login,
            401,
            r#"{"status":"error","message":"Unauthorized"}"#,
            CredentialRejected,
        ),
        (
            Login,
            401,
            r#"{"errorType":"Invalid_Authentication","errorCode":"INVALID_APP_CREDENTIALS","errorMessage":"Invalid app_id or app_secret"}"#,
            CredentialRejected,
        ),
        (
            Login,
            200,
            r#"{"status":"error","message":"Token can be generated once every 2 minutes."}"#,
            RateLimited,
        ),
        (
            Login,
            400,
            r#"{"status":"error","message":"Token can be generated once every 2 minutes."}"#,
            RateLimited,
        ),
        (
            Login,
            400,
            r#"{"errorType":"Consent_Limit","errorCode":"CONSENT_LIMIT_EXCEED","errorMessage":"Consent limit Exceeded"}"#,
            ConsentLimit,
        ),
        (
            Token,
            401,
            r#"{"errorType":"Invalid_Authentication","errorCode":"DH-901","errorMessage":"Client ID or user generated access token is invalid or expired."}"#,
            TokenInvalid,
        ),
        (
            Token,
            400,
            r#"{"errorType":"Input_Exception","errorCode":"DH-904","errorMessage":"Too many requests"}"#,
            RateLimited,
        ),
        (
            Token,
            500,
            r#"{"errorType":"Internal","errorCode":"DH-908","errorMessage":"Internal server error"}"#,
            Transient,
        ),
        (
            Token,
            400,
            r#"{"errorType":"Input_Exception","errorCode":"DH-905","errorMessage":"Missing required fields"}"#,
            Other,
        ),
        // A 200 error Dhan did not explain is no verdict on the credentials.
        (
            Login,
            200,
            r#"{"status":"error","message":"Something went wrong"}"#,
            Other,
        ),
        // Not Dhan's JSON: a proxy, a CDN, a wrong base URL. Never a credential verdict.
        (
            Login,
            403,
            "<html><h1>Sorry, you have been blocked</h1>This attempt was logged. Invalid PIN? OTP secret</html>",
            Other,
        ),
        (Login, 400, "Bad Request", Other),
        (Login, 401, "Unauthorized", Other),
        (Login, 400, "Consent limit Exceeded", Other),
        (
            Login,
            404,
            r#"{"timestamp":"2026-01-01","path":"/app/generateAccessToken"}"#,
            Other,
        ),
        (Login, 429, "<html>slow down</html>", RateLimited),
        (Login, 502, "<html>bad gateway</html>", Transient),
        // Whole words only: "spinning" holds "pin", "shotp" holds "otp".
        (
            Login,
            403,
            r#"{"message":"spinning shotp secretary"}"#,
            Other,
        ),
        (
            Login,
            403,
            r#"{"message":"Account blocked after 3 failed attempts"}"#,
            CredentialRejected,
        ),
        (
            Neutral,
            400,
            r#"{"status":"error","message":"Invalid PIN"}"#,
            Other,
        ),
    ];

    #[test]
    fn classify_reads_only_what_dhan_says() {
        for (i, (kind, status, body, want)) in TABLE.iter().enumerate() {
            let got = classify(GEN, *kind, *status, body);
            assert_eq!(got.class(), *want, "row {i}: {kind:?} {status} {body}");
        }
    }

    #[test]
    fn renewal_refused_for_the_token_type_is_a_refusal_not_an_outage() {
        let body = r#"{"errorType":"INVALID_REQUEST","errorCode":"DH-905","errorMessage":"Renewal of token not allowed for this token type"}"#;
        let e = classify("RenewToken", Kind::Token, 500, body);
        assert!(matches!(e, ApiError::Refused { status: 500, .. }), "{e:?}");
        assert_eq!(e.class(), Other);
        // An expired token answered with HTTP 200 and an error body is still refused.
        let expired = r#"{"errorType":"Invalid_Authentication","errorCode":"DH-901","errorMessage":"Client ID or user generated access token is invalid or expired."}"#;
        assert_eq!(
            classify("RenewToken", Kind::Token, 200, expired).class(),
            TokenInvalid
        );
        // Elsewhere a 500 stays an outage.
        assert_eq!(
            classify("profile", Kind::Token, 500, body).class(),
            Transient
        );
    }

    #[test]
    fn the_two_minute_answer_says_when_to_try_again() {
        let e = classify(
            GEN,
            Login,
            200,
            r#"{"status":"error","message":"Token can be generated once every 2 minutes."}"#,
        );
        assert_eq!(e.retry_after(), Some(Duration::from_secs(125)));
        assert!(e.to_string().contains("try again after 125 s"), "{e}");
    }

    #[test]
    fn a_totp_already_used_is_a_wait_for_the_next_code_not_a_rejection() {
        let e = classify(
            GEN,
            Login,
            401,
            r#"{"status":"error","message":"TOTP already used, wait for the next code"}"#,
        );
        assert_eq!(e.class(), RateLimited, "{e}");
        assert_eq!(e.retry_after(), Some(TOTP_STEP));
        // A wrong TOTP is still a rejection.
        let e = classify(
            GEN,
            Login,
            401,
            r#"{"status":"error","message":"Invalid TOTP"}"#,
        );
        assert_eq!(e.class(), CredentialRejected);
    }

    /// Words that would sway a careless classifier, and JSON-ish fragments.
    const LOADED_WORDS: &[&str] = &[
        "pin",
        "PIN",
        "totp",
        "otp",
        "secret",
        "blocked",
        "attempts",
        "Unauthorized",
        "credentials",
        "every 2 minutes",
        "<html>",
        "{",
        "}",
        "\"message\":",
        " ",
        "\n",
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Whatever a non-JSON body says, at whatever status, it is no credential verdict.
        #[test]
        fn no_non_json_body_is_a_credential_verdict(
            status in 100u16..600,
            words in proptest::collection::vec(
                prop_oneof![
                    proptest::sample::select(LOADED_WORDS).prop_map(str::to_owned),
                    "[a-zA-Z0-9 <>/=\"':,.!-]{0,12}",
                ],
                0..24,
            ),
        ) {
            let body: String = words.concat();
            prop_assume!(serde_json::from_str::<serde_json::Value>(&body).is_err());
            for kind in [Login, Token, Neutral] {
                let e = classify(GEN, kind, status, &body);
                prop_assert_ne!(e.class(), CredentialRejected, "{} {}", status, body);
            }
        }

        /// Arbitrary bytes (lossily decoded) never panic the classifier.
        #[test]
        fn classify_takes_any_text(status in 0u16..1000, bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let body = String::from_utf8_lossy(&bytes);
            let _ = classify(GEN, Login, status, &body);
        }
    }
}
