//! Typing into the consent page: the mobile number, the PIN and the codes (fetched only
//! when typed), in one go where the page takes them so, else key by key, and the
//! screen's button.

use std::time::Duration;

use chromiumoxide::Page;
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;
use zeroize::Zeroizing;

use super::dom;
use super::dom::Settled;
use super::driver::{Deadline, Driver};
use super::engine::{View, Watch};
use super::error::{Artifacts, BrowserError, Limit, Step};
use super::screens::{self, Code, PressAnswer, Screen, Snapshot};
use super::traffic::Mark;

/// The digits of a secret, or an error that names the field but not the value.
pub(super) fn digits(
    field: &'static str,
    secret: &SecretString,
    len: Option<usize>,
) -> Result<SecretString, BrowserError> {
    // Wiped when dropped; the secret made from it is a copy of exactly its length (a
    // `String` turned into one could reallocate and leave the old buffer unwiped).
    let cleaned: Zeroizing<String> = Zeroizing::new(
        secret
            .expose_secret()
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .collect(),
    );
    let bad = |message: String| BrowserError::Input { field, message };
    if cleaned.is_empty() || !cleaned.chars().all(|c| c.is_ascii_digit()) {
        return Err(bad("must be digits only (the value is not shown)".into()));
    }
    if let Some(n) = len
        && cleaned.chars().count() != n
    {
        return Err(bad(format!("must be {n} digits (the value is not shown)")));
    }
    Ok(SecretString::from(cleaned.as_str()))
}

