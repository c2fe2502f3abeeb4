// One look at the consent login page: which screen is shown, judged from the whole page.
// Evaluated as the body of a function with `spec` in scope (see screens.rs); answers a
// Promise of a snapshot. It never reads back a value typed into an input, only counts.
//
// Signals, none decisive alone: groups of digit inputs (six boxes sharing a container, or
// one six-digit field, whatever their type), masking (type=password, a computed
// -webkit-text-security, a masking class on an ancestor), the words of headings, labels
// and accessible names around a group, and history (a group the driver filled, tagged
// `<mark>-filled`, is the old screen until the page replaces or clears it).

const P = spec.profile;
const MARK = spec.mark;
const FILLED = MARK + '-filled';

const norm = (t) => (t || '').replace(/\s+/g, ' ').trim();
const lower = (t) => norm(t).toLowerCase();
const shown = (el) => {
  if (!el || !el.isConnected || el.getClientRects().length === 0) return false;
  const s = getComputedStyle(el);
  return s.visibility !== 'hidden' && s.display !== 'none' && Number(s.opacity || '1') > 0;
};
const skipTag = /^(SCRIPT|STYLE|TEMPLATE|NOSCRIPT|HEAD|TITLE|META|LINK)$/;
const containing = (pool, needle) => {
  const n = lower(needle);
  return pool.filter((el) => !skipTag.test(el.tagName)
    && lower(el.textContent).includes(n) && lower(el.innerText).includes(n) && shown(el));
};
const innermost = (els) => els.filter((el) => !els.some((o) => o !== el && el.contains(o)));
const invalid = [];
const query = (cand, root) => {
  root = root || document;
  let c = cand.trim();
  try {
    if (c.startsWith('text=')) {
      const all = Array.from((root.body || root).querySelectorAll('*'));
      return innermost(containing(all, c.slice(5)));
    }
    if (c.startsWith('xpath=')) {
      const r = document.evaluate(c.slice(6), root, null, XPathResult.ORDERED_NODE_SNAPSHOT_TYPE, null);
      const out = [];
      for (let i = 0; i < r.snapshotLength; i++) {
        const n = r.snapshotItem(i);
        if (n.nodeType === 1 && shown(n)) out.push(n);
      }
      return out;
    }
    const k = c.indexOf('>> text=');
    if (k >= 0) {
      return innermost(containing(Array.from(root.querySelectorAll(c.slice(0, k).trim())), c.slice(k + 8)));
    }
    if (c.startsWith('css=')) c = c.slice(4);
    return Array.from(root.querySelectorAll(c)).filter(shown);
  } catch (e) {
    if (!invalid.includes(cand)) invalid.push(cand);
    return [];
  }
};
const matchesAny = (el, cands) => cands.some((c) => {
  if (c.startsWith('text=') || c.startsWith('xpath=') || c.includes('>> text=')) return query(c).includes(el);
  try { return el.matches(c.startsWith('css=') ? c.slice(4) : c); } catch (e) {
    if (!invalid.includes(c)) invalid.push(c);
    return false;
  }
});
const closestAny = (el, cands, stop) => {
  for (let n = el; n && n !== stop && n.nodeType === 1; n = n.parentElement) {
    if (matchesAny(n, cands)) return true;
  }
  return false;
};
const escapeRe = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const wordRe = (words) => words.length === 0 ? null
  : new RegExp('(^|[^a-z0-9])(' + words.map((w) => escapeRe(lower(w))).join('|') + ')(?=$|[^a-z0-9])');
const RE = {
  totp: wordRe(P.totp_words), otp: wordRe(P.otp_words), pin: wordRe(P.pin_words),
  code: wordRe(P.code_words), submit: wordRe(P.submit_words), notSubmit: wordRe(P.not_submit_words),
};
const has = (re, text) => !!re && re.test(text);
const kindsOf = (text) => {
  const t = lower(text);
  const out = [];
  if (has(RE.totp, t)) out.push('totp');
  if (has(RE.otp, t)) out.push('otp');
  if (has(RE.pin, t)) out.push('pin');
  return out;
};

