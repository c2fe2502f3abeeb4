//! Catching the redirect that carries the tokenId, without ever loading it, and keeping
//! images, fonts and media from loading at all.
//!
//! Dhan answers the last screen with a 302 to `<redirect URL>?tokenId=...`; Chromium then
//! requests that URL, which may be on a host this machine cannot reach. The Fetch domain
//! pauses that request and the tokenId is read from its URL; with a window to watch the
//! request is answered locally with a tiny page, headless it stays paused until Chromium
//! is ended.
//!
//! Only the top frame's document request is the answer: trackers on the page copy its
//! URL into their own frames and requests, and one public script took an ad tracker's
//! iframe navigation for the redirect. Third-party trackers (ad, analytics and
//! tag-manager hosts) are blocked outright, along with images, fonts and media; the
//! page's own hosts and scripts are not.
//!
//! Blocking, measured on a page with 45 images, fonts and media served with 30 ms
//! latency (medians of 7, release build): no blocking 345 ms, Fetch failing by resource
//! type 95-140 ms (one CDP round trip per request), `Network.setBlockedURLs` by file
//! extension 75-85 ms, both together 75-80 ms. Both are used: the URL list blocks the
//! usual file names without a round trip, and Fetch, by resource type, catches what has
//! no telling extension.

use std::sync::{Arc, OnceLock};

use base64::Engine;
use chromiumoxide::Page;
use chromiumoxide::cdp::browser_protocol::fetch::{
    ContinueRequestParams, EnableParams, EventRequestPaused, FailRequestParams,
    FulfillRequestParams, HeaderEntry, RequestPattern, RequestStage,
};
use chromiumoxide::cdp::browser_protocol::network::{
    BlockPattern, ErrorReason, ResourceType, SetBlockedUrLsParams,
};
use chromiumoxide::cdp::browser_protocol::page::FrameId;
use futures_util::StreamExt;
use secrecy::SecretString;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tracing::instrument::WithSubscriber;
use url::Url;

use super::scrub::SharedScrubber;

pub(crate) const TOKEN_PARAM: &str = "tokenId";

const LANDING: &str = "<!doctype html><html><head><meta charset=\"utf-8\"><title>dhan-login</title></head><body><p>Login complete. This window can be closed.</p></body></html>";

/// Where the captured tokenId lands.
#[derive(Clone, Default)]
pub(crate) struct Slot {
    value: Arc<OnceLock<SecretString>>,
    notify: Arc<Notify>,
}

impl Slot {
    pub(crate) fn get(&self) -> Option<SecretString> {
        self.value.get().cloned()
    }

    /// Resolves once a tokenId has been captured (at once if it already was).
    pub(crate) async fn wait(&self) {
        loop {
            let notified = self.notify.notified();
            if self.value.get().is_some() {
                return;
            }
            notified.await;
        }
    }

    fn set(&self, token: SecretString) -> bool {
        let first = self.value.set(token).is_ok();
        self.notify.notify_waiters();
        first
    }
}

/// The URL pattern Fetch pauses on. With a redirect URL, its origin and path (a trailing
/// slash and anything after the path may differ); without one, any URL naming the
/// parameter, so that ordinary page loads are never paused at all.
fn redirect_pattern(redirect: Option<&Url>) -> String {
    match redirect {
        Some(url) => {
            let base = format!("{}{}", url.origin().ascii_serialization(), url.path());
            format!("{}*", escape_pattern(base.trim_end_matches('/')))
        }
        None => format!("*{TOKEN_PARAM}=*"),
    }
}

