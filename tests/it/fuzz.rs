//! Property tests where input is hostile: JWT peeking, `expiryTime` and the config
//! loader take whatever they are given without panicking, and never echo a secret (the
//! token file's is a unit test in `src/store/tokens.rs`, the store being the crate's own). (`cargo fuzz` needs a nightly toolchain; these run in CI on stable, with a
//! bounded number of cases so the suite stays fast.) Seeds from real shapes come first.

use chrono::{TimeZone, Utc};
use dhan_login::{Paths, Profile, SourceKind, Token, token::parse_ist};
use proptest::prelude::*;

const CASES: u32 = 256;

/// Shapes seen in the wild, mutated by the strategies below.
const EXPIRY_SEEDS: &[&str] = &[
    "2026-01-01T00:00:00.000",
    "2025-09-23T12:37:23",
    "2026-01-01T00:00:00+05:30",
    "2026-01-01 00:00:00",
    "30/03/2025 15:37",
];

fn jwt_like() -> impl Strategy<Value = String> {
    (
        "[A-Za-z0-9_=-]{0,40}",
        prop_oneof![
            "[A-Za-z0-9_=-]{0,80}".boxed(),
            any::<Vec<u8>>()
                .prop_map(|b| {
                    use base64::Engine;
                    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
                })
                .boxed(),
            prop::sample::select(vec![
                r#"{"exp":1}"#,
                r#"{"exp":-9223372036854775808}"#,
                r#"{"exp":9223372036854775807,"dhanClientId":"1"}"#,
                r#"{"dhanClientId":12,"tokenConsumerType":"SELF"}"#,
                r#"{"exp":"soon"}"#,
            ])
            .prop_map(|j| {
                use base64::Engine;
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(j)
            })
            .boxed(),
        ],
        "[A-Za-z0-9_\\n .=-]{0,20}",
    )
        .prop_map(|(h, p, s)| format!("{h}.{p}.{s}"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// Any value, any client id, any expiryTime: a token or an error, never a panic; and
    /// whatever is accepted has the shape `--env` relies on.
    #[test]
    fn from_grant_takes_any_value(
        value in prop_oneof![jwt_like(), any::<String>()],
        client in proptest::option::of("[0-9a-z\\n]{0,12}"),
        expiry in proptest::option::of(prop_oneof![
            prop::sample::select(EXPIRY_SEEDS).prop_map(str::to_owned),
            any::<String>(),
        ]),
    ) {
        let now = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
        if let Ok(t) = Token::from_grant(&value, client.as_deref(), expiry.as_deref(), SourceKind::Totp, now) {
            prop_assert!(t.check().is_ok());
            prop_assert!(!t.access_token.secret().contains(['\n', '\r', ' ']));
            prop_assert!(t.client_id.bytes().all(|b| b.is_ascii_digit()));
            prop_assert!(t.expires_at > now);
        }
    }

    /// expiryTime parsing takes anything.
    #[test]
    fn parse_ist_takes_any_text(
        s in prop_oneof![
            prop::sample::select(EXPIRY_SEEDS).prop_map(str::to_owned),
            "[0-9T:. +/-]{0,32}",
            any::<String>(),
        ],
    ) {
        let _ = parse_ist(&s);
    }

    /// The config loader takes any TOML text; its errors never echo a value of the file.
    #[test]
    fn the_config_loader_never_echoes_a_secret(
        key in "[a-zA-Z0-9_]{1,12}",
        secret in "[A-Z2-7]{16,24}",
        shape in 0usize..5,
        junk in "[\\[\\]=\"a-z0-9 \\n.]{0,40}",
    ) {
        let text = match shape {
            0 => format!("[profiles.default]\n{key} = \"{secret}\"\n"),
            1 => format!("[profiles.default]\n{secret} = \"x\"\n"),
            2 => format!("[profiles.default]\npin = {secret}\n"),
            3 => format!("[profiles.default]\npin = \"{secret}\"\n{junk}\n"),
            _ => format!("{junk}\n[profiles.default]\ntotp_secret = [\"{secret}\"]\n"),
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, &text).unwrap();
        let paths = Paths {
            config_file: path,
            config_explicit: true,
            state_dir: dir.path().join("state"),
        };
        let none = |_: &str| None;
        if let Err(e) = Profile::load("default", &paths, &none) {
            prop_assert!(!e.to_string().contains(&secret), "{}", e);
        }
    }
}