const setMark = (el, key, i) => {
  if (el.getAttribute(MARK) !== key) el.setAttribute(MARK, key);
  if (el.getAttribute(MARK + '-i') !== String(i)) el.setAttribute(MARK + '-i', String(i));
};
const markAll = (key, els) => {
  document.querySelectorAll('[' + MARK + '="' + key + '"]').forEach((old) => {
    if (!els.includes(old)) { old.removeAttribute(MARK); old.removeAttribute(MARK + '-i'); }
  });
  els.forEach((el, i) => setMark(el, key, i));
};

// --- errors -------------------------------------------------------------------------
const findError = () => {
  for (const sel of P.error) {
    const hit = query(sel).find((el) => lower(el.innerText).length > 0
      && !closestAny(el, P.not_error, null));
    if (hit) return { message: norm(hit.innerText).slice(0, 300), via: sel };
  }
  const body = document.body ? lower(document.body.innerText) : '';
  for (const text of P.error_texts.concat(P.expired_texts)) {
    if (body.includes(lower(text))) {
      const els = query('text=' + text).filter((el) => !closestAny(el, P.not_error, null));
      if (els.length === 0) continue;
      return { message: norm(els[0].innerText).slice(0, 300), via: 'text=' + text };
    }
  }
  return null;
};
const isExpired = (message) => {
  const body = document.body ? lower(document.body.innerText) : '';
  return P.expired_texts.some((t) => body.includes(lower(t)) || lower(message).includes(lower(t)));
};

// --- inputs -------------------------------------------------------------------------
const NOT_TYPABLE = /^(hidden|checkbox|radio|submit|button|image|file|reset|range|color|email|url|search|date|time|datetime-local|month|week)$/;
const editable = (el) => !el.disabled && !el.readOnly && !NOT_TYPABLE.test((el.type || '').toLowerCase());
const inputs = Array.from(document.querySelectorAll('input, textarea')).filter((el) => shown(el) && editable(el));
const attrText = (el) => [el.getAttribute('placeholder'), el.getAttribute('aria-label'), el.getAttribute('title'),
  el.getAttribute('name'), el.getAttribute('formcontrolname'), el.id,
  ...(el.labels ? Array.from(el.labels).map((l) => l.innerText) : []),
  ...(el.getAttribute('aria-labelledby') || '').split(/\s+/).filter(Boolean)
    .map((id) => { const n = document.getElementById(id); return n ? n.innerText : ''; })].map(norm).join(' ');

let mobile = null;
let mobileVia = null;
for (const cand of P.mobile_input) {
  const hit = query(cand).filter((el) => inputs.includes(el));
  if (hit.length > 0) { mobile = hit[0]; mobileVia = cand; break; }
}

const maxLen = (el) => {
  const m = parseInt(el.getAttribute('maxlength'), 10);
  return Number.isFinite(m) && m > 0 ? m : null;
};
const explicitKind = (el) => {
  if (P.pin_inputs.length && matchesAny(el, P.pin_inputs)) return 'pin';
  if (P.totp_inputs.length && matchesAny(el, P.totp_inputs)) return 'totp';
  if (P.otp_inputs.length && matchesAny(el, P.otp_inputs)) return 'otp';
  return null;
};
const digitSignals = (el) => {
  const out = [];
  const ml = maxLen(el);
  const type = (el.type || '').toLowerCase();
  if (ml === 1) out.push('maxlength 1');
  if (/^(numeric|decimal)$/i.test(el.getAttribute('inputmode') || '')) out.push('numeric inputmode');
  if ((el.getAttribute('autocomplete') || '').toLowerCase() === 'one-time-code') out.push('one-time-code');
  if (type === 'tel' || type === 'number' || type === 'password') out.push('type ' + type);
  if (/\\d|0-9/.test(el.getAttribute('pattern') || '')) out.push('digit pattern');
  if (el.closest('code-input')) out.push('code-input');
  if (explicitKind(el)) out.push('profile hint');
  return out;
};
const digits = inputs.filter((el) => el !== mobile && el.tagName === 'INPUT' && digitSignals(el).length > 0);

