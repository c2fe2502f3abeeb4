//! Which screen the consent login page shows, and what the driver does about it.
//!
//! `screens.js` looks at the whole page and names the screen; [`decide`] turns that
//! answer and what the driver has already done into one action. The page picks the
//! order (the TOTP screen may not come at all); the driver only answers the screen in
//! front of it, types each code at most once, and types nothing into a screen it cannot
//! place.

use std::time::Duration;

use chromiumoxide::Page;
use serde::{Deserialize, Serialize};

use super::dom::{self, EvalError, MARK};
use super::error::Step;
use super::selectors::SelectorProfile;

const SCRIPT: &str = include_str!("screens.js");

/// What one look at the page found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Screen {
    Mobile,
    Totp,
    /// A code sent by SMS or e-mail.
    Otp,
    Pin,
    /// The code group the driver filled is still shown: the page has not answered yet.
    Pending,
    Error,
    Expired,
    Navigating,
    Unknown,
    /// One group of digit inputs that no signal places (wrong size, no words, mixed
    /// masking, words of two codes).
    Unplaced,
    /// Two groups at once (e.g. a masked and an unmasked one).
    Ambiguous,
}

impl Screen {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Screen::Mobile => "mobile",
            Screen::Totp => "totp",
            Screen::Otp => "otp",
            Screen::Pin => "pin",
            Screen::Pending => "pending",
            Screen::Error => "error",
            Screen::Expired => "expired",
            Screen::Navigating => "navigating",
            Screen::Unknown => "unknown",
            Screen::Unplaced => "unplaced",
            Screen::Ambiguous => "ambiguous",
        }
    }
}

/// The three codes a login page may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Code {
    Totp,
    Otp,
    Pin,
}

impl Code {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Code::Totp => "totp",
            Code::Otp => "otp",
            Code::Pin => "pin",
        }
    }

    pub(crate) fn step(self) -> Step {
        match self {
            Code::Totp => Step::Totp,
            Code::Otp => Step::Otp,
            Code::Pin => Step::Pin,
        }
    }

    fn of(screen: Screen) -> Option<Code> {
        match screen {
            Screen::Totp => Some(Code::Totp),
            Screen::Otp => Some(Code::Otp),
            Screen::Pin => Some(Code::Pin),
            _ => None,
        }
    }
}

