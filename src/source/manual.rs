//! The last resort: a person logs in on the consent page themselves.
//!
//! We show the consent URL on the program's `Console`, then take the tokenId from
//! whichever comes first: the browser's redirect to a loopback redirect URL (we listen
//! there), or the redirected URL (or the bare tokenId) pasted back.

use std::time::Duration;

use secrecy::SecretString;
use tokio::net::TcpListener;
use url::Url;

use super::context::{BoxFuture, Context, Outcome, TokenSource, outcome_of};
use super::exchange::{self, App};
use super::needs;
use crate::console::Console;
use crate::error::Error;
use crate::error_class::ErrorClass;
use crate::token::{SourceKind, Token};

/// A person may need a while to find their phone; not forever.
const WAIT: Duration = Duration::from_secs(600);

pub(super) struct ManualSource;

impl TokenSource for ManualSource {
    fn kind(&self) -> SourceKind {
        SourceKind::Manual
    }

    fn obtain<'a>(&'a self, cx: &'a Context<'a>) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            if let Err(missing) = needs(self.kind(), cx.profile) {
                return Outcome::NotApplicable(missing.to_string());
            }
            let Some(console) = cx.console else {
                return Outcome::NotApplicable("nobody at a terminal to log in".into());
            };
            match login(cx, console).await {
                Ok(token) => Outcome::Obtained(token),
                Err(e) => outcome_of(e),
            }
        })
    }
}

async fn login(cx: &Context<'_>, console: &dyn Console) -> Result<Token, Error> {
    cx.preflight().await?;
    let p = cx.profile;
    let app = App::of(p).await?;
    let App {
        client_id,
        api_key,
        api_secret,
    } = app;
    if let Some(done) = exchange::kept(cx, SourceKind::Manual, &app).await {
        return done;
    }
    let consent = super::consent::obtain(cx, client_id, api_key, api_secret).await?;
    let url = cx.api.consent_login_url(&consent.id);

    let listener = match p.redirect_url.as_ref().filter(|u| is_loopback(u)) {
        Some(redirect) => {
            let port = redirect.port_or_known_default().unwrap_or(80);
            let host = redirect
                .host_str()
                .unwrap_or("127.0.0.1")
                .trim_matches(['[', ']']);
            match TcpListener::bind((host, port)).await {
                Ok(l) => Some(l),
                Err(e) => {
                    tracing::warn!(
                        "cannot listen on the redirect URL's port {port}: {e}; paste the URL instead"
                    );
                    None
                }
            }
        }
        None => None,
    };
    let again = if consent.reused {
        " (the same page as last time: it stays valid until you log in)"
    } else {
        ""
    };
    console.say(&format!(
        "Open this page in a browser and log in to Dhan{again}:\n\n  {url}\n"
    ));
    console.say(if listener.is_some() {
        "Waiting for the redirect (or paste the redirected URL or the tokenId here):"
    } else {
        "Then paste the URL the browser was redirected to (or just its tokenId):"
    });

    let token_id = tokio::time::timeout(WAIT, first_token_id(listener, console))
        .await
        .map_err(|_| {
            refused(format!(
                "manual login: no tokenId within {} minutes",
                WAIT.as_secs() / 60
            ))
        })??;
    super::consent::spent(cx, client_id, &consent.id).await;
    exchange::exchange(cx, SourceKind::Manual, &app, token_id).await
}

async fn first_token_id(
    listener: Option<TcpListener>,
    console: &dyn Console,
) -> Result<SecretString, Error> {
    let listener_absent = listener.is_none();
    let from_redirect = async {
        match listener {
            Some(l) => serve_redirect(l).await,
            None => std::future::pending().await,
        }
    };
    // With a listener, a closed input (a service, a pipe) just means: wait for the redirect.
    let eof_ends = listener_absent;
    tokio::select! {
        id = from_redirect => Ok(id),
        id = read_pasted(console, eof_ends) => id,
    }
}

/// Answers requests on the loopback redirect URL until one carries a tokenId. Any path
/// and method: the browser lands wherever the redirect URL points, and a stray request
/// (a favicon) only gets the waiting page. Plain hyper rather than a web framework: a
/// program without the daemon (Cargo feature `serve`) still has this listener.
async fn serve_redirect(listener: TcpListener) -> SecretString {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<SecretString>(1);
    loop {
        let stream = tokio::select! {
            Some(id) = rx.recv() => return id,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!("the redirect listener stopped: {e}; paste the URL instead");
                    return std::future::pending().await;
                }
            },
        };
        let tx = tx.clone();
        let answer = hyper::service::service_fn(move |request: hyper::Request<_>| {
            let said = match token_id_in(&format!("http://localhost{}", request.uri())) {
                Some(id) => {
                    // A second redirect while the first is handled has nothing to add.
                    let _ = tx.try_send(id);
                    "dhan-login received the login. You can close this tab."
                }
                None => "dhan-login is waiting for the Dhan login redirect.",
            };
            let mut page = hyper::Response::new(said.to_owned());
            page.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            std::future::ready(Ok::<_, std::convert::Infallible>(page))
        });
        // Each connection runs on a task of its own, so the page is still sent after this
        // returns.
        tokio::spawn(
            hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), answer),
        );
    }
}

async fn read_pasted(console: &dyn Console, eof_ends: bool) -> Result<SecretString, Error> {
    while let Some(line) = console.read_line().await? {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(id) = token_id_in(line) {
            return Ok(id);
        }
        if line
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Ok(SecretString::from(line.to_owned()));
        }
        console.say("That is neither a URL with ?tokenId= nor a tokenId; try again:");
    }
    if !eof_ends {
        return std::future::pending().await;
    }
    Err(refused(
        "manual login: the input ended before a tokenId was given".into(),
    ))
}

fn token_id_in(text: &str) -> Option<SecretString> {
    let url = Url::parse(text).ok()?;
    url.query_pairs()
        .find(|(k, v)| k == "tokenId" && !v.is_empty())
        .map(|(_, v)| SecretString::from(v.into_owned()))
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

fn refused(message: String) -> Error {
    Error::Refused {
        class: ErrorClass::Other,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn token_id_is_read_from_a_redirected_url() {
        let id = token_id_in("https://example.test/cb?x=1&tokenId=abc-123").unwrap();
        assert_eq!(id.expose_secret(), "abc-123");
        assert!(token_id_in("https://example.test/cb?x=1").is_none());
    }

    #[test]
    fn loopback_detection() {
        assert!(is_loopback(
            &Url::parse("http://127.0.0.1:8765/cb").unwrap()
        ));
        assert!(is_loopback(
            &Url::parse("http://localhost:8765/cb").unwrap()
        ));
        assert!(!is_loopback(&Url::parse("https://example.com/cb").unwrap()));
    }
}