// Each digit input joins the lowest ancestor that holds another one; a lone input is a
// group of its own (a single six-digit field).
const groupsByRoot = new Map();
for (const el of digits) {
  let root = el;
  for (let n = el.parentElement; n && n !== document.documentElement; n = n.parentElement) {
    if (digits.some((o) => o !== el && n.contains(o))) { root = n; break; }
    if (n.tagName === 'FORM' || n === document.body) break;
  }
  if (!groupsByRoot.has(root)) groupsByRoot.set(root, []);
  groupsByRoot.get(root).push(el);
}

const maskedInput = (el, root) => {
  if ((el.type || '').toLowerCase() === 'password') return true;
  const sec = getComputedStyle(el).getPropertyValue('-webkit-text-security');
  if (sec && sec !== 'none') return true;
  return closestAny(el, P.masked, root.parentElement);
};

const HEADINGS = 'h1, h2, h3, h4, h5, h6, legend, label, [role="heading"], .title, .heading, header';
// Messages are answers, not titles: their words never say which code a group wants.
const MESSAGES = '[role="alert"], [role="status"], [aria-live], #toast-container, .toast-container, .ngx-toastr';
// Elements that hold one screen the way a card or dialog does.
const BOUNDARY = '[role="dialog"], dialog, main, section, article, mat-card, .card, .modal-content';
const ownField = (el, root) => root.contains(el) || el === root;
// The ancestors a person reads a group in, nearest first: from the group outwards to
// its card (a dialog, section or card, or the last ancestor below <body> that holds no
// other screen's field), past any form.
const levelsOf = (root) => {
  const out = [root];
  let n = root;
  for (let i = 0; i < 14; i++) {
    if (n !== root && n.matches(BOUNDARY)) break;
    const p = n.parentElement;
    if (!p || p === document.body || p === document.documentElement) break;
    const others = digits.some((o) => !ownField(o, root) && p.contains(o))
      || (mobile && !ownField(mobile, root) && p.contains(mobile));
    if (others) break;
    n = p;
    out.push(n);
  }
  return out;
};
const ariaName = (el) => [el.getAttribute('aria-label'),
  ...(el.getAttribute('aria-labelledby') || '').split(/\s+/).filter(Boolean)
    .map((id) => { const n = document.getElementById(id); return n ? n.innerText : ''; })].map(norm).join(' ');
const headingsIn = (scope) => Array.from(scope.querySelectorAll(HEADINGS))
  .filter((h) => shown(h) && !h.closest(MESSAGES)).map((h) => h.innerText);
const textIn = (scope) => {
  const rest = [];
  const walker = document.createTreeWalker(scope, NodeFilter.SHOW_TEXT);
  let total = 0;
  for (let n = walker.nextNode(); n && total < 4000; n = walker.nextNode()) {
    const parent = n.parentElement;
    if (!parent || parent.closest('a, button, [role="button"], script, style, template, noscript')) continue;
    if (parent.closest(HEADINGS) || parent.closest(MESSAGES) || !shown(parent)) continue;
    const t = norm(n.textContent);
    if (t) { rest.push(t); total += t.length; }
  }
  return rest.join(' ');
};
// The words around a group, level by level: the nearest level whose titles (headings,
// labels, accessible names) name a code wins; else the nearest whose other text does.
const contextOf = (root, els) => {
  const levels = levelsOf(root);
  const names = els.map(attrText).concat([ariaName(root)]);
  const views = levels.map((scope, i) => {
    if (i > 0) names.push(ariaName(scope));
    return { scope, heading: headingsIn(scope).concat(names).join(' | '), text: textIn(scope) };
  });
  const top = views[views.length - 1];
  const byHeading = views.find((v) => kindsOf(v.heading).length > 0);
  if (byHeading) return { ...byHeading, card: top.scope, where: 'headings' };
  const byText = views.find((v) => kindsOf(v.text).length > 0);
  if (byText) return { scope: byText.scope, heading: '', text: byText.text, card: top.scope, where: 'text' };
  return { ...top, card: top.scope, where: 'none' };
};
const scopeOf = (el) => { const l = levelsOf(el); return l[l.length - 1]; };