/// The page's own words about what went wrong. Unscrubbed: scrub before storing.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct PageError {
    pub message: String,
    /// It holds one of the profile's error texts (not merely an alert-like element).
    pub known: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Button {
    pub enabled: bool,
    pub via: String,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Group {
    pub count: usize,
    /// The code the driver typed into these very inputs, if it did.
    pub ours: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Snapshot {
    pub screen: Screen,
    /// Changes whenever anything the driver acts on changes.
    #[serde(default)]
    pub signature: String,
    /// The signals behind the verdict, for logs and artifacts.
    pub reasons: Vec<String>,
    pub error: Option<PageError>,
    pub mobile: bool,
    pub submit: Option<Button>,
    pub group: Option<Group>,
    /// Fetch/XHR writes the page itself started since it loaded.
    pub submits: u64,
    /// Candidates of the page profile the browser refused to parse.
    pub invalid: Vec<String>,
}

impl Snapshot {
    /// One line for the step log: the screen and why.
    pub(crate) fn describe(&self) -> String {
        if self.reasons.is_empty() {
            self.screen.as_str().to_string()
        } else {
            format!("{} ({})", self.screen.as_str(), self.reasons.join("; "))
        }
    }
}

#[derive(Serialize)]
struct Spec<'a> {
    mark: &'static str,
    profile: &'a SelectorProfile,
    /// The signature of the last answer: the look waits until the page differs from it.
    last: Option<&'a str>,
    wait_ms: u64,
}

/// Wraps `screens.js`: answers at once when the page differs from `last`, else when a
/// DOM change makes it differ, else after `wait_ms` (the page may change what no
/// mutation shows, such as input values).
const WAITER: &str = r#"
const sig = (s) => JSON.stringify([s.screen, s.error && s.error.message, s.mobile,
  s.submit && s.submit.enabled, s.group && [s.group.count, s.group.masked, s.group.filled, s.group.ours], s.reasons]);
const answer = () => { const s = look(spec); s.signature = sig(s); return s; };
const first = answer();
if (spec.wait_ms <= 0 || spec.last === null || first.signature !== spec.last) return first;
return new Promise((resolve) => {
  let done = false;
  let timer = null;
  const obs = new MutationObserver((records) => {
    if (done) return;
    const theirs = records.some((r) => !(r.type === 'attributes' && (r.attributeName || '').startsWith(spec.mark)));
    if (!theirs) return;
    const s = answer();
    if (s.signature !== spec.last) { done = true; obs.disconnect(); clearTimeout(timer); resolve(s); }
  });
  obs.observe(document, { subtree: true, childList: true, attributes: true, characterData: true });
  timer = setTimeout(() => { if (!done) { done = true; obs.disconnect(); resolve(answer()); } }, spec.wait_ms);
});
"#;

/// Looks at the page once; with `last`, waits up to `wait` for it to change first.
pub(crate) async fn look(
    page: &Page,
    profile: &SelectorProfile,
    last: Option<&str>,
    wait: Duration,
) -> Result<Snapshot, EvalError> {
    let spec = Spec {
        mark: MARK,
        profile,
        last,
        wait_ms: wait.as_millis() as u64,
    };
    let json = serde_json::to_string(&spec).map_err(|e| EvalError::Shape(e.to_string()))?;
    let expression = format!(
        "(() => {{ const spec = {json};\nconst look = (spec) => {{ {SCRIPT}\n}};\n{WAITER} }})()"
    );
    dom::evaluate(page, expression, true).await
}

#[derive(Serialize)]
struct PressSpec<'a> {
    mark: &'static str,
    profile: &'a SelectorProfile,
    expect: Screen,
}

/// Wraps `screens.js`: one task that checks that the page has sent nothing since the
/// watch was armed and still shows the expected screen with its button enabled, and only
/// then clicks that button (re-arming the watch for what the click sets in motion).
/// Nothing the page does can run between the check and the click. `HTMLElement.click()`
/// runs the button's activation as a mouse click does (a form's submission, an anchor's
/// navigation, the page's click handlers); only a page that refuses untrusted events
/// would tell the two apart.
const PRESSER: &str = r#"
const w = window.__dhanLoginWatch;
if (!w || !w.armed) return { answer: 'unarmed', via: null };
if (w.acted()) return { answer: 'sent', via: null };
const s = look(spec);
if (s.screen !== spec.expect) return { answer: 'moved', via: null };
if (!s.submit) return { answer: 'no_button', via: null };
if (!s.submit.enabled) return { answer: 'disabled', via: s.submit.via };
const b = document.querySelector('[' + spec.mark + '="submit"]');
if (!b) return { answer: 'no_button', via: null };
w.arm();
b.click();
return { answer: 'clicked', via: s.submit.via };
"#;

/// What [`press_in_page`] found, and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum PressAnswer {
    /// The document has no armed watch (it was replaced since): the page cannot say.
    Unarmed,
    /// The page sent something or navigated since the watch was armed.
    Sent,
    /// The page shows another screen than the one the press was for.
    Moved,
    /// The screen has no button (Enter is the way), or it was redrawn away.
    NoButton,
    Disabled,
    Clicked,
}

#[derive(Debug, Deserialize)]
pub(crate) struct InPage {
    pub answer: PressAnswer,
    /// How the button was found, when there was one.
    pub via: Option<String>,
}

