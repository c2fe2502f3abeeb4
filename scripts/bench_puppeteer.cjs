#!/usr/bin/env node
// The same consent login as `dhan-login login --via browser`, written the way a competent
// Puppeteer user would: locators that wait by themselves, real key presses where the page
// listens to them, request interception to answer the redirect locally. Used by
// scripts/bench as a baseline, with puppeteer-core from npm (no browser download).
//
//   node scripts/bench_puppeteer.cjs '<stand-in description JSON>' BROWSER_PATH shell|full
//
// On a generated page (`mock-server --page-seed`) the description carries the drawn layout
// under `page`, and the script is what such a user would write after inspecting that page:
// selectors, button and submission taken from the layout (texts in bench_pages.json).
// Prints one line of JSON with the timings and the token's length (never the token).
const crypto = require("node:crypto");
const path = require("node:path");
const puppeteer = require("puppeteer-core");

const PAGES = require(path.join(__dirname, "bench_pages.json"));

const ARGS = [
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
  "--disable-quic",
  "--disable-gpu",
];

function totp(secretB32, atSeconds) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const c of secretB32.toUpperCase().replace(/=+$/, "")) {
    bits += alphabet.indexOf(c).toString(2).padStart(5, "0");
  }
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(atSeconds / 30)));
  const mac = crypto.createHmac("sha1", key).update(counter).digest();
  const off = mac[mac.length - 1] & 0x0f;
  const code = (mac.readUInt32BE(off) & 0x7fffffff) % 1_000_000;
  return String(code).padStart(6, "0");
}

async function call(method, url, headers) {
  const resp = await fetch(url, { method, headers, signal: AbortSignal.timeout(10_000) });
  if (!resp.ok) throw new Error(`${method} ${url}: HTTP ${resp.status}`);
  return resp.json();
}

async function defaultPage(page, d) {
  await page.locator('input[placeholder="Enter mobile number"]').fill(d.mobile);
  await page.locator("button::-p-text(Proceed)").click();
  // The code boxes (an Angular code-input; plain one-digit boxes on the stand-in's
  // classic page) move focus themselves: type the code into the first one.
  await page.locator("::-p-text(Enter TOTP)").wait();
  await page.locator('code-input input, input[maxlength="1"]').click();
  await page.keyboard.type(totp(d.totp_secret, Date.now() / 1000));
  await page.locator("button::-p-text(Proceed)").click();
  await page.locator("::-p-text(Enter PIN)").wait();
  await page.locator('code-input input, input[type="password"]').click();
  await page.keyboard.type(d.pin);
  await page.locator("button::-p-text(Continue)").click();
}

function screens(layout) {
  const second = { totp: ["totp"], "sms-otp": ["otp"], skipped: [] }[layout.second_factor];
  return ["mobile", ...second, "pin"];
}

// What shows that a code screen is drawn: its words, where the layout put them.
function ready(layout, screen) {
  const s = layout[screen];
  const name = PAGES.name[screen];
  switch (s.words) {
    case "in-form":
    case "above-form":
    case "header-beside":
    case "split":
      return `app-login ::-p-text(${PAGES.title[screen]})`;
    case "paragraph":
      return `app-login ::-p-text(${PAGES.hint[screen]})`;
    case "attribute":
      if (s.inputs === "one-field") return `app-login input[placeholder="${name}"]`;
      // The page names its boxes by aria-labelledby on even seeds, by aria-label on odd.
      return layout.seed % 2 === 0
        ? `app-login input[aria-labelledby="code-name-${screen}"]`
        : `app-login input[aria-label="${name} digit 1"]`;
    default:
      // No words at all (a PIN only): its masking tells it from the screen before.
      return PAGES.mask[s.mask]
        .split(", ")
        .map((m) => `app-login ${m}`)
        .join(", ");
  }
}

