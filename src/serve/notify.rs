//! Failure events POSTed as JSON to `notify.webhook`. The `text` field makes the same
//! URL work as a Telegram `sendMessage` call; tokens and secrets are never in an event.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use url::Url;

use super::settings::{NotifySettings, webhook_host};
use crate::error::Error;
use crate::error_class::ErrorClass;
use crate::token::ist;

/// A slow receiver must not hold up the profile's refreshes for long.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// Error messages come from the library's errors, which never carry secrets; they are
/// cut short all the same so that an event stays a chat message.
const MESSAGE_MAX: usize = 500;

pub(crate) struct Notifier {
    target: Option<(reqwest::Client, Url)>,
}

#[derive(Debug, Serialize)]
pub(crate) struct Event {
    /// `fatal` or `expiring`.
    pub(crate) event: &'static str,
    pub(crate) profile: String,
    /// What failed, in a few words.
    pub(crate) what: &'static str,
    pub(crate) class: Option<ErrorClass>,
    pub(crate) message: Option<String>,
    /// When the daemon tries again on its own; null when only a person can unblock it.
    pub(crate) next_retry: Option<DateTime<Utc>>,
    pub(crate) expires_at: Option<DateTime<Utc>>,
    pub(crate) at: DateTime<Utc>,
    /// One human sentence (Telegram shows this field).
    pub(crate) text: String,
}

impl Notifier {
    pub(crate) fn new(settings: &NotifySettings) -> Result<Notifier, Error> {
        let target = match &settings.webhook {
            None => None,
            Some(url) => {
                let http = reqwest::Client::builder()
                    .timeout(SEND_TIMEOUT)
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .map_err(|e| Error::Refused {
                        class: ErrorClass::Other,
                        message: format!("cannot build the webhook client: {}", e.without_url()),
                    })?;
                Some((http, url.clone()))
            }
        };
        Ok(Notifier { target })
    }

    /// Delivers `event`, logging (never raising) a failure: a dead webhook must not stop
    /// the refreshes it reports on.
    pub(crate) async fn send(&self, event: Event) {
        tracing::warn!(profile = %event.profile, event = event.event, "{}", event.text);
        let Some((http, url)) = &self.target else {
            return;
        };
        let host = webhook_host(url);
        match http.post(url.clone()).json(&event).send().await {
            Ok(r) if r.status().is_success() => {
                tracing::info!(webhook = %host, event = event.event, "notification delivered");
            }
            Ok(r) => {
                tracing::warn!(webhook = %host, status = %r.status(), "the webhook refused the notification")
            }
            // reqwest's message quotes the URL, which may hold a bot token.
            Err(e) => {
                tracing::warn!(webhook = %host, error = %e.without_url(), "cannot deliver the notification")
            }
        }
    }
}

impl Event {
    /// Dhan said no in a way retrying cannot fix.
    pub(crate) fn fatal(
        profile: &str,
        class: ErrorClass,
        message: &str,
        next_retry: Option<DateTime<Utc>>,
        at: DateTime<Utc>,
    ) -> Event {
        let text = match (class, next_retry) {
            (ErrorClass::ConsentLimit, Some(t)) => format!(
                "dhan-login: profile `{profile}`: the daily consent limit is reached; no login until {}.",
                ist_time(t)
            ),
            _ => format!(
                "dhan-login: profile `{profile}`: Dhan rejected the credentials ({class}); \
                 automatic logins stop until the configuration changes or `dhan-login unlock`."
            ),
        };
        Event {
            event: "fatal",
            profile: profile.to_owned(),
            what: "login refused",
            class: Some(class),
            message: Some(shorten(message)),
            next_retry,
            expires_at: None,
            at,
            text,
        }
    }

    /// The token nears its end and no refresh has worked.
    pub(crate) fn expiring(
        profile: &str,
        expires_at: DateTime<Utc>,
        last: Option<(ErrorClass, &str)>,
        next_retry: Option<DateTime<Utc>>,
        at: DateTime<Utc>,
    ) -> Event {
        let left = (expires_at - at).num_minutes().max(0);
        let why = last.map(|(c, _)| format!(" ({c})")).unwrap_or_default();
        let next = match next_retry {
            Some(t) => format!("next try {}", ist_time(t)),
            None => "no automatic retry".to_owned(),
        };
        Event {
            event: "expiring",
            profile: profile.to_owned(),
            what: "token expiring without a refresh",
            class: last.map(|(c, _)| c),
            message: last.map(|(_, m)| shorten(m)),
            next_retry,
            expires_at: Some(expires_at),
            at,
            text: format!(
                "dhan-login: profile `{profile}`: the token expires at {} (in {left} min) and \
                 could not be refreshed{why}; {next}.",
                ist_time(expires_at)
            ),
        }
    }
}

fn ist_time(t: DateTime<Utc>) -> String {
    t.with_timezone(&ist())
        .format("%Y-%m-%d %H:%M IST")
        .to_string()
}

fn shorten(message: &str) -> String {
    match message.char_indices().nth(MESSAGE_MAX) {
        Some((cut, _)) => format!("{}…", &message[..cut]),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn texts_speak_ist_and_messages_are_bounded() {
        let at = Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap();
        let until = Utc.with_ymd_and_hms(2026, 11, 25, 18, 30, 0).unwrap();
        let e = Event::fatal("work", ErrorClass::ConsentLimit, "x", Some(until), at);
        assert!(e.text.contains("2026-11-26 00:00 IST"), "{}", e.text);
        let long = "é".repeat(2 * MESSAGE_MAX);
        let e = Event::fatal("work", ErrorClass::CredentialRejected, &long, None, at);
        assert_eq!(e.message.unwrap().chars().count(), MESSAGE_MAX + 1);
        assert!(e.text.contains("dhan-login unlock"));
        let e = Event::expiring(
            "work",
            at + chrono::Duration::minutes(20),
            Some((ErrorClass::Transient, "503")),
            None,
            at,
        );
        assert!(e.text.contains("in 20 min"), "{}", e.text);
        assert!(e.text.contains("(transient)"), "{}", e.text);
    }
}
