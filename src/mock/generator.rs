//! Generated login pages: every screen composed from independent dimensions drawn from a
//! seeded generator, so that a driver meets combinations nobody chose. The same seed
//! always gives the same page. fixtures/README.md says which dimensions follow public
//! evidence and which are invented.

use serde::Serialize;

use super::options::{Markup, PageVariant, SecondFactor, Submission};
use super::screens::{escape, masked_phone};
use super::state::Stage;

/// SplitMix64: tiny, and the same sequence on every platform and crate version, which a
/// seed printed in a CI log must reproduce.
struct Draw(u64);

impl Draw {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[self.below(from.len() as u64) as usize]
    }
}

/// Where the words that say which code a screen wants are.
const WORDS: [&str; 7] = [
    "in-form",
    "above-form",
    "header-beside",
    "attribute",
    "paragraph",
    "split",
    "none",
];
const CODE_INPUTS: [&str; 4] = [
    "code-input",
    "tel-boxes",
    "tel-boxes-no-maxlength",
    "one-field",
];
const PIN_INPUTS: [&str; 5] = [
    "code-input",
    "tel-boxes",
    "tel-boxes-no-maxlength",
    "password-boxes",
    "one-field",
];
const BUTTONS: [&str; 5] = ["button", "anchor", "div", "icon", "none"];
const LABELS: [&str; 5] = ["Proceed", "Continue", "Verify", "Login", "Submit"];
const ENABLE: [&str; 3] = ["enabled", "on-input", "on-blur"];
const SUBMIT: [&str; 3] = ["last-key", "timer", "button"];
const WRAPPERS: [&str; 5] = [
    "div",
    "app-field",
    "mat-form-field",
    "app-otp-wrap",
    "section-body",
];
const MOBILE_ATTRS: [&str; 5] = ["formcontrolname", "placeholder", "aria-label", "name", "id"];

/// One screen's draw.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub(crate) struct ScreenLayout {
    /// Where its words are (see [`WORDS`]).
    pub(crate) words: &'static str,
    /// Wrapper elements between the card and the form, and between the form and inputs.
    pub(crate) wrappers: (u8, u8),
    pub(crate) wrapper_tag: &'static str,
    /// A `<form>`, or a plain container.
    pub(crate) form: bool,
    pub(crate) inputs: &'static str,
    /// How a PIN is masked: none, type, text-security, ancestor-class.
    pub(crate) mask: &'static str,
    pub(crate) button: &'static str,
    pub(crate) label: &'static str,
    /// When the button is enabled: from the start, on valid input, on blur.
    pub(crate) enable: &'static str,
    /// When the screen sends: on its last key, on a timer after it, only when asked.
    pub(crate) submit: &'static str,
    pub(crate) timer_ms: u32,
    /// Mobile screen: the attribute that names the field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) mobile_attr: Option<&'static str>,
}

/// Decoys: things on the page a driver must leave alone.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub(crate) struct Decoys {
    /// A copy of another screen: "template", "display-none" or "".
    pub(crate) hidden_copy: &'static str,
    pub(crate) resend: bool,
    pub(crate) forgot_pin: bool,
    pub(crate) back: bool,
    pub(crate) tracker: bool,
    pub(crate) info_toast: bool,
}

/// A whole generated page.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub(crate) struct Layout {
    pub(crate) seed: u64,
    /// "single-page" or "documents".
    pub(crate) rendering: &'static str,
    /// "same", or "redirected": the consent URL answers 302 to a second origin.
    pub(crate) origin: &'static str,
    /// "totp", "sms-otp" or "skipped" (a trusted device: mobile, then PIN).
    pub(crate) second_factor: &'static str,
    pub(crate) render_delay_ms: u32,
    /// "replace" (new nodes) or "mutate" (the same nodes changed in place).
    pub(crate) redraw: &'static str,
    /// The screen whose first press sends nothing, if any.
    pub(crate) swallow: Option<&'static str>,
    pub(crate) decoys: Decoys,
    pub(crate) mobile: ScreenLayout,
    pub(crate) totp: ScreenLayout,
    pub(crate) otp: ScreenLayout,
    pub(crate) pin: ScreenLayout,
}