const place = (root, els) => {
  const g = { els, root, count: els.length, reasons: [] };
  const masks = els.map((el) => maskedInput(el, root));
  g.masked = masks.every(Boolean);
  const mixedMask = !g.masked && masks.some(Boolean);
  g.filled = els.filter((el) => (el.value || '').length > 0).length;
  g.ours = els.every((el) => el.hasAttribute(FILLED)) ? els[0].getAttribute(FILLED) : null;
  const ctx = contextOf(root, els);
  g.scope = ctx.card;
  const lens = els.map(maxLen);
  if (els.length === 6) {
    if (lens.some((m) => m !== null && m > 1 && m < 6)) return { ...g, kind: null, why: 'six inputs whose maxlength is neither 1 nor a whole code' };
    g.shape = 'boxes';
  } else if (els.length === 1) {
    const m = lens[0];
    if (m !== null && (m < 6 || m > 8)) return { ...g, kind: null, why: 'a single field whose maxlength (' + m + ') does not fit a six-digit code' };
    g.shape = 'field';
  } else {
    return { ...g, kind: null, why: els.length + ' digit inputs in one group (a code has six)' };
  }
  if (mixedMask) return { ...g, kind: null, why: 'some inputs of the group are masked and some are not' };
  g.reasons.push(g.shape === 'boxes' ? 'six digit boxes in one container' : 'one digit field');
  g.reasons.push(g.masked ? 'masked' : 'unmasked');
  const explicit = els.map(explicitKind);
  if (explicit[0] && explicit.every((k) => k === explicit[0])) {
    g.reasons.push('profile hint: ' + explicit[0] + '_inputs');
    return { ...g, kind: explicit[0] };
  }
  let words = kindsOf(ctx.heading);
  let where = 'headings';
  if (words.length === 0) { words = kindsOf(ctx.text); where = 'text'; }
  // Delivery words in the text beside a TOTP heading still make it an OTP screen.
  if (where === 'headings' && words.length === 1 && words[0] === 'totp' && kindsOf(ctx.text).includes('otp')) words.push('otp');
  if (words.length > 0) g.reasons.push(where + ' say ' + words.join(' + '));
  if (words.length > 1) return { ...g, kind: null, why: 'the ' + where + ' name several codes (' + words.join(', ') + ')' };
  if (words.length === 1) {
    const w = words[0];
    if (w !== 'pin' && g.masked) return { ...g, kind: null, why: 'a masked group under ' + w.toUpperCase() + ' words' };
    return { ...g, kind: w };
  }
  if (g.masked) { g.reasons.push('masked group, no words against a PIN'); return { ...g, kind: 'pin' }; }
  if (has(RE.code, lower(ctx.heading + ' ' + ctx.text))) {
    g.reasons.push('generic code words, no delivery words');
    return { ...g, kind: 'totp' };
  }
  return { ...g, kind: null, why: 'an unmasked group with no words that say which code it wants' };
};

const groups = Array.from(groupsByRoot.entries()).map(([root, els]) => place(root, els));
// The old screen: every input still carries the driver's tag and a value.
const current = groups.filter((g) => !(g.ours && g.filled === g.count));
const old = groups.filter((g) => g.ours && g.filled === g.count);

// --- the screen's own button ------------------------------------------------------
const BUTTONS = 'button, input[type="submit"], input[type="button"], [role="button"], a[href]';
// What the button says: its text, or for an icon, its accessible name.
const buttonText = (b) => lower([b.innerText, b.value, b.getAttribute('aria-label'), b.getAttribute('title')]
  .filter(Boolean).join(' '));
const enabledBtn = (b) => !b.disabled && b.getAttribute('aria-disabled') !== 'true'
  && !b.classList.contains('disabled');
