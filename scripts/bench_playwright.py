#!/usr/bin/env python3
"""The same consent login as `dhan-login login --via browser`, written the way a competent
Playwright user would: auto-waiting locators, press_sequentially where the page listens to
key events, page.route to catch the redirect. Used by scripts/bench as the baseline.

    bench_playwright.py '<stand-in description JSON>' [BROWSER_PATH [shell|full]]

The description is the first line of `dhan-login mock-server`. On a generated page
(`--page-seed`) it carries the drawn layout under `page`, and the script is what such a
user would write after inspecting that page: selectors, button and submission taken from
the layout (see `bench_pages.json` for the texts). Prints one line of JSON with the timings
and the token's length (never the token).
"""
import base64
import hashlib
import hmac
import json
import struct
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

ARGS = [
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-gpu",
]


def totp(secret_b32: str, at: float) -> str:
    key = base64.b32decode(secret_b32.upper() + "=" * (-len(secret_b32) % 8))
    mac = hmac.new(key, struct.pack(">Q", int(at) // 30), hashlib.sha1).digest()
    off = mac[-1] & 0x0F
    return "%06d" % ((struct.unpack(">I", mac[off:off + 4])[0] & 0x7FFFFFFF) % 1_000_000)


def call(method: str, url: str, headers: dict) -> dict:
    req = urllib.request.Request(url, method=method, headers=headers)
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


PAGES = json.loads((Path(__file__).resolve().parent / "bench_pages.json").read_text())


def screens(layout: dict) -> list:
    second = {"totp": ["totp"], "sms-otp": ["otp"], "skipped": []}[layout["second_factor"]]
    return ["mobile", *second, "pin"]


def ready(app, layout: dict, screen: str):
    """What shows that a code screen is drawn: its words, where the layout put them."""
    s = layout[screen]
    words, name = s["words"], PAGES["name"][screen]
    if words in ("in-form", "above-form", "header-beside", "split"):
        return app.get_by_text(PAGES["title"][screen])
    if words == "paragraph":
        return app.get_by_text(PAGES["hint"][screen])
    if words == "attribute":
        if s["inputs"] == "one-field":
            return app.get_by_placeholder(name, exact=True)
        # The page names its boxes by aria-labelledby on even seeds, by aria-label on odd.
        if layout["seed"] % 2 == 0:
            return app.get_by_label(name, exact=True).first
        return app.get_by_label(f"{name} digit 1", exact=True)
    # No words at all (a PIN only): its masking tells it from the screen before.
    return app.locator(PAGES["mask"][s["mask"]]).first


def answer(page, app, layout: dict, screen: str, value) -> None:
    """Fills one screen of a generated page and sends it the way that screen sends."""
    s = layout[screen]
    if screen == "mobile":
        app.locator(PAGES["mobile"][s["mobile_attr"]]).fill(value())
    else:
        ready(app, layout, screen).wait_for()
        # The boxes move focus themselves: the code goes into the first one.
        app.locator(PAGES["inputs"][s["inputs"]]).first.press_sequentially(value())
    if s["submit"] != "button":
        return  # it sends itself, on its last key or after its timer
    if s["enable"] == "on-blur" and s["button"] != "none":
        page.keyboard.press("Tab")  # its button is enabled when the field is left
    role = "link" if s["button"] == "anchor" else "button"
    # This screen ignores its first press (seen when inspecting it): press twice.
    for _ in range(2 if layout["swallow"] == screen else 1):
        if s["button"] == "none":
            page.keyboard.press("Enter")
        else:
            app.get_by_role(role, name=s["label"], exact=True).click()


def default_page(page, d: dict) -> None:
    page.get_by_placeholder("Enter mobile number").fill(d["mobile"])
    page.get_by_role("button", name="Proceed").click()
    # The code boxes (an Angular code-input; plain one-digit boxes on the stand-in's
    # classic page) move focus themselves: type the code into the first one.
    page.get_by_text("Enter TOTP").wait_for()
    page.locator('code-input input, input[maxlength="1"]').first.press_sequentially(
        totp(d["totp_secret"], time.time()))
    page.get_by_role("button", name="Proceed").click()
    page.get_by_text("Enter PIN").wait_for()
    page.locator('code-input input, input[type="password"]').first.press_sequentially(d["pin"])
    page.get_by_role("button", name="Continue").click()


def generated_page(page, d: dict, layout: dict) -> None:
    app = page.locator("app-login")
    values = {
        "mobile": lambda: d["mobile"],
        # Only when typed: the code must be fresh.
        "totp": lambda: totp(d["totp_secret"], time.time()),
        "otp": lambda: d["sms_otp"],
        "pin": lambda: d["pin"],
    }
    for screen in screens(layout):
        answer(page, app, layout, screen, values[screen])


def main() -> None:
    d = json.loads(sys.argv[1])
    auth = d["auth_base_url"].rstrip("/")
    creds = {"app_id": d["api_key"], "app_secret": d["api_secret"]}
    t0 = time.perf_counter()
    consent = call("POST", f"{auth}/app/generate-consent?client_id={d['client_id']}", creds)
    url = f"{auth}/login/consentApp-login?consentAppId={consent['consentAppId']}"
    with sync_playwright() as p:
        executable = sys.argv[2] if len(sys.argv) > 2 else "/usr/lib/chromium/chromium-headless-shell"
        browser = p.chromium.launch(executable_path=executable, headless=True, args=ARGS)
        t_launch = time.perf_counter()
        page = browser.new_page()
        # Answer the redirect locally: the redirect host is never contacted.
        redirect = urllib.parse.urlparse(d["redirect_url"])
        page.route(f"{redirect.scheme}://{redirect.netloc}{redirect.path}*",
                   lambda route: route.fulfill(status=200, body="ok"))
        page.goto(url)
        # Only the top frame's redirect carries the real tokenId (an analytics iframe
        # sends a decoy to the same URL).
        with page.expect_request(lambda r: r.frame == page.main_frame and "tokenId=" in r.url) as redirected:
            if "page" in d:
                generated_page(page, d, d["page"])
            else:
                default_page(page, d)
        q = urllib.parse.parse_qs(urllib.parse.urlparse(redirected.value.url).query)
        token_id = q["tokenId"][0]
        t_token_id = time.perf_counter()
        browser.close()
    grant = call("GET", f"{auth}/app/consumeApp-consent?tokenId={token_id}", creds)
    t_end = time.perf_counter()
    print(json.dumps({
        "launch_ms": round((t_launch - t0) * 1000),
        "to_token_id_ms": round((t_token_id - t0) * 1000),
        "total_ms": round((t_end - t0) * 1000),
        "token_len": len(grant["accessToken"]),
    }))


if __name__ == "__main__":
    main()
