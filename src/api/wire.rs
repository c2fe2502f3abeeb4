//! Dhan's JSON bodies, read leniently where DHAN_AUTH.md marks them uncertain.

use serde::Deserialize;

/// What generateAccessToken and consumeApp-consent answer (and RenewToken, partly).
#[derive(Debug, Deserialize)]
pub struct GrantBody {
    #[serde(
        rename = "dhanClientId",
        default,
        deserialize_with = "string_or_number"
    )]
    pub client_id: Option<String>,
    #[serde(rename = "dhanClientName")]
    pub client_name: Option<String>,
    // Renewal bodies reportedly say `token`; logins say `accessToken`.
    #[serde(rename = "accessToken", alias = "token")]
    pub access_token: Option<String>,
    #[serde(rename = "expiryTime")]
    pub expiry_time: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ConsentBody {
    #[serde(rename = "consentAppId")]
    pub consent_app_id: Option<String>,
    pub status: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ProfileBody {
    #[serde(
        rename = "dhanClientId",
        default,
        deserialize_with = "string_or_number"
    )]
    pub client_id: Option<String>,
    #[serde(rename = "tokenValidity")]
    pub token_validity: Option<String>,
    #[serde(rename = "activeSegment")]
    pub active_segment: Option<String>,
    #[serde(rename = "dataPlan")]
    pub data_plan: Option<String>,
}

/// Client ids are strings in the docs but numbers in some answers.
fn string_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<serde_json::Value>::deserialize(d)? {
        Some(serde_json::Value::String(s)) => Some(s),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        _ => None,
    })
}
