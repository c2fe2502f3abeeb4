"""The `dhan_login` module from the installed wheel, against the stand-in of Dhan.

Run by scripts/test_packages with the virtualenv's Python, from a folder outside the
repository, where only the wheel is installed. STAND_IN and CAPPED_STAND_IN hold the
first lines `dhan-login mock-server` printed (the second one allows no consent).
Every error class is met once, and no exception's text may hold a secret.
"""
import json
import os
import subprocess
import sys
import tempfile
import urllib.request
from datetime import date, datetime, timezone

# [readme:python-package]
import dhan_login

def profile(api="https://api.dhan.co/v2"):
    t = dhan_login.token()  # the stored token, renewed, or a new login: the cheapest that works
    req = urllib.request.Request(f"{api}/profile", headers={"access-token": t.access_token})
    with urllib.request.urlopen(req) as answer:
        return t, json.load(answer)
# [/readme]

stand_in = json.loads(os.environ["STAND_IN"])
capped = json.loads(os.environ["CAPPED_STAND_IN"])
base_env = dict(os.environ)
SECRETS = [stand_in["pin"], stand_in["totp_secret"], stand_in["api_secret"]]
checks = 0


def use(d, **extra):
    """The process environment of a machine whose profile is account `d`."""
    os.environ.clear()
    os.environ.update(base_env)
    os.environ.update(
        DHAN_CLIENT_ID=d["client_id"],
        DHAN_PIN=d["pin"],
        DHAN_TOTP_SECRET=d["totp_secret"],
        DHAN_AUTH_BASE_URL=d["auth_base_url"].rstrip("/"),
        DHAN_API_BASE_URL=d["api_base_url"],
    )
    for k, v in extra.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def fresh_state():
    return tempfile.mkdtemp(prefix="state-")


def ok(name):
    global checks
    checks += 1
    print("ok   " + name)


def raises(cls, code, fn, name, secrets=()):
    try:
        fn()
    except dhan_login.DhanLoginError as e:
        assert type(e) is cls, "%s: %s, not %s: %s" % (name, type(e).__name__, cls.__name__, e)
        assert e.exit_code == code, (name, e.exit_code)
        assert isinstance(e, dhan_login.DhanLoginError)
        text = "%s %r %r" % (e, e, e.args)
        for s in SECRETS + list(secrets):
            assert s not in text, "%s: a secret is in the exception" % name
        ok("%s -> %s (exit %d)" % (name, cls.__name__, code))
        return e
    raise AssertionError(name + ": no exception")


use(stand_in)
binary = dhan_login.find_binary()
assert binary.startswith(sys.prefix), "the wheel's binary is found first: " + binary
ok("find_binary() is the wheel's: " + binary)

t, p = profile(stand_in["api_base_url"].rstrip("/"))
assert t.client_id == stand_in["client_id"] == p["dhanClientId"], (t.client_id, p)
assert t.access_token.count(".") == 2 and t.kind == "APP" and t.source == "totp", t
assert t.expires_at.tzinfo is not None and t.expires_at > datetime.now(timezone.utc), t
assert t.access_token not in repr(t), "repr shows the token"
ok("token() logs in; /v2/profile accepts it; expires_at %s" % t.expires_at.isoformat())

again = dhan_login.token(verify=True)
assert again.access_token == t.access_token, "the second call reads the stored token"
ok("token(verify=True) is the stored token, checked with Dhan")

e = dhan_login.env()
assert e == {"DHAN_ACCESS_TOKEN": t.access_token, "DHAN_CLIENT_ID": t.client_id}, sorted(e)
ok("env() holds DHAN_ACCESS_TOKEN and DHAN_CLIENT_ID")

assert dhan_login.ip() == dhan_login.StaticIps(None, None, None, None)
subprocess.run([binary, "-q", "ip", "set", "primary", "203.0.113.7"], check=True,
               stdout=subprocess.DEVNULL)
ips = dhan_login.ip()
assert ips.primary == "203.0.113.7" and ips.secondary is None, ips
assert isinstance(ips.modify_date_primary, date) and ips.modify_date_primary > date.today()
ok("ip() reads the whitelist (%s, may change from %s)" % (ips.primary, ips.modify_date_primary))

# A consumer that saw DH-901 reports the token: a live one comes back unchanged.
r = dhan_login.rejected()
assert r.client_id == t.client_id and r.access_token == t.access_token, r
ok("rejected() returns the live token unchanged")
assert dhan_login.token(valid_until="23:59").client_id == t.client_id
ok("token(valid_until=...) returns a token")

use(stand_in, DHAN_LOGIN_MARGIN_MINUTES="soon")
err = raises(dhan_login.ConfigError, 2, dhan_login.token, "a malformed variable")
assert "DHAN_LOGIN_MARGIN_MINUTES" in err.message, err.message

wrong_pin = "".join(str((int(c) + 1) % 10) for c in stand_in["pin"])
use(stand_in, DHAN_PIN=wrong_pin, DHAN_LOGIN_STATE_DIR=fresh_state())
err = raises(dhan_login.CredentialsRejected, 3, dhan_login.token, "a wrong PIN", [wrong_pin])
assert "Invalid PIN" in err.message, err.message

use(stand_in, DHAN_AUTH_BASE_URL=os.environ["CLOSED_PORT_URL"], DHAN_LOGIN_STATE_DIR=fresh_state())
err = raises(dhan_login.Temporary, 5, dhan_login.token, "Dhan unreachable")
assert err.retry_after is None and err.retry_at is None, "no time was said"

# Two machines sending the same 30 s TOTP step: the second is told to wait for the next.
def two_machines_at_once():
    for _ in range(6):
        use(stand_in, DHAN_LOGIN_STATE_DIR=fresh_state())
        dhan_login.token()


err = raises(dhan_login.Temporary, 5, two_machines_at_once, "a reused TOTP step")
assert err.retry_after == 30 and err.retry_at > datetime.now(timezone.utc), err.retry_after
ok("Temporary says when: retry_after=%ss" % err.retry_after)

use(capped, DHAN_TOTP_SECRET=None, DHAN_OTP_COMMAND="false", DHAN_MOBILE=capped["mobile"],
    DHAN_API_KEY=capped["api_key"], DHAN_API_SECRET=capped["api_secret"],
    DHAN_LOGIN_STATE_DIR=fresh_state())
err = raises(dhan_login.ConsentLimit, 4, dhan_login.token, "no consent left today",
             [capped["pin"], capped["api_secret"]])

use(stand_in, DHAN_LOGIN_NO_LOGIN="1", DHAN_LOGIN_STATE_DIR=fresh_state())
err = raises(dhan_login.NoLogin, 6, dhan_login.token, "logins off on this host, no token stored")
assert "logins are off" in err.message, err.message

use(stand_in, DHAN_LOGIN_BIN=os.path.join(tempfile.mkdtemp(), "no-such-binary"))
try:
    dhan_login.token()
    raise AssertionError("DHAN_LOGIN_BIN was not used")
except FileNotFoundError:
    ok("$DHAN_LOGIN_BIN names the binary to run")

print("python package: %d checks passed" % checks)
