//! The stand-in's API endpoints over plain HTTP, the way clients (ours and DhanHQ-py) call
//! them: generateAccessToken, the consent pair, RenewToken, the profile, the test-only
//! token issuer, several accounts on one stand-in.

use crate::common;

use std::time::Duration;

use chrono::{NaiveDateTime, TimeZone, Utc};
use common::cli::exit_of;
use common::stand_in::{
    assert_six_fields, claims, classic_to_pin, client, consent_id, current_code, direct_login,
    expiry_utc, generate_consent, ist, next_code, post_boxes, profile, renew, server, server_with,
    token_id_of, url,
};
use common::{totp_code_at, unix_now};
use dhan_login::ErrorClass;
use dhan_login::mock::{Endpoint, MockAccount, MockOptions, TokenKind};
use reqwest::StatusCode;
use serde_json::Value;

#[tokio::test]
async fn direct_login_returns_the_six_fields_and_an_app_jwt() {
    let s = server().await;
    let r = direct_login(&s, &s.account().pin, &current_code(&s)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_six_fields(&body, s.account());

    let expiry = expiry_utc(&body);
    let in_24h = Utc::now() + chrono::TimeDelta::hours(24);
    assert!(
        (expiry - in_24h).num_seconds().abs() <= 5,
        "{expiry} vs {in_24h}"
    );

    let token = body["accessToken"].as_str().unwrap();
    let c = claims(token);
    assert_eq!(c["tokenConsumerType"], "APP");
    assert_eq!(c["dhanClientId"], s.account().client_id.as_str());
    assert_eq!(c["exp"].as_i64().unwrap(), expiry.timestamp());
    assert!(c["iat"].as_i64().is_some() && c["iss"].is_string());
    assert!(c["partnerId"].is_string() && c["userRegion"].is_string());
    assert!(s.is_live(token));
    assert_eq!(s.logins(), 1);
    assert_eq!(s.calls(Endpoint::GenerateAccessToken), 1);
}

#[tokio::test]
async fn direct_login_rejects_wrong_pin_totp_and_client() {
    let s = server().await;
    let pin = s.account().pin.clone();

    let r = direct_login(&s, "000000", &current_code(&s)).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({"status": "error", "message": "Invalid PIN"})
    );

    let wrong = format!(
        "{:06}",
        (current_code(&s).parse::<u32>().unwrap() + 1) % 1_000_000
    );
    let r = direct_login(&s, &pin, &wrong).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["message"], "Invalid TOTP");

    // Two steps back is outside the ±1 window.
    let stale = totp_code_at(&s.account().totp_secret, unix_now() - 60);
    let r = direct_login(&s, &pin, &stale).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    let r = client()
        .post(url(&s.auth_base_url(), "/app/generateAccessToken"))
        .query(&[
            ("dhanClientId", "999"),
            ("pin", &pin),
            ("totp", &current_code(&s)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    let r = client()
        .post(url(&s.auth_base_url(), "/app/generateAccessToken"))
        .query(&[
            ("dhanClientId", s.account().client_id.as_str()),
            ("pin", &pin),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    assert_eq!(s.logins(), 0);
    assert_eq!(s.calls(Endpoint::GenerateAccessToken), 5);
    // Failures spent nothing: the right code still works afterwards.
    assert_eq!(
        direct_login(&s, &pin, &current_code(&s)).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_totp_code_works_once() {
    let s = server().await;
    let pin = s.account().pin.clone();
    let code = current_code(&s);
    assert_eq!(direct_login(&s, &pin, &code).await.status(), StatusCode::OK);

    let r = direct_login(&s, &pin, &code).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body: Value = r.json().await.unwrap();
    assert!(body["message"].as_str().unwrap().contains("already used"));
    assert_eq!(s.logins(), 1);

    // The next step's code is a different code: accepted.
    assert_eq!(
        direct_login(&s, &pin, &next_code(&s)).await.status(),
        StatusCode::OK
    );

    s.set_totp_reuse_allowed(true);
    assert_eq!(direct_login(&s, &pin, &code).await.status(), StatusCode::OK);
    assert_eq!(s.logins(), 3);
}

#[tokio::test]
async fn a_new_token_ends_the_previous_one() {
    let s = server().await;
    let old = s.issue_token(TokenKind::SelfWeb, Duration::from_secs(3600));
    assert!(s.is_live(&old));
    let r = direct_login(&s, &s.account().pin, &current_code(&s)).await;
    let body: Value = r.json().await.unwrap();
    let new = body["accessToken"].as_str().unwrap();
    assert!(s.is_live(new));
    assert!(!s.is_live(&old));
    assert_eq!(profile(&s, &old).await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn consent_generation_checks_credentials_and_caps_the_day() {
    let s = server().await;
    s.set_consent_cap(2);

    let r = generate_consent(&s).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], "success");
    assert_eq!(body["consentAppStatus"], "GENERATED");
    let first = body["consentAppId"].as_str().unwrap().to_owned();
    assert_eq!(first.len(), 36);
    assert!(s.consent_usable(&first));

    let second = consent_id(&s).await;
    assert_ne!(first, second);

    let r = generate_consent(&s).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["errorCode"], "CONSENT_LIMIT_EXCEED");
    assert_eq!(body["errorMessage"], "Consent limit Exceeded");
    assert_eq!(s.consents_today(), 2);

    // Raising the cap lets the day go on.
    s.set_consent_cap(3);
    assert_eq!(generate_consent(&s).await.status(), StatusCode::OK);

    let a = s.account();
    let r = client()
        .post(url(&s.auth_base_url(), "/app/generate-consent"))
        .query(&[("client_id", a.client_id.as_str())])
        .header("app_id", &a.api_key)
        .header("app_secret", "not-the-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body: Value = r.json().await.unwrap();
    assert!(body["errorCode"].is_string() && body["errorMessage"].is_string());

    let r = client()
        .post(url(&s.auth_base_url(), "/app/generate-consent"))
        .query(&[("client_id", "123")])
        .header("APP_ID", &a.api_key)
        .header("App_Secret", &a.api_secret)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::BAD_REQUEST,
        "header case is irrelevant, client_id is not"
    );
    assert_eq!(s.consents_today(), 3);
    assert_eq!(s.calls(Endpoint::GenerateConsent), 6);
}

#[tokio::test]
async fn consume_checks_app_credentials_and_accepts_post() {
    let s = server().await;
    let consent = consent_id(&s).await;
    let session = classic_to_pin(&s, &consent).await;
    let pin = s.account().pin.clone();
    let r = post_boxes(&s, &consent, &session, "pin", &pin).await;
    let token_id = token_id_of(&r);

    let r = client()
        .get(url(&s.auth_base_url(), "/app/consumeApp-consent"))
        .query(&[("tokenId", token_id.as_str())])
        .header("app_id", &s.account().api_key)
        .header("app_secret", "wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    let a = s.account();
    let r = client()
        .post(url(&s.auth_base_url(), "/app/consumeApp-consent"))
        .query(&[("tokenId", token_id.as_str())])
        .header("app_id", &a.api_key)
        .header("app_secret", &a.api_secret)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "a refused attempt did not spend the tokenId"
    );
    assert_eq!(s.logins(), 1);
}

#[tokio::test]
async fn renew_extends_a_live_self_token_only() {
    let s = server().await;
    let old = s.issue_token(TokenKind::SelfWeb, Duration::from_secs(600));
    assert_eq!(claims(&old)["tokenConsumerType"], "SELF");

    let r = renew(&s, &old).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    // Live Dhan's shape: `token` and `createTime`, no `accessToken`, no `expiryTime`.
    assert!(body.get("accessToken").is_none(), "{body}");
    assert!(body["createTime"].is_string(), "{body}");
    let new = body["token"].as_str().unwrap();
    assert_ne!(new, old);
    assert_eq!(claims(new)["tokenConsumerType"], "SELF");
    let exp = claims(new)["exp"].as_i64().unwrap();
    assert!(exp > (Utc::now() + chrono::TimeDelta::hours(23)).timestamp());
    assert!(s.is_live(new));
    assert!(!s.is_live(&old), "renewal expires the renewed token");
    assert_eq!(s.logins(), 0, "renewal is not a login");

    let r = renew(&s, &old).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["errorCode"], "DH-901");
}

#[tokio::test]
async fn renew_refuses_app_expired_and_post() {
    let s = server().await;
    // As live Dhan answered in 2026: HTTP 500 DH-905 for a token an API login made.
    let app = s.issue_token(TokenKind::App, Duration::from_secs(600));
    let r = renew(&s, &app).await;
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["errorCode"], "DH-905");
    assert_eq!(
        body["errorMessage"],
        "Renewal of token not allowed for this token type"
    );
    assert!(s.is_live(&app), "a refused renewal leaves the token alone");

    // An expired token: an error body under HTTP 200.
    let expired = s.issue_token(TokenKind::SelfWeb, Duration::ZERO);
    assert!(!s.is_live(&expired));
    let r = renew(&s, &expired).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({
            "errorType": "Invalid_Authentication",
            "errorCode": "DH-901",
            "errorMessage": "Client ID or user generated access token is invalid or expired."
        })
    );

    let live = s.issue_token(TokenKind::SelfWeb, Duration::from_secs(600));
    let r = client()
        .get(url(&s.api_base_url(), "/RenewToken"))
        .header("access-token", &live)
        .header("dhanClientId", "someone-else")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    let r = client()
        .post(url(&s.api_base_url(), "/RenewToken"))
        .header("access-token", &live)
        .header("dhanClientId", &s.account().client_id)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["errorCode"], "DH-905");
    assert!(s.is_live(&live));
    assert_eq!(s.calls(Endpoint::RenewToken), 4);
}

#[tokio::test]
async fn profile_reports_validity_in_ist() {
    let s = server().await;
    let token = s.issue_token(TokenKind::App, Duration::from_secs(2 * 3600));
    let r = profile(&s, &token).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["dhanClientId"], s.account().client_id.as_str());
    let validity = body["tokenValidity"].as_str().unwrap();
    let naive = NaiveDateTime::parse_from_str(validity, "%d/%m/%Y %H:%M").unwrap();
    let at = ist()
        .from_local_datetime(&naive)
        .unwrap()
        .with_timezone(&Utc);
    let expected = Utc::now() + chrono::TimeDelta::hours(2);
    assert!((at - expected).num_seconds().abs() <= 61, "{validity}");
    for key in ["activeSegment", "ddpi", "mtf", "dataPlan", "dataValidity"] {
        assert!(body[key].is_string(), "{key}");
    }

    let r = profile(&s, "not-a-token").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["errorCode"], "DH-901");

    let r = client()
        .get(url(&s.api_base_url(), "/profile"))
        .header("access-token", &token)
        .header("dhanClientId", "someone-else")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(s.calls(Endpoint::Profile), 3);
}

