//! The lockout guard: credentials Dhan rejected are never sent again until they change or
//! `unlock`, whatever fails around them (secret commands, corrupt files), a rejected API
//! secret holds only the paths that send it, and a lockout on disk cannot be searched
//! for the PIN.

use crate::common;

use std::time::Duration;

use base64::Engine;
use common::{Stand, run, run_within};
use dhan_login::ErrorClass;
use dhan_login::mock::{Endpoint, Fault};

#[tokio::test(flavor = "multi_thread")]
async fn a_rejected_pin_is_never_retried_automatically() {
    let stand = Stand::start().await;
    let wrong = |args: &[&str]| stand.cli_wrong_pin(args);
    run(wrong(&["login", "--via", "totp"]), None)
        .await
        .assert_class(ErrorClass::CredentialRejected);
    assert_eq!(stand.server.calls(Endpoint::GenerateAccessToken), 1);

    let again = run(wrong(&["token"]), None).await;
    again.assert_class(ErrorClass::CredentialRejected);
    assert_eq!(
        stand.server.calls(Endpoint::GenerateAccessToken),
        1,
        "0 calls while locked"
    );
    assert!(again.stderr.contains("dhan-login unlock"), "{again}");
    let status = stand.run(["status"]).await;
    assert!(status.stdout.contains("locked:"), "{status}");

    // unlock allows one more try of the same credentials. Each try waits for a TOTP
    // step no earlier run used: up to 35 s.
    let fresh_step = Duration::from_secs(70);
    run(wrong(&["unlock"]), None).await.assert_ok();
    run_within(wrong(&["token"]), None, fresh_step)
        .await
        .assert_class(ErrorClass::CredentialRejected);
    assert_eq!(stand.server.calls(Endpoint::GenerateAccessToken), 2);

    // A changed PIN is another set of credentials: allowed without unlock.
    let fixed = run_within(stand.cli(["token"]), None, fresh_step).await;
    fixed.assert_ok();
    assert_eq!(stand.server.calls(Endpoint::GenerateAccessToken), 3);
    let status = stand.run(["status"]).await;
    assert!(
        !status.stdout.contains("locked:"),
        "a success clears the lockout:\n{status}"
    );
}

/// After a wrong PIN, neither a failing `api_secret_command` (which the PIN+TOTP path
/// does not send) nor a corrupt state file lets the same PIN reach Dhan again; a corrupt
/// lockout file counts as locked.
#[tokio::test(flavor = "multi_thread")]
async fn a_lockout_survives_a_failing_secret_command_and_corrupt_files() {
    let stand = Stand::start().await;
    run(stand.cli_wrong_pin(["login", "--via", "totp"]), None)
        .await
        .assert_class(ErrorClass::CredentialRejected);
    assert_eq!(stand.server.calls(Endpoint::GenerateAccessToken), 1);

    let config = stand
        .sandbox
        .write_config("[profiles.default]\napi_secret_command = \"exit 1\"\n");
    let mut failing = stand.cli_wrong_pin(["token"]);
    failing
        .env_remove("DHAN_API_SECRET")
        .env("DHAN_LOGIN_CONFIG", &config);
    let r = run(failing, None).await;
    r.assert_class(ErrorClass::CredentialRejected);
    assert!(r.stderr.contains("dhan-login unlock"), "{r}");
    // The guard's own refusal is not Dhan's: it records no second lockout.
    let lockouts = stand.sandbox.state_dir().join("lockouts/default.json");
    let recorded: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&lockouts).unwrap()).unwrap();
    assert_eq!(
        recorded["lockouts"].as_array().map(Vec::len),
        Some(1),
        "{recorded}"
    );

    std::fs::write(stand.sandbox.token_file("default"), b"{\"token\": nul").unwrap();
    run(stand.cli_wrong_pin(["token"]), None)
        .await
        .assert_class(ErrorClass::CredentialRejected);

    std::fs::write(&lockouts, b"\x00garbage").unwrap();
    let r = run(stand.cli_wrong_pin(["token"]), None).await;
    r.assert_class(ErrorClass::CredentialRejected);
    assert!(r.stderr.contains("cannot be read"), "{r}");
    assert_eq!(
        stand.server.calls(Endpoint::GenerateAccessToken),
        1,
        "the rejected PIN reached Dhan once"
    );
    // `unlock` is the way out of a corrupt lockout file too.
    stand.run(["unlock"]).await.assert_ok();
    assert!(!lockouts.exists());
}

/// A generate-consent 401 (the API key pair) holds the consent paths, not PIN+TOTP.
#[tokio::test(flavor = "multi_thread")]
async fn a_rejected_api_secret_does_not_block_the_pin_totp_path() {
    let stand = Stand::start().await;
    stand
        .server
        .set_fault_once(Endpoint::GenerateConsent, Fault::WrongCredential);
    stand
        .run(["login", "--via", "browser"])
        .await
        .assert_class(ErrorClass::CredentialRejected);
    stand.run(["login", "--via", "totp"]).await.assert_ok();
    // The consent path stays held: the same key pair is not sent again.
    stand
        .run(["login", "--via", "browser"])
        .await
        .assert_class(ErrorClass::CredentialRejected);
    assert_eq!(stand.server.calls(Endpoint::GenerateConsent), 1);
}

