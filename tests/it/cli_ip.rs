//! `dhan-login ip show|set|modify` against the stand-in's static IP whitelist, and the
//! whitelist in `status`.

use crate::common;

use common::Stand;
use common::cli::exit_of;
use common::cli::printed_token;
use dhan_login::ErrorClass;
use dhan_login::mock::{Endpoint, Fault};

#[tokio::test(flavor = "multi_thread")]
async fn set_show_modify_and_status_follow_the_whitelist() {
    let s = Stand::start().await;

    let empty = s.run(["ip", "show", "--json"]).await;
    empty.assert_ok();
    assert_eq!(
        empty.json(),
        serde_json::json!({"primary": null, "secondary": null,
            "modify_date_primary": null, "modify_date_secondary": null}),
        "{empty}"
    );
    assert_eq!(
        s.server.logins(),
        1,
        "the first call logged in for its token"
    );

    let set = s.run(["ip", "set", "primary", "203.0.113.7"]).await;
    set.assert_ok();
    assert!(
        set.stdout
            .starts_with("primary:    203.0.113.7 (may change from "),
        "{set}"
    );
    assert!(set.stdout.contains("secondary:  none"), "{set}");
    assert!(
        set.stderr.contains("IP saved successfully"),
        "Dhan's message is shown:\n{set}"
    );

    let set2 = s.run(["ip", "set", "secondary", "2001:db8::7"]).await;
    set2.assert_ok();
    let shown = s.run(["ip", "show", "--json"]).await.json();
    assert_eq!(shown["primary"], "203.0.113.7");
    assert_eq!(shown["secondary"], "2001:db8::7");
    let date = shown["modify_date_primary"].as_str().expect("a date");
    assert_eq!(date.len(), 10, "yyyy-mm-dd: {date}");

    // Frozen for seven days: Dhan's refusal is the error, nothing changes.
    let early = s.run(["ip", "modify", "primary", "203.0.113.8"]).await;
    assert_eq!(early.code, Some(1), "{early}");
    assert!(
        early.stderr.contains(&format!("on or after {date}")),
        "{early}"
    );

    s.server.allow_ip_changes();
    let modified = s.run(["ip", "modify", "primary", "203.0.113.8"]).await;
    modified.assert_ok();
    assert!(
        modified.stdout.starts_with("primary:    203.0.113.8"),
        "{modified}"
    );

    let status = s.run(["status"]).await;
    status.assert_ok();
    assert!(
        status
            .stdout
            .contains("static ip:  primary 203.0.113.8, secondary 2001:db8::7"),
        "{status}"
    );
    let status = s.run(["status", "--json"]).await.json();
    assert_eq!(status["static_ip"]["primary"], "203.0.113.8");
    assert!(status["static_ip"]["seen_at"].is_string());
    assert_eq!(s.server.logins(), 1, "every call used the one stored token");
}

#[tokio::test(flavor = "multi_thread")]
async fn status_says_nothing_of_ips_never_asked_for() {
    let s = Stand::start().await;
    printed_token(&s.run(["token"]).await);
    let status = s.run(["status"]).await;
    status.assert_ok();
    assert!(!status.stdout.contains("static ip"), "{status}");
    assert!(s.run(["status", "--json"]).await.json()["static_ip"].is_null());
    assert_eq!(
        s.server.calls(Endpoint::StaticIp),
        0,
        "status sends no request"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_address_is_a_usage_error_and_sends_nothing() {
    let s = Stand::start().await;
    let r = s.run(["ip", "set", "primary", "203.0.113.300"]).await;
    assert_eq!(r.code, Some(exit_of(ErrorClass::Config)), "{r}");
    let r = s.run(["ip", "set", "tertiary", "203.0.113.3"]).await;
    assert_eq!(r.code, Some(exit_of(ErrorClass::Config)), "{r}");
    assert_eq!(s.server.calls(Endpoint::StaticIp), 0);
    assert_eq!(s.server.logins(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cached_token_dhan_refuses_is_replaced_once() {
    let s = Stand::start().await;
    let first = printed_token(&s.run(["token"]).await);
    s.server
        .set_fault_once(Endpoint::StaticIp, Fault::WrongCredential);
    let r = s.run(["ip", "show"]).await;
    r.assert_ok();
    assert_eq!(
        s.server.logins(),
        2,
        "one new login after the refusal:\n{r}"
    );
    assert_eq!(s.server.calls(Endpoint::StaticIp), 2);
    assert_ne!(printed_token(&s.run(["token"]).await), first);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_pin_exits_3_before_any_ip_call() {
    let s = Stand::start().await;
    let r = common::run(s.cli_wrong_pin(["ip", "show"]), None).await;
    assert_eq!(r.code, Some(exit_of(ErrorClass::CredentialRejected)), "{r}");
    assert_eq!(s.server.calls(Endpoint::StaticIp), 0);
}