impl Driver<'_> {
    pub(super) async fn code_for(&mut self, code: Code) -> Result<SecretString, BrowserError> {
        let secret = match code {
            Code::Pin => self.login_pin.clone(),
            Code::Totp => {
                // Only now: the code must be as fresh as possible when it is typed.
                let Some(totp) = self.login.totp else {
                    return Err(BrowserError::Input {
                        field: "totp_secret",
                        message: "the login page asks for a TOTP and none is configured (set totp_secret)".into(),
                    });
                };
                let overall = Deadline {
                    at: self.overall_at,
                    limit: Limit::Overall(self.settings.overall_timeout),
                };
                let code = tokio::time::timeout_at(overall.at, totp.next_code())
                    .await
                    .map_err(|_| BrowserError::Timeout {
                        step: Step::Totp,
                        limit: overall.limit,
                        artifacts: Artifacts::None,
                    })?;
                // The generator may have waited for a fresh step: the budget starts again.
                self.step_at = Some(self.deadline());
                code
            }
            Code::Otp => {
                let Some(source) = self.login.otp else {
                    return Err(BrowserError::NeedsOtp {
                        step: Step::Otp,
                        artifacts: Artifacts::None,
                    });
                };
                let got = self.within(source.code()).await?;
                let got = digits("otp", &got, Some(6))?;
                self.step_at = Some(self.deadline());
                got
            }
        };
        if let Ok(mut s) = self.scrubber.lock() {
            s.add(secret.expose_secret());
        }
        Ok(secret)
    }

    /// Types the mobile number; true when the page then settled with nothing sent and
    /// the number whole in its field (see [`Driver::type_digits`]).
    pub(super) async fn type_mobile(&mut self, page: &Page) -> Result<bool, BrowserError> {
        let mobile = self.login_mobile.clone();
        if self.type_digits("mobile", &mobile, false).await? {
            return Ok(true);
        }
        let want = mobile.expose_secret().len();
        let landed = self.within(dom::value_len(page, "mobile")).await?;
        if landed != Some(want) {
            return Err(BrowserError::driver(
                Step::Mobile,
                format!(
                    "the mobile number did not land in its field ({} of {want} digits): the page did not take the key events",
                    landed.unwrap_or(0)
                ),
            ));
        }
        Ok(false)
    }

    /// Types a code into the screen's group; true as for [`Driver::type_mobile`].
    pub(super) async fn type_code(
        &mut self,
        snap: &Snapshot,
        secret: &SecretString,
    ) -> Result<bool, BrowserError> {
        let boxes = snap.group.as_ref().is_some_and(|g| g.count > 1);
        self.type_digits("code", secret, boxes).await
    }

    /// Types `secret` into the elements tagged `key` (`boxes`: one digit per box) in one
    /// go, then checks once that every digit landed where the group wants it. A page that
    /// dropped or misplaced some (its boxes move the focus on later than the keys came)
    /// gets them emptied and the digits typed again key by key, each checked before the
    /// next: nothing was sent meanwhile, since the group was not full. True only when
    /// the digits went in one go, the page then ran everything they set in motion
    /// without sending, and every digit landed.
    async fn type_digits(
        &mut self,
        key: &'static str,
        secret: &SecretString,
        boxes: bool,
    ) -> Result<bool, BrowserError> {
        let page = self.page()?;
        let Some(focused) = self.acting(dom::focus(&page, key, 0)).await? else {
            return Ok(false);
        };
        if !focused.ok {
            return Err(BrowserError::driver(
                self.step,
                format!("could not focus the {key} field"),
            ));
        }
        let digits = secret.expose_secret();
        if self
            .acting(dom::press_digits(&page, digits))
            .await?
            .is_none()
        {
            return Ok(false);
        }
        // What the keys set in motion runs first: a box that moves the focus on after a
        // delay, a page that sends on its last digit.
        let cap = self.profile.submit_settle_cap();
        let quiet = match self.settling(&page, cap).await {
            Settling::Done(s) if !s.acted && s.armed => s.quiet,
            Settling::TimedOut | Settling::NoWatch => false,
            // The page sent, or its document is being replaced (it sent on a key): the
            // typing is over, and what follows it finds out the rest.
            Settling::Done(_) | Settling::Failed | Settling::Captured => return Ok(false),
        };
        match self
            .acting(dom::landed(&page, key, digits.chars().count()))
            .await
        {
            Ok(Some(Some(true))) => return Ok(quiet),
            // Captured, or the group is gone (the page moved on): nothing to retype.
            Ok(None | Some(None)) => return Ok(false),
            Ok(Some(Some(false))) => {}
            Err(e @ BrowserError::Timeout { .. }) => return Err(e),
            // The document went away after the keys: the page sent the code itself, which
            // what follows the typing finds out.
            Err(_) => return Ok(false),
        }
        self.log.note(format!(
            "the page did not take the {key} typed in one go: emptying it and typing key by key"
        ));
        self.within(dom::clear_typed(&page, key)).await?;
        self.settle(&page).await;
        if boxes {
            self.type_boxes(key, secret).await?;
        } else {
            self.type_field(key, secret).await?;
        }
        Ok(false)
    }

    /// Presses the screen's own button, or Enter where it has none, once the page lets
    /// it: a disabled button is waited for by event (it turns enabled, or the page sends
    /// or moves on), after leaving the field once, as a person would. Before pressing,
    /// waits for the page to run what the typing set in motion (see
    /// [`Driver::settle`]); the button is then pressed in the same page task as the
    /// check that nothing was sent. `on` is the screen the press is for; `from` when its
    /// typing began (the page's watch was armed then, see [`Driver::arm`]).
    /// `settled` says that the page has just settled after the typing with nothing sent,
    /// and nothing was done to it since but reading: the button is then pressed at once,
    /// without another look and settle (the press checks in the page anyway).
    pub(super) async fn press(
        &mut self,
        page: &Page,
        on: Screen,
        (from, page_before): (Mark, u64),
        settled: bool,
    ) -> Result<Pressed, BrowserError> {
        let mut blurred = false;
        let mut watch = Watch::quiet();
        if settled {
            if self.traffic.sent_since(from) {
                self.log.note(GONE);
                return Ok(Pressed::No);
            }
            if let Some(pressed) = self.click_in_page(page, on).await? {
                return Ok(pressed);
            }
        }
        loop {
            let rule = |me: &Self, view: View<'_>| match view {
                View::Captured | View::Navigating => Some(Next::Gone),
                View::Page(snap, _) => {
                    if snap.submits > page_before || me.traffic.sent_since(from) {
                        return Some(Next::Gone);
                    }
                    if snap.screen != on {
                        return Some(Next::Gone);
                    }
                    match &snap.submit {
                        None => Some(Next::Enter),
                        Some(b) if b.enabled => Some(Next::Click),
                        Some(_) if !blurred => Some(Next::Blur),
                        // Disabled: the next look waits for the page to change.
                        Some(_) => None,
                    }
                }
            };
            let (next, _) = self.wait_for(page, &mut watch, rule).await?;
            watch.forget();
            match next {
                Next::Gone => {
                    self.log.note(GONE);
                    return Ok(Pressed::No);
                }
                Next::Blur => {
                    self.log.note(
                        "the screen's button is disabled: leaving the field and waiting for the page to enable it",
                    );
                    self.within(dom::blur(page)).await?;
                    blurred = true;
                }
                Next::Click => {
                    if self.settle(page).await.is_some_and(|s| s.acted) {
                        self.log.note(GONE);
                        return Ok(Pressed::No);
                    }
                    if let Some(pressed) = self.click_in_page(page, on).await? {
                        return Ok(pressed);
                    }
                }
                Next::Enter => {
                    if self.settle(page).await.is_some_and(|s| s.acted) {
                        self.log.note(GONE);
                        return Ok(Pressed::No);
                    }
                    // A key goes through Chromium's input pipeline, not a page task: the
                    // check above and the key are two steps. The page had nothing left in
                    // motion, so only a timer longer than the watch's window could slip
                    // between them.
                    let armed = self.arm(page).await;
                    self.acting(dom::press_enter(page)).await?;
                    self.log.note("no button on this screen: pressed Enter");
                    return Ok(self.after_press(page, armed).await);
                }
            }
        }
    }

    /// Clicks the screen's button in the same page task as the check that the page sent
    /// nothing and still shows `on` with the button enabled. None when the button is
    /// not there to press yet: the caller looks again.
    async fn click_in_page(
        &mut self,
        page: &Page,
        on: Screen,
    ) -> Result<Option<Pressed>, BrowserError> {
        let profile = self.profile.clone();
        let pressed = self
            .acting(screens::press_in_page(page, &profile, on))
            .await;
        let answer = match pressed {
            Ok(Some(a)) => a,
            Ok(None) => return Ok(Some(Pressed::No)),
            // Once only, even if the press reports an error: it may have clicked, and a
            // second submission of the same code may count as a wrong attempt.
            Err(e) => {
                let msg = self.scrub(&e.to_string());
                self.log.note(format!("pressing the button failed: {msg}"));
                return Ok(Some(Pressed::Yes { ignored: false }));
            }
        };
        match answer.answer {
            PressAnswer::Clicked => {
                let via = answer.via.map(|v| self.scrub(&v)).unwrap_or_default();
                self.log
                    .note(format!("clicked the screen's button ({via})"));
                Ok(Some(self.after_press(page, true).await))
            }
            PressAnswer::Sent | PressAnswer::Moved => {
                self.log.note(GONE);
                Ok(Some(Pressed::No))
            }
            // The page replaced its document or its button since the look: look again
            // (sends before now are still seen by the caller's rule).
            PressAnswer::Unarmed => {
                self.arm(page).await;
                Ok(None)
            }
            PressAnswer::NoButton | PressAnswer::Disabled => Ok(None),
        }
    }

    /// Arms the page's watch: what the page sends, and sets in motion, is counted from
    /// here (see `dom::SUBMIT_WATCH`). False when it could not be.
    pub(super) async fn arm(&self, page: &Page) -> bool {
        matches!(
            tokio::time::timeout(ARM_LIMIT, dom::arm_press(page)).await,
            Ok(Ok(true))
        )
    }

    /// Waits until the page has run what was set in motion since the watch was armed
    /// (its short timers, animation frames, requests, Angular's zone), or has sent or
    /// navigated, or the profile's `submit_settle_cap_ms` passed.
    async fn settle(&mut self, page: &Page) -> Option<Settled> {
        match self.settling(page, self.profile.submit_settle_cap()).await {
            Settling::Done(s) => Some(s),
            _ => None,
        }
    }

    async fn settling(&mut self, page: &Page, cap: Duration) -> Settling {
        tokio::select! {
            s = tokio::time::timeout(cap + ARM_LIMIT, dom::settled(page, cap)) => match s {
                Err(_) => Settling::TimedOut,
                Ok(Err(_)) => Settling::Failed,
                Ok(Ok(None)) => Settling::NoWatch,
                Ok(Ok(Some(s))) => Settling::Done(s),
            },
            _ = self.slot.wait() => Settling::Captured,
        }
    }

    /// Waits for the page to settle after a press (up to `proceed_retry_ms`) and tells
    /// whether it took no notice of it: everything the press set in motion has run, and
    /// nothing was sent and nothing navigated. A press is then made once more at once
    /// instead of after `proceed_retry_ms`; when the page cannot say (it was navigating,
    /// or the tokenId arrived), the decision stays with that patience.
    async fn after_press(&mut self, page: &Page, armed: bool) -> Pressed {
        if !armed {
            return Pressed::Yes { ignored: false };
        }
        let cap = self.profile.proceed_retry();
        let ignored = match self.settling(page, cap).await {
            Settling::Done(s) => s.quiet && !s.acted,
            _ => false,
        };
        if ignored {
            self.log
                .note("the page settled after the press without sending or navigating");
        }
        Pressed::Yes { ignored }
    }

    /// After the last digit: lets the page run what the typing set in motion (a page
    /// that submits by itself, at once or deferred, goes first), then presses the
    /// screen's button (once) only when the page sent nothing. `settled`: the typing
    /// already saw the page settle with nothing sent (see [`Driver::type_code`]), so the
    /// button is pressed at once.
    pub(super) async fn after_code(
        &mut self,
        page: &Page,
        code: Code,
        (typed_from, page_before): (Mark, u64),
        settled: bool,
    ) -> Result<Pressed, BrowserError> {
        const BY_ITSELF: &str = "the page submitted by itself";
        if self.traffic.sent_since(typed_from) {
            self.log.note(BY_ITSELF);
            return Ok(Pressed::No);
        }
        if settled {
            return self
                .press(page, Screen::Pending, (typed_from, page_before), true)
                .await;
        }
        let cap = self.profile.submit_settle_cap();
        let settling = self.settling(page, cap).await;
        match after_settling(&settling, self.traffic.sent_since(typed_from)) {
            Then::Captured => return Ok(Pressed::No),
            Then::Sent => {
                self.log.note(BY_ITSELF);
                return Ok(Pressed::No);
            }
            Then::Navigating => {
                self.log.note("the page submitted by itself (navigating)");
                return Ok(Pressed::No);
            }
            Then::Press => {
                if matches!(settling, Settling::Done(s) if !s.quiet) {
                    self.log.note(format!(
                        "the page was still busy after {} ms (submit_settle_cap_ms) and sent nothing",
                        cap.as_millis()
                    ));
                }
            }
            Then::Watch => {
                return self
                    .watch_after_code(page, code, (typed_from, page_before))
                    .await;
            }
        }
        let quiet = matches!(settling, Settling::Done(s) if s.quiet);
        self.press(page, Screen::Pending, (typed_from, page_before), quiet)
            .await
    }

    /// [`Driver::after_code`] on a page whose watch cannot say what is in motion: looks
    /// until the page sends or moves on, pressing when the cap passed without either.
    async fn watch_after_code(
        &mut self,
        page: &Page,
        code: Code,
        (typed_from, page_before): (Mark, u64),
    ) -> Result<Pressed, BrowserError> {
        const BY_ITSELF: &str = "the page submitted by itself";
        let cap_until = Instant::now() + self.profile.submit_settle_cap();
        let rule = |me: &Self, view: View<'_>| match view {
            View::Captured => Some(AfterCode::Done(None)),
            // The document is being replaced: the page has submitted.
            View::Navigating => Some(AfterCode::Done(Some(
                "the page submitted by itself (navigating)",
            ))),
            View::Page(snap, _) => {
                if snap.submits > page_before || me.traffic.sent_since(typed_from) {
                    return Some(AfterCode::Done(Some(BY_ITSELF)));
                }
                match snap.screen {
                    Screen::Error | Screen::Expired => Some(AfterCode::Done(None)),
                    // Our filled group, untouched so far.
                    Screen::Pending => (Instant::now() >= cap_until).then_some(AfterCode::Press),
                    _ => Some(AfterCode::MovedOn),
                }
            }
        };
        match self.wait_for(page, &mut Watch::quiet(), rule).await? {
            (AfterCode::Done(note), _) => {
                if let Some(note) = note {
                    self.log.note(note);
                }
                Ok(Pressed::No)
            }
            (AfterCode::MovedOn, _) => {
                self.log.note(format!(
                    "the page moved on from the {} screen by itself",
                    code.as_str()
                ));
                Ok(Pressed::No)
            }
            (AfterCode::Press, _) => {
                self.press(page, Screen::Pending, (typed_from, page_before), false)
                    .await
            }
        }
    }

    /// Types `secret` into one field, focused first, key by key, each key acknowledged
    /// before the next. Stops early when the tokenId arrives meanwhile (a page that
    /// submits on a key event).
    async fn type_field(
        &mut self,
        key: &'static str,
        secret: &SecretString,
    ) -> Result<(), BrowserError> {
        let page = self.page()?;
        let Some(focused) = self.acting(dom::focus(&page, key, 0)).await? else {
            return Ok(());
        };
        if !focused.ok {
            return Err(BrowserError::driver(
                self.step,
                format!("could not focus the {key} field"),
            ));
        }
        for c in secret.expose_secret().chars() {
            if self.acting(dom::press_digit(&page, c)).await?.is_none() {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Types one digit per box, focusing each box first and checking that the previous
    /// digits landed (pages that ignore synthetic keys are caught here, not by a
    /// timeout three screens later).
    async fn type_boxes(
        &mut self,
        key: &'static str,
        secret: &SecretString,
    ) -> Result<(), BrowserError> {
        let page = self.page()?;
        for (i, c) in secret.expose_secret().chars().enumerate() {
            let Some(focused) = self.acting(dom::focus(&page, key, i)).await? else {
                return Ok(());
            };
            if !focused.ok {
                return Err(BrowserError::driver(
                    self.step,
                    format!("could not focus box {} of the {key} group", i + 1),
                ));
            }
            if focused.filled_before != i {
                return Err(BrowserError::driver(
                    self.step,
                    format!(
                        "only {} of the first {i} boxes of the {key} group hold a digit: the page did not take the key events",
                        focused.filled_before
                    ),
                ));
            }
            if self.acting(dom::press_digit(&page, c)).await?.is_none() {
                return Ok(());
            }
        }
        Ok(())
    }
}

/// How long the page may take to answer a look of the press watch: it answers at once
/// unless it is being replaced.
const ARM_LIMIT: Duration = Duration::from_millis(500);

/// What [`Driver::press`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Pressed {
    /// Nothing: the page sent or moved on by itself.
    No,
    /// Pressed; `ignored` when the page settled afterwards without sending or
    /// navigating (it took no notice of the press).
    Yes { ignored: bool },
}

/// How a wait for the page to settle ended.
#[derive(Debug, Clone, Copy)]
enum Settling {
    /// The tokenId arrived meanwhile.
    Captured,
    /// The page could not answer (its document was being replaced).
    Failed,
    /// The page did not answer within the cap and the look limit.
    TimedOut,
    /// The document has no watch.
    NoWatch,
    Done(Settled),
}

/// What to do after the last digit, once the page has settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Then {
    Captured,
    /// The page sent the code.
    Sent,
    /// The page's document is being replaced: it submitted.
    Navigating,
    /// Nothing was sent: press the button (the press checks again, in the page).
    Press,
    /// The page cannot say what it has in motion: watch it until the cap.
    Watch,
}

