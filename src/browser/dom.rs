//! Reading and acting on the login page: one probe script that evaluates selector
//! candidates and on-page errors in a single round trip, and the person-like actions
//! (focus, key presses, mouse clicks) on the elements it found.
//!
//! The probe tags what it found with a `data-dhan-login` attribute, so that actions reach
//! the same element whatever kind of candidate matched it (CSS, text or XPath).

use std::collections::HashMap;

use chromiumoxide::Page;
use chromiumoxide::cdp::browser_protocol::input::{DispatchKeyEventParams, DispatchKeyEventType};
use chromiumoxide::cdp::js_protocol::runtime::EvaluateParams;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

const MARK: &str = "data-dhan-login";

/// What a target must look like to count as found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Want {
    /// Any visible element (screen headings).
    Present,
    /// Exactly `count` visible, editable inputs (one for a single field, six for boxes).
    Input,
    /// A visible button; reported disabled until it can be clicked.
    Button,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Target<'a> {
    pub key: &'static str,
    pub candidates: &'a [String],
    pub want: Want,
    pub count: usize,
}

impl<'a> Target<'a> {
    pub fn present(key: &'static str, candidates: &'a [String]) -> Self {
        Target {
            key,
            candidates,
            want: Want::Present,
            count: 1,
        }
    }

    pub fn inputs(key: &'static str, candidates: &'a [String], count: usize) -> Self {
        Target {
            key,
            candidates,
            want: Want::Input,
            count,
        }
    }

    pub fn button(key: &'static str, candidates: &'a [String]) -> Self {
        Target {
            key,
            candidates,
            want: Want::Button,
            count: 1,
        }
    }
}

#[derive(Debug, Serialize)]
struct Spec<'a> {
    mark: &'static str,
    targets: &'a [Target<'a>],
    errors: &'a [String],
    error_texts: &'a [String],
    expired_texts: &'a [String],
}

/// The page's own words about what went wrong. Unscrubbed: scrub before storing.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct PageError {
    pub message: String,
    /// The candidate or text that recognised it.
    pub via: String,
    pub expired: bool,
}

#[derive(Debug, Clone, Copy, Deserialize)]
pub(crate) struct Found {
    /// Index into the target's candidates.
    pub candidate: usize,
    pub enabled: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Probe {
    pub error: Option<PageError>,
    pub found: HashMap<String, Found>,
    /// Candidates the browser refused to parse.
    pub invalid: Vec<String>,
}

impl Probe {
    pub fn has(&self, key: &str) -> bool {
        self.found.contains_key(key)
    }

    pub fn ready(&self, key: &str) -> bool {
        self.found.get(key).is_some_and(|f| f.enabled)
    }
}

/// The errors to watch for on every probe.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ErrorWatch<'a> {
    pub selectors: &'a [String],
    pub texts: &'a [String],
    pub expired: &'a [String],
}

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

