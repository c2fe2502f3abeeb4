//! Dhan's JSON bodies, read leniently where Dhan's v2 docs leave the shape
//! uncertain (numbers for strings, `token` for `accessToken`).

use serde::Deserialize;

/// What generateAccessToken and consumeApp-consent answer (and RenewToken, partly).
#[derive(Debug, Deserialize)]
pub(super) struct GrantBody {
    #[serde(
        rename = "dhanClientId",
        default,
        deserialize_with = "string_or_number"
    )]
    pub(super) client_id: Option<String>,
    #[serde(rename = "dhanClientName")]
    pub(super) client_name: Option<String>,
    // Renewal bodies reportedly say `token`; logins say `accessToken`.
    #[serde(rename = "accessToken", alias = "token")]
    pub(super) access_token: Option<String>,
    #[serde(rename = "expiryTime")]
    pub(super) expiry_time: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct ConsentBody {
    #[serde(rename = "consentAppId")]
    pub(super) consent_app_id: Option<String>,
    pub(super) status: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct ProfileBody {
    #[serde(
        rename = "dhanClientId",
        default,
        deserialize_with = "string_or_number"
    )]
    pub(super) client_id: Option<String>,
    #[serde(rename = "tokenValidity")]
    pub(super) token_validity: Option<String>,
    #[serde(rename = "activeSegment")]
    pub(super) active_segment: Option<String>,
    #[serde(rename = "dataPlan")]
    pub(super) data_plan: Option<String>,
}

/// Client ids are strings in the docs but numbers in some answers.
fn string_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<serde_json::Value>::deserialize(d)? {
        Some(serde_json::Value::String(s)) => Some(s),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SEEDS: &[&str] = &[
        r#"{"dhanClientId":"1000000001","dhanClientName":"JOHN DOE","dhanClientUcc":"CEFE4265","givenPowerOfAttorney":true,"accessToken":"a.b.c","expiryTime":"2026-01-01T00:00:00.000"}"#,
        r#"{"dhanClientId":1000000001,"token":"a.b.c"}"#,
        r#"{"consentAppId":"940b0ca1","consentAppStatus":"GENERATED","status":"success"}"#,
        r#"{"dhanClientId":"1100003626","tokenValidity":"30/03/2025 15:37","activeSegment":"Equity"}"#,
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Dhan's bodies, cut and spliced anywhere, or any bytes: parsed or refused,
        /// never a panic.
        #[test]
        fn bodies_parse_or_fail_cleanly(
            seed in proptest::sample::select(SEEDS),
            cut in 0usize..200,
            splice in "[{}\\[\\]\":,0-9a-zA-Z ]{0,12}",
            bytes in proptest::collection::vec(any::<u8>(), 0..128),
        ) {
            let cut = cut.min(seed.len());
            let mangled = format!("{}{splice}{}", &seed[..cut], &seed[cut..]);
            for text in [mangled.as_str(), &String::from_utf8_lossy(&bytes)] {
                let _ = serde_json::from_str::<GrantBody>(text);
                let _ = serde_json::from_str::<ConsentBody>(text);
                let _ = serde_json::from_str::<ProfileBody>(text);
            }
        }
    }
}