/// The decision after the last digit. `sent`: a submitting request of the top frame was
/// seen on the wire since the typing began.
fn after_settling(settling: &Settling, sent: bool) -> Then {
    match settling {
        Settling::Captured => Then::Captured,
        _ if sent => Then::Sent,
        Settling::Failed => Then::Navigating,
        Settling::TimedOut | Settling::NoWatch => Then::Watch,
        // Another document than the one typed into: let the looks say what it is.
        Settling::Done(s) if !s.armed => Then::Watch,
        Settling::Done(s) if s.acted => Then::Sent,
        // Quiet, or busy past the cap without sending: the page will not send by itself.
        Settling::Done(_) => Then::Press,
    }
}

/// Noted when a press finds that it has nothing left to do.
const GONE: &str = "the page sent or moved on before the button was pressed";

/// What to do about the screen's button.
enum Next {
    /// The page sent, moved on or is navigating: nothing to press.
    Gone,
    /// Disabled, and the field not yet left.
    Blur,
    Click,
    /// No button: Enter.
    Enter,
}

/// How the wait after a typed code ended.
enum AfterCode {
    /// The page went on by itself (with a note for the step log, if any is due).
    Done(Option<&'static str>),
    /// The page left the code's screen for another.
    MovedOn,
    /// The cap passed with the code's screen unchanged: press its button.
    Press,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    pub(super) fn digits_are_checked_without_showing_them() {
        let s = |v: &str| SecretString::from(v.to_string());
        assert!(digits("pin", &s("135790"), Some(6)).is_ok());
        assert_eq!(
            digits("mobile", &s("99999 00042"), None)
                .unwrap()
                .expose_secret(),
            "9999900042"
        );
        let e = digits("pin", &s("13579x"), Some(6))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("pin:") && !e.contains("13579"), "{e}");
        let e = digits("pin", &s("1357"), Some(6)).unwrap_err().to_string();
        assert!(!e.contains("1357"), "{e}");
    }

