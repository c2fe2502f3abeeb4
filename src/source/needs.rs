//! What each login path needs configured and which secrets it sends to Dhan. The chain's
//! sources (`NotApplicable`), the manager's lockout hold and the binary's `status` all
//! ask these two functions, so they cannot disagree about a profile.

use crate::config::Profile;
use crate::secret::Secret;
use crate::token::SourceKind;

/// One thing a login path cannot run without.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    ClientId,
    Secret(Secret),
    /// The TOTP secret, or a command printing the code Dhan sent by SMS or e-mail, for an
    /// account whose login page asks for that instead.
    SecondFactor,
}

impl Need {
    fn met(self, p: &Profile) -> bool {
        match self {
            Need::ClientId => p.client_id.is_some(),
            Need::Secret(s) => p.get(s).is_some(),
            Need::SecondFactor => p.get(Secret::TotpSecret).is_some() || p.otp_command.is_some(),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Need::ClientId => "client_id",
            Need::Secret(s) => s.key(),
            Need::SecondFactor => "totp_secret (or otp_command)",
        }
    }
}

/// What a path needs, in the order it uses them (the order `status` lists them in).
fn table(kind: SourceKind) -> &'static [Need] {
    use Need::{ClientId, SecondFactor, Secret as S};
    match kind {
        SourceKind::Totp => &[ClientId, S(Secret::Pin), S(Secret::TotpSecret)],
        SourceKind::Browser => &[
            ClientId,
            S(Secret::Mobile),
            S(Secret::Pin),
            SecondFactor,
            S(Secret::ApiKey),
            S(Secret::ApiSecret),
        ],
        SourceKind::Manual => &[ClientId, S(Secret::ApiKey), S(Secret::ApiSecret)],
        SourceKind::Renew | SourceKind::Import => &[],
    }
}

