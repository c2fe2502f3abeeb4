//! The login's scrubber, shared by the files that write what the page said.

use std::sync::{Arc, Mutex};

use crate::redact::Scrubber;
use crate::sync::lock;

/// The scrubber is shared with the capture task, which adds the tokenId to it.
pub(crate) type SharedScrubber = Arc<Mutex<Scrubber>>;

pub(crate) fn scrub_with(scrubber: &SharedScrubber, text: &str) -> String {
    lock(scrubber).scrub(text)
}
