//! The HTML of each consent login screen, for every page variant. fixtures/README.md
//! says which public facts each piece follows and what was invented.

use super::state::Stage;
use super::{Markup, PageVariant};

const MOBILE: &str = include_str!("../../fixtures/consent-login/mobile.html");
const CODE_SCREEN: &str = include_str!("../../fixtures/consent-login/code-screen.html");
const VERIFY: &str = include_str!("../../fixtures/consent-login/verify.html");
pub(crate) const EXPIRED: &str = include_str!("../../fixtures/consent-login/expired.html");

const BOXES: usize = 6;

/// Replaces each `{{name}}` in one pass, so a value can never be read as a placeholder.
pub(crate) fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 256);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let replaced = after.find("}}").and_then(|end| {
            let name = &after[..end];
            values
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v, &after[end + 2..]))
        });
        match replaced {
            Some((value, tail)) => {
                out.push_str(value);
                rest = tail;
            }
            None => {
                out.push_str("{{");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Six boxes of the `<code-input>` component; `hidden` is its masked (PIN) form.
fn code_input(hidden: bool) -> String {
    let class = if hidden {
        r#" class="code-hidden""#
    } else {
        ""
    };
    let span = format!(
        r#"<span{class}><input type="tel" inputmode="numeric" autocomplete="one-time-code" autocapitalize="off" spellcheck="false"></span>"#
    );
    format!("<code-input>{}</code-input>", span.repeat(BOXES))
}

/// Six one-character boxes of the given input type.
fn one_char_boxes(kind: &str) -> String {
    let input =
        format!(r#"<input type="{kind}" class="otp-box" maxlength="1" inputmode="numeric">"#);
    format!(r#"<div class="otp-input">{}</div>"#, input.repeat(BOXES))
}

/// The six-digit code the user reads off a device (TOTP, SMS OTP): shown as typed.
fn unmasked_group(markup: Markup) -> String {
    match markup {
        Markup::TelBoxes | Markup::PasswordPin => one_char_boxes("tel"),
        Markup::SingleField => r#"<input type="tel" class="form-control otp-field" inputmode="numeric" autocomplete="one-time-code" maxlength="6" placeholder="6-digit code">"#.into(),
        Markup::CodeInput
        | Markup::MissingPinBoxes
        | Markup::Ambiguous
        | Markup::Unrecognisable => code_input(false),
    }
}

/// The PIN boxes.
fn pin_group(markup: Markup) -> String {
    match markup {
        Markup::TelBoxes => one_char_boxes("tel"),
        Markup::PasswordPin => one_char_boxes("password"),
        Markup::SingleField => r#"<input type="password" class="form-control otp-field" inputmode="numeric" maxlength="6" placeholder="6-digit PIN">"#.into(),
        Markup::MissingPinBoxes => String::new(),
        Markup::CodeInput | Markup::Ambiguous | Markup::Unrecognisable => code_input(true),
    }
}

/// `******0042`: the last four digits of the mobile number.
pub(crate) fn masked_phone(mobile: &str) -> String {
    let digits: Vec<char> = mobile.chars().filter(char::is_ascii_digit).collect();
    let tail: String = digits[digits.len().saturating_sub(4)..].iter().collect();
    format!("******{tail}")
}

struct CodeTexts {
    heading: String,
    hint: &'static str,
    button: &'static str,
    below: &'static str,
}

fn texts(stage: Stage, markup: Markup, mobile: &str) -> CodeTexts {
    match stage {
        Stage::Totp => CodeTexts {
            // Dhan's wording is unknown; two invented headings, so that no driver leans
            // on one.
            heading: if markup == Markup::TelBoxes {
                "Authenticator code".into()
            } else {
                "Enter TOTP".into()
            },
            hint: "Enter the 6-digit code shown in your authenticator app.",
            button: "Proceed",
            below: "",
        },
        Stage::SmsOtp => CodeTexts {
            heading: format!("OTP sent to {}", masked_phone(mobile)),
            hint: "Enter the 6-digit OTP sent by SMS and e-mail.",
            button: "Verify",
            below: r##"<p class="resend">Didn't get it? <a href="#">Resend OTP</a></p>"##,
        },
        Stage::Mobile | Stage::Pin | Stage::Authorized => CodeTexts {
            heading: "Enter PIN for your Account".into(),
            hint: "Enter your 6-digit Dhan PIN.",
            button: "Continue",
            below: "",
        },
    }
}

/// The hidden field that ties a server-rendered screen to its login session. Single-page
/// screens go without: their script holds the session.
pub(crate) fn session_field(session: &str) -> String {
    format!(
        r#"<input type="hidden" name="session" value="{}">"#,
        escape(session)
    )
}

/// The `<form>` of one screen, to be placed inside `<app-login>`.
pub(crate) fn screen(
    stage: Stage,
    variant: PageVariant,
    session_field: &str,
    mobile: &str,
) -> String {
    let base = [("session_field", session_field)];
    if stage == Stage::Mobile {
        return fill(MOBILE, &base);
    }
    let first_code_screen = stage == Stage::Mobile.next(variant);
    if first_code_screen && variant.markup == Markup::Unrecognisable {
        return fill(VERIFY, &base);
    }
    let t = texts(stage, variant.markup, mobile);
    let (heading, hint, inputs, below) = if first_code_screen && variant.markup == Markup::Ambiguous
    {
        // Two groups, one masked, and no word on the screen says which code goes where.
        (
            "Enter the 6-digit code".to_owned(),
            "Enter the code to continue.",
            format!("{}{}", code_input(false), code_input(true)),
            "",
        )
    } else if stage == Stage::Pin || stage == Stage::Authorized {
        (t.heading, t.hint, pin_group(variant.markup), t.below)
    } else {
        (t.heading, t.hint, unmasked_group(variant.markup), t.below)
    };
    fill(
        CODE_SCREEN,
        &[
            base[0],
            ("heading", &escape(&heading)),
            ("hint", hint),
            ("inputs", &inputs),
            ("below", below),
            ("button", t.button),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock::{SecondFactor, Submission};

    #[test]
    fn fill_is_single_pass() {
        let out = fill("a{{x}}b{{y}}c{{z}}", &[("x", "{{y}}"), ("y", "Y")]);
        assert_eq!(out, "a{{y}}bYc{{z}}");
    }

    #[test]
    fn masked_phone_keeps_the_last_four_digits() {
        assert_eq!(masked_phone("9999900042"), "******0042");
        assert_eq!(masked_phone("42"), "******42");
    }

    #[test]
    fn every_screen_of_every_markup_is_fully_filled() {
        for markup in Markup::ALL {
            for second_factor in [SecondFactor::Totp, SecondFactor::SmsOtp] {
                let variant = PageVariant {
                    markup,
                    second_factor,
                    submission: Submission::Random,
                    ..PageVariant::default()
                };
                for stage in [Stage::Mobile, Stage::Totp, Stage::SmsOtp, Stage::Pin] {
                    let s = screen(stage, variant, &session_field("a\"b"), "9999900042");
                    assert!(!s.contains("{{"), "{variant:?} {stage:?}: {s}");
                    assert!(s.starts_with("<form"), "{variant:?} {stage:?}: {s}");
                    assert!(s.contains(r#"value="a&quot;b""#));
                }
            }
        }
    }
}