#[tokio::test]
async fn issue_token_endpoint_serves_out_of_process_clients() {
    let s = server().await;
    let r = client()
        .post(url(&s.auth_base_url(), "/mock/issue-token"))
        .query(&[("kind", "SELF"), ("lifetime_secs", "120")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    let token = body["accessToken"].as_str().unwrap();
    assert_eq!(claims(token)["tokenConsumerType"], "SELF");
    let expiry = expiry_utc(&body);
    assert!(
        (expiry - (Utc::now() + chrono::TimeDelta::seconds(120)))
            .num_seconds()
            .abs()
            <= 3
    );
    assert_eq!(renew(&s, token).await.status(), StatusCode::OK);

    let r = client()
        .post(url(&s.auth_base_url(), "/mock/issue-token"))
        .query(&[("kind", "ROOT")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(s.logins(), 0);
}

/// `dhan-login mock-server --accounts 3`: its first line lists three accounts, each with
/// its own client id, mobile, PIN and TOTP secret, and each logs in with its own
/// credentials only (`dhan-login token` as a separate process, as scripts would).
#[tokio::test(flavor = "multi_thread")]
async fn mock_server_with_several_accounts_lists_them_and_each_logs_in_alone() {
    use tokio::io::AsyncBufReadExt;

    let bin = env!("CARGO_BIN_EXE_dhan-login");
    let mut child = tokio::process::Command::new(bin)
        // A wrong PIN right after a login must reach the PIN check, not Dhan's window.
        .args([
            "mock-server",
            "--port",
            "0",
            "--accounts",
            "3",
            "--mint-interval-secs",
            "0",
        ])
        .env_clear()
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start mock-server");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let first = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .expect("mock-server printed nothing within 10 s")
        .expect("read stdout")
        .expect("mock-server closed stdout without a line");
    let d: Value = serde_json::from_str(&first).unwrap();
    let accounts = d["accounts"].as_array().expect("an accounts array");
    assert_eq!(accounts.len(), 3, "{d}");
    // The top level stays the first account's, for single-account scripts.
    for key in [
        "client_id",
        "mobile",
        "pin",
        "totp_secret",
        "api_key",
        "api_secret",
    ] {
        assert_eq!(accounts[0][key], d[key], "{key}");
        let distinct: std::collections::HashSet<_> =
            accounts.iter().map(|a| a[key].as_str().unwrap()).collect();
        assert_eq!(distinct.len(), 3, "{key} is shared between accounts: {d}");
    }

    let run = |account: &Value, pin: &Value| {
        let state = tempfile::tempdir().unwrap();
        std::fs::write(state.path().join("none.toml"), "").unwrap();
        let out = std::process::Command::new(bin)
            .args(["token", "--json"])
            .env_clear()
            .env("DHAN_LOGIN_STATE_DIR", state.path())
            .env("DHAN_LOGIN_CONFIG", state.path().join("none.toml"))
            .env("DHAN_AUTH_BASE_URL", d["auth_base_url"].as_str().unwrap())
            .env("DHAN_API_BASE_URL", d["api_base_url"].as_str().unwrap())
            .env("DHAN_CLIENT_ID", account["client_id"].as_str().unwrap())
            .env("DHAN_PIN", pin.as_str().unwrap())
            .env("DHAN_TOTP_SECRET", account["totp_secret"].as_str().unwrap())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.code(), stdout, stderr)
    };
    let mut tokens = std::collections::HashSet::new();
    for a in accounts {
        let (code, out, err) = tokio::task::block_in_place(|| run(a, &a["pin"]));
        assert_eq!(code, Some(0), "{}: {err}", a["client_id"]);
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["client_id"], a["client_id"], "{out}");
        tokens.insert(v["access_token"].as_str().unwrap().to_owned());
    }
    assert_eq!(tokens.len(), 3, "each account has its own token");
    // Another account's PIN is a wrong PIN here: exit 3 (credentials rejected).
    let (code, _, err) = tokio::task::block_in_place(|| run(&accounts[1], &accounts[2]["pin"]));
    assert_eq!(code, Some(exit_of(ErrorClass::CredentialRejected)), "{err}");
    child.kill().await.expect("stop mock-server");
}

/// Several accounts in one stand-in keep their state apart: logins, the consent cap and
/// the one live token are per account, and one app cannot act for another's client.
#[tokio::test]
async fn accounts_of_one_stand_in_keep_logins_consents_and_tokens_apart() {
    let s = server_with(MockOptions {
        accounts: 2,
        consent_cap: 1,
        ..MockOptions::default()
    })
    .await;
    let [a, b] = s.accounts() else {
        panic!("two accounts: {:?}", s.accounts())
    };
    assert_eq!(a, &MockAccount::demo());
    let http = client();
    let login = |acct: &MockAccount| {
        let q = [
            ("dhanClientId", acct.client_id.clone()),
            ("pin", acct.pin.clone()),
            ("totp", totp_code_at(&acct.totp_secret, unix_now())),
        ];
        http.post(url(&s.auth_base_url(), "/app/generateAccessToken"))
            .query(&q)
            .send()
    };
    let ta: Value = login(a).await.unwrap().json().await.unwrap();
    let tb: Value = login(b).await.unwrap().json().await.unwrap();
    assert_eq!(tb["dhanClientId"], b.client_id.as_str(), "{tb}");
    let (ta, tb) = (
        ta["accessToken"].as_str().unwrap(),
        tb["accessToken"].as_str().unwrap(),
    );
    // B's login did not end A's token: one live token per account, not per stand-in.
    assert!(s.is_live(ta) && s.is_live(tb));
    assert_eq!(
        (s.logins_of(&a.client_id), s.logins_of(&b.client_id)),
        (1, 1)
    );
    assert_eq!(s.logins(), 2);

    let consent = |app: &MockAccount, client_id: &str| {
        http.post(url(&s.auth_base_url(), "/app/generate-consent"))
            .query(&[("client_id", client_id)])
            .header("app_id", &app.api_key)
            .header("app_secret", &app.api_secret)
            .send()
    };
    // A's app cannot ask for B's client.
    let r = consent(a, &b.client_id).await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("INVALID_CLIENT_ID"));
    // Each account has its own cap of 1.
    for acct in [a, b] {
        assert_eq!(consent(acct, &acct.client_id).await.unwrap().status(), 200);
        let r = consent(acct, &acct.client_id).await.unwrap();
        assert!(r.text().await.unwrap().contains("CONSENT_LIMIT_EXCEED"));
    }
    assert_eq!(s.consents_today_of(&b.client_id), 1);
    assert_eq!(s.consents_today(), 2);
}
