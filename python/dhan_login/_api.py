"""The package's functions: each runs ``dhan-login`` once and reads what it prints."""

import json
import re
import subprocess
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Dict, List, Optional, Union

from ._binary import find_binary
from ._errors import from_exit


@dataclass(frozen=True)
class Token:
    """A token as ``dhan-login token --json`` prints it. Its repr hides the token."""

    access_token: str = field(repr=False)
    client_id: str
    expires_at: datetime
    """When Dhan stops accepting it (timezone-aware, UTC)."""
    kind: str
    """``SELF`` (made on Dhan Web, renewable) or ``APP``."""
    source: str
    """How it was obtained: ``renew``, ``totp``, ``browser``, ``manual`` or ``import``."""


@dataclass(frozen=True)
class StaticIps:
    """The IPs Dhan's order APIs accept requests from, and the first day each may change."""

    primary: Optional[str]
    secondary: Optional[str]
    modify_date_primary: Optional[date]
    modify_date_secondary: Optional[date]


def _parse_instant(text: str) -> datetime:
    # Python 3.9's fromisoformat takes neither "Z" nor nanoseconds: RFC 3339 in full.
    m = re.fullmatch(r"(.+T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", text.strip())
    if not m:
        raise ValueError("not an RFC 3339 time: %r" % text)
    base, frac, zone = m.groups()
    frac = "." + (frac or "0")[:6].ljust(6, "0")
    return datetime.fromisoformat(base + frac + ("+00:00" if zone == "Z" else zone))


def _run(args: List[str], profile: Optional[str]) -> str:
    cmd = [find_binary(), "--quiet"]
    if profile is not None:
        cmd += ["--profile", profile]
    # No terminal and no stdin: the binary never waits for a prompt nobody sees.
    done = subprocess.run(
        cmd + args, stdin=subprocess.DEVNULL, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise from_exit(done.returncode, done.stderr)
    return done.stdout


def _token(out: str) -> Token:
    v = json.loads(out)
    return Token(
        access_token=v["access_token"],
        client_id=v["client_id"],
        expires_at=_parse_instant(v["expires_at"]),
        kind=v["kind"],
        source=v["source"],
    )


def token(
    profile: Optional[str] = None,
    *,
    valid_until: Union[str, time, None] = None,
    verify: bool = False,
) -> Token:
    """A valid token for ``profile`` (default: ``$DHAN_LOGIN_PROFILE``, else ``default``),
    logging in only when the stored one is about to expire.

    ``verify`` also asks Dhan's profile endpoint (one request) and replaces a token Dhan
    refuses. ``valid_until`` ("HH:MM" IST, or a ``datetime.time``) asks for a token that
    lives past that time (``token --valid-until``).
    """
    args = ["token", "--json"]
    if verify:
        args.append("--verify")
    if valid_until is not None:
        hhmm = valid_until.strftime("%H:%M") if isinstance(valid_until, time) else valid_until
        args += ["--valid-until", hhmm]
    return _token(_run(args, profile))


def rejected(profile: Optional[str] = None) -> Token:
    """Reports that Dhan refused the token you were given (DH-901) and returns a good one:
    the owner checks it with Dhan, and replaces it only if Dhan says it is dead
    (``dhan-login token --rejected``)."""
    return _token(_run(["token", "--json", "--rejected"], profile))


def env(profile: Optional[str] = None) -> Dict[str, str]:
    """``{"DHAN_ACCESS_TOKEN": …, "DHAN_CLIENT_ID": …}``, to merge into a child's environment."""
    out = _run(["token", "--env"], profile)
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def ip(profile: Optional[str] = None) -> StaticIps:
    """The account's whitelisted IPs (``dhan-login ip show``), asked with the live token."""
    v = json.loads(_run(["ip", "show", "--json"], profile))

    def day(s: Optional[str]) -> Optional[date]:
        return date.fromisoformat(s) if s else None

    return StaticIps(
        primary=v["primary"],
        secondary=v["secondary"],
        modify_date_primary=day(v["modify_date_primary"]),
        modify_date_secondary=day(v["modify_date_secondary"]),
    )