const findSubmit = (near, explicit) => {
  for (const cand of explicit) {
    const hit = query(cand);
    if (hit.length) return { el: hit.find(enabledBtn) || hit[0], via: cand };
  }
  const form = near.closest('form');
  const scopes = [form, scopeOf(near)].filter(Boolean);
  scopes.push(document.body);
  for (const scope of scopes) {
    const all = Array.from(scope.querySelectorAll(BUTTONS)).filter(shown)
      .filter((b) => !has(RE.notSubmit, buttonText(b)));
    const worded = all.filter((b) => has(RE.submit, buttonText(b)));
    if (worded.length > 0) return { el: worded.find(enabledBtn) || worded[0], via: 'text "' + buttonText(worded[0]) + '"' };
    const typed = all.filter((b) => (b.getAttribute('type') || (b.tagName === 'BUTTON' ? 'submit' : '')) === 'submit');
    if (form && scope === form && typed.length === 1) return { el: typed[0], via: 'the one submit button of its form' };
  }
  return null;
};

// --- the verdict --------------------------------------------------------------------
const snapshot = () => {
  const out = { screen: 'unknown', reasons: [], error: null, mobile: !!mobile, submit: null,
    group: null, old: old.length, invalid, submits: (window.__dhanLoginWatch || { submits: 0 }).submits };
  if (!document.body || document.readyState === 'loading') {
    out.screen = 'navigating';
    return out;
  }
  const err = findError();
  if (err) {
    const said = lower(err.message);
    out.error = { message: err.message,
      known: P.error_texts.concat(P.expired_texts).some((t) => said.includes(lower(t))) };
    out.reasons = ['message via ' + err.via];
    out.screen = isExpired(err.message) ? 'expired' : 'error';
    return out;
  }
  if (current.length > 1) {
    out.screen = 'ambiguous';
    out.reasons = current.map((g) => (g.kind || 'unplaced') + ' group of ' + g.count
      + (g.masked ? ' (masked)' : ' (unmasked)') + (g.why ? ': ' + g.why : ''));
    return out;
  }
  if (current.length === 1) {
    const g = current[0];
    out.group = { shape: g.shape || null, count: g.count, masked: g.masked, filled: g.filled, ours: g.ours };
    if (!g.kind) {
      out.screen = 'unplaced';
      out.reasons = [g.why].concat(g.reasons);
      return out;
    }
    out.screen = g.kind;
    out.reasons = g.reasons;
    markAll('code', g.els);
    const s = findSubmit(g.els[g.els.length - 1], P.code_submit);
    if (s) { markAll('submit', [s.el]); out.submit = { enabled: enabledBtn(s.el), via: s.via }; } else markAll('submit', []);
    return out;
  }
  if (mobile) {
    out.screen = 'mobile';
    out.reasons = ['mobile field: ' + mobileVia];
    markAll('mobile', [mobile]);
    const s = findSubmit(mobile, P.mobile_submit);
    if (s) { markAll('submit', [s.el]); out.submit = { enabled: enabledBtn(s.el), via: s.via }; } else markAll('submit', []);
    return out;
  }
  if (old.length > 0) {
    out.screen = 'pending';
    out.reasons = ['the ' + old[0].ours + ' group the driver filled is still shown'];
    // Its button, for a page that waits for a click after the last digit.
    const s = findSubmit(old[0].els[old[0].els.length - 1], P.code_submit);
    if (s) { markAll('submit', [s.el]); out.submit = { enabled: enabledBtn(s.el), via: s.via }; } else markAll('submit', []);
    return out;
  }
  out.reasons = ['no mobile field and no group of digit inputs'];
  const said = Array.from(document.querySelectorAll('h1, h2, h3, [role="heading"]')).filter(shown)
    .map((h) => norm(h.innerText)).filter(Boolean).slice(0, 3);
  if (said.length) out.reasons.push('headings: ' + said.map((h) => '"' + h.slice(0, 80) + '"').join(', ') + ' (' + (kindsOf(said.join(' ')).join(', ') || 'no code words') + ')');
  return out;
};

return snapshot();
