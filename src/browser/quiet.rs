//! Keeps the CDP transport's own logging away from the application's subscriber.
//!
//! chromiumoxide traces every CDP message it sends and receives (typed digits, DOM text,
//! the redirect URL with its tokenId), logs unparsable messages whole at debug level
//! (request headers, including a Referer that carries the consentAppId) and warns with
//! serde errors that may quote a value; tungstenite logs raw frames. No level filter of
//! the application can be trusted to stay strict enough, so events from those targets
//! are dropped here, before any subscriber sees them, and everything else is forwarded
//! unchanged. Muted warnings and errors are only counted, for one summary line.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tracing::subscriber::Interest;
use tracing::{Dispatch, Event, Level, Metadata, Subscriber, span};

/// Targets whose events may carry page content or protocol payloads.
const MUTED: &[&str] = &["chromiumoxide", "tungstenite", "async_tungstenite"];

fn muted(meta: &Metadata<'_>) -> bool {
    muted_target(meta.target())
}

fn muted_target(target: &str) -> bool {
    MUTED.iter().any(|m| {
        target
            .strip_prefix(m)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
    })
}

/// Forwards to the dispatcher that was current when it was made, minus the muted targets.
struct Quiet {
    inner: Dispatch,
    muted_warnings: Arc<AtomicUsize>,
}

fn counted(meta: &Metadata<'_>) -> bool {
    *meta.level() <= Level::WARN
}

impl Subscriber for Quiet {
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        match (muted(meta), counted(meta)) {
            (true, true) => Interest::sometimes(),
            (true, false) => Interest::never(),
            (false, _) => self.inner.register_callsite(meta),
        }
    }

    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        if muted(meta) {
            return counted(meta);
        }
        self.inner.enabled(meta)
    }

    fn new_span(&self, attrs: &span::Attributes<'_>) -> span::Id {
        self.inner.new_span(attrs)
    }

    fn record(&self, span: &span::Id, values: &span::Record<'_>) {
        self.inner.record(span, values)
    }

    fn record_follows_from(&self, span: &span::Id, follows: &span::Id) {
        self.inner.record_follows_from(span, follows)
    }

    fn event(&self, event: &Event<'_>) {
        if muted(event.metadata()) {
            self.muted_warnings.fetch_add(1, Ordering::Relaxed);
        } else {
            self.inner.event(event)
        }
    }

    fn enter(&self, span: &span::Id) {
        self.inner.enter(span)
    }

    fn exit(&self, span: &span::Id) {
        self.inner.exit(span)
    }

    fn clone_span(&self, id: &span::Id) -> span::Id {
        self.inner.clone_span(id)
    }

    fn try_close(&self, id: span::Id) -> bool {
        self.inner.try_close(id)
    }
}

/// The current dispatcher with the transport targets muted. Futures and tasks of the
/// browser session run under it (`WithSubscriber::with_subscriber`).
#[derive(Clone)]
pub(crate) struct Muffler {
    pub(crate) dispatch: Dispatch,
    muted_warnings: Arc<AtomicUsize>,
}

impl Muffler {
    pub(crate) fn new() -> Self {
        let inner = tracing::dispatcher::get_default(Dispatch::clone);
        let muted_warnings = Arc::new(AtomicUsize::new(0));
        Muffler {
            dispatch: Dispatch::new(Quiet {
                inner,
                muted_warnings: muted_warnings.clone(),
            }),
            muted_warnings,
        }
    }

    /// Warnings and errors of the transport that were dropped so far.
    pub(crate) fn muted_warnings(&self) -> usize {
        self.muted_warnings.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutes_transport_targets_only() {
        let names = [
            ("chromiumoxide::conn", true),
            ("chromiumoxide::conn::raw_ws::parse_errors", true),
            ("chromiumoxide::cmd", true),
            ("tungstenite::protocol::frame", true),
            ("chromiumoxide::handler", true),
            ("chromiumoxide_cdp", false),
            ("dhan_login::browser", false),
        ];
        for (target, expected) in names {
            assert_eq!(muted_target(target), expected, "{target}");
        }
    }
}