// Fills one screen of a generated page and sends it the way that screen sends.
async function answer(page, layout, screen, value) {
  const s = layout[screen];
  if (screen === "mobile") {
    await page.locator(`app-login ${PAGES.mobile[s.mobile_attr]}`).fill(value());
  } else {
    await page.waitForSelector(ready(layout, screen), { visible: true });
    // The boxes move focus themselves: the code goes into the first one.
    await page.locator(`app-login ${PAGES.inputs[s.inputs]}`).click();
    await page.keyboard.type(value());
  }
  if (s.submit !== "button") return; // it sends itself, on its last key or after its timer
  if (s.enable === "on-blur" && s.button !== "none") {
    await page.keyboard.press("Tab"); // its button is enabled when the field is left
  }
  const role = s.button === "anchor" ? "link" : "button";
  // This screen ignores its first press (seen when inspecting it): press twice.
  const presses = layout.swallow === screen ? 2 : 1;
  for (let i = 0; i < presses; i++) {
    if (s.button === "none") {
      await page.keyboard.press("Enter");
    } else {
      await page.locator(`::-p-aria([name="${s.label}"][role="${role}"])`).click();
    }
  }
}

async function generatedPage(page, d, layout) {
  const values = {
    mobile: () => d.mobile,
    // Only when typed: the code must be fresh.
    totp: () => totp(d.totp_secret, Date.now() / 1000),
    otp: () => d.sms_otp,
    pin: () => d.pin,
  };
  for (const screen of screens(layout)) {
    await answer(page, layout, screen, values[screen]);
  }
}

async function main() {
  const d = JSON.parse(process.argv[2]);
  const executablePath = process.argv[3];
  const kind = process.argv[4] || "shell";
  const auth = d.auth_base_url.replace(/\/+$/, "");
  const creds = { app_id: d.api_key, app_secret: d.api_secret };
  const t0 = performance.now();
  const consent = await call("POST", `${auth}/app/generate-consent?client_id=${d.client_id}`, creds);
  const url = `${auth}/login/consentApp-login?consentAppId=${consent.consentAppId}`;
  const args = process.getuid && process.getuid() === 0 ? [...ARGS, "--no-sandbox"] : ARGS;
  // "shell" is Puppeteer's name for the headless shell's mode; `true` is new headless.
  const browser = await puppeteer.launch({
    executablePath,
    headless: kind === "shell" ? "shell" : true,
    args,
  });
  const tLaunch = performance.now();
  let tokenId;
  let tTokenId;
  try {
    const page = await browser.newPage();
    // Answer the redirect locally: the redirect host is never contacted.
    const redirect = new URL(d.redirect_url);
    const prefix = `${redirect.origin}${redirect.pathname}`;
    let redirected;
    const captured = new Promise((resolve) => (redirected = resolve));
    await page.setRequestInterception(true);
    page.on("request", (req) => {
      if (req.url().startsWith(prefix)) {
        // Only the top frame's redirect carries the real tokenId (an analytics iframe
        // sends a decoy to the same URL).
        if (req.frame() === page.mainFrame()) {
          redirected(new URL(req.url()).searchParams.get("tokenId"));
        }
        req.respond({ status: 200, contentType: "text/plain", body: "ok" });
      } else {
        req.continue();
      }
    });
    await page.goto(url);
    if (d.page) {
      await generatedPage(page, d, d.page);
    } else {
      await defaultPage(page, d);
    }
    tokenId = await captured;
    tTokenId = performance.now();
  } finally {
    await browser.close();
  }
  const grant = await call("GET", `${auth}/app/consumeApp-consent?tokenId=${tokenId}`, creds);
  const tEnd = performance.now();
  console.log(
    JSON.stringify({
      launch_ms: Math.round(tLaunch - t0),
      to_token_id_ms: Math.round(tTokenId - t0),
      total_ms: Math.round(tEnd - t0),
      token_len: grant.accessToken.length,
    }),
  );
}

main().catch((e) => {
  console.error(String(e && e.message ? e.message : e));
  process.exit(1);
});
