//! The secrets a profile holds, each with the config key and the environment variable
//! that set it. Everything that lists secrets (the config file's reading, `Profile`, the
//! login paths, lockouts, `status`) goes through [`Secret::ALL`], so a secret Dhan adds
//! is one variant here plus the login paths that send it.

use std::fmt;

/// One secret a login may send to Dhan (or type into its page).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Secret {
    /// The registered mobile number (the browser login types it).
    Mobile,
    /// The 6-digit login PIN.
    Pin,
    /// The base32 TOTP secret (or `otpauth://` URI) set up in Dhan Web.
    TotpSecret,
    /// The API key of the Dhan app (consent-based logins).
    ApiKey,
    /// The API secret of the Dhan app.
    ApiSecret,
    /// A secret no login path sends, for the tests that check every place follows
    /// [`Secret::ALL`].
    #[cfg(test)]
    Fake,
}

impl Secret {
    /// Every secret, in the order reports list them.
    pub const ALL: &'static [Secret] = &[
        Secret::Mobile,
        Secret::Pin,
        Secret::TotpSecret,
        Secret::ApiKey,
        Secret::ApiSecret,
        #[cfg(test)]
        Secret::Fake,
    ];

    /// The profile key in the config file (`pin`); `pin_file` and `pin_command` are its
    /// other origins.
    pub const fn key(self) -> &'static str {
        match self {
            Secret::Mobile => "mobile",
            Secret::Pin => "pin",
            Secret::TotpSecret => "totp_secret",
            Secret::ApiKey => "api_key",
            Secret::ApiSecret => "api_secret",
            #[cfg(test)]
            Secret::Fake => "fake_secret",
        }
    }

    /// The environment variable that overrides the file's value.
    pub const fn env(self) -> &'static str {
        match self {
            Secret::Mobile => "DHAN_MOBILE",
            Secret::Pin => "DHAN_PIN",
            Secret::TotpSecret => "DHAN_TOTP_SECRET",
            Secret::ApiKey => "DHAN_API_KEY",
            Secret::ApiSecret => "DHAN_API_SECRET",
            #[cfg(test)]
            Secret::Fake => "DHAN_FAKE_SECRET",
        }
    }

    /// The secret whose config key is `key`.
    pub fn from_key(key: &str) -> Option<Secret> {
        Secret::ALL.iter().copied().find(|s| s.key() == key)
    }

    /// Its place in [`Secret::ALL`], for tables indexed by secret.
    pub(crate) fn index(self) -> usize {
        Secret::ALL
            .iter()
            .position(|s| *s == self)
            .unwrap_or_else(|| unreachable!("ALL lists every variant"))
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

impl AsRef<str> for Secret {
    fn as_ref(&self) -> &str {
        self.key()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_variables_are_distinct_and_round_trip() {
        let mut keys: Vec<_> = Secret::ALL.iter().map(|s| s.key()).collect();
        let mut envs: Vec<_> = Secret::ALL.iter().map(|s| s.env()).collect();
        keys.sort_unstable();
        keys.dedup();
        envs.sort_unstable();
        envs.dedup();
        assert_eq!(keys.len(), Secret::ALL.len());
        assert_eq!(envs.len(), Secret::ALL.len());
        for (i, s) in Secret::ALL.iter().enumerate() {
            assert_eq!(Secret::from_key(s.key()), Some(*s));
            assert_eq!(s.index(), i);
            assert!(s.env().starts_with("DHAN_"), "{}", s.env());
        }
        assert_eq!(Secret::from_key("client_id"), None);
    }
}