fn screen_draw(d: &mut Draw, stage: Stage) -> ScreenLayout {
    let (words, inputs, mask) = match stage {
        Stage::Mobile => (d.pick(&WORDS[..6]), "mobile", "none"),
        Stage::Totp | Stage::SmsOtp => (d.pick(&WORDS[..6]), d.pick(&CODE_INPUTS), "none"),
        Stage::Pin | Stage::Authorized => {
            let words = d.pick(&WORDS);
            let inputs = d.pick(&PIN_INPUTS);
            let mask = if inputs == "password-boxes" {
                "type"
            } else if words == "none" {
                // With no words, only the masking says "PIN".
                d.pick(&["type", "text-security", "ancestor-class"])
            } else {
                d.pick(&["none", "type", "text-security", "ancestor-class"])
            };
            (words, inputs, mask)
        }
    };
    let outer = d.below(5) as u8;
    let inner = d.below(u64::from(9 - outer).min(5)) as u8;
    let button = d.pick(&BUTTONS);
    let label = d.pick(&LABELS);
    let enable = d.pick(&ENABLE);
    let submit = if stage == Stage::Mobile {
        "button"
    } else {
        d.pick(&SUBMIT)
    };
    ScreenLayout {
        words,
        wrappers: (outer, inner),
        wrapper_tag: d.pick(&WRAPPERS),
        form: d.chance(75),
        inputs,
        mask,
        button,
        label,
        enable,
        submit,
        timer_ms: 50 + d.below(551) as u32,
        mobile_attr: (stage == Stage::Mobile).then(|| d.pick(&MOBILE_ATTRS)),
    }
}

impl Layout {
    /// The page of seed `seed`.
    pub(crate) fn draw(seed: u64) -> Layout {
        let mut d = Draw(seed);
        let second_factor = match d.below(100) {
            0..70 => "totp",
            70..85 => "sms-otp",
            _ => "skipped",
        };
        let mobile = screen_draw(&mut d, Stage::Mobile);
        let totp = screen_draw(&mut d, Stage::Totp);
        let otp = screen_draw(&mut d, Stage::SmsOtp);
        let pin = screen_draw(&mut d, Stage::Pin);
        let mut layout = Layout {
            seed,
            rendering: d.pick(&["single-page", "documents"]),
            origin: if d.chance(30) { "redirected" } else { "same" },
            second_factor,
            render_delay_ms: if d.chance(40) { 0 } else { d.below(801) as u32 },
            redraw: d.pick(&["replace", "mutate"]),
            swallow: None,
            decoys: Decoys {
                hidden_copy: d.pick(&["", "template", "display-none"]),
                resend: d.chance(40),
                forgot_pin: d.chance(40),
                back: d.chance(40),
                tracker: d.chance(40),
                info_toast: d.chance(40),
            },
            mobile,
            totp,
            otp,
            pin,
        };
        if d.chance(35) {
            // Only a screen that waits to be asked can swallow the asking.
            let asked: Vec<&'static str> = ["mobile", "totp", "otp", "pin"]
                .into_iter()
                .filter(|s| layout.shown(s) && layout.screen_named(s).submit == "button")
                .collect();
            if !asked.is_empty() {
                layout.swallow = Some(d.pick(&asked));
            }
        }
        layout
    }

    fn shown(&self, screen: &str) -> bool {
        match screen {
            "totp" => self.second_factor == "totp",
            "otp" => self.second_factor == "sms-otp",
            _ => true,
        }
    }

    fn screen_named(&self, screen: &str) -> &ScreenLayout {
        match screen {
            "mobile" => &self.mobile,
            "totp" => &self.totp,
            "otp" => &self.otp,
            _ => &self.pin,
        }
    }

