//! JavaScript dialogs (`alert`, `confirm`, `beforeunload`) block the page: no script runs
//! and every probe would hang until the step timed out. They are dismissed as they open,
//! and their text is kept, because a login page may well say "Invalid PIN" in an alert.

use std::sync::{Arc, Mutex};

use chromiumoxide::Page;
use chromiumoxide::cdp::browser_protocol::page::{
    EventJavascriptDialogOpening, HandleJavaScriptDialogParams,
};
use futures_util::StreamExt;
use tokio::task::JoinHandle;
use tracing::instrument::WithSubscriber;

use crate::sync::lock;

/// Texts of the dialogs dismissed so far, oldest first. Unscrubbed.
#[derive(Clone, Default)]
pub(crate) struct Dialogs(Arc<Mutex<Vec<String>>>);

impl Dialogs {
    /// Takes the texts that arrived since the last call.
    pub(crate) fn take(&self) -> Vec<String> {
        std::mem::take(&mut *lock(&self.0))
    }

    fn push(&self, text: String) {
        lock(&self.0).push(text)
    }
}

pub(crate) async fn dismiss_all(
    page: &Page,
) -> Result<(Dialogs, JoinHandle<()>), chromiumoxide::error::CdpError> {
    let mut events = page
        .event_listener::<EventJavascriptDialogOpening>()
        .await?;
    let dialogs = Dialogs::default();
    let seen = dialogs.clone();
    let answerer = page.clone();
    let listen = async move {
        while let Some(ev) = events.next().await {
            seen.push(ev.message.clone());
            // Accepting a beforeunload lets a submitting page go on; for alert and
            // confirm there is no one to read them either way.
            if let Err(e) = answerer
                .execute(HandleJavaScriptDialogParams::new(true))
                .await
            {
                tracing::debug!(error = %e, "could not dismiss a page dialog");
            }
        }
    };
    Ok((dialogs, tokio::spawn(listen.with_current_subscriber())))
}