/// The settings a login path lacks, named as the config file names them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("missing {}", .0.join(", "))]
pub struct Missing(pub Vec<&'static str>);

/// Whether `profile` has what the path `kind` needs; reads no secret. A path that needs
/// nothing configured (renew) is always `Ok`: whether it can run depends on the stored
/// token, not on the profile.
pub fn needs(kind: SourceKind, profile: &Profile) -> Result<(), Missing> {
    let lacking: Vec<&'static str> = table(kind)
        .iter()
        .filter(|n| !n.met(profile))
        .map(|n| n.name())
        .collect();
    if lacking.is_empty() {
        Ok(())
    } else {
        Err(Missing(lacking))
    }
}

/// True when a login of `kind` would type the code `otp_command` prints (the browser
/// path, with one configured): a lockout of that command holds it.
pub fn uses_otp_command(kind: SourceKind, profile: &Profile) -> bool {
    kind == SourceKind::Browser && profile.otp_command.is_some()
}

/// The secrets the path `kind` sends to Dhan (or types into its page): a lockout of any
/// of them refuses the path.
pub fn sends(kind: SourceKind) -> &'static [Secret] {
    const BROWSER: &[Secret] = &[
        Secret::Mobile,
        Secret::Pin,
        Secret::TotpSecret,
        Secret::ApiKey,
        Secret::ApiSecret,
    ];
    match kind {
        SourceKind::Totp => &[Secret::Pin, Secret::TotpSecret],
        SourceKind::Browser => BROWSER,
        // The person types mobile, PIN and code; we send only the API key pair.
        SourceKind::Manual => &[Secret::ApiKey, Secret::ApiSecret],
        SourceKind::Renew | SourceKind::Import => &[],
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;
    use crate::config::{ConfigError, Paths, SecretRef};
    use crate::store::{FingerprintKey, Lockout};

    const KINDS: [SourceKind; 5] = [
        SourceKind::Renew,
        SourceKind::Totp,
        SourceKind::Browser,
        SourceKind::Manual,
        SourceKind::Import,
    ];

    /// A value of the right shape for each secret.
    fn value(s: Secret) -> &'static str {
        match s {
            Secret::Mobile => "9999900042",
            Secret::Pin => "135790",
            Secret::TotpSecret => "JBSWY3DPEHPK3PXP",
            Secret::ApiKey => "key-1",
            Secret::ApiSecret => "secret-1",
            Secret::Fake => "fake-1",
        }
    }

    /// A profile with a client id and every secret but `except`.
    fn all_but(except: Option<Secret>, dir: &std::path::Path) -> Profile {
        let mut b = Profile::builder("p", dir).client_id("1100000042");
        for &s in Secret::ALL.iter().filter(|s| Some(**s) != except) {
            b = b.secret(s, SecretRef::inline(value(s)));
        }
        b.build().unwrap()
    }

    #[test]
    fn a_path_needs_exactly_the_secrets_it_sends() {
        let dir = tempfile::tempdir().unwrap();
        for kind in KINDS {
            assert_eq!(needs(kind, &all_but(None, dir.path())), Ok(()), "{kind}");
            for &s in Secret::ALL {
                let lacking = needs(kind, &all_but(Some(s), dir.path()))
                    .err()
                    .map(|m| m.0)
                    .unwrap_or_default();
                let named = lacking.iter().any(|n| n.split(' ').next() == Some(s.key()));
                assert_eq!(
                    named,
                    sends(kind).contains(&s),
                    "{kind} without {s}: {lacking:?}"
                );
                assert!(
                    named || lacking.is_empty(),
                    "{kind} without {s}: {lacking:?}"
                );
            }
        }
        // Every secret but the tests' own is sent by some path: none is configured for
        // nothing.
        for &s in Secret::ALL.iter().filter(|s| **s != Secret::Fake) {
            assert!(KINDS.iter().any(|k| sends(*k).contains(&s)), "{s}");
        }
    }

    #[test]
    fn the_browser_path_takes_an_sms_code_command_instead_of_a_totp_secret() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = all_but(Some(Secret::TotpSecret), dir.path());
        assert_eq!(
            needs(SourceKind::Browser, &p),
            Err(Missing(vec!["totp_secret (or otp_command)"]))
        );
        assert!(!uses_otp_command(SourceKind::Browser, &p));
        p.otp_command = Some("echo 123456".into());
        assert_eq!(needs(SourceKind::Browser, &p), Ok(()));
        // Only the browser types its code: a lockout of the command holds no other path.
        assert!(uses_otp_command(SourceKind::Browser, &p));
        assert!(!uses_otp_command(SourceKind::Manual, &p));
        assert!(!uses_otp_command(SourceKind::Totp, &p));
        assert_eq!(
            needs(SourceKind::Totp, &p).unwrap_err().to_string(),
            "missing totp_secret"
        );
        p.client_id = None;
        assert_eq!(
            needs(SourceKind::Manual, &p).unwrap_err().to_string(),
            "missing client_id"
        );
    }

    /// `Secret::Fake` exists only in this build: the config's reading, `Profile`, its
    /// errors, the lockouts' fingerprint and the paths all follow `Secret::ALL`, so a
    /// secret Dhan adds needs only its variant and the paths that send it.
    #[tokio::test]
    async fn a_new_secret_is_read_named_and_fingerprinted_like_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths {
            config_file: dir.path().join("absent.toml"),
            config_explicit: false,
            state_dir: dir.path().to_owned(),
        };
        let load = |fake: Option<&'static str>| {
            let env = move |name: &str| match name {
                "DHAN_CLIENT_ID" => Some("1100000042".to_owned()),
                "DHAN_PIN" => Some("135790".to_owned()),
                "DHAN_FAKE_SECRET" => fake.map(str::to_owned),
                _ => None,
            };
            Profile::load("default", &paths, &env).unwrap()
        };

        let p = load(Some("fake-1"));
        let fake = p.get(Secret::Fake).expect("read from DHAN_FAKE_SECRET");
        assert_eq!(fake.get().unwrap().expose_secret(), "fake-1");
        assert!(!format!("{p:?}").contains("fake-1"));
        assert!(
            p.check()
                .iter()
                .all(|problem| problem.field != "fake_secret")
        );

        let missing = load(None).require(Secret::Fake).await.unwrap_err();
        assert!(matches!(
            missing,
            ConfigError::Missing {
                field: "fake_secret",
                env: "DHAN_FAKE_SECRET"
            }
        ));
        assert_eq!(
            missing.to_string(),
            "fake_secret is missing: set it in the profile or with DHAN_FAKE_SECRET"
        );

        let key = FingerprintKey::derived_from(b"test key");
        let one = key.fingerprint(&p, &[Secret::Fake]).await.unwrap();
        let other = key
            .fingerprint(&load(Some("fake-2")), &[Secret::Fake])
            .await
            .unwrap();
        assert_ne!(one, other, "a changed value lifts its lockout");

        let lockout = Lockout {
            secrets: vec![Secret::Fake.key().to_owned()],
            fingerprint: one,
            at: chrono::Utc::now(),
            message: "refused".into(),
        };
        assert!(lockout.names_any(&[Secret::Fake]));
        for kind in KINDS {
            assert!(!lockout.names_any(sends(kind)), "no path sends it: {kind}");
        }
    }
}
