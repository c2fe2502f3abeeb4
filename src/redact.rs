//! Removes secrets from any text that may reach a log, an error or an artifact.

use zeroize::Zeroize;

/// What replaces a scrubbed value.
const MASK: &str = "****";

/// Holds the secret values known at one point of a login and masks them in text.
///
/// Known values are masked wherever they appear; anything shaped like a JWT is masked
/// too, since an access token we have not seen yet (one in a response body) must not leak.
///
/// A program reaches it as `browser::Scrubber` (a `ConsentLogin` is given one); without
/// the browser only the crate itself uses it.
#[derive(Default, Clone)]
#[cfg_attr(not(feature = "browser"), allow(unreachable_pub))]
pub struct Scrubber {
    values: Vec<String>,
}

/// The values are copies of secrets: they are wiped, not just freed.
impl Drop for Scrubber {
    fn drop(&mut self) {
        self.values.zeroize();
    }
}

/// Counts the values; printing them would leak what the scrubber exists to hide.
impl std::fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scrubber")
            .field("values", &self.values.len())
            .finish()
    }
}

#[cfg_attr(not(feature = "browser"), allow(unreachable_pub))]
impl Scrubber {
    /// A scrubber that knows no value yet; it still masks JWT-shaped text.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a value to mask. Very short values are skipped: masking every "1" in a page
    /// would destroy the text without protecting anything.
    pub fn add(&mut self, value: &str) {
        let value = value.trim();
        if value.len() >= 4 && !self.values.iter().any(|v| v == value) {
            self.values.push(value.to_owned());
            // Longest first, so a value containing another is masked whole.
            self.values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        }
    }

    /// [`add`](Self::add), for building a scrubber in one expression.
    pub fn with(mut self, value: &str) -> Self {
        self.add(value);
        self
    }

    /// `text` with every known value and every JWT-shaped run replaced by `****`.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = mask_jwts(text);
        for value in &self.values {
            if out.contains(value.as_str()) {
                out = out.replace(value.as_str(), MASK);
            }
        }
        out
    }
}

/// Masks what may be a secret in a line nobody vetted (a `*_command`'s stderr): JWTs,
/// every run of 4 or more digits (a PIN, an OTP, a mobile number) and every word of 16
/// or more letters, digits and `+/=_-` (a TOTP secret, an API secret, a key).
pub(crate) fn mask_secret_like(line: &str) -> String {
    let line = mask_jwts(line);
    let is_key_char = |c: char| c.is_ascii_alphanumeric() || "+/=_-".contains(c);
    let mut out = String::with_capacity(line.len());
    let mut rest = line.as_str();
    while let Some(start) = rest.find(|c: char| is_key_char(c)) {
        out.push_str(&rest[..start]);
        let run = &rest[start..];
        let end = run.find(|c: char| !is_key_char(c)).unwrap_or(run.len());
        let word = &run[..end];
        let digit_run = word
            .split(|c: char| !c.is_ascii_digit())
            .any(|d| d.len() >= 4);
        if digit_run || word.len() >= 16 {
            out.push_str(MASK);
        } else {
            out.push_str(word);
        }
        rest = &run[end..];
    }
    out.push_str(rest);
    out
}

/// Masks every `eyJ….….…` run: the base64url header of a JWT always starts with `eyJ`.
fn mask_jwts(text: &str) -> String {
    let is_b64 = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("eyJ") {
        out.push_str(&rest[..pos]);
        let candidate = &rest[pos..];
        let end = jwt_len(candidate, is_b64);
        if end > 0 {
            out.push_str(MASK);
            rest = &candidate[end..];
        } else {
            out.push_str("eyJ");
            rest = &candidate[3..];
        }
    }
    out.push_str(rest);
    out
}

/// Length of a `a.b.c` run at the start of `s`, or 0 when it is not JWT-shaped.
fn jwt_len(s: &str, is_b64: impl Fn(char) -> bool) -> usize {
    let mut dots = 0;
    let mut len = 0;
    for c in s.chars() {
        if is_b64(c) {
            len += c.len_utf8();
        } else if c == '.' && dots < 2 {
            dots += 1;
            len += 1;
        } else {
            break;
        }
    }
    if dots == 2 { len } else { 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_known_values_and_jwts() {
        let s = Scrubber::new().with("123456").with("tok-abcdef");
        let text = "pin=123456 id=tok-abcdef jwt=eyJhbGciOi.eyJzdWIi.c2ln end";
        let out = s.scrub(text);
        assert_eq!(out, "pin=**** id=**** jwt=**** end");
    }

    #[test]
    fn debug_counts_the_values_without_showing_them() {
        let s = Scrubber::new().with("hunter22").with("tok-abcdef");
        let shown = format!("{s:?}");
        assert!(
            !shown.contains("hunter22") && !shown.contains("tok-abcdef"),
            "{shown}"
        );
        assert!(shown.contains('2'), "{shown}");
    }

    #[test]
    fn secret_like_words_are_masked_and_the_rest_kept() {
        assert_eq!(mask_secret_like("pin is 135790"), "pin is ****");
        assert_eq!(
            mask_secret_like("totp=MOCKDHANDEMOTOTPSECRETMOCKDHAN23 ok"),
            "**** ok"
        );
        assert_eq!(
            mask_secret_like("gpg: decryption failed: No secret key"),
            "gpg: decryption failed: No secret key"
        );
        assert_eq!(mask_secret_like("mobile +919999900042."), "mobile ****.");
    }

    #[test]
    fn leaves_plain_text_alone() {
        let s = Scrubber::new().with("a");
        assert_eq!(s.scrub("eyJ only a header"), "eyJ only a header");
    }
}
