//! Tells whether the page has submitted a screen by itself.
//!
//! Some versions of the login submit after the last digit, others wait for a click.
//! Clicking after a page already submitted would send the same TOTP or PIN twice, and a
//! second submission of a spent code counts as a wrong attempt. So the driver clicks only
//! when no submitting request (a document load, or an XHR/fetch that is not a plain read)
//! has left the page since it started typing. Only the top frame counts: a tracker's
//! iframe that navigates is not the login page submitting.
//!
//! "Since" goes by the send time Chromium stamps on each request, not by when its event
//! is handled here: under load the event of the previous screen's submission was handled
//! after the next screen showed, the new screen seemed to have submitted itself, and its
//! button was never pressed (the login then timed out on a filled PIN screen).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use chromiumoxide::Page;
use chromiumoxide::cdp::browser_protocol::network::{EventRequestWillBeSent, ResourceType};
use chromiumoxide::cdp::browser_protocol::page::FrameId;
use futures_util::StreamExt;
use tokio::task::JoinHandle;
use tracing::instrument::WithSubscriber;

#[derive(Clone, Default)]
pub(crate) struct Traffic {
    /// When the newest submitting request was sent, in ms since the Unix epoch (0: none).
    last_sent_ms: Arc<AtomicU64>,
}

/// A moment to compare the page's requests with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mark(u64);

impl Traffic {
    /// Now, for [`Traffic::sent_since`].
    pub(crate) fn mark() -> Mark {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        Mark(now)
    }

    /// Whether a submitting request was sent at or after `mark`.
    pub(crate) fn sent_since(&self, mark: Mark) -> bool {
        self.last_sent_ms.load(Ordering::SeqCst) >= mark.0
    }
}

fn submits(kind: Option<&ResourceType>, method: &str) -> bool {
    let read_only = ["GET", "HEAD", "OPTIONS"]
        .iter()
        .any(|m| method.eq_ignore_ascii_case(m));
    match kind {
        Some(ResourceType::Document) => true,
        Some(ResourceType::Xhr | ResourceType::Fetch) => !read_only,
        _ => false,
    }
}

pub(crate) async fn watch(
    page: &Page,
    main_frame: FrameId,
) -> Result<(Traffic, JoinHandle<()>), chromiumoxide::error::CdpError> {
    let mut events = page.event_listener::<EventRequestWillBeSent>().await?;
    let traffic = Traffic::default();
    let last_sent = traffic.last_sent_ms.clone();
    let listen = async move {
        while let Some(ev) = events.next().await {
            let top = ev.frame_id.as_ref() == Some(&main_frame);
            if top && submits(ev.r#type.as_ref(), &ev.request.method) {
                // Seconds since the epoch, as Chromium stamped the request.
                let sent_ms = (ev.wall_time.inner() * 1000.0) as u64;
                last_sent.fetch_max(sent_ms, Ordering::SeqCst);
            }
        }
    };
    let task = tokio::spawn(listen.with_current_subscriber());
    Ok((traffic, task))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loads_and_writes_count_as_submits() {
        assert!(submits(Some(&ResourceType::Document), "GET"));
        assert!(submits(Some(&ResourceType::Fetch), "POST"));
        assert!(submits(Some(&ResourceType::Xhr), "put"));
        assert!(!submits(Some(&ResourceType::Xhr), "GET"));
        assert!(!submits(Some(&ResourceType::Image), "POST"));
        assert!(!submits(None, "POST"));
    }

    #[test]
    fn a_request_sent_before_the_mark_is_not_since_it() {
        let traffic = Traffic::default();
        let mark = Traffic::mark();
        assert!(!traffic.sent_since(mark), "nothing sent yet");
        // The previous screen's submission, handled only now.
        traffic
            .last_sent_ms
            .fetch_max(mark.0 - 250, Ordering::SeqCst);
        assert!(!traffic.sent_since(mark));
        traffic.last_sent_ms.fetch_max(mark.0 + 3, Ordering::SeqCst);
        assert!(traffic.sent_since(mark));
    }
}
