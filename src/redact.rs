//! Removes secrets from any text that may reach a log, an error or an artifact.

use zeroize::Zeroize;

/// What replaces a scrubbed value.
const MASK: &str = "****";

/// Holds the secret values known at one point of a login and masks them in text.
///
/// Known values are masked wherever they appear; anything shaped like a JWT is masked
/// too, since an access token we have not seen yet (one in a response body) must not leak.
#[derive(Default, Clone)]
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
    fn leaves_plain_text_alone() {
        let s = Scrubber::new().with("a");
        assert_eq!(s.scrub("eyJ only a header"), "eyJ only a header");
    }
}
