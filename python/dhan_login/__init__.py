"""A DhanHQ access token from Python, through the ``dhan-login`` binary installed with
this package.

    import dhan_login
    t = dhan_login.token()          # cached, renewed or logged in: whatever is cheapest
    t.access_token, t.client_id, t.expires_at

Every call runs the binary once (a few milliseconds for a cached token). Failures raise
a subclass of :class:`DhanLoginError` that names the binary's exit code; its message is
the binary's, which never holds a PIN, TOTP secret, API secret or token.
"""

from ._binary import find_binary
from ._errors import (
    ConfigError,
    ConsentLimit,
    CredentialsRejected,
    DhanLoginError,
    NoLogin,
    Temporary,
)
from ._api import StaticIps, Token, env, ip, rejected, token

__all__ = [
    "ConfigError",
    "ConsentLimit",
    "CredentialsRejected",
    "DhanLoginError",
    "NoLogin",
    "StaticIps",
    "Temporary",
    "Token",
    "env",
    "find_binary",
    "ip",
    "rejected",
    "token",
]