/// Presses the button of `expect` in the same page task as the check that nothing was
/// sent since the watch was armed (see `PRESSER`).
pub(crate) async fn press_in_page(
    page: &Page,
    profile: &SelectorProfile,
    expect: Screen,
) -> Result<InPage, EvalError> {
    let spec = PressSpec {
        mark: MARK,
        profile,
        expect,
    };
    let json = serde_json::to_string(&spec).map_err(|e| EvalError::Shape(e.to_string()))?;
    let expression = format!(
        "(() => {{ const spec = {json};\nconst look = (spec) => {{ {SCRIPT}\n}};\n{PRESSER} }})()"
    );
    dom::evaluate(page, expression, false).await
}

/// What the driver has done so far in this login.
#[derive(Debug, Default, Clone)]
pub(crate) struct History {
    /// The mobile number was typed and submitted.
    pub mobile_submitted: bool,
    /// The screen the driver last pressed a button (or Enter) on: `Mobile`, or
    /// `Pending` for a code screen it filled.
    pub pressed: Option<Screen>,
    /// That press was made a second time (at most once per screen).
    pub retried: bool,
    /// Codes typed, in order; each at most once per login.
    pub typed: Vec<Code>,
}

impl History {
    pub(crate) fn has_typed(&self, code: Code) -> bool {
        self.typed.contains(&code)
    }
}

/// How long the current screen has looked the same, and whether the page sent
/// anything since the driver last pressed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    /// Since the current signature was first seen.
    pub stable_for: Duration,
    pub since_press: Option<SincePress>,
}

/// The driver's last press, as the page answered it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SincePress {
    pub elapsed: Duration,
    /// A request left the page since the pressed screen's typing began.
    pub sent: bool,
    /// Everything the press set in motion ran without sending or navigating.
    pub ignored: bool,
}

/// Knobs of [`decide`], from the page profile.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Patience {
    /// How long a press may go without anything sent before it is made once more,
    /// when the page could not say whether it had settled.
    pub press_retry: Duration,
    /// How long a doubtful screen (ambiguous, unplaced, a code screen shown again) must
    /// stay the same before the login gives up on it; pages pass through such states
    /// while they redraw.
    pub settle: Duration,
}

/// Why the login must stop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Stop {
    /// The page said no: fatal, never retried. `known` when the message holds one of
    /// the profile's error texts.
    Rejected {
        message: String,
        known: bool,
    },
    Expired(String),
    /// A code screen the driver already answered was drawn anew without a message: most
    /// likely the code was refused. Fatal: typing the code again could lock the account.
    CameBack(Code),
    /// Nothing is typed into a page the driver cannot place.
    Doubt(String),
    /// The page wants a code sent by SMS or e-mail and none can be had.
    NeedsOtp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    TypeMobile,
    /// Press the screen's button once more: the first press sent nothing.
    RetryPress,
    Type(Code),
    Wait,
    Stop(Stop),
}

/// The one decision table of the login.
pub(crate) fn decide(
    s: &Snapshot,
    h: &History,
    t: Timing,
    p: Patience,
    otp_available: bool,
) -> Action {
    match s.screen {
        Screen::Error => Action::Stop(Stop::Rejected {
            message: s
                .error
                .as_ref()
                .map(|e| e.message.clone())
                .unwrap_or_default(),
            known: s.error.as_ref().is_some_and(|e| e.known),
        }),
        Screen::Expired => Action::Stop(Stop::Expired(
            s.error
                .as_ref()
                .map(|e| e.message.clone())
                .unwrap_or_default(),
        )),
        Screen::Mobile if !h.mobile_submitted => Action::TypeMobile,
        Screen::Mobile | Screen::Pending if retry_due(s, h, t, p) => Action::RetryPress,
        Screen::Mobile => Action::Wait,
        Screen::Totp | Screen::Otp | Screen::Pin => {
            let Some(code) = Code::of(s.screen) else {
                return Action::Wait;
            };
            if !h.mobile_submitted && s.mobile {
                // A code group beside a mobile field not yet filled: not a screen
                // this driver knows how to answer.
                return doubt(s, t, p, "a mobile field and a code group on one screen");
            }
            if h.has_typed(code) {
                let ours = s.group.as_ref().and_then(|g| g.ours.as_deref()) == Some(code.as_str());
                if ours || t.stable_for < p.settle {
                    // The page cleared the boxes it is still checking, or is redrawing.
                    return Action::Wait;
                }
                return Action::Stop(Stop::CameBack(code));
            }
            if code == Code::Otp && !otp_available {
                return Action::Stop(Stop::NeedsOtp);
            }
            Action::Type(code)
        }
        Screen::Ambiguous | Screen::Unplaced => doubt(s, t, p, ""),
        Screen::Pending | Screen::Navigating | Screen::Unknown => Action::Wait,
    }
}