    pub(crate) fn screen(&self, stage: Stage) -> &ScreenLayout {
        match stage {
            Stage::Mobile => &self.mobile,
            Stage::Totp => &self.totp,
            Stage::SmsOtp => &self.otp,
            Stage::Pin | Stage::Authorized => &self.pin,
        }
    }

    /// What the page script needs to behave as drawn.
    pub(crate) fn behaviour(&self) -> serde_json::Value {
        let one = |name: &str| {
            let s = self.screen_named(name);
            serde_json::json!({
                "enable": s.enable,
                "submit": s.submit,
                "timerMs": s.timer_ms,
                "swallow": self.swallow == Some(name),
            })
        };
        serde_json::json!({
            "screens": {"mobile": one("mobile"), "totp": one("totp"), "otp": one("otp"), "pin": one("pin")},
            "redraw": self.redraw,
            "renderDelayMs": self.render_delay_ms,
            "infoToast": self.decoys.info_toast,
        })
    }

    /// The hidden copy of another screen, to sit outside the page's screen host.
    pub(crate) fn hidden_copy(&self, mobile: &str) -> String {
        let copy = render(Stage::Pin, self, "", mobile, "copy-");
        match self.decoys.hidden_copy {
            "template" => format!(r#"<template class="screen-cache">{copy}</template>"#),
            "display-none" => {
                format!(r#"<div class="screen-cache" style="display:none">{copy}</div>"#)
            }
            _ => String::new(),
        }
    }
}

struct Texts {
    title: String,
    /// The title cut in two, for the split layout.
    split: (String, String),
    hint: String,
    /// The accessible name of the inputs.
    name: &'static str,
}

fn texts(stage: Stage, mobile: &str) -> Texts {
    match stage {
        Stage::Mobile => Texts {
            title: "Login via Dhan".into(),
            split: ("Login via".into(), "Dhan".into()),
            hint: "Enter your registered mobile number to continue.".into(),
            name: "Mobile number",
        },
        Stage::Totp => Texts {
            title: "Enter the code from your authenticator app".into(),
            split: (
                "Enter the code from your".into(),
                "authenticator app".into(),
            ),
            hint: "Open your authenticator app and enter the 6-digit TOTP.".into(),
            name: "TOTP",
        },
        Stage::SmsOtp => Texts {
            title: format!("OTP sent to {}", masked_phone(mobile)),
            split: ("OTP".into(), format!("sent to {}", masked_phone(mobile))),
            hint: "Enter the 6-digit OTP sent by SMS and e-mail.".into(),
            name: "OTP sent by SMS",
        },
        Stage::Pin | Stage::Authorized => Texts {
            title: "Enter PIN for your Account".into(),
            split: ("Enter".into(), "PIN for your Account".into()),
            hint: "Enter your 6-digit Dhan PIN.".into(),
            name: "PIN",
        },
    }
}

/// Words that name no code, for the places the drawn layout leaves without words.
const NEUTRAL_HINT: &str = "Enter the 6-digit code to continue.";

fn wrap(tag: &str, levels: u8, inner: String) -> String {
    let (open, close) = match tag {
        "section-body" => ("<div class=\"section-body\">", "</div>"),
        "div" => ("<div class=\"wrap\">", "</div>"),
        t => return wrap_custom(t, levels, inner),
    };
    let mut out = String::new();
    for _ in 0..levels {
        out.push_str(open);
    }
    out.push_str(&inner);
    for _ in 0..levels {
        out.push_str(close);
    }
    out
}

fn wrap_custom(tag: &str, levels: u8, inner: String) -> String {
    let mut out = String::new();
    for _ in 0..levels {
        out.push_str(&format!("<{tag}>"));
    }
    out.push_str(&inner);
    for _ in 0..levels {
        out.push_str(&format!("</{tag}>"));
    }
    out
}

fn inputs(stage: Stage, s: &ScreenLayout, name: &str, labelled_by: Option<&str>) -> String {
    let masked_type = s.mask == "type";
    let style = if s.mask == "text-security" {
        r#" style="-webkit-text-security:disc""#
    } else {
        ""
    };
    let aria = |i: usize| match (s.words, labelled_by) {
        ("attribute", Some(id)) => format!(r#" aria-labelledby="{id}""#),
        ("attribute", None) => format!(r#" aria-label="{name} digit {i}""#),
        _ => String::new(),
    };
    let boxes = |attrs: &str| -> String {
        (1..=6)
            .map(|i| format!(r#"<input {attrs}{style}{}>"#, aria(i)))
            .collect()
    };
    let group = match s.inputs {
        "code-input" => {
            let span_class = if s.mask == "ancestor-class" {
                r#" class="code-hidden""#
            } else {
                ""
            };
            let kind = if masked_type { "password" } else { "tel" };
            let spans: String = (1..=6)
                .map(|i| {
                    format!(
                        r#"<span{span_class}><input type="{kind}" inputmode="numeric" autocomplete="one-time-code"{style}{}></span>"#,
                        aria(i)
                    )
                })
                .collect();
            format!("<code-input>{spans}</code-input>")
        }
        "tel-boxes" | "password-boxes" => {
            let kind = if masked_type { "password" } else { "tel" };
            format!(
                r#"<div class="otp-input">{}</div>"#,
                boxes(&format!(
                    r#"type="{kind}" class="otp-box" maxlength="1" inputmode="numeric""#
                ))
            )
        }
        "tel-boxes-no-maxlength" => {
            let kind = if masked_type { "password" } else { "tel" };
            format!(
                r#"<div class="otp-input">{}</div>"#,
                boxes(&format!(
                    r#"type="{kind}" class="otp-box" inputmode="numeric""#
                ))
            )
        }
        "mobile" => String::new(),
        _ => {
            let kind = if masked_type { "password" } else { "tel" };
            let placeholder = if s.words == "attribute" {
                format!(r#" placeholder="{name}""#)
            } else {
                r#" placeholder="------""#.to_string()
            };
            let complete = if stage == Stage::Totp || stage == Stage::SmsOtp {
                r#" autocomplete="one-time-code""#
            } else {
                ""
            };
            format!(
                r#"<input type="{kind}" class="form-control otp-field" inputmode="numeric" maxlength="6"{complete}{placeholder}{style}>"#
            )
        }
    };
    if s.mask == "ancestor-class" && s.inputs != "code-input" {
        format!(r#"<div class="secure-entry">{group}</div>"#)
    } else {
        group
    }
}

fn mobile_input(s: &ScreenLayout) -> String {
    let named = match s.mobile_attr.unwrap_or("formcontrolname") {
        "placeholder" => r#"placeholder="Mobile number""#,
        "aria-label" => r#"aria-label="Mobile number" placeholder="10 digits""#,
        "name" => r#"name="mobileNo" placeholder="10 digits""#,
        "id" => r#"id="mobile" placeholder="10 digits""#,
        _ => r#"formcontrolname="mobileNumber""#,
    };
    format!(
        r#"<input type="tel" class="form-control" inputmode="numeric" maxlength="10" autocomplete="off" {named}>"#
    )
}

fn button(s: &ScreenLayout) -> String {
    let disabled = s.enable != "enabled";
    let label = s.label;
    let kind = if s.form { "submit" } else { "button" };
    match s.button {
        "button" => format!(
            r#"<button type="{kind}" class="btn btn-primary primary-action"{}>{label}</button>"#,
            if disabled { " disabled" } else { "" }
        ),
        "icon" => format!(
            r#"<button type="{kind}" class="btn btn-primary btn-icon primary-action" aria-label="{label}"{}><svg width="18" height="18" viewBox="0 0 18 18" aria-hidden="true"><path d="M3 9h10M9 4l5 5-5 5" stroke="currentColor" stroke-width="2" fill="none"/></svg></button>"#,
            if disabled { " disabled" } else { "" }
        ),
        "anchor" => format!(
            r##"<a href="#" class="btn btn-primary primary-action{}"{}>{label}</a>"##,
            if disabled { " disabled" } else { "" },
            if disabled {
                r#" aria-disabled="true""#
            } else {
                ""
            }
        ),
        "div" => format!(
            r#"<div role="button" tabindex="0" class="btn btn-primary primary-action{}"{}>{label}</div>"#,
            if disabled { " disabled" } else { "" },
            if disabled {
                r#" aria-disabled="true""#
            } else {
                ""
            }
        ),
        _ => String::new(),
    }
}

/// One screen of a generated page. `id_prefix` keeps the ids of a hidden copy apart.
pub(crate) fn render(
    stage: Stage,
    layout: &Layout,
    session_field: &str,
    mobile: &str,
    id_prefix: &str,
) -> String {
    let s = layout.screen(stage);
    let t = texts(stage, mobile);
    let title = escape(&t.title);
    let name_id = format!("{id_prefix}code-name-{}", stage_key(stage));
    let (mut header, mut above, mut in_form, mut hint) = (
        String::new(),
        String::new(),
        String::new(),
        NEUTRAL_HINT.to_string(),
    );
    let mut labelled_by = None;
    match s.words {
        "in-form" => in_form = format!(r#"<h2 class="login-title">{title}</h2>"#),
        "above-form" => above = format!(r#"<h4 class="card-title">{title}</h4>"#),
        "header-beside" => {
            header = format!(r#"<app-card-header><h3 class="title">{title}</h3></app-card-header>"#)
        }
        "paragraph" => hint = escape(&t.hint),
        "split" => {
            let (a, b) = (escape(&t.split.0), escape(&t.split.1));
            in_form = format!(r#"<h3 class="login-title"><span>{a}</span> <b>{b}</b></h3>"#);
        }
        // Half the pages name the inputs by aria-labelledby, the others by aria-label.
        "attribute" if layout.seed.is_multiple_of(2) => {
            labelled_by = Some(name_id.clone());
            in_form = format!(
                r#"<span id="{name_id}" class="visually-hidden">{}</span>"#,
                escape(t.name)
            );
        }
        _ => {}
    }
    if stage == Stage::Mobile {
        hint = escape(&t.hint);
    }
    let group = if stage == Stage::Mobile {
        mobile_input(s)
    } else {
        inputs(stage, s, t.name, labelled_by.as_deref())
    };
    let group = wrap(s.wrapper_tag, s.wrappers.1, group);
    let mut below = String::new();
    let d = &layout.decoys;
    if d.resend && (stage == Stage::Totp || stage == Stage::SmsOtp) {
        below.push_str(r#"<p class="resend">Didn't get it? <button type="button" class="link-btn decoy-resend">Resend OTP</button></p>"#);
    }
    if d.forgot_pin && stage == Stage::Pin {
        below.push_str(
            r##"<p class="resend"><a href="#" class="decoy-forgot">Forgot PIN?</a></p>"##,
        );
    }
    let back = if d.back && stage != Stage::Mobile {
        r#"<button type="button" class="btn btn-outline decoy-back">Back</button>"#
    } else {
        ""
    };
    let body = format!(
        r#"{session_field}{in_form}<p class="login-subtitle">{hint}</p>{group}{below}{back}{}"#,
        button(s)
    );
    let form = if s.form {
        format!(
            r#"<form class="login-form" method="post" autocomplete="off" novalidate>{body}</form>"#
        )
    } else {
        format!(r#"<div class="login-form">{body}</div>"#)
    };
    let form = wrap(s.wrapper_tag, s.wrappers.0, form);
    format!(r#"<div class="card">{header}{above}{form}</div>"#)
}

fn stage_key(stage: Stage) -> &'static str {
    match stage {
        Stage::Mobile => "mobile",
        Stage::Totp => "totp",
        Stage::SmsOtp => "otp",
        Stage::Pin | Stage::Authorized => "pin",
    }
}

// A generated page's variant is drawn here, beside the layout it comes from, so that the
// settings (`options.rs`) stay a leaf the page code uses.
impl PageVariant {
    /// A generated page: where each screen's words are, its wrappers, inputs, masking,
    /// button, submission, decoys, timing, origin and rendering, all drawn from `seed`
    /// (the same seed, the same page). [`PageVariant::layout_json`] says what was drawn.
    pub fn generated(seed: u64) -> Self {
        let layout = Layout::draw(seed);
        Self {
            markup: Markup::CodeInput,
            submission: Submission::Button,
            totp_screen: layout.second_factor != "skipped",
            spa: layout.rendering == "single-page",
            second_factor: if layout.second_factor == "sms-otp" {
                SecondFactor::SmsOtp
            } else {
                SecondFactor::Totp
            },
            proceed_ignored_once: false,
            tracker_iframe: layout.decoys.tracker,
            slow_focus: false,
            keys_ignored: false,
            seed: Some(seed),
        }
    }

    /// The dimensions drawn for a generated page, as JSON (None for other pages).
    pub fn layout_json(&self) -> Option<serde_json::Value> {
        let layout = Layout::draw(self.seed?);
        serde_json::to_value(layout).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_always_draws_the_same_page() {
        assert_eq!(Layout::draw(7), Layout::draw(7));
        let html = |seed| render(Stage::Totp, &Layout::draw(seed), "", "9999900042", "");
        assert_eq!(html(7), html(7));
        let differ = (0..20u64)
            .filter(|s| Layout::draw(*s) != Layout::draw(s + 1))
            .count();
        assert!(differ > 15, "seeds draw distinct pages");
    }

    #[test]
    fn every_dimension_value_is_drawn_in_a_thousand_seeds() {
        let pages: Vec<Layout> = (0..1000).map(Layout::draw).collect();
        let seen = |f: &dyn Fn(&Layout) -> String, want: &[&str]| {
            for w in want {
                assert!(pages.iter().any(|p| f(p) == *w), "{w} never drawn");
            }
        };
        seen(&|p| p.pin.words.into(), &WORDS);
        seen(&|p| p.totp.words.into(), &WORDS[..6]);
        seen(&|p| p.pin.inputs.into(), &PIN_INPUTS);
        seen(
            &|p| p.pin.mask.into(),
            &["none", "type", "text-security", "ancestor-class"],
        );
        seen(&|p| p.totp.button.into(), &BUTTONS);
        seen(&|p| p.mobile.enable.into(), &ENABLE);
        seen(&|p| p.pin.submit.into(), &SUBMIT);
        seen(&|p| p.second_factor.into(), &["totp", "sms-otp", "skipped"]);
        seen(&|p| p.origin.into(), &["same", "redirected"]);
        seen(&|p| p.redraw.into(), &["replace", "mutate"]);
        seen(
            &|p| p.swallow.unwrap_or("").into(),
            &["mobile", "totp", "otp", "pin"],
        );
        assert!(
            pages
                .iter()
                .any(|p| p.pin.wrappers.0 + p.pin.wrappers.1 == 8)
        );
        assert!(
            pages
                .iter()
                .all(|p| p.totp.wrappers.0 + p.totp.wrappers.1 <= 8)
        );
    }

    #[test]
    fn a_pin_without_words_is_always_masked() {
        for seed in 0..2000 {
            let p = Layout::draw(seed);
            if p.pin.words == "none" {
                assert_ne!(p.pin.mask, "none", "seed {seed}");
            }
            assert_eq!(p.totp.mask, "none");
        }
    }

    #[test]
    fn a_heading_above_the_form_sits_outside_it() {
        let seed = (0..)
            .find(|s| Layout::draw(*s).totp.words == "above-form")
            .expect("drawn");
        let html = render(Stage::Totp, &Layout::draw(seed), "", "9999900042", "");
        let heading = html.find("authenticator").expect("words shown");
        let form = html.find("login-form").expect("a form");
        assert!(heading < form, "{html}");
    }
}
