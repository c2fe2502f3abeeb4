#!/usr/bin/env python3
"""Checks that the official DhanHQ-py `DhanLogin` client works against `dhan-login
mock-server` once its base URLs point there (issue #2's promise to SDK users).

    python3 scripts/dhanhq_compat.py [path/to/dhan-login]

Run by scripts/test after the Rust tests; installs the `dhanhq` pip package when missing.
Prints one line per check and a closing `dhanhq-compat: N passed, N failed`.
"""
import base64
import hashlib
import hmac
import json
import re
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import webbrowser


def totp(secret_b32, at):
    key = base64.b32decode(secret_b32.upper() + "=" * (-len(secret_b32) % 8))
    mac = hmac.new(key, struct.pack(">Q", int(at) // 30), hashlib.sha1).digest()
    off = mac[-1] & 0x0F
    return "%06d" % ((struct.unpack(">I", mac[off:off + 4])[0] & 0x7FFFFFFF) % 1_000_000)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def browser_login(auth, consent, d, at):
    """What a person does on the consent pages, over plain HTTP: returns the tokenId."""
    opener = urllib.request.build_opener(NoRedirect)
    page = f"{auth}/login/consentApp-login?consentAppId={consent}"
    html = opener.open(page).read().decode()
    session = re.search(r'name="session" value="([^"]+)"', html).group(1)

    def post(fields):
        body = urllib.parse.urlencode([("session", session)] + fields).encode()
        return opener.open(urllib.request.Request(page, data=body))

    post([("mobileNumber", d["mobile"])]).read()
    post([("totp", c) for c in totp(d["totp_secret"], at)]).read()
    try:
        post([("pin", c) for c in d["pin"]])
    except urllib.error.HTTPError as e:
        if e.code == 302:
            q = urllib.parse.urlparse(e.headers["Location"]).query
            return urllib.parse.parse_qs(q)["tokenId"][0]
        raise
    raise AssertionError("the PIN screen did not redirect")


def main():
    try:
        from dhanhq import DhanLogin
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "dhanhq"], check=True)
        from dhanhq import DhanLogin
    webbrowser.open = lambda *a, **k: False  # generate_login_session opens a browser

    binary = sys.argv[1] if len(sys.argv) > 1 else "target/debug/dhan-login"
    # Server-rendered screens: browser_login posts their forms over plain HTTP. No 2-minute
    # mint window: the wrong-PIN check follows the first token within seconds.
    server = subprocess.Popen([binary, "mock-server", "--server-rendered", "--mint-interval-secs", "0"],
                              stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    passed, failed = 0, 0
    try:
        d = json.loads(server.stdout.readline())
        auth = d["auth_base_url"].rstrip("/")
        DhanLogin.AUTH_BASE_URL = auth
        DhanLogin.API_BASE_URL = d["api_base_url"]
        login = DhanLogin(d["client_id"])
        key, secret = d["api_key"], d["api_secret"]
        now = time.time()
        state = {}

        def check(name, fn):
            nonlocal passed, failed
            try:
                fn()
                passed += 1
                print(f"ok   {name}")
            except Exception as e:  # report every check, then fail at the end
                failed += 1
                print(f"FAIL {name}: {type(e).__name__}: {e}")

        def generate_token():
            r = login.generate_token(d["pin"], totp(d["totp_secret"], now))
            assert {"dhanClientId", "accessToken", "expiryTime"} <= r.keys(), r.keys()
            state["app"] = r["accessToken"]

        def profile():
            r = login.user_profile(state["app"])
            assert r["dhanClientId"] == d["client_id"], r

        def wrong_pin_raises():
            try:
                login.generate_token("000000", totp(d["totp_secret"], now + 30))
            except Exception:
                return
            raise AssertionError("a wrong PIN was accepted")

        def consent_flow():
            consent = login.generate_login_session(key, secret)
            assert consent, consent
            token_id = browser_login(auth, consent, d, now + 30)
            r = login.consume_token_id(token_id, key, secret)
            assert r["accessToken"] and r["dhanClientId"] == d["client_id"], r.keys()

        def renew_self_token():
            req = urllib.request.Request(f"{auth}/mock/issue-token?kind=SELF", method="POST")
            web = json.loads(urllib.request.urlopen(req).read())["accessToken"]
            r = login.renew_token(web)
            assert (r.get("accessToken") or r.get("token")) not in (None, web), r.keys()

        def renew_app_token_refused():
            try:
                login.renew_token(state["app"])
            except Exception:
                return
            raise AssertionError("an APP token was renewed")

        def static_ip():
            from dhanhq.dhan_http import DhanHTTP
            DhanHTTP.API_BASE_URL = d["api_base_url"].rstrip("/")
            r = login.set_ip(state["app"], "203.0.113.9", "PRIMARY")
            assert r["status"] == "success", r
            r = login.get_ip(state["app"])
            assert r["status"] == "success" and r["data"]["primaryIP"] == "203.0.113.9", r
            r = login.modify_ip(state["app"], "203.0.113.10", "PRIMARY")
            assert r["status"] == "failure", "a change within seven days was accepted"

        check("generate_token (PIN + TOTP)", generate_token)
        check("user_profile", profile)
        check("set_ip, get_ip; modify_ip refused within seven days", static_ip)
        check("generate_token with a wrong PIN raises", wrong_pin_raises)
        check("generate_login_session + consent pages + consume_token_id", consent_flow)
        check("renew_token of a Dhan Web (SELF) token", renew_self_token)
        check("renew_token of an API (APP) token is refused", renew_app_token_refused)
    finally:
        server.terminate()
        server.wait()
    print(f"dhanhq-compat: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