/// A press that sent nothing is made once more: by what was sent, never while the
/// button is disabled, at most once per screen. At once when the page settled after it
/// without sending or navigating; else after the patience.
fn retry_due(s: &Snapshot, h: &History, t: Timing, p: Patience) -> bool {
    let nothing_sent = matches!(t.since_press,
        Some(t) if !t.sent && (t.ignored || t.elapsed >= p.press_retry));
    h.pressed == Some(s.screen)
        && !h.retried
        && nothing_sent
        && s.submit.as_ref().is_none_or(|b| b.enabled)
}

fn doubt(s: &Snapshot, t: Timing, p: Patience, what: &str) -> Action {
    if t.stable_for < p.settle {
        return Action::Wait;
    }
    let mut seen = s.reasons.join("; ");
    if !what.is_empty() {
        seen = if seen.is_empty() {
            what.to_string()
        } else {
            format!("{what}: {seen}")
        };
    }
    Action::Stop(Stop::Doubt(seen))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(screen: Screen) -> Snapshot {
        Snapshot {
            screen,
            signature: String::new(),
            reasons: vec!["why".into()],
            error: None,
            mobile: false,
            submit: None,
            group: None,
            submits: 0,
            invalid: Vec::new(),
        }
    }

    const P: Patience = Patience {
        press_retry: Duration::from_secs(3),
        settle: Duration::from_secs(1),
    };

    fn at(stable_ms: u64) -> Timing {
        Timing {
            stable_for: Duration::from_millis(stable_ms),
            since_press: None,
        }
    }

    fn after_mobile() -> History {
        History {
            mobile_submitted: true,
            ..Default::default()
        }
    }

    #[test]
    fn the_page_picks_the_order() {
        let h = History::default();
        assert_eq!(
            decide(&snap(Screen::Mobile), &h, at(0), P, false),
            Action::TypeMobile
        );
        let h = after_mobile();
        // TOTP skipped on a trusted device: straight to the PIN.
        assert_eq!(
            decide(&snap(Screen::Pin), &h, at(0), P, false),
            Action::Type(Code::Pin)
        );
        assert_eq!(
            decide(&snap(Screen::Totp), &h, at(0), P, false),
            Action::Type(Code::Totp)
        );
    }

    #[test]
    fn no_code_is_typed_twice() {
        let mut h = after_mobile();
        h.typed.push(Code::Totp);
        let mut s = snap(Screen::Totp);
        // Redrawn TOTP screen: wait while it settles, then stop, never type again.
        assert_eq!(decide(&s, &h, at(100), P, false), Action::Wait);
        assert_eq!(
            decide(&s, &h, at(1500), P, false),
            Action::Stop(Stop::CameBack(Code::Totp))
        );
        // Our own boxes, cleared while the page checks the code: wait for its answer.
        s.group = Some(Group {
            count: 6,
            ours: Some("totp".into()),
        });
        assert_eq!(decide(&s, &h, at(5000), P, false), Action::Wait);
    }

    #[test]
    fn a_press_is_retried_once_and_only_when_nothing_was_sent() {
        let t = |ms: u64, sent: bool| Timing {
            stable_for: Duration::ZERO,
            since_press: Some(SincePress {
                elapsed: Duration::from_millis(ms),
                sent,
                ignored: false,
            }),
        };
        for screen in [Screen::Mobile, Screen::Pending] {
            let mut h = after_mobile();
            h.pressed = Some(screen);
            let mut s = snap(screen);
            assert_eq!(decide(&s, &h, t(1000, false), P, false), Action::Wait);
            assert_eq!(decide(&s, &h, t(3100, true), P, false), Action::Wait);
            assert_eq!(decide(&s, &h, t(3100, false), P, false), Action::RetryPress);
            // Never spent on a disabled button.
            s.submit = Some(Button {
                enabled: false,
                via: "text".into(),
            });
            assert_eq!(decide(&s, &h, t(9000, false), P, false), Action::Wait);
            s.submit = None;
            h.retried = true;
            assert_eq!(decide(&s, &h, t(9000, false), P, false), Action::Wait);
        }
        // A press on another screen is no reason to press this one.
        let mut h = after_mobile();
        h.pressed = Some(Screen::Mobile);
        assert_eq!(
            decide(&snap(Screen::Pending), &h, t(9000, false), P, false),
            Action::Wait
        );
    }

    #[test]
    fn a_press_the_page_settled_on_without_sending_is_retried_at_once() {
        let t = |sent: bool, ignored: bool| Timing {
            stable_for: Duration::ZERO,
            since_press: Some(SincePress {
                elapsed: Duration::from_millis(5),
                sent,
                ignored,
            }),
        };
        for screen in [Screen::Mobile, Screen::Pending] {
            let mut h = after_mobile();
            h.pressed = Some(screen);
            let mut s = snap(screen);
            assert_eq!(decide(&s, &h, t(false, true), P, false), Action::RetryPress);
            // The page could not say: the patience decides.
            assert_eq!(decide(&s, &h, t(false, false), P, false), Action::Wait);
            // Something left the page after all: never a second press.
            assert_eq!(decide(&s, &h, t(true, true), P, false), Action::Wait);
            s.submit = Some(Button {
                enabled: false,
                via: "text".into(),
            });
            assert_eq!(decide(&s, &h, t(false, true), P, false), Action::Wait);
            s.submit = None;
            h.retried = true;
            assert_eq!(decide(&s, &h, t(false, true), P, false), Action::Wait);
        }
    }

    #[test]
    fn doubtful_pages_get_nothing_typed() {
        let h = after_mobile();
        for screen in [Screen::Ambiguous, Screen::Unplaced] {
            assert_eq!(decide(&snap(screen), &h, at(200), P, false), Action::Wait);
            assert!(matches!(
                decide(&snap(screen), &h, at(1200), P, false),
                Action::Stop(Stop::Doubt(_))
            ));
        }
        let mut s = snap(Screen::Totp);
        s.mobile = true;
        assert!(matches!(
            decide(&s, &History::default(), at(1200), P, false),
            Action::Stop(Stop::Doubt(_))
        ));
    }

    #[test]
    fn an_sms_otp_screen_never_gets_a_totp() {
        let h = after_mobile();
        assert_eq!(
            decide(&snap(Screen::Otp), &h, at(0), P, false),
            Action::Stop(Stop::NeedsOtp)
        );
        assert_eq!(
            decide(&snap(Screen::Otp), &h, at(0), P, true),
            Action::Type(Code::Otp)
        );
    }

    #[test]
    fn errors_stop_at_once() {
        let mut s = snap(Screen::Error);
        s.error = Some(PageError {
            message: "Invalid Totp entered".into(),
            known: true,
        });
        assert_eq!(
            decide(&s, &after_mobile(), at(0), P, false),
            Action::Stop(Stop::Rejected {
                message: "Invalid Totp entered".into(),
                known: true
            })
        );
        s.screen = Screen::Expired;
        assert!(matches!(
            decide(&s, &History::default(), at(0), P, false),
            Action::Stop(Stop::Expired(_))
        ));
    }

    #[test]
    fn waiting_screens_wait() {
        for screen in [Screen::Pending, Screen::Navigating, Screen::Unknown] {
            assert_eq!(
                decide(&snap(screen), &after_mobile(), at(60_000), P, false),
                Action::Wait
            );
        }
    }
}
