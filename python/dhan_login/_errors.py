"""The binary's exit codes as exceptions."""

import re
from datetime import datetime, timedelta, timezone
from typing import Dict, Optional, Type


class DhanLoginError(Exception):
    """``dhan-login`` failed. ``exit_code`` is its exit code, ``message`` its own words
    (which never hold a secret)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class ConfigError(DhanLoginError):
    """Exit 2: a usage or configuration error. Fix the config (``dhan-login config check``)."""


class CredentialsRejected(DhanLoginError):
    """Exit 3: Dhan rejected the PIN, TOTP, mobile or API secret. dhan-login will not
    send them again until they change or ``dhan-login unlock``: retrying is how accounts
    get locked."""


class ConsentLimit(DhanLoginError):
    """Exit 4: the day's consents are used up; they come back at midnight IST."""


class Temporary(DhanLoginError):
    """Exit 5: the network, Dhan's 5xx or its rate limit. ``retry_after`` (seconds) and
    ``retry_at`` (an aware datetime) say when to try again, when the binary said so."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message, exit_code)
        m = re.search(r"try again after (\d+) s", message)
        self.retry_after: Optional[float] = float(m.group(1)) if m else None
        self.retry_at: Optional[datetime] = (
            datetime.now(timezone.utc) + timedelta(seconds=self.retry_after)
            if self.retry_after is not None
            else None
        )


class NoLogin(DhanLoginError):
    """Exit 6: no live token, and logins are off on this host (``login = "never"``)."""


_BY_CODE: Dict[int, Type[DhanLoginError]] = {
    2: ConfigError,
    3: CredentialsRejected,
    4: ConsentLimit,
    5: Temporary,
    6: NoLogin,
}


def from_exit(code: int, stderr: str) -> DhanLoginError:
    """The exception for a failed run: its class from the exit code, its message what
    the binary wrote (run with ``--quiet``, it writes only the error)."""
    text = stderr.strip()
    if text.startswith("error: "):
        text = text[len("error: "):]
    return _BY_CODE.get(code, DhanLoginError)(text or "dhan-login exited %d" % code, code)
