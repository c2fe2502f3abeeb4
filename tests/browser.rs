//! The browser login end to end: real headless Chromium against the local stand-in.
//!
//! Set DHAN_LOGIN_SKIP_BROWSER_TESTS=1 to skip them on a machine without Chromium.

#[path = "common/browser_support.rs"]
mod support;

use dhan_login::mock::{MockOptions, PageVariant};
use support::{Case, Login, skipped};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classic_login_returns_a_token_id_the_stand_in_accepts() {
    if skipped("classic") {
        return;
    }
    let case = Case::start(MockOptions {
        page_variant: PageVariant::Classic,
        ..Default::default()
    })
    .await;
    let t = std::time::Instant::now();
    let result = case.login(Login::default()).await;
    eprintln!("took {:?}\n{}", t.elapsed(), case.logs.text());
    let token = result.expect("login");
    let grant = case.consume(&token).await;
    assert!(grant["accessToken"].is_string());
    case.assert_clean();
}
