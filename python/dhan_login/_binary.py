"""Where the ``dhan-login`` binary is: the one this package was installed with, else PATH."""

import os
import shutil
import sys
import sysconfig
from pathlib import Path
from typing import Iterator, Optional

NAME = "dhan-login"


def _script_dirs() -> Iterator[Path]:
    # pip puts a wheel's binary in the scripts folder of the scheme it installed into:
    # the running interpreter's (a virtualenv, the system), or the user's (pip --user).
    yield Path(sysconfig.get_path("scripts"))
    user_scheme = "nt_user" if os.name == "nt" else "posix_user"
    if user_scheme in sysconfig.get_scheme_names():
        yield Path(sysconfig.get_path("scripts", scheme=user_scheme))
    here = Path(__file__).resolve().parent
    # pip install --target DIR: DIR/dhan_login/ and DIR/bin/.
    yield here.parent / "bin"
    # pip install --prefix P: P/lib/pythonX.Y/site-packages/dhan_login/ and P/bin/.
    if len(here.parents) > 3:
        yield here.parents[3] / "bin"


def find_binary() -> str:
    """The path of the ``dhan-login`` binary to run.

    ``$DHAN_LOGIN_BIN`` when set (another build, a test double); else the binary
    installed with this package; else ``dhan-login`` on PATH. Raises
    ``FileNotFoundError`` when there is none.
    """
    explicit = os.environ.get("DHAN_LOGIN_BIN")
    if explicit:
        return explicit
    exe = NAME + (".exe" if sys.platform == "win32" else "")
    for folder in _script_dirs():
        candidate = folder / exe
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found: Optional[str] = shutil.which(NAME)
    if found:
        return found
    raise FileNotFoundError(
        "no dhan-login binary: install the dhan-login wheel for this platform, or put "
        "dhan-login on PATH (cargo install dhan-login), or set DHAN_LOGIN_BIN"
    )
