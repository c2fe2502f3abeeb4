//! Issue #11: hostile answers, careless input and failing disks, against the stand-in,
//! which counts what reaches it. Each test names the failure it guards against.

mod common;

use common::Stand;
use dhan_login::mock::{Endpoint, Fault};

const RATE_LIMIT: &str =
    r#"{"status":"error","message":"Token can be generated once every 2 minutes."}"#;

fn respond(status: u16, body: &str, content_type: &str) -> Fault {
    Fault::Respond {
        status,
        body: body.to_owned(),
        content_type: content_type.to_owned(),
    }
}

/// Dhan's one-token-per-2-minutes answer, at HTTP 200 and at 400: a rate limit (exit 5,
/// "after 120 s"), no lockout, and no fall-through to a consent.
#[tokio::test(flavor = "multi_thread")]
async fn the_two_minute_answer_is_a_rate_limit_and_stops_the_chain() {
    for status in [200, 400] {
        let stand = Stand::start().await;
        stand.server.set_fault_once(
            Endpoint::GenerateAccessToken,
            respond(status, RATE_LIMIT, "application/json"),
        );
        let r = stand.run(["token"]).await;
        r.assert_code(5);
        assert!(r.stderr.contains("after 120 s"), "HTTP {status}:\n{r}");
        assert_eq!(
            stand.server.calls(Endpoint::GenerateConsent),
            0,
            "HTTP {status}: no consent spent to get round a rate limit:\n{r}"
        );
        // Not a lockout: the next run logs in.
        let again = stand.run(["token"]).await;
        again.assert_ok();
        assert_eq!(stand.server.calls(Endpoint::GenerateAccessToken), 2);
    }
}

/// A CDN's "you have been blocked" page is no verdict on the PIN: no lockout.
#[tokio::test(flavor = "multi_thread")]
async fn an_html_error_page_is_not_a_credential_rejection() {
    let stand = Stand::start().await;
    let page = "<html><body><h1>Sorry, you have been blocked</h1><p>This attempt was logged. \
                Check your PIN, OTP and secret.</p></body></html>";
    stand.server.set_fault_once(
        Endpoint::GenerateAccessToken,
        respond(403, page, "text/html"),
    );
    let r = stand.run(["login", "--via", "totp"]).await;
    assert_ne!(r.code, Some(3), "a proxy page is not Dhan saying no:\n{r}");
    let again = stand.run(["login", "--via", "totp"]).await;
    again.assert_ok();
}