async fn eval<T: DeserializeOwned>(page: &Page, expression: String) -> Result<T, EvalError> {
    let mut params = EvaluateParams::new(expression);
    params.return_by_value = Some(true);
    params.await_promise = Some(false);
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

/// Shared by every script: visibility, text matching and candidate evaluation.
const HELPERS: &str = r#"
const norm = (t) => (t || '').replace(/\s+/g, ' ').trim();
const shown = (el) => {
  if (!el || !el.isConnected || el.getClientRects().length === 0) return false;
  const s = getComputedStyle(el);
  return s.visibility !== 'hidden' && s.display !== 'none' && Number(s.opacity || '1') > 0;
};
const skipTag = /^(SCRIPT|STYLE|TEMPLATE|NOSCRIPT|HEAD|TITLE|META|LINK)$/;
const containing = (pool, needle) => {
  const n = norm(needle).toLowerCase();
  return pool.filter((el) => !skipTag.test(el.tagName)
    && norm(el.textContent).toLowerCase().includes(n)
    && norm(el.innerText).toLowerCase().includes(n)
    && shown(el));
};
const innermost = (els) => els.filter((el) => !els.some((o) => o !== el && el.contains(o)));
const query = (cand) => {
  let c = cand.trim();
  if (c.startsWith('text=')) {
    const all = document.body ? Array.from(document.body.querySelectorAll('*')) : [];
    return innermost(containing(all, c.slice(5)));
  }
  if (c.startsWith('xpath=')) {
    const r = document.evaluate(c.slice(6), document, null, XPathResult.ORDERED_NODE_SNAPSHOT_TYPE, null);
    const out = [];
    for (let i = 0; i < r.snapshotLength; i++) {
      const n = r.snapshotItem(i);
      if (n.nodeType === 1 && shown(n)) out.push(n);
    }
    return out;
  }
  const k = c.indexOf('>> text=');
  if (k >= 0) {
    return innermost(containing(Array.from(document.querySelectorAll(c.slice(0, k).trim())), c.slice(k + 8)));
  }
  if (c.startsWith('css=')) c = c.slice(4);
  return Array.from(document.querySelectorAll(c)).filter(shown);
};
const marked = (mark, key) => Array.from(document.querySelectorAll('[' + mark + '="' + key + '"]'))
  .sort((a, b) => Number(a.getAttribute(mark + '-i')) - Number(b.getAttribute(mark + '-i')));
"#;

const PROBE: &str = r#"
const enabled = (el) => {
  const ctl = el.closest('button, input, [role="button"]') || el;
  return !ctl.disabled && ctl.getAttribute('aria-disabled') !== 'true';
};
const found = {};
const invalid = [];
const run = (cand) => {
  try { return query(cand); } catch (e) { invalid.push(cand); return null; }
};
const mark = (key, els) => {
  for (const old of marked(spec.mark, key)) {
    if (!els.includes(old)) { old.removeAttribute(spec.mark); old.removeAttribute(spec.mark + '-i'); }
  }
  els.forEach((el, i) => {
    if (el.getAttribute(spec.mark) !== key) el.setAttribute(spec.mark, key);
    if (el.getAttribute(spec.mark + '-i') !== String(i)) el.setAttribute(spec.mark + '-i', String(i));
  });
};
for (const t of spec.targets) {
  for (let i = 0; i < t.candidates.length; i++) {
    let els = run(t.candidates[i]);
    if (!els || els.length === 0) continue;
    if (t.want === 'input') {
      els = els.filter((el) => !el.disabled && !el.readOnly);
      if (t.count === 1 && els.length >= 1) els = [els[0]];
      if (els.length !== t.count) continue;
      found[t.key] = { candidate: i, enabled: true };
      mark(t.key, els);
    } else if (t.want === 'button') {
      const ok = els.filter(enabled);
      found[t.key] = { candidate: i, enabled: ok.length > 0 };
      mark(t.key, ok.length > 0 ? [ok[0]] : []);
    } else {
      found[t.key] = { candidate: i, enabled: true };
    }
    break;
  }
}
let error = null;
for (const sel of spec.errors) {
  const els = run(sel);
  const hit = (els || []).find((el) => norm(el.innerText).length > 0);
  if (hit) { error = { message: norm(hit.innerText).slice(0, 300), via: sel }; break; }
}
const body = document.body ? norm(document.body.innerText).toLowerCase() : '';
if (!error) {
  for (const text of spec.error_texts.concat(spec.expired_texts)) {
    if (body.includes(norm(text).toLowerCase())) {
      const els = run('text=' + text) || [];
      error = { message: (els.length ? norm(els[0].innerText) : text).slice(0, 300), via: 'text=' + text };
      break;
    }
  }
}
if (error) error.expired = spec.expired_texts.some((t) => body.includes(norm(t).toLowerCase()));
return { error, found, invalid };
"#;

fn script(body: &str, args: &str) -> String {
    format!("(() => {{ {args}\n{HELPERS}\n{body} }})()")
}

/// Evaluates every target's candidates in order and looks for on-page errors.
pub(crate) async fn probe(
    page: &Page,
    targets: &[Target<'_>],
    errors: ErrorWatch<'_>,
) -> Result<Probe, EvalError> {
    let spec = Spec {
        mark: MARK,
        targets,
        errors: errors.selectors,
        error_texts: errors.texts,
        expired_texts: errors.expired,
    };
    let json = serde_json::to_string(&spec).map_err(|e| EvalError::Shape(e.to_string()))?;
    eval(page, script(PROBE, &format!("const spec = {json};"))).await
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

/// Presses one key the way a keyboard would: keydown (with its text, which makes the
/// browser fire keypress/beforeinput/input) then keyup, to whatever has the focus.
pub(crate) async fn press_digit(page: &Page, digit: char) -> Result<(), EvalError> {
    let Some(value) = digit.to_digit(10) else {
        return Err(EvalError::Shape("only digits are typed".into()));
    };
    let text = digit.to_string();
    let code = format!("Digit{digit}");
    let key_code = 0x30 + i64::from(value);
    let event = |kind: DispatchKeyEventType| {
        let mut e = DispatchKeyEventParams::new(kind);
        e.key = Some(text.clone());
        e.code = Some(code.clone());
        e.windows_virtual_key_code = Some(key_code);
        e.native_virtual_key_code = Some(key_code);
        e
    };
    let mut down = event(DispatchKeyEventType::KeyDown);
    down.text = Some(text.clone());
    down.unmodified_text = Some(text.clone());
    page.execute(down).await?;
    page.execute(event(DispatchKeyEventType::KeyUp)).await?;
    Ok(())
}

/// Clicks the element tagged `key` with real mouse events at its centre.
pub(crate) async fn click(page: &Page, key: &str) -> Result<(), EvalError> {
    let el = page.find_element(format!("[{MARK}=\"{key}\"]")).await?;
    el.click().await?;
    Ok(())
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
copy.querySelectorAll('[' + mark + ']').forEach((el) => {
  el.removeAttribute(mark);
  el.removeAttribute(mark + '-i');
});
return '<!doctype html>\n' + copy.outerHTML;
"#;
    eval(page, script(body, &args)).await
}
