"""DhanHQ-py with a token from `dhan_login`, the wheel installed with `pip install
--target` (PYTHONPATH points there). Run by scripts/test_packages against the stand-in
(STAND_IN: the first line `dhan-login mock-server` printed)."""
import json
import os
import sys

import dhan_login

d = json.loads(os.environ["STAND_IN"])
os.environ.update(
    DHAN_CLIENT_ID=d["client_id"],
    DHAN_PIN=d["pin"],
    DHAN_TOTP_SECRET=d["totp_secret"],
    DHAN_AUTH_BASE_URL=d["auth_base_url"].rstrip("/"),
    DHAN_API_BASE_URL=d["api_base_url"],
)
here = os.environ["PYTHONPATH"]
assert dhan_login.find_binary() == os.path.join(here, "bin", "dhan-login"), dhan_login.find_binary()
print("ok   find_binary() is the one pip install --target put beside the module")

from dhanhq import DhanContext, DhanLogin, dhanhq
from dhanhq.dhan_http import DhanHTTP

# The stand-in instead of api.dhan.co.
DhanHTTP.API_BASE_URL = DhanLogin.API_BASE_URL = d["api_base_url"].rstrip("/")

# [readme:python-dhanhq]
t = dhan_login.token()
context = DhanContext(t.client_id, t.access_token)
dhan = dhanhq(context)
# [/readme]

me = context.dhan_login.user_profile(t.access_token)
assert me["dhanClientId"] == d["client_id"], me
ips = context.dhan_login.get_ip(t.access_token)
assert ips["status"] == "success", ips
print("ok   DhanHQ-py: user_profile and get_ip with dhan_login's token")
sys.exit(0)