/// The lockout fingerprint scheme of versions before keyed fingerprints: an unsalted
/// SHA-256 (first 16 bytes) over the client id and the values.
fn unkeyed(client_id: &str, fields: &[(&str, &str)]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"dhan-login credentials v2\0");
    h.update(client_id.as_bytes());
    for (name, value) in fields {
        h.update(b"\0");
        h.update(name.as_bytes());
        h.update(b"=");
        h.update(value.as_bytes());
    }
    h.finalize()
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The keyed scheme, given the key (which a copy of the lockouts does not hold).
fn keyed(key: &[u8], client_id: &str, fields: &[(&str, &str)]) -> String {
    use aws_lc_rs::hmac;
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(b"dhan-login credentials v3\0");
    ctx.update(client_id.as_bytes());
    for (name, value) in fields {
        ctx.update(b"\0");
        ctx.update(name.as_bytes());
        ctx.update(b"=");
        ctx.update(value.as_bytes());
    }
    ctx.sign().as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A wrong PIN's lockout cannot be searched for the PIN, even by someone who knows every
/// other value: 10,000 candidates (the PIN among them) hashed the way the fingerprint
/// used to be match nothing. Only with `fingerprint.key`, which is not in the lockout,
/// does the search find it, so the key is what stands in the way.
#[tokio::test(flavor = "multi_thread")]
async fn a_lockout_fingerprint_cannot_be_searched_for_the_pin() {
    let stand = Stand::start().await;
    let wrong_pin = "424242";
    let mut cli = stand.cli(["login", "--via", "totp"]);
    cli.env("DHAN_PIN", wrong_pin);
    run(cli, None)
        .await
        .assert_class(ErrorClass::CredentialRejected);

    let state = stand.sandbox.state_dir();
    let text = std::fs::read_to_string(state.join("lockouts/default.json")).unwrap();
    let record: serde_json::Value = serde_json::from_str(&text).unwrap();
    let lockout = &record["lockouts"][0];
    assert_eq!(
        lockout["secrets"],
        serde_json::json!(["pin", "totp_secret"])
    );
    let fingerprint = lockout["fingerprint"].as_str().unwrap().to_owned();
    let account = stand.server.account();
    let totp = account.totp_secret.as_str();
    let candidates = (420_000..430_000).map(|n| format!("{n:06}"));

    let mut found_with_key = Vec::new();
    let key_text = std::fs::read_to_string(state.join("fingerprint.key")).unwrap();
    let key = base64::engine::general_purpose::STANDARD
        .decode(key_text.trim())
        .unwrap();
    assert!(
        !text.contains(key_text.trim()),
        "the key is not in the lockout"
    );
    for pin in candidates {
        let fields = [("pin", pin.as_str()), ("totp_secret", totp)];
        let plain = unkeyed(&account.client_id, &fields);
        assert!(
            !fingerprint.contains(&plain),
            "the lockout holds an unkeyed hash of the credentials"
        );
        if fingerprint.ends_with(&format!(":{}", keyed(&key, &account.client_id, &fields))) {
            found_with_key.push(pin);
        }
    }
    assert_eq!(
        found_with_key,
        [wrong_pin],
        "the fingerprint is made with fingerprint.key"
    );
}

/// A lockout file an older version wrote, with an unkeyed hash, loses the hash the first
/// time it is read, and its lockout holds whatever the PIN is until `unlock`.
#[tokio::test(flavor = "multi_thread")]
async fn an_old_unkeyed_lockout_is_scrubbed_and_still_holds() {
    let stand = Stand::start().await;
    let account = stand.server.account();
    let old = unkeyed(
        &account.client_id,
        &[("pin", "000000"), ("totp_secret", &account.totp_secret)],
    );
    let path = stand.sandbox.state_dir().join("lockouts/default.json");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(
        &path,
        serde_json::json!({"lockouts": [{
            "secrets": ["pin", "totp_secret"],
            "fingerprint": old,
            "at": "2026-12-01T10:00:00Z",
            "message": "totp: Invalid PIN",
        }]})
        .to_string(),
    )
    .unwrap();
    // The right PIN now: an unkeyed record cannot say whether it changed, so it holds.
    let r = stand.run(["login", "--via", "totp"]).await;
    r.assert_class(ErrorClass::CredentialRejected);
    assert!(r.stderr.contains("dhan-login unlock"), "{r}");
    assert!(
        !std::fs::read_to_string(&path).unwrap().contains(&old),
        "the unkeyed hash is gone from the file"
    );
    assert_eq!(
        stand
            .server
            .calls(dhan_login::mock::Endpoint::GenerateAccessToken),
        0
    );
    stand.run(["unlock"]).await.assert_ok();
    stand.run(["login", "--via", "totp"]).await.assert_ok();
}
