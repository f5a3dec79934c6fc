"""Which key and gateway a request uses: argument → ``TOKENHOT_API_KEY`` → stored → login.

The stored key is a one-line file under ``TOKENHOT_HOME`` (never a notebook folder), written
by the JupyterLab panel or `KeyStore.write` with mode 0600 from the moment it exists.
`resolve` runs at every request: it reads the environment and stats that file, re-reading
it only when it changed, so a kernel that is already running picks up a key stored (or
forgotten) from the panel at its next request.  The simulator's stand-in key is used only
while no real key is in force (see `resolve`).  Standard library only: the kernel, the
Jupyter server extension and the launcher all import this module.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import secrets
import stat
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from .._config import (
    DEFAULT_BASE_URL,
    ENV_API_KEY,
    ENV_BASE_URL,
    ENV_SIMULATED,
    SIMULATOR_KEY,
    resolve_api_key,
    resolve_base_url,
)
from .._exceptions import ConfigurationError, InvalidInputError
from .._redact import mask_key, register_secret
from ._sqlite import ENV_HOME, default_home

KEY_FILE = "api_key"
MAX_KEY_LENGTH = 512
SIMULATED_VALUES = ("1", "always")  # the values of TOKENHOT_SIMULATED (see _config)

KeySource = Literal["argument", "environment", "stored", "login", "none"]
Signature = tuple[str, int, int, int]  # (path, mtime_ns, size, inode)


@dataclass(frozen=True, kw_only=True)
class Credentials:
    """The key (or the simulator's stand-in) and gateway in force, and where the key came from."""

    key: str | None
    source: KeySource
    base_url: str
    simulated: bool

    def __repr__(self) -> str:
        return (
            f"Credentials(key={mask_key(self.key)!r}, source={self.source!r}, "
            f"base_url={self.base_url!r}, simulated={self.simulated})"
        )


# --- the stored key ------------------------------------------------------------------------


class KeyStore:
    """The key file under ``TOKENHOT_HOME``: written atomically, mode 0600, read when changed."""

    def __init__(self, path: Path | None = None) -> None:
        self._path = Path(path) if path is not None else None
        self._lock = threading.Lock()
        self._seen: Signature | None = None  # what the file looked like at the last read
        self._key: str | None = None

    @property
    def path(self) -> Path:
        """The key file (``$TOKENHOT_HOME/api_key`` unless given)."""
        return self._path if self._path is not None else default_home() / KEY_FILE

    def __repr__(self) -> str:
        return f"KeyStore({str(self.path)!r})"

    def read(self) -> str | None:
        """The stored key, or None; costs one ``stat`` unless the file changed."""
        path = self.path
        try:
            info = path.stat()
        except FileNotFoundError:
            return self._remember(None, None)
        except OSError as exc:
            raise self._unreadable(exc) from None
        signature = (str(path), info.st_mtime_ns, info.st_size, info.st_ino)
        with self._lock:
            if signature == self._seen:
                return self._key
        _check_private(path, info)
        try:
            text = path.read_text(encoding="ascii")
        except FileNotFoundError:  # forgotten between stat and read
            return self._remember(None, None)
        except (OSError, UnicodeDecodeError) as exc:
            raise self._unreadable(exc) from None
        return self._remember(signature, _clean(text.strip(), self.path))

    def write(self, key: str) -> str:
        """Check ``key`` and store it (mode 0600 from creation, then an atomic rename)."""
        clean = check_key(key)
        path = self.path
        folder = path.parent
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            temporary = folder / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
            _write_private(temporary, clean + "\n")
            try:
                os.replace(temporary, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    temporary.unlink()
                raise
        except OSError as exc:
            raise ConfigurationError(
                f"The key could not be stored in {folder} ({exc.strerror or type(exc).__name__}).",
                hint=f"Make that folder writable, or set {ENV_HOME} to a writable folder.",
            ) from None
        return clean

    def delete(self) -> bool:
        """Forget the stored key; True if there was one."""
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise ConfigurationError(
                f"The stored key {self.path} could not be removed "
                f"({exc.strerror or type(exc).__name__}).",
                hint="Delete the file by hand.",
            ) from None
        self._remember(None, None)
        return True

    def _remember(self, signature: Signature | None, key: str | None) -> str | None:
        register_secret(key)  # before anything could put it in a message
        with self._lock:
            self._seen, self._key = signature, key
        return key

    def _unreadable(self, exc: BaseException) -> ConfigurationError:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        return ConfigurationError(
            f"The stored key {self.path} cannot be read ({reason}).",
            hint="Store the key again from the Tokenhot panel, or delete that file.",
        )


def check_key(key: str | None) -> str:
    """``key`` stripped, or an error saying what is wrong with it (never echoing it)."""
    clean = resolve_api_key(key if key is not None else "")
    if clean is None:
        raise InvalidInputError("No key was given.", hint="Paste the key (it looks like sk-...).")
    if len(clean) > MAX_KEY_LENGTH:
        raise InvalidInputError(
            f"That is not an API key (it is over {MAX_KEY_LENGTH} characters long).",
            hint="Paste the key exactly as issued (it looks like sk-...).",
        )
    return clean


def _clean(text: str, path: Path) -> str | None:
    try:
        return check_key(text) if text else None
    except (ConfigurationError, InvalidInputError):
        raise ConfigurationError(
            f"The stored key {path} is not a valid key.",
            hint="Store the key again from the Tokenhot panel, or delete that file.",
        ) from None


def _write_private(path: Path, text: str) -> None:
    """Create ``path`` readable by its owner only: the mode is set before any byte is written."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, 0o600)
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, 0o600)  # exactly 0600, whatever the umask
        os.write(fd, text.encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)


def _check_private(path: Path, info: os.stat_result) -> None:
    """Refuse a key file other users could read (as ssh does); POSIX only."""
    if os.name != "posix" or not stat.S_IMODE(info.st_mode) & 0o077:
        return
    raise ConfigurationError(
        f"The stored key {path} can be read by other users, so it is not used.",
        hint=f"Run chmod 600 {path}, or store the key again from the Tokenhot panel.",
    )


_store = KeyStore()


def store() -> KeyStore:
    """The process-wide key store (it follows ``TOKENHOT_HOME``)."""
    return _store


# --- %tokenhot login ------------------------------------------------------------------------

_login_lock = threading.Lock()
_login_key: str | None = None


def login(key: str) -> str:
    """Keep ``key`` in this process only (``%tokenhot login``); the last in the precedence."""
    global _login_key
    clean = check_key(key)
    register_secret(clean)
    with _login_lock:
        _login_key = clean
    return clean


def logout() -> None:
    """Forget the key given to `login`."""
    global _login_key
    with _login_lock:
        _login_key = None


# --- resolution ---------------------------------------------------------------------------


def find_key(
    api_key: str | None = None, keys: KeyStore | None = None
) -> tuple[str | None, KeySource]:
    """The first key of argument → ``TOKENHOT_API_KEY`` → stored key → login, and its source."""
    if api_key is not None and api_key.strip():
        return resolve_api_key(api_key), "argument"
    env = resolve_api_key(os.environ.get(ENV_API_KEY))
    if env:
        return env, "environment"
    stored = (keys or _store).read()
    if stored:
        return stored, "stored"
    with _login_lock:
        logged_in = _login_key
    return (logged_in, "login") if logged_in else (None, "none")


def resolve(
    api_key: str | None = None, base_url: str | None = None, keys: KeyStore | None = None
) -> Credentials:
    """The credentials in force now; the same rule in kernels, the server and the launcher.

    Simulated means: ``TOKENHOT_SIMULATED=always``; or ``=1`` (the launcher found no key) and
    still no key anywhere; or no key and ``TOKENHOT_BASE_URL`` on loopback (a simulator you
    started).  A real key under ``=1`` goes to the public gateway, because the environment's
    base URL is then the launcher's simulator.  Arguments are never rewritten.
    """
    key, source = find_key(api_key, keys)
    flag = os.environ.get(ENV_SIMULATED, "").strip().lower()
    explicit = (api_key is not None and bool(api_key.strip())) or base_url is not None
    if not explicit and flag in SIMULATED_VALUES:
        if flag == "always" or key in (None, SIMULATOR_KEY):  # older launchers set the stand-in
            return _simulator(resolve_base_url(None))
        return Credentials(key=key, source=source, base_url=DEFAULT_BASE_URL, simulated=False)
    url = resolve_base_url(base_url)
    if key is None and base_url is None and is_loopback(url):
        return _simulator(url)
    return Credentials(key=key, source=source, base_url=url, simulated=False)


def _simulator(base_url: str) -> Credentials:
    """The simulator at ``base_url``, with the stand-in key it expects."""
    return Credentials(key=SIMULATOR_KEY, source="none", base_url=base_url, simulated=True)


def simulator_url() -> str | None:
    """The launcher's simulator (``TOKENHOT_BASE_URL`` under ``TOKENHOT_SIMULATED``), if any."""
    if os.environ.get(ENV_SIMULATED, "").strip().lower() not in SIMULATED_VALUES:
        return None
    try:
        return resolve_base_url(os.environ.get(ENV_BASE_URL) or None)
    except ConfigurationError:
        return None


def is_loopback(url: str) -> bool:
    """True for http(s) URLs on this machine (localhost, 127.0.0.0/8, ::1)."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