    #[test]
    fn after_the_last_digit_the_page_that_sent_is_never_pressed() {
        let done = |acted, quiet| {
            Settling::Done(Settled {
                acted,
                quiet,
                armed: true,
            })
        };
        // The page sent by itself, at once or once its deferred work ran.
        assert_eq!(after_settling(&done(true, true), false), Then::Sent);
        assert_eq!(after_settling(&done(true, false), false), Then::Sent);
        // Seen on the wire though the page's own count missed it (a frame's form post).
        assert_eq!(after_settling(&done(false, true), true), Then::Sent);
        assert_eq!(after_settling(&Settling::NoWatch, true), Then::Sent);
        // Its document went away while it settled: it submitted.
        assert_eq!(after_settling(&Settling::Failed, false), Then::Navigating);
        assert_eq!(after_settling(&Settling::Captured, true), Then::Captured);
    }

    #[test]
    fn after_the_last_digit_a_page_that_sent_nothing_gets_its_button() {
        let done = |acted, quiet| {
            Settling::Done(Settled {
                acted,
                quiet,
                armed: true,
            })
        };
        // Nothing left in motion, nothing sent: it waits for the button.
        assert_eq!(after_settling(&done(false, true), false), Then::Press);
        // Still busy when the cap passed, and nothing sent.
        assert_eq!(after_settling(&done(false, false), false), Then::Press);
        // The page cannot say: watched until the cap instead.
        assert_eq!(after_settling(&Settling::NoWatch, false), Then::Watch);
        assert_eq!(after_settling(&Settling::TimedOut, false), Then::Watch);
        let replaced = Settling::Done(Settled {
            acted: true,
            quiet: true,
            armed: false,
        });
        assert_eq!(after_settling(&replaced, false), Then::Watch);
    }
}
