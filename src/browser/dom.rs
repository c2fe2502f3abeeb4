//! Acting on the login page the way a person would (focus, key presses, mouse clicks) on
//! the elements the screen classifier tagged with a `data-dhan-login` attribute, so that
//! actions reach exactly what was classified.

use chromiumoxide::Page;
use chromiumoxide::cdp::browser_protocol::input::{DispatchKeyEventParams, DispatchKeyEventType};
use chromiumoxide::cdp::js_protocol::runtime::EvaluateParams;
use serde::Deserialize;
use serde::de::DeserializeOwned;

pub(crate) const MARK: &str = "data-dhan-login";

/// Why a page script gave no answer. Never carries page text: exception messages can
/// quote what the page holds.
#[derive(Debug, thiserror::Error)]
pub(crate) enum EvalError {
    #[error("CDP: {0}")]
    Cdp(#[from] chromiumoxide::error::CdpError),
    #[error("the page script threw (often: the page was navigating)")]
    Thrown,
    #[error("the page script answered something unexpected: {0}")]
    Shape(String),
}

impl EvalError {
    /// The document the script was for went away under it: the page navigated (it sent
    /// on a key or a press). For a script that only tidies or tags the page that means
    /// there is nothing left to do; what follows reads the new document.
    fn document_gone(&self) -> bool {
        match self {
            EvalError::Cdp(chromiumoxide::error::CdpError::Chrome(e)) => {
                target_replaced(e)
                    || e.code == -32000 && e.message.contains("context was destroyed")
            }
            _ => false,
        }
    }
}

/// `result`, with an error that only says the document was replaced taken as done.
fn unless_gone(result: Result<(), EvalError>) -> Result<(), EvalError> {
    match result {
        Err(e) if e.document_gone() => Ok(()),
        other => other,
    }
}

async fn eval<T: DeserializeOwned>(page: &Page, expression: String) -> Result<T, EvalError> {
    evaluate(page, expression, false).await
}

/// Evaluates `expression` in the main frame's current document and reads its value;
/// with `await_promise`, the value the promise it returns resolves to.
pub(crate) async fn evaluate<T: DeserializeOwned>(
    page: &Page,
    expression: String,
    await_promise: bool,
) -> Result<T, EvalError> {
    let mut params = EvaluateParams::new(expression);
    params.return_by_value = Some(true);
    params.await_promise = Some(await_promise);
    // No context id: always the main frame's current document, which survives the
    // navigations between screens where a remembered context id would not.
    let resp = page.execute(params).await?;
    if resp.result.exception_details.is_some() {
        return Err(EvalError::Thrown);
    }
    let value = resp
        .result
        .result
        .value
        .clone()
        .unwrap_or(serde_json::Value::Null);
    serde_json::from_value(value).map_err(|e| EvalError::Shape(e.to_string()))
}

/// Shared by the action scripts: the elements tagged `key`, in the classifier's order.
const HELPERS: &str = r#"
const marked = (mark, key) => Array.from(document.querySelectorAll('[' + mark + '="' + key + '"]'))
  .sort((a, b) => Number(a.getAttribute(mark + '-i')) - Number(b.getAttribute(mark + '-i')));
"#;

fn script(body: &str, args: &str) -> String {
    format!("(() => {{ {args}\n{HELPERS}\n{body} }})()")
}

#[derive(Debug, Deserialize)]
pub(crate) struct Focused {
    /// The element exists and holds the focus now.
    pub ok: bool,
    /// How many of the elements before it hold a value.
    pub filled_before: usize,
}

/// Focuses the `index`-th element tagged `key`.
pub(crate) async fn focus(page: &Page, key: &str, index: usize) -> Result<Focused, EvalError> {
    let args = format!(
        "const mark = {}; const key = {}; const index = {index};",
        serde_json::json!(MARK),
        serde_json::json!(key)
    );
    let body = r#"
const els = marked(mark, key);
const el = els[index];
if (!el) return { ok: false, filled_before: 0 };
el.focus();
const filled_before = els.slice(0, index).filter((e) => (e.value || '').length > 0).length;
return { ok: document.activeElement === el, filled_before };
"#;
    eval(page, script(body, &args)).await
}

/// Length of the value in the first element tagged `key` (the value itself never
/// leaves the page).
pub(crate) async fn value_len(page: &Page, key: &str) -> Result<Option<usize>, EvalError> {
    let args = format!(
        "const mark = {}; const key = {};",
        serde_json::json!(MARK),
        serde_json::json!(key)
    );
    let body = r#"
const el = marked(mark, key)[0];
return el ? (el.value || '').length : null;
"#;
    eval(page, script(body, &args)).await
}

/// Types one digit into whatever has the focus.
pub(crate) async fn press_digit(page: &Page, digit: char) -> Result<(), EvalError> {
    let Some(value) = digit.to_digit(10) else {
        return Err(EvalError::Shape("only digits are typed".into()));
    };
    let text = digit.to_string();
    press_key(
        page,
        &text,
        &format!("Digit{digit}"),
        0x30 + i64::from(value),
        &text,
    )
    .await
}

/// Types `digits` into whatever has the focus without waiting for each key to be
/// acknowledged before sending the next. Chromium still delivers them in order, each
/// after the page has handled the one before (so a box that moves the focus on in its
/// input handler has moved it); a page that moves it later drops or misplaces digits,
/// which [`landed`] then tells.
pub(crate) async fn press_digits(page: &Page, digits: &str) -> Result<(), EvalError> {
    let mut events = Vec::new();
    for digit in digits.chars() {
        let Some(value) = digit.to_digit(10) else {
            return Err(EvalError::Shape("only digits are typed".into()));
        };
        let text = digit.to_string();
        let [down, up] = key_events(
            &text,
            &format!("Digit{digit}"),
            0x30 + i64::from(value),
            &text,
        );
        events.push(down);
        events.push(up);
    }
    // Each future queues its command when first polled, and `join_all` polls them in
    // order: the keys leave in order without a round trip between them.
    let sent = futures_util::future::join_all(events.into_iter().map(|e| page.execute(e))).await;
    for result in sent {
        match result {
            // The page left on a key (it sends on its last digit): the keys after it had
            // nowhere to go.
            Err(chromiumoxide::error::CdpError::Chrome(e)) if target_replaced(&e) => {}
            other => {
                other?;
            }
        }
    }
    Ok(())
}

/// Whether the elements tagged `key` hold `len` typed characters the way the group
/// wants them: one per box for several boxes, all of them in a single field. None when
/// none is tagged (the page drew another screen). Only lengths leave the page.
pub(crate) async fn landed(page: &Page, key: &str, len: usize) -> Result<Option<bool>, EvalError> {
    let args = format!(
        "const mark = {}; const key = {}; const len = {len};",
        serde_json::json!(MARK),
        serde_json::json!(key)
    );
    let body = r#"
const els = marked(mark, key);
if (els.length === 0) return null;
if (els.length === 1) return (els[0].value || '').length === len;
return els.length === len && els.every((e) => (e.value || '').length === 1);
"#;
    eval(page, script(body, &args)).await
}

/// Empties the elements tagged `key` the way an edit does (an `input` event for each,
/// which frameworks listen to), so that a page sees its boxes empty again.
pub(crate) async fn clear_typed(page: &Page, key: &str) -> Result<(), EvalError> {
    let args = format!(
        "const mark = {}; const key = {};",
        serde_json::json!(MARK),
        serde_json::json!(key)
    );
    let body = r#"
marked(mark, key).forEach((el) => {
  if (!el.value) return;
  el.value = '';
  el.dispatchEvent(new InputEvent('input', { bubbles: true, inputType: 'deleteContentBackward' }));
});
return true;
"#;
    let _: bool = eval(page, script(body, &args)).await?;
    Ok(())
}

/// Presses Enter in whatever has the focus (a code screen without a button).
pub(crate) async fn press_enter(page: &Page) -> Result<(), EvalError> {
    press_key(page, "Enter", "Enter", 13, "\r").await
}

/// Presses one key the way a keyboard would: keydown (with its text, which makes the
/// browser fire keypress/beforeinput/input) then keyup, to whatever has the focus.
async fn press_key(
    page: &Page,
    key: &str,
    code: &str,
    key_code: i64,
    text: &str,
) -> Result<(), EvalError> {
    let [down, up] = key_events(key, code, key_code, text);
    page.execute(down).await?;
    match page.execute(up).await {
        // The key-down's own effect replaced the document (a page that submits on its
        // last key or on Enter, to a document of another origin): the key was delivered,
        // only its key-up has nowhere to go. What follows is read from the new document.
        Err(chromiumoxide::error::CdpError::Chrome(e)) if target_replaced(&e) => Ok(()),
        other => other.map(drop).map_err(EvalError::from),
    }
}

/// The keydown (with its text) and keyup of one key.
fn key_events(key: &str, code: &str, key_code: i64, text: &str) -> [DispatchKeyEventParams; 2] {
    let event = |kind: DispatchKeyEventType| {
        let mut e = DispatchKeyEventParams::new(kind);
        e.key = Some(key.into());
        e.code = Some(code.into());
        e.windows_virtual_key_code = Some(key_code);
        e.native_virtual_key_code = Some(key_code);
        e
    };
    let mut down = event(DispatchKeyEventType::KeyDown);
    down.text = Some(text.into());
    down.unmodified_text = Some(text.into());
    [down, event(DispatchKeyEventType::KeyUp)]
}

/// Chromium's answer to a command whose page was replaced under it (a navigation to
/// another origin swaps the renderer) rather than a command that failed.
fn target_replaced(e: &chromiumoxide::types::Error) -> bool {
    e.code == -32000 && e.message.contains("navigated or closed")
}

/// Leaves the focused field, as a person does by clicking elsewhere: pages that check a
/// field when it loses focus enable their button then.
pub(crate) async fn blur(page: &Page) -> Result<(), EvalError> {
    let body = r#"
const el = document.activeElement;
if (el && el !== document.body && typeof el.blur === 'function') el.blur();
return true;
"#;
    unless_gone(eval::<bool>(page, script(body, "")).await.map(drop))
}

/// Tags the inputs tagged `key` as filled with `code`: until the page replaces or
/// clears them, the classifier takes them for the screen already answered.
pub(crate) async fn mark_filled(page: &Page, key: &str, code: &str) -> Result<(), EvalError> {
    let args = format!(
        "const mark = {}; const key = {}; const code = {};",
        serde_json::json!(MARK),
        serde_json::json!(key),
        serde_json::json!(code)
    );
    let body = r#"
const els = marked(mark, key);
els.forEach((el) => el.setAttribute(mark + '-filled', code));
return els.length;
"#;
    unless_gone(eval::<usize>(page, script(body, &args)).await.map(drop))
}

/// Counts, in every document the page loads, the fetch and XHR writes and the form
/// posts the page itself starts. The driver reads the count in the same look as the screen, so a page that
/// submits on its own is never clicked after it did. (A `submit` event is no evidence:
/// a page may swallow it and send nothing; a real form post shows as a document load.)
///
/// It also keeps what the driver's keys and presses set in motion, for [`settled`]: the
/// page's timers of up to 1 s (the default `proceed_retry_ms`: a longer one could not
/// run before the driver would press again anyway; an interval until its first run),
/// its animation frames, its fetch and XHR requests in flight, navigations (the
/// Navigation API's `navigate` event) and, where the page is an Angular app, whether its
/// zone is stable (`getAllAngularTestabilities`, `isStable`/`whenStable`). Microtasks
/// need no count: each look is a task of its own, so the microtasks queued before it
/// have run.
///
/// "Set in motion" goes by lineage: `arm` starts a new epoch; a timer or frame carries
/// the epoch of the callback that made it, or the current one when made from anything
/// else (an event handler, a promise continuation). So a countdown the screen started
/// before the driver typed ("resend in 30 s", re-armed every second) is not waited for,
/// while an auto-submit the last key deferred, and whatever that one defers, is.
pub(crate) const SUBMIT_WATCH: &str = r#"
(() => {
  if (window.__dhanLoginWatch) return;
  const SHORT_MS = 1000;
  const w = { submits: 0, navigations: 0, armed: null };
  Object.defineProperty(window, '__dhanLoginWatch', { value: w, enumerable: false });
  const writes = (m) => !/^(GET|HEAD|OPTIONS)$/i.test(m || 'GET');
  let epoch = 0;
  let running = null;
  const born = () => (running === null ? epoch : running);
  // Timer and frame ids to the epoch each was made in.
  const timers = new Map();
  const frames = new Map();
  let inflight = 0;
  const landed = () => { inflight -= 1; };
  const within = (e, fn, self, args) => {
    const was = running;
    running = e;
    try { return fn.apply(self, args); } finally { running = was; }
  };
  const fetch0 = window.fetch;
  if (fetch0) {
    window.fetch = function (input, init) {
      const m = (init && init.method) || (input && typeof input === 'object' && input.method) || 'GET';
      if (writes(m)) w.submits += 1;
      const answer = fetch0.apply(this, arguments);
      inflight += 1;
      answer.then(landed, landed);
      return answer;
    };
  }
  // A form post by script, or a submit event the page let through, leaves the page too.
  const submit0 = HTMLFormElement.prototype.submit;
  HTMLFormElement.prototype.submit = function () { w.submits += 1; return submit0.apply(this, arguments); };
  window.addEventListener('submit', (e) => { if (!e.defaultPrevented) w.submits += 1; });
  const open0 = XMLHttpRequest.prototype.open;
  const send0 = XMLHttpRequest.prototype.send;
  XMLHttpRequest.prototype.open = function (m) { this.__dhanLoginMethod = m; return open0.apply(this, arguments); };
  XMLHttpRequest.prototype.send = function () {
    if (writes(this.__dhanLoginMethod)) w.submits += 1;
    const answer = send0.apply(this, arguments);
    inflight += 1;
    this.addEventListener('loadend', landed, { once: true });
    return answer;
  };
  if (window.navigation) window.navigation.addEventListener('navigate', () => { w.navigations += 1; });
  const setTimeout0 = window.setTimeout;
  const clearTimeout0 = window.clearTimeout;
  const setInterval0 = window.setInterval;
  const clearInterval0 = window.clearInterval;
  const timer = (set0) => function (fn, delay) {
    if (typeof fn !== 'function' || (Number(delay) || 0) > SHORT_MS) return set0.apply(this, arguments);
    const rest = Array.prototype.slice.call(arguments, 2);
    const e = born();
    const id = set0.call(this, function () {
      timers.delete(id);
      return within(e, fn, this, rest);
    }, delay);
    timers.set(id, e);
    return id;
  };
  window.setTimeout = timer(setTimeout0);
  window.setInterval = timer(setInterval0);
  window.clearTimeout = function (id) { timers.delete(id); return clearTimeout0.apply(this, arguments); };
  window.clearInterval = function (id) { timers.delete(id); return clearInterval0.apply(this, arguments); };
  const raf0 = window.requestAnimationFrame;
  const caf0 = window.cancelAnimationFrame;
  if (raf0 && caf0) {
    window.requestAnimationFrame = function (fn) {
      if (typeof fn !== 'function') return raf0.apply(this, arguments);
      const e = born();
      const id = raf0.call(this, function () { frames.delete(id); return within(e, fn, this, arguments); });
      frames.set(id, e);
      return id;
    };
    window.cancelAnimationFrame = function (id) { frames.delete(id); return caf0.apply(this, arguments); };
  }
  const angular = () => {
    try {
      const get = window.getAllAngularTestabilities;
      return typeof get === 'function' ? Array.from(get() || []) : [];
    } catch (e) { return []; }
  };
  const stable = (t) => { try { return !!t.isStable(); } catch (e) { return true; } };
  const current = (m) => { for (const e of m.values()) if (e === epoch) return true; return false; };
  const idle = () => !current(timers) && !current(frames) && inflight === 0 && angular().every(stable);
  w.arm = () => { epoch += 1; w.armed = { submits: w.submits, navigations: w.navigations }; return true; };
  w.acted = () => !w.armed || w.submits > w.armed.submits || w.navigations > w.armed.navigations;
  // Resolves once the page has sent or navigated since `arm`, or has run everything set
  // in motion since, or after capMs: { acted, quiet, armed }; a document that was never
  // armed (it replaced the armed one) counts as acted. Looks come every 5 ms, and at once
  // when Angular says its zone is stable.
  w.settled = (capMs) => new Promise((resolve) => {
    const start = performance.now();
    let done = false;
    let hooked = false;
    const look = () => {
      if (done) return;
      const acted = w.acted();
      const quiet = idle();
      if (acted || quiet || performance.now() - start >= capMs) { done = true; resolve({ acted, quiet, armed: !!w.armed }); return; }
      if (!hooked) {
        hooked = true;
        angular().forEach((t) => { try { t.whenStable(() => setTimeout0.call(window, look, 0)); } catch (e) {} });
      }
      setTimeout0.call(window, look, 5);
    };
    setTimeout0.call(window, look, 0);
  });
})();
"#;

/// Remembers the page's count of sends and navigations just before typing or a press,
/// and starts a new epoch of what the page sets in motion, for [`settled`]. False when
/// the document has no watch (it was being replaced).
pub(crate) async fn arm_press(page: &Page) -> Result<bool, EvalError> {
    let body = r#"
const w = window.__dhanLoginWatch;
return !!(w && w.arm && w.arm());
"#;
    eval(page, script(body, "")).await
}

/// What the page did after a press, once it had settled.
#[derive(Debug, Clone, Copy, Deserialize)]
pub(crate) struct Settled {
    /// It sent something or navigated since [`arm_press`].
    pub acted: bool,
    /// Nothing set in motion since [`arm_press`] is left: no short timer or animation
    /// frame of that epoch, no request in flight, Angular's zone stable.
    pub quiet: bool,
    /// This document was armed: false when it replaced the one that was.
    pub armed: bool,
}

/// Waits, up to `cap`, until the page has acted since [`arm_press`] or has nothing left
/// in motion. None when the document has no watch.
pub(crate) async fn settled(
    page: &Page,
    cap: std::time::Duration,
) -> Result<Option<Settled>, EvalError> {
    let expression = format!(
        "(() => {{ const w = window.__dhanLoginWatch; return w && w.settled ? w.settled({}) : null; }})()",
        cap.as_millis()
    );
    evaluate(page, expression, true).await
}

/// Empties every input on the page (typed digits must not reach a screenshot) and
/// returns how many held something.
pub(crate) async fn clear_inputs(page: &Page) -> Result<usize, EvalError> {
    let body = r#"
let n = 0;
document.querySelectorAll('input, textarea').forEach((el) => {
  if (el.value) n += 1;
  try { el.value = ''; } catch (e) {}
  if (el.hasAttribute('value')) el.setAttribute('value', '');
  if (el.tagName === 'TEXTAREA') el.textContent = '';
});
return n;
"#;
    eval(page, script(body, "")).await
}

/// The document as HTML, with every input's value attribute blanked in the copy (the
/// live page is not touched) and without the driver's own tags, which someone writing
/// selectors from this file must not mistake for the page's.
pub(crate) async fn html(page: &Page) -> Result<String, EvalError> {
    let args = format!("const mark = {};", serde_json::json!(MARK));
    let body = r#"
const copy = document.documentElement.cloneNode(true);
copy.querySelectorAll('input, textarea').forEach((el) => {
  if (el.hasAttribute('value')) el.setAttribute('value', '');
  if (el.tagName === 'TEXTAREA') el.textContent = '';
});
copy.querySelectorAll('[' + mark + '], [' + mark + '-filled]').forEach((el) => {
  el.removeAttribute(mark);
  el.removeAttribute(mark + '-i');
  el.removeAttribute(mark + '-filled');
});
return '<!doctype html>\n' + copy.outerHTML;
"#;
    eval(page, script(body, &args)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chrome(code: i64, message: &str) -> EvalError {
        EvalError::Cdp(chromiumoxide::error::CdpError::Chrome(
            chromiumoxide::types::Error {
                code,
                message: message.into(),
            },
        ))
    }

    #[test]
    fn a_replaced_document_ends_a_tidying_script_quietly_and_nothing_else_does() {
        for gone in [
            "Inspected target navigated or closed",
            "Execution context was destroyed.",
        ] {
            assert!(unless_gone(Err(chrome(-32000, gone))).is_ok(), "{gone}");
        }
        for kept in [
            chrome(-32000, "Cannot find default execution context"),
            chrome(-32601, "Inspected target navigated or closed"),
            EvalError::Thrown,
            EvalError::Shape("null".into()),
        ] {
            assert!(unless_gone(Err(kept)).is_err());
        }
    }
}
