//! The stand-in's consent login pages over plain HTTP: the classic and single-page
//! variants, every screen, the redirect with a one-time tokenId.

use crate::common;

use std::time::Duration;

use common::stand_in::{
    BLOCKED, assert_six_fields, claims, classic_to_pin, client, consent_id, consume, current_code,
    error_of, get_page, location, opened_page, page_settings, post_boxes, post_form, server,
    server_with, serving, session_of, token_id_of, url,
};
use dhan_login::mock::{
    Endpoint, EntryKind, Fault, Markup, MockAccount, MockOptions, MockServer, PageVariant,
    SecondFactor, Submission,
};
use reqwest::StatusCode;
use serde_json::Value;

#[tokio::test]
async fn classic_pages_lead_to_a_302_with_a_one_time_token_id() {
    let s = server().await;
    let consent = consent_id(&s).await;

    let r = get_page(&s, &consent).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = r.text().await.unwrap();
    assert!(page.contains(
        r#"<input type="tel" id="mobileNumber" class="form-control" formcontrolname="mobileNumber" placeholder="Enter mobile number" maxlength="10""#
    ));
    assert!(page.contains("<app-root>\n<app-login><form"));
    assert!(page.contains(r#"<form class="login-form" method="post""#));
    assert!(page.contains(r#"<button type="submit" class="btn btn-primary">Proceed</button>"#));
    assert!(!page.contains("{{"), "unfilled placeholder");
    assert!(
        !page.contains("<script src") && !page.contains("<link"),
        "self-contained"
    );
    assert_eq!(error_of(&page), None);
    let session = session_of(&page);

    let r = post_form(
        &s,
        &consent,
        &[("session", &session), ("mobileNumber", "9000000000")],
    )
    .await;
    let page = r.text().await.unwrap();
    assert_eq!(
        error_of(&page).as_deref(),
        Some("Mobile number is not registered")
    );
    assert!(page.contains(r#"formcontrolname="mobileNumber""#));

    let mobile = s.account().mobile.clone();
    let r = post_form(
        &s,
        &consent,
        &[("session", &session), ("mobileNumber", &mobile)],
    )
    .await;
    let page = r.text().await.unwrap();
    assert!(page.contains("Enter TOTP"));
    assert_eq!(
        page.matches(r#"<input type="tel" class="otp-box" maxlength="1" inputmode="numeric">"#)
            .count(),
        6
    );
    assert!(page.contains(r#"<button type="submit" class="btn btn-primary">Proceed</button>"#));
    assert_eq!(page_settings(&page)["submission"], "button");

    let r = post_boxes(&s, &consent, &session, "totp", "000000").await;
    let page = r.text().await.unwrap();
    assert_eq!(error_of(&page).as_deref(), Some("Invalid Totp entered"));
    assert!(page.contains("Enter TOTP"));

    let r = post_boxes(&s, &consent, &session, "totp", &current_code(&s)).await;
    let page = r.text().await.unwrap();
    assert!(page.contains("Enter PIN for your Account"));
    assert_eq!(
        page.matches(
            r#"<input type="password" class="otp-box" maxlength="1" inputmode="numeric">"#
        )
        .count(),
        6
    );
    assert!(page.contains(r#"<button type="submit" class="btn btn-primary">Continue</button>"#));
    assert_eq!(error_of(&page), None, "a new screen starts without a toast");

    let r = post_boxes(&s, &consent, &session, "pin", "999999").await;
    let page = r.text().await.unwrap();
    assert_eq!(
        error_of(&page).as_deref(),
        Some("Incorrect PIN, please try again")
    );

    let pin = s.account().pin.clone();
    let r = post_boxes(&s, &consent, &session, "pin", &pin).await;
    assert_eq!(r.status(), StatusCode::FOUND);
    let loc = location(&r);
    assert!(loc.as_str().starts_with(&s.account().redirect_url), "{loc}");
    let token_id = token_id_of(&r);
    assert!(!s.consent_usable(&consent));

    assert_eq!(s.logins(), 0, "a tokenId is not a token yet");
    let r = consume(&s, &token_id).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_six_fields(&body, s.account());
    let token = body["accessToken"].as_str().unwrap();
    assert_eq!(claims(token)["tokenConsumerType"], "APP");
    assert!(s.is_live(token));
    assert_eq!(s.logins(), 1);

    let r = consume(&s, &token_id).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(s.logins(), 1);

    // The consent is spent: its page now says so.
    let page = get_page(&s, &consent).await.text().await.unwrap();
    assert!(page.contains("Session expired"));
    assert_eq!(
        error_of(&page).as_deref(),
        Some("Consent has expired or is invalid. Please generate a new consent.")
    );
    assert_eq!(s.calls(Endpoint::ConsentLoginPage), 8);
    assert_eq!(s.calls(Endpoint::ConsumeConsent), 2);
    assert_eq!(s.entries(EntryKind::Mobile), 2);
    assert_eq!(s.entries(EntryKind::Totp), 2);
    assert_eq!(s.entries(EntryKind::Pin), 2);
    assert_eq!(s.entries(EntryKind::SmsOtp), 0);
}

#[tokio::test]
async fn redirect_keeps_the_registered_query() {
    let account = MockAccount {
        redirect_url: "http://127.0.0.1:9/cb?app=demo".into(),
        ..MockAccount::demo()
    };
    let s = server_with(MockOptions {
        account,
        page_variant: PageVariant::classic(),
        ..MockOptions::default()
    })
    .await;
    let consent = consent_id(&s).await;
    let session = classic_to_pin(&s, &consent).await;
    let pin = s.account().pin.clone();
    let r = post_boxes(&s, &consent, &session, "pin", &pin).await;
    assert_eq!(r.status(), StatusCode::FOUND);
    let loc = location(&r);
    assert_eq!(loc.path(), "/cb");
    assert!(loc.query_pairs().any(|(k, v)| k == "app" && v == "demo"));
    assert!(!token_id_of(&r).is_empty());
}

#[tokio::test]
async fn unknown_consent_and_stale_sessions_show_the_expired_screen() {
    let s = server().await;
    let page = get_page(&s, "no-such-consent").await.text().await.unwrap();
    assert!(page.contains(r#"<h2 class="login-title">Session expired</h2>"#));
    assert!(!page.contains(r#"name="session""#));

    let r = post_form(&s, "x", &[("session", "forged"), ("mobileNumber", "1")]).await;
    assert!(r.text().await.unwrap().contains("Session expired"));
}

#[tokio::test]
async fn three_wrong_secrets_block_the_login() {
    let s = server().await;
    let consent = consent_id(&s).await;
    let session = classic_to_pin(&s, &consent).await;
    let mut last = String::new();
    for _ in 0..3 {
        last = post_boxes(&s, &consent, &session, "pin", "000001")
            .await
            .text()
            .await
            .unwrap();
    }
    assert_eq!(error_of(&last).as_deref(), Some(BLOCKED));
    let pin = s.account().pin.clone();
    let r = post_boxes(&s, &consent, &session, "pin", &pin).await;
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "blocked: the right PIN no longer helps"
    );
    assert_eq!(error_of(&r.text().await.unwrap()).as_deref(), Some(BLOCKED));
}

/// A stand-in on which one test can log in many times with many variants.
async fn many_logins_server() -> MockServer {
    let s = server_with(MockOptions {
        consent_cap: 1000,
        ..MockOptions::default()
    })
    .await;
    s.set_totp_reuse_allowed(true);
    s
}

/// What a code screen holds, counted by input kind:
/// [code-input boxes, code-hidden code-input boxes, tel maxlength=1 boxes,
///  password maxlength=1 boxes, single tel fields, single password fields, plain text boxes].
fn inputs_of(html: &str) -> [usize; 7] {
    let body = html.split("<app-login>").nth(1).unwrap_or(html);
    let body = body.split("</app-login>").next().unwrap();
    [
        body.matches(r#"<span><input type="tel" inputmode="numeric" autocomplete="one-time-code""#)
            .count(),
        body.matches(r#"<span class="code-hidden"><input type="tel" inputmode="numeric" autocomplete="one-time-code""#)
            .count(),
        body.matches(r#"<input type="tel" class="otp-box" maxlength="1""#)
            .count(),
        body.matches(r#"<input type="password" class="otp-box" maxlength="1""#)
            .count(),
        body.matches(r#"<input type="tel" class="form-control otp-field" inputmode="numeric" autocomplete="one-time-code" maxlength="6""#)
            .count(),
        body.matches(r#"<input type="password" class="form-control otp-field" inputmode="numeric" maxlength="6""#)
            .count(),
        body.matches(r#"<input type="text""#).count(),
    ]
}

/// The inputs §2a-style markup puts on a screen showing a six-digit code read off a
/// device (TOTP, SMS OTP), or on the PIN screen.
fn expected_inputs(markup: Markup, pin: bool) -> [usize; 7] {
    match (markup, pin) {
        (Markup::CodeInput | Markup::Ambiguous | Markup::Unrecognisable, true) => {
            [0, 6, 0, 0, 0, 0, 0]
        }
        (Markup::CodeInput | Markup::Ambiguous | Markup::Unrecognisable, false)
        | (Markup::MissingPinBoxes, false) => [6, 0, 0, 0, 0, 0, 0],
        (Markup::TelBoxes, _) | (Markup::PasswordPin, false) => [0, 0, 6, 0, 0, 0, 0],
        (Markup::PasswordPin, true) => [0, 0, 0, 6, 0, 0, 0],
        (Markup::SingleField, false) => [0, 0, 0, 0, 1, 0, 0],
        (Markup::SingleField, true) => [0, 0, 0, 0, 0, 1, 0],
        (Markup::MissingPinBoxes, true) => [0; 7],
    }
}

fn assert_rendered(html: &str, what: &str) {
    assert!(!html.contains("{{"), "{what}: unfilled placeholder");
    assert!(
        html.contains("<app-root>\n<app-login>"),
        "{what}: Angular-like root"
    );
    // The component's boxes carry none of the attributes scripts used to select by.
    for group in html.split("<code-input>").skip(1) {
        let group = group.split("</code-input>").next().unwrap();
        for attr in ["maxlength", "name=", "formcontrolname", "type=\"password\""] {
            assert!(!group.contains(attr), "{what}: {attr} in a <code-input>");
        }
    }
}

#[tokio::test]
async fn every_server_rendered_variant_renders_every_screen_and_counts_entries() {
    let s = many_logins_server().await;
    let mobile = s.account().mobile.clone();
    let pin = s.account().pin.clone();
    let mut expected_entries = [0u32; 4];
    for markup in Markup::ALL {
        for second_factor in [SecondFactor::Totp, SecondFactor::SmsOtp] {
            for totp_screen in [true, false] {
                let variant = PageVariant {
                    markup,
                    second_factor,
                    totp_screen,
                    spa: false,
                    ..PageVariant::default()
                };
                let what = format!("{variant:?}");
                s.set_page_variant(variant);
                let consent = consent_id(&s).await;
                let page = get_page(&s, &consent).await.text().await.unwrap();
                assert_rendered(&page, &what);
                assert!(page.contains("Login via Dhan") && page.contains("Mobile Number"));
                let session = session_of(&page);
                let page = post_form(
                    &s,
                    &consent,
                    &[("session", &session), ("mobileNumber", &mobile)],
                )
                .await
                .text()
                .await
                .unwrap();
                expected_entries[0] += 1;
                assert_rendered(&page, &what);

                // The screen after the mobile number: the second factor, or the PIN.
                let (field, code, second) = match (totp_screen, second_factor) {
                    (false, _) => ("pin", pin.clone(), None),
                    (true, SecondFactor::Totp) => ("totp", current_code(&s), Some(1)),
                    (true, SecondFactor::SmsOtp) => ("otp", s.sms_otp(), Some(2)),
                };
                if markup == Markup::Unrecognisable {
                    assert!(page.contains("Verify it's you"), "{what}");
                    assert_eq!(inputs_of(&page), [0, 0, 0, 0, 0, 0, 1], "{what}");
                    let page = post_form(&s, &consent, &[("session", &session), ("answer", &code)])
                        .await
                        .text()
                        .await
                        .unwrap();
                    assert_eq!(
                        error_of(&page).as_deref(),
                        Some("We could not verify you. Please try again later."),
                        "{what}"
                    );
                    assert!(page.contains("Verify it"), "the same screen stays");
                    expected_entries[second.unwrap_or(3)] += 1;
                    continue;
                }
                if markup == Markup::Ambiguous {
                    assert_eq!(inputs_of(&page), [6, 6, 0, 0, 0, 0, 0], "{what}");
                    assert!(
                        !page.contains("TOTP") && !page.contains("PIN for"),
                        "{what}"
                    );
                } else if second.is_some() {
                    assert_eq!(inputs_of(&page), expected_inputs(markup, false), "{what}");
                } else {
                    assert_eq!(inputs_of(&page), expected_inputs(markup, true), "{what}");
                }
                match (totp_screen, second_factor, markup) {
                    (_, _, Markup::Ambiguous) => {}
                    (false, _, _) => assert!(page.contains("Enter PIN for your Account")),
                    (true, SecondFactor::Totp, Markup::TelBoxes) => {
                        assert!(page.contains("Authenticator code"), "{what}")
                    }
                    (true, SecondFactor::Totp, _) => assert!(page.contains("Enter TOTP"), "{what}"),
                    (true, SecondFactor::SmsOtp, _) => {
                        assert!(page.contains("OTP sent to ******0042"), "{what}");
                        assert!(page.contains(">Verify</button>"), "{what}");
                    }
                }
                assert!(
                    !page.contains("Verify with TOTP"),
                    "never seen on Dhan's page"
                );

                let r = post_form(&s, &consent, &[("session", &session), (field, &code)]).await;
                expected_entries[second.unwrap_or(3)] += 1;
                let r = if second.is_some() {
                    let page = r.text().await.unwrap();
                    assert_rendered(&page, &what);
                    assert!(page.contains("Enter PIN for your Account"), "{what}");
                    assert!(page.contains(">Continue</button>"), "{what}");
                    assert_eq!(inputs_of(&page), expected_inputs(markup, true), "{what}");
                    expected_entries[3] += 1;
                    post_form(&s, &consent, &[("session", &session), ("pin", &pin)]).await
                } else {
                    r
                };
                assert_eq!(r.status(), StatusCode::FOUND, "{what}");
                assert_eq!(consume(&s, &token_id_of(&r)).await.status(), StatusCode::OK);
            }
        }
    }
    let kinds = [
        EntryKind::Mobile,
        EntryKind::Totp,
        EntryKind::SmsOtp,
        EntryKind::Pin,
    ];
    for (kind, expected) in kinds.into_iter().zip(expected_entries) {
        assert_eq!(s.entries(kind), expected, "{kind:?}");
    }
}

#[tokio::test]
async fn every_single_page_variant_holds_every_screen_in_templates() {
    let s = many_logins_server().await;
    for markup in Markup::ALL {
        for second_factor in [SecondFactor::Totp, SecondFactor::SmsOtp] {
            let variant = PageVariant {
                markup,
                second_factor,
                ..PageVariant::default()
            };
            let what = format!("{variant:?}");
            s.set_page_variant(variant);
            let consent = consent_id(&s).await;
            let page = get_page(&s, &consent).await.text().await.unwrap();
            assert_rendered(&page, &what);
            assert!(
                page.contains("<app-login></app-login>"),
                "{what}: drawn by script"
            );
            let settings = page_settings(&page);
            assert_eq!(settings["mode"], "spa");
            assert_eq!(settings["submission"], "button");
            assert!(settings["session"].as_str().is_some_and(|v| v.len() >= 16));
            for name in ["mobile", "totp", "otp", "pin", "expired"] {
                let marker = format!(r#"<template id="screen-{name}">"#);
                let template = page
                    .split(&marker)
                    .nth(1)
                    .unwrap_or_else(|| panic!("{what}: {name}"));
                let template = template.split("</template>").next().unwrap();
                assert!(!template.contains(r#"name="session""#), "{what}: {name}");
                if name != "expired" {
                    assert!(template.contains("<form"), "{what}: {name}");
                }
            }
        }
    }
    assert_eq!(s.entries(EntryKind::Mobile), 0, "nothing was submitted");
}

#[tokio::test]
async fn submission_mode_reaches_the_page_and_random_varies_per_load() {
    let s = many_logins_server().await;
    for (submission, want) in [
        (Submission::Auto, "auto"),
        (Submission::Button, "button"),
        (Submission::Deferred, "deferred"),
        (Submission::OnKey, "on-key"),
        (Submission::BusyButton, "busy-button"),
    ] {
        for spa in [false, true] {
            s.set_page_variant(PageVariant {
                submission,
                spa,
                ..PageVariant::classic()
            });
            let consent = consent_id(&s).await;
            let page = get_page(&s, &consent).await.text().await.unwrap();
            assert_eq!(page_settings(&page)["submission"], want, "spa {spa}");
            let mode = if spa { "spa" } else { "form" };
            assert_eq!(page_settings(&page)["mode"], mode);
            if !spa {
                assert_eq!(page_settings(&page)["screen"], "mobile");
            }
        }
    }
    s.set_page_variant(PageVariant {
        submission: Submission::Random,
        ..PageVariant::classic()
    });
    let consent = consent_id(&s).await;
    let mut seen = std::collections::HashSet::new();
    // 40 loads all alike would happen once in 2^39 runs.
    for _ in 0..40 {
        let page = get_page(&s, &consent).await.text().await.unwrap();
        seen.insert(
            page_settings(&page)["submission"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(seen.len(), 2, "{seen:?}");

    s.set_page_variant(PageVariant {
        submission: Submission::Random,
        ..PageVariant::default()
    });
    let page = get_page(&s, &consent).await.text().await.unwrap();
    assert_eq!(
        page_settings(&page)["submission"],
        "random",
        "a single page decides on each screen"
    );
}

#[tokio::test]
async fn a_double_submission_is_counted_twice() {
    let s = server().await;
    let consent = consent_id(&s).await;
    let session = classic_to_pin(&s, &consent).await;
    assert_eq!(s.entries(EntryKind::Totp), 1);
    // The TOTP sent again after the page moved on (an auto-submit plus a click).
    let code = current_code(&s);
    let page = post_boxes(&s, &consent, &session, "totp", &code)
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(s.entries(EntryKind::Totp), 2);
    assert_eq!(s.entries(EntryKind::Pin), 0, "counted as what it carried");
    assert_eq!(
        error_of(&page).as_deref(),
        Some("Incorrect PIN, please try again"),
        "the server read it as a PIN: what a stray second submit costs"
    );
    // Faulted submissions reached the stand-in too.
    s.set_fault_once(Endpoint::ConsentLoginPage, Fault::Status(503));
    let r = post_boxes(&s, &consent, &session, "pin", "999999").await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(s.entries(EntryKind::Pin), 1);
    assert_eq!(s.entries(EntryKind::Mobile), 1);
}

#[tokio::test]
async fn skip_totp_goes_from_mobile_to_the_pin() {
    let s = serving(PageVariant {
        totp_screen: false,
        ..PageVariant::default()
    })
    .await;
    let (_, page) = opened_page(&s).await;
    let session = page_settings(&page)["session"].as_str().unwrap().to_owned();
    let call = |step: &str, body: Value| {
        let u = url(&s.auth_base_url(), &format!("/login/api/{step}"));
        async move { client().post(u).json(&body).send().await.unwrap() }
    };
    let mobile = s.account().mobile.clone();
    let r = call(
        "mobile",
        serde_json::json!({"session": session, "mobileNumber": mobile}),
    )
    .await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({"status": "success", "next": "pin"})
    );
    let pin = s.account().pin.clone();
    let r = call("pin", serde_json::json!({"session": session, "pin": pin})).await;
    let body: Value = r.json().await.unwrap();
    assert!(body["redirect"].as_str().is_some(), "{body}");
    assert_eq!(s.entries(EntryKind::Totp), 0);
    assert_eq!(s.entries(EntryKind::Pin), 1);
}

#[tokio::test]
async fn sms_otp_replaces_the_totp_and_accepts_only_its_code() {
    let s = serving(PageVariant {
        second_factor: SecondFactor::SmsOtp,
        spa: false,
        ..PageVariant::default()
    })
    .await;
    let otp = s.sms_otp();
    assert!(
        otp.len() == 6 && otp.chars().all(|c| c.is_ascii_digit()),
        "{otp}"
    );
    assert_eq!(s.describe_json()["sms_otp"], otp.as_str());
    assert_eq!(s.sms_otp(), otp, "fixed per server");

    let (consent, page) = opened_page(&s).await;
    let session = session_of(&page);
    let mobile = s.account().mobile.clone();
    let page = post_form(
        &s,
        &consent,
        &[("session", &session), ("mobileNumber", &mobile)],
    )
    .await
    .text()
    .await
    .unwrap();
    assert!(page.contains("OTP sent to ******0042"));
    let wrong = if otp == "000000" { "111111" } else { "000000" };
    // A TOTP is not the OTP, even a right one.
    for (field, code) in [("otp", wrong.to_owned()), ("totp", current_code(&s))] {
        let page = post_form(&s, &consent, &[("session", &session), (field, &code)])
            .await
            .text()
            .await
            .unwrap();
        assert_eq!(
            error_of(&page).as_deref(),
            Some("Invalid OTP, please try again")
        );
        assert!(page.contains("OTP sent to"), "the same screen, boxes empty");
    }
    let page = post_form(&s, &consent, &[("session", &session), ("otp", &otp)])
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("Enter PIN for your Account"));
    assert_eq!(s.entries(EntryKind::SmsOtp), 2);
    assert_eq!(s.entries(EntryKind::Totp), 1);
}

#[tokio::test]
async fn proceed_ignored_once_is_told_to_the_first_document_only() {
    let s = serving(PageVariant {
        proceed_ignored_once: true,
        ..PageVariant::classic()
    })
    .await;
    let (consent, page) = opened_page(&s).await;
    assert_eq!(page_settings(&page)["ignoreFirstProceed"], true);
    assert!(page.contains("ignoreFirstProceed"), "the script reads it");
    let session = session_of(&page);
    // After a wrong number the page is re-rendered: that Proceed was not the first.
    let page = post_form(
        &s,
        &consent,
        &[("session", &session), ("mobileNumber", "1")],
    )
    .await
    .text()
    .await
    .unwrap();
    assert_eq!(page_settings(&page)["ignoreFirstProceed"], false);

    s.set_page_variant(PageVariant {
        proceed_ignored_once: true,
        ..PageVariant::default()
    });
    let page = get_page(&s, &consent).await.text().await.unwrap();
    assert_eq!(page_settings(&page)["ignoreFirstProceed"], true);

    s.set_page_variant(PageVariant::default());
    let page = get_page(&s, &consent).await.text().await.unwrap();
    assert_eq!(page_settings(&page)["ignoreFirstProceed"], false);
}

#[tokio::test]
async fn the_tracker_carries_a_decoy_token_id_that_consume_refuses() {
    let s = serving(PageVariant::default()).await;
    let decoy = s.decoy_token_id();
    let (consent, page) = opened_page(&s).await;
    assert!(page.contains(
        r#"<script async src="https://www.googletagmanager.com/gtag/js?id=G-MOCK"></script>"#
    ));
    assert!(page.contains(r#"<iframe src="/analytics/frame""#));
    assert!(!page.contains(&decoy), "only the frame's document knows it");

    let frame = client()
        .get(url(&s.auth_base_url(), "/analytics/frame"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(frame.contains(&format!("/analytics/collect?tokenId={decoy}")));
    assert!(
        frame.contains("location.href"),
        "the frame navigates itself"
    );
    let r = client()
        .get(url(
            &s.auth_base_url(),
            &format!("/analytics/collect?tokenId={decoy}"),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    let loc = location(&r);
    assert!(loc.as_str().starts_with(&s.account().redirect_url), "{loc}");
    assert_eq!(token_id_of(&r), decoy);

    let r = consume(&s, &decoy).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["errorCode"], "INVALID_TOKEN_ID");
    assert_eq!(s.logins(), 0);
    assert_eq!(
        s.calls(Endpoint::ConsentLoginPage),
        1,
        "the tracker is another host's, not the login page's"
    );

    s.set_page_variant(PageVariant {
        tracker_iframe: false,
        ..PageVariant::default()
    });
    let page = get_page(&s, &consent).await.text().await.unwrap();
    assert!(!page.contains("<iframe") && !page.contains("<script async src"));
}

#[tokio::test]
async fn the_unrecognisable_screen_lets_nothing_through_on_a_single_page() {
    let s = serving(PageVariant {
        markup: Markup::Unrecognisable,
        ..PageVariant::default()
    })
    .await;
    let (_, page) = opened_page(&s).await;
    let totp_tpl = page.split(r#"<template id="screen-totp">"#).nth(1).unwrap();
    let totp_tpl = totp_tpl.split("</template>").next().unwrap();
    assert!(totp_tpl.contains("Verify it") && totp_tpl.contains(r#"<input type="text""#));
    assert!(!totp_tpl.contains("code-input") && !totp_tpl.contains("Proceed"));
    let session = page_settings(&page)["session"].as_str().unwrap().to_owned();
    let call = |step: &str, body: Value| {
        let u = url(&s.auth_base_url(), &format!("/login/api/{step}"));
        async move { client().post(u).json(&body).send().await.unwrap() }
    };
    let mobile = s.account().mobile.clone();
    call(
        "mobile",
        serde_json::json!({"session": session, "mobileNumber": mobile}),
    )
    .await;
    let r = call(
        "totp",
        serde_json::json!({"session": session, "answer": current_code(&s)}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["message"],
        "We could not verify you. Please try again later."
    );
    assert_eq!(s.entries(EntryKind::Totp), 1);
    assert_eq!(s.entries(EntryKind::Pin), 0);
}

#[tokio::test]
async fn spa_page_draws_late_and_logs_in_through_json_calls() {
    let s = server_with(MockOptions {
        page_variant: PageVariant::spa_classic(),
        spa_render_delay: Duration::from_millis(750),
        ..MockOptions::default()
    })
    .await;
    let (_, page) = opened_page(&s).await;
    let settings = page_settings(&page);
    assert_eq!(settings["renderDelayMs"], 750);
    assert_eq!(settings["submission"], "auto");
    assert!(page.contains("<app-login></app-login>"));
    assert!(page.contains(r#"<template id="screen-totp">"#));
    // Nothing outside the templates until the script runs.
    let outside: String = page
        .split("<template")
        .enumerate()
        .map(|(i, part)| {
            if i == 0 {
                part
            } else {
                part.split("</template>").nth(1).unwrap_or("")
            }
        })
        .collect();
    assert!(!outside.contains("formcontrolname"));
    assert!(!outside.contains("toast-message"));
    // Auto submission keeps the button on screen.
    let totp_tpl = page.split(r#"<template id="screen-totp">"#).nth(1).unwrap();
    let totp_tpl = totp_tpl.split("</template>").next().unwrap();
    assert!(totp_tpl.contains(">Proceed</button>"));

    let session = settings["session"].as_str().unwrap().to_owned();
    let call = |step: &str, body: Value| {
        let u = url(&s.auth_base_url(), &format!("/login/api/{step}"));
        async move { client().post(u).json(&body).send().await.unwrap() }
    };

    let r = call(
        "mobile",
        serde_json::json!({"session": session, "mobileNumber": "1"}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["message"], "Mobile number is not registered");

    let mobile = s.account().mobile.clone();
    let r = call(
        "mobile",
        serde_json::json!({"session": session, "mobileNumber": mobile}),
    )
    .await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({"status": "success", "next": "totp"})
    );

    let r = call(
        "totp",
        serde_json::json!({"session": session, "totp": current_code(&s)}),
    )
    .await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["next"], "pin");

    let pin = s.account().pin.clone();
    let r = call("pin", serde_json::json!({"session": session, "pin": pin})).await;
    let body: Value = r.json().await.unwrap();
    let next = body["redirect"].as_str().unwrap();
    assert_eq!(
        next,
        format!("/login/consentApp-complete?session={session}")
    );

    let r = client()
        .get(url(&s.auth_base_url(), next))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    let token_id = token_id_of(&r);
    assert_eq!(consume(&s, &token_id).await.status(), StatusCode::OK);

    let r = call(
        "pin",
        serde_json::json!({"session": session, "pin": "135790"}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::GONE);
    assert_eq!(s.calls(Endpoint::ConsentLoginPage), 7);
    assert_eq!(s.entries(EntryKind::Mobile), 2);
    assert_eq!(s.entries(EntryKind::Totp), 1);
    assert_eq!(s.entries(EntryKind::Pin), 2, "one too late, still counted");
}

#[tokio::test]
async fn single_page_steps_honour_faults_and_spend_each_totp_once() {
    let s = serving(PageVariant::default()).await;
    let call = |step: &str, body: Value| {
        let u = url(&s.auth_base_url(), &format!("/login/api/{step}"));
        async move { client().post(u).json(&body).send().await.unwrap() }
    };
    let mobile = s.account().mobile.clone();
    let code = current_code(&s);
    let mut sessions = Vec::new();
    for _ in 0..2 {
        let consent = consent_id(&s).await;
        let page = get_page(&s, &consent).await.text().await.unwrap();
        let session = page_settings(&page)["session"].as_str().unwrap().to_owned();
        call(
            "mobile",
            serde_json::json!({"session": session, "mobileNumber": mobile}),
        )
        .await;
        sessions.push(session);
    }
    // A right code refused by the fault, then accepted, then refused as spent.
    s.set_fault_once(Endpoint::ConsentLoginPage, Fault::WrongCredential);
    let r = call(
        "totp",
        serde_json::json!({"session": sessions[0], "totp": code}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["message"], "Invalid Totp entered");
    let r = call(
        "totp",
        serde_json::json!({"session": sessions[0], "totp": code}),
    )
    .await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["next"], "pin");
    let r = call(
        "totp",
        serde_json::json!({"session": sessions[1], "totp": code}),
    )
    .await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["message"], "Invalid Totp entered",
        "the same code in another login is a reuse"
    );
    assert_eq!(s.entries(EntryKind::Totp), 3);
    // Page load, mobile and TOTP calls for both sessions: every one counted.
    assert_eq!(s.calls(Endpoint::ConsentLoginPage), 2 + 2 + 3);
}

/// The first seed whose drawn page satisfies `wanted`.
fn generated_seed(wanted: impl Fn(&Value) -> bool) -> u64 {
    (0..10_000)
        .find(|s| {
            PageVariant::generated(*s)
                .layout_json()
                .is_some_and(|l| wanted(&l))
        })
        .expect("some seed draws it")
}

#[tokio::test]
async fn a_generated_page_is_reproducible_described_and_may_move_origin() {
    let same = generated_seed(|l| l["origin"] == "same" && l["rendering"] == "documents");
    let s = serving(PageVariant::generated(same)).await;
    assert_eq!(s.describe_json()["page"]["seed"], same);
    assert_eq!(
        PageVariant::generated(same).layout_json(),
        PageVariant::generated(same).layout_json()
    );
    let consent = consent_id(&s).await;
    let page = get_page(&s, &consent).await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(
        html.contains(r#""gen":{"#),
        "the page script gets the drawn behaviour"
    );

    let moved = generated_seed(|l| l["origin"] == "redirected");
    let s = serving(PageVariant::generated(moved)).await;
    let consent = consent_id(&s).await;
    let page = get_page(&s, &consent).await;
    assert_eq!(page.status(), StatusCode::FOUND);
    let to = location(&page);
    assert_eq!(to.host_str(), Some("localhost"), "{to}");
    assert_eq!(to.port(), Some(s.local_addr().port()));
    assert!(to.as_str().contains(&consent));
    // The second origin serves the page itself.
    let there = client().get(to.as_str()).send().await.unwrap();
    assert_eq!(there.status(), StatusCode::OK);
}
