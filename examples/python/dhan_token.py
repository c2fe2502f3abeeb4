"""Reads the DhanHQ access token that dhan-login keeps, in one of three ways, and calls
Dhan's profile endpoint with it. Standard library only.

    python3 examples/python/dhan_token.py cli      # runs `dhan-login token`
    python3 examples/python/dhan_token.py serve    # asks a running `dhan-login serve`
    python3 examples/python/dhan_token.py file     # reads serve's token file

On a 401 (DH-901) from Dhan the token is reported to its owner (`dhan-login token
--rejected`, or serve's `POST .../token/rejected`), and the one that comes back is used.

Environment (all optional): DHAN_LOGIN_PROFILE (default "default"), DHAN_LOGIN_STATE_DIR
(default ~/.local/state/dhan-login), DHAN_LOGIN_SERVE_URL (default http://127.0.0.1:7787),
DHAN_API_BASE_URL (default https://api.dhan.co/v2).
"""

import json
import os
import pathlib
import subprocess
import sys
import urllib.error
import urllib.request

PROFILE = os.environ.get("DHAN_LOGIN_PROFILE") or "default"
STATE = pathlib.Path(os.environ.get("DHAN_LOGIN_STATE_DIR") or pathlib.Path.home() / ".local/state/dhan-login")


# [readme:python-cli]
def from_cli():
    return subprocess.run(["dhan-login", "token"], capture_output=True, text=True, check=True).stdout.strip()
# [/readme]


# [readme:python-serve]
def from_serve():
    key = (STATE / "serve.key").read_text().strip()
    url = (os.environ.get("DHAN_LOGIN_SERVE_URL") or "http://127.0.0.1:7787") + f"/v1/profiles/{PROFILE}/token"
    req = urllib.request.Request(url, headers={"Authorization": "Bearer " + key})
    with urllib.request.urlopen(req) as res:
        return json.load(res)["access_token"]
# [/readme]


# [readme:python-file]
def from_file():
    return (STATE / "serve" / f"{PROFILE}.token").read_text().strip()
# [/readme]


# [readme:python-rejected]
def after_refusal(source):
    """Dhan answered DH-901 (401): tell the token's owner, which checks it with Dhan and
    hands back a new one only if it is dead. Never log in here: that would end the token
    every other program holds."""
    if source == "serve":
        key = (STATE / "serve.key").read_text().strip()
        url = (os.environ.get("DHAN_LOGIN_SERVE_URL") or "http://127.0.0.1:7787") + f"/v1/profiles/{PROFILE}/token/rejected"
        req = urllib.request.Request(url, method="POST", headers={"Authorization": "Bearer " + key})
        with urllib.request.urlopen(req) as res:
            return json.load(res)["access_token"]
    # `dhan-login token --rejected` asks a running serve itself when there is one.
    return subprocess.run(["dhan-login", "token", "--rejected"], capture_output=True, text=True, check=True).stdout.strip()
# [/readme]


def profile(token):
    base = os.environ.get("DHAN_API_BASE_URL") or "https://api.dhan.co/v2"
    req = urllib.request.Request(base + "/profile", headers={"access-token": token, "Accept": "application/json"})
    with urllib.request.urlopen(req) as res:
        return json.load(res)


def profile_or_refusal(token):
    """Dhan's profile answer, or None when it says the token is invalid (DH-901, HTTP 401)."""
    try:
        return profile(token)
    except urllib.error.HTTPError as e:
        if e.code == 401:
            return None
        raise


def main():
    source = sys.argv[1] if len(sys.argv) > 1 else "cli"
    readers = {"cli": from_cli, "serve": from_serve, "file": from_file}
    if source not in readers:
        sys.exit("usage: dhan_token.py cli|serve|file")
    token = readers[source]()
    info = profile_or_refusal(token)
    if info is None:
        print(f"Dhan refused the token ({source}): reporting it", file=sys.stderr)
        token = after_refusal(source)
        info = profile(token)
    print(f"token ({source}): {token}")
    print(f"profile: client {info['dhanClientId']}, valid until {info['tokenValidity']}")


if __name__ == "__main__":
    main()
