//! Tells whether the page has submitted a screen by itself.
//!
//! Some versions of the login submit after the last digit, others wait for a click.
//! Clicking after a page already submitted would send the same TOTP or PIN twice, and a
//! second submission of a spent code counts as a wrong attempt. So the driver clicks only
//! when no submitting request (a document load, or an XHR/fetch that is not a plain read)
//! has left the page since it started typing. Only the top frame counts: a tracker's
//! iframe that navigates is not the login page submitting.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chromiumoxide::Page;
use chromiumoxide::cdp::browser_protocol::network::{EventRequestWillBeSent, ResourceType};
use chromiumoxide::cdp::browser_protocol::page::FrameId;
use futures_util::StreamExt;
use tokio::task::JoinHandle;
use tracing::instrument::WithSubscriber;

#[derive(Clone, Default)]
pub(crate) struct Traffic {
    submits: Arc<AtomicU64>,
}

impl Traffic {
    /// Submitting requests seen so far; compare two readings to see if one happened.
    pub(crate) fn count(&self) -> u64 {
        self.submits.load(Ordering::SeqCst)
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
    let counter = traffic.submits.clone();
    let listen = async move {
        while let Some(ev) = events.next().await {
            let top = ev.frame_id.as_ref() == Some(&main_frame);
            if top && submits(ev.r#type.as_ref(), &ev.request.method) {
                counter.fetch_add(1, Ordering::SeqCst);
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
}
