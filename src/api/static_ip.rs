//! The static IP calls (`/v2/ip/getIP`, `setIP`, `modifyIP`): since April 2026 Dhan's
//! order APIs accept only requests from an IP whitelisted here. They take a live token.

use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::error::Kind;
use super::{DhanApi, join};
use crate::redact::Scrubber;

/// Which of the account's two whitelisted addresses a call is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum IpFlag {
    /// The first address.
    Primary,
    /// The second address.
    Secondary,
}

impl fmt::Display for IpFlag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IpFlag::Primary => "PRIMARY",
            IpFlag::Secondary => "SECONDARY",
        })
    }
}

/// The account's whitelisted addresses, as `getIP` reports them. An empty slot is `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaticIps {
    /// The primary address.
    pub primary: Option<String>,
    /// The secondary address.
    pub secondary: Option<String>,
    /// The first day the primary address may be changed (`modifyDatePrimary`).
    pub modify_date_primary: Option<NaiveDate>,
    /// The first day the secondary address may be changed (`modifyDateSecondary`).
    pub modify_date_secondary: Option<NaiveDate>,
}

#[derive(Debug, Deserialize)]
struct IpBody {
    #[serde(rename = "primaryIP")]
    primary: Option<String>,
    #[serde(rename = "secondaryIP")]
    secondary: Option<String>,
    #[serde(rename = "modifyDatePrimary")]
    modify_date_primary: Option<String>,
    #[serde(rename = "modifyDateSecondary")]
    modify_date_secondary: Option<String>,
}

#[derive(Debug, Deserialize)]
struct SetBody {
    message: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SetRequest<'a> {
    dhan_client_id: &'a str,
    ip: &'a str,
    ip_flag: IpFlag,
}

fn filled(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// `yyyy-MM-dd`, the one shape public clients parse; anything else is left out.
fn date(s: Option<String>) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s?.trim(), "%Y-%m-%d").ok()
}

impl DhanApi {
    /// `GET {api}/ip/getIP`: the whitelisted addresses and when each may change.
    pub async fn get_ip(&self, access_token: &str) -> Result<StaticIps, super::ApiError> {
        let req = self
            .http()?
            .get(join(&self.api_base, "ip/getIP"))
            .header("access-token", access_token);
        let scrub = Scrubber::new().with(access_token);
        let body: IpBody = self.send("getIP", Kind::Token, req, &scrub).await?;
        Ok(StaticIps {
            primary: filled(body.primary),
            secondary: filled(body.secondary),
            modify_date_primary: date(body.modify_date_primary),
            modify_date_secondary: date(body.modify_date_secondary),
        })
    }

    /// `POST {api}/ip/setIP`: whitelists `ip` in an empty slot. Dhan then refuses a
    /// change of that slot for seven days. Returns Dhan's message, when it sent one.
    pub async fn set_ip(
        &self,
        access_token: &str,
        client_id: &str,
        flag: IpFlag,
        ip: &str,
    ) -> Result<Option<String>, super::ApiError> {
        self.write_ip("setIP", false, access_token, client_id, flag, ip)
            .await
    }

    /// `PUT {api}/ip/modifyIP`: replaces the address in a slot, once its modify date
    /// has come. Returns Dhan's message, when it sent one.
    pub async fn modify_ip(
        &self,
        access_token: &str,
        client_id: &str,
        flag: IpFlag,
        ip: &str,
    ) -> Result<Option<String>, super::ApiError> {
        self.write_ip("modifyIP", true, access_token, client_id, flag, ip)
            .await
    }

    async fn write_ip(
        &self,
        endpoint: &'static str,
        modify: bool,
        access_token: &str,
        client_id: &str,
        flag: IpFlag,
        ip: &str,
    ) -> Result<Option<String>, super::ApiError> {
        let url = join(&self.api_base, &format!("ip/{endpoint}"));
        let http = self.http()?;
        let req = if modify {
            http.put(url)
        } else {
            http.post(url)
        };
        let req = req
            .header("access-token", access_token)
            .header("dhanClientId", client_id)
            .json(&SetRequest {
                dhan_client_id: client_id,
                ip,
                ip_flag: flag,
            });
        let scrub = Scrubber::new().with(access_token);
        let body: SetBody = self.send(endpoint, Kind::Token, req, &scrub).await?;
        Ok(filled(body.message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_slots_and_odd_dates_read_as_unknown() {
        let body: IpBody = serde_json::from_str(
            r#"{"primaryIP":"10.200.10.10","secondaryIP":"","modifyDatePrimary":"2026-04-08","modifyDateSecondary":"soon"}"#,
        )
        .unwrap();
        assert_eq!(filled(body.primary).as_deref(), Some("10.200.10.10"));
        assert_eq!(filled(body.secondary), None);
        assert_eq!(
            date(body.modify_date_primary),
            NaiveDate::from_ymd_opt(2026, 4, 8)
        );
        assert_eq!(date(body.modify_date_secondary), None);
    }

    #[test]
    fn the_body_names_the_slot_as_dhan_spells_it() {
        let v = serde_json::to_value(SetRequest {
            dhan_client_id: "1100000042",
            ip: "203.0.113.7",
            ip_flag: IpFlag::Secondary,
        })
        .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"dhanClientId":"1100000042","ip":"203.0.113.7","ipFlag":"SECONDARY"})
        );
    }
}