/// Fetch patterns treat `*` and `?` as wildcards and `\` as the escape.
fn escape_pattern(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The tokenId of a paused request, if this is the redirect: a document request of the
/// top frame, to the redirect URL when one is configured.
fn token_of(raw: &str, redirect: Option<&Url>, top_document: bool) -> Option<String> {
    if !top_document {
        return None;
    }
    let url = Url::parse(raw).ok()?;
    if let Some(want) = redirect {
        let same_place = url.origin() == want.origin()
            && url.path().trim_end_matches('/') == want.path().trim_end_matches('/');
        if !same_place {
            return None;
        }
    }
    url.query_pairs()
        .find(|(k, v)| k == TOKEN_PARAM && !v.is_empty())
        .map(|(_, v)| v.into_owned())
}

const BLOCKED: [ResourceType; 3] = [ResourceType::Image, ResourceType::Font, ResourceType::Media];

const BLOCKED_EXTENSIONS: &[&str] = &[
    "png", "jpg", "jpeg", "gif", "webp", "avif", "svg", "ico", "bmp", "woff", "woff2", "ttf",
    "otf", "eot", "mp4", "webm", "mp3", "ogg", "wav",
];

/// Hosts of ad, analytics and tag-manager services (and their subdomains). None of them
/// is needed to log in; each costs a DNS lookup, a connection and script time, and
/// their frames copy the page's URLs.
const TRACKER_HOSTS: &[&str] = &[
    "doubleclick.net",
    "googlesyndication.com",
    "googleadservices.com",
    "google-analytics.com",
    "googletagmanager.com",
    "analytics.google.com",
    "facebook.net",
    "connect.facebook.net",
    "hotjar.com",
    "clarity.ms",
    "mixpanel.com",
    "segment.io",
    "cdn.segment.com",
    "amplitude.com",
    "clevertap-prod.com",
    "wzrkt.com",
    "webengage.com",
    "moengage.com",
    "branch.io",
    "appsflyer.com",
    "nr-data.net",
    "taboola.com",
    "outbrain.com",
    "criteo.com",
];

/// The host belongs to a tracker of the list (itself or a subdomain).
pub(crate) fn is_tracker(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    TRACKER_HOSTS
        .iter()
        .any(|t| host == *t || host.ends_with(&format!(".{t}")))
}

fn tracker_url_patterns() -> Vec<BlockPattern> {
    TRACKER_HOSTS
        .iter()
        .flat_map(|h| [format!("*://{h}:*/*"), format!("*://*.{h}:*/*")])
        .map(|p| BlockPattern::new(p, true))
        .collect()
}

/// URLPattern syntax: an unspecified port only matches the default port, hence `:*`;
/// the query is a component of its own, hence the second pattern per extension.
fn blocked_url_patterns() -> Vec<BlockPattern> {
    BLOCKED_EXTENSIONS
        .iter()
        .flat_map(|ext| [format!("*://*:*/*.{ext}"), format!("*://*:*/*.{ext}?*")])
        .map(|p| BlockPattern::new(p, true))
        .collect()
}

/// What to intercept on a page.
pub(crate) struct Capture {
    /// Narrows the capture to this origin and path.
    pub redirect: Option<Url>,
    /// The tab's top frame: only its document requests can carry the answer.
    pub main_frame: FrameId,
    /// Also block images, fonts and media.
    pub block_resources: bool,
    /// Block ad, analytics and tag-manager hosts.
    pub block_trackers: bool,
    /// Answer the captured redirect with a small "login complete" page, for a person
    /// watching (`--headed`). Headless, the request is left paused: Chromium is ended
    /// right after, and answering it would commit the page in a new renderer process
    /// (the redirect host is another site) just then, up to 20 MiB more at the
    /// login's peak memory (BENCHMARKS.md).
    pub show_landing: bool,
}

/// Starts intercepting on `page`. The listener exists before `Fetch.enable`, so no
/// paused request can slip past unanswered.
pub(crate) async fn arm(
    page: &Page,
    capture: Capture,
    scrubber: SharedScrubber,
    slot: Slot,
) -> Result<JoinHandle<()>, chromiumoxide::error::CdpError> {
    let Capture {
        redirect,
        main_frame,
        block_resources,
        block_trackers,
        show_landing,
    } = capture;
    let mut events = page.event_listener::<EventRequestPaused>().await?;
    let mut patterns = vec![
        RequestPattern::builder()
            .url_pattern(redirect_pattern(redirect.as_ref()))
            .request_stage(RequestStage::Request)
            .build(),
    ];
    if block_resources {
        for kind in BLOCKED {
            patterns.push(
                RequestPattern::builder()
                    .url_pattern("*")
                    .resource_type(kind)
                    .request_stage(RequestStage::Request)
                    .build(),
            );
        }
    }
    let answerer = page.clone();
    let listen = async move {
        let mut blocked = 0usize;
        while let Some(ev) = events.next().await {
            let id = ev.request_id.clone();
            let top_document =
                ev.resource_type == ResourceType::Document && ev.frame_id == main_frame;
            let tracker = block_trackers
                && Url::parse(&ev.request.url)
                    .ok()
                    .and_then(|u| u.host_str().map(is_tracker))
                    .unwrap_or(false);
            let answered = match token_of(&ev.request.url, redirect.as_ref(), top_document) {
                Some(token) => {
                    if let Ok(mut s) = scrubber.lock() {
                        s.add(&token);
                    }
                    if slot.set(SecretString::from(token)) {
                        tracing::debug!(show_landing, "redirect with tokenId captured");
                    }
                    if show_landing {
                        answerer.execute(landing(id)).await.map(|_| ())
                    } else {
                        Ok(())
                    }
                }
                None if tracker || (block_resources && BLOCKED.contains(&ev.resource_type)) => {
                    blocked += 1;
                    answerer
                        .execute(FailRequestParams::new(id, ErrorReason::BlockedByClient))
                        .await
                        .map(|_| ())
                }
                None => answerer
                    .execute(ContinueRequestParams::new(id))
                    .await
                    .map(|_| ()),
            };
            if let Err(e) = answered {
                // The request may be gone (navigation, closed page): nothing to undo.
                tracing::debug!(error = %e, "could not answer a paused request");
            }
        }
        tracing::trace!(blocked, "request interception ended");
    };
    // Spawned tasks do not inherit the dispatcher; this one keeps the muted one.
    let task = tokio::spawn(listen.with_current_subscriber());
    let mut blocked = if block_trackers {
        tracker_url_patterns()
    } else {
        Vec::new()
    };
    if block_resources {
        blocked.extend(blocked_url_patterns());
    }
    let block = async {
        if blocked.is_empty() {
            return;
        }
        let list = SetBlockedUrLsParams {
            url_patterns: Some(blocked),
        };
        // Blocks without a round trip; Fetch still fails a tracker request that reaches
        // it (paused for another reason) and the resource types by type.
        if let Err(e) = page.execute(list).await {
            tracing::debug!(error = %e, "Network.setBlockedURLs refused; Fetch blocks alone");
        }
    };
    // Both commands leave at once: neither waits for the other's answer.
    let enable = page.execute(EnableParams {
        patterns: Some(patterns),
        handle_auth_requests: None,
    });
    let (enabled, ()) = tokio::join!(enable, block);
    enabled?;
    Ok(task)
}

fn landing(id: chromiumoxide::cdp::browser_protocol::fetch::RequestId) -> FulfillRequestParams {
    let mut p = FulfillRequestParams::new(id, 200);
    p.response_headers = Some(vec![
        HeaderEntry {
            name: "Content-Type".into(),
            value: "text/html; charset=utf-8".into(),
        },
        HeaderEntry {
            name: "Cache-Control".into(),
            value: "no-store".into(),
        },
    ]);
    p.body = Some(
        base64::engine::general_purpose::STANDARD
            .encode(LANDING)
            .into(),
    );
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_for_a_configured_redirect_is_its_origin_and_path() {
        let u = Url::parse("https://callback.invalid/dhan/?x=1").unwrap();
        assert_eq!(redirect_pattern(Some(&u)), "https://callback.invalid/dhan*");
        assert_eq!(redirect_pattern(None), "*tokenId=*");
        assert_eq!(escape_pattern("a*b?c"), "a\\*b\\?c");
    }

    #[test]
    fn token_only_from_the_redirect_and_only_when_present() {
        let r = Url::parse("http://127.0.0.1:9/dhan/callback").unwrap();
        assert_eq!(
            token_of(
                "http://127.0.0.1:9/dhan/callback?tokenId=abc-123",
                Some(&r),
                true
            )
            .as_deref(),
            Some("abc-123")
        );
        assert_eq!(
            token_of(
                "http://127.0.0.1:9/dhan/callback/?a=1&tokenId=x",
                Some(&r),
                true
            )
            .as_deref(),
            Some("x")
        );
        assert_eq!(
            token_of("http://127.0.0.1:9/other?tokenId=x", Some(&r), true),
            None
        );
        assert_eq!(
            token_of("http://127.0.0.1:9/dhan/callback?tokenId=", Some(&r), true),
            None
        );
        assert_eq!(token_of("http://h/x?xtokenId=1", None, true), None);
        assert_eq!(
            token_of("http://h/x?tokenId=1", None, true).as_deref(),
            Some("1")
        );
        // An iframe's request, or a fetch, never carries the answer.
        assert_eq!(token_of("http://h/x?tokenId=1", None, false), None);
        assert_eq!(
            token_of(
                "http://127.0.0.1:9/dhan/callback?tokenId=decoy",
                Some(&r),
                false
            ),
            None
        );
    }

    #[test]
    fn trackers_are_recognised_by_host_and_subdomain() {
        assert!(is_tracker("www.googletagmanager.com"));
        assert!(is_tracker("googleads.g.doubleclick.net"));
        assert!(is_tracker("DoubleClick.net."));
        assert!(!is_tracker("auth.dhan.co"));
        assert!(!is_tracker("notdoubleclick.net"));
        assert!(!is_tracker("127.0.0.1"));
        let patterns = tracker_url_patterns();
        assert!(
            patterns
                .iter()
                .any(|p| p.url_pattern == "*://*.doubleclick.net:*/*")
        );
    }
}
