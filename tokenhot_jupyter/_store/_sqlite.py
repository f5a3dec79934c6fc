"""A small SQLite file under ``TOKENHOT_HOME`` that many kernels share.

WAL mode with a busy timeout, every write its own ``BEGIN IMMEDIATE`` transaction, the
schema brought up to date by append-only migrations, and every SQLite failure turned into
one ConfigurationError that says what to do.  Standard library only.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

from .._exceptions import ConfigurationError

ENV_HOME = "TOKENHOT_HOME"
APP_NAME = "tokenhot-jupyter"
BUSY_TIMEOUT = 10.0  # seconds another kernel may hold the write lock before we give up


def default_home() -> Path:
    """``$TOKENHOT_HOME``, else the per-user data folder of this platform."""
    env = os.environ.get(ENV_HOME, "").strip()
    if env:
        return Path(env).expanduser()
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or os.environ.get("APPDATA")
        return Path(base or Path.home() / "AppData" / "Local") / APP_NAME
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / APP_NAME
    xdg = os.environ.get("XDG_DATA_HOME", "").strip()
    return Path(xdg or Path.home() / ".local" / "share") / APP_NAME


class Database:
    """One shared SQLite file; subclasses name it and list their migrations."""

    FILE_NAME: ClassVar[str]
    WHAT: ClassVar[str]  # how messages name the file, e.g. "usage ledger"
    MIGRATIONS: ClassVar[tuple[str, ...]]  # migration n takes version n to n + 1; append only
    SYNCHRONOUS: ClassVar[str] = "NORMAL"  # WAL + NORMAL: durable across crashes of a process
    DAMAGED_HINT: ClassVar[str] = ""  # said after "move it aside" when the file is damaged
    BUSY_TIMEOUT: ClassVar[float] = BUSY_TIMEOUT  # default wait for another kernel's write lock

    def __init__(
        self,
        path: Path | None = None,
        *,
        timeout: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._path = Path(path) if path is not None else None
        self._timeout = self.BUSY_TIMEOUT if timeout is None else timeout
        self._clock = clock  # when rows are written (tests pass a fake one)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    @property
    def path(self) -> Path:
        """The database file (resolved from the environment on first use)."""
        if self._path is None:
            self._path = default_home() / self.FILE_NAME
        return self._path

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"

    def close(self) -> None:
        """Close the connection (it reopens on next use)."""
        with self._lock:
            self._drop_connection()

    def _rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._guard() as conn:
            return conn.execute(sql, args).fetchall()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._guard() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.rollback()
                raise
            conn.commit()

    @contextlib.contextmanager
    def _guard(self) -> Iterator[sqlite3.Connection]:
        """Hold the lock and turn SQLite failures into one clear ConfigurationError."""
        with self._lock:
            try:
                yield self._connection()
            except sqlite3.Error as exc:
                self._drop_connection()
                raise self._error(exc) from None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = self._open()
        return self._conn

    def _drop_connection(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None

    def _open(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise sqlite3.OperationalError(f"cannot create folder: {exc.strerror or exc}") from None
        conn = sqlite3.connect(
            self.path, timeout=self._timeout, isolation_level=None, check_same_thread=False
        )
        try:
            _wal(conn, self._timeout)
            conn.execute(f"PRAGMA synchronous={self.SYNCHRONOUS}")
            migrate(conn, self.MIGRATIONS)
        except BaseException:
            conn.close()
            raise
        return conn

    def _error(self, exc: sqlite3.Error) -> ConfigurationError:
        reason = str(exc) or type(exc).__name__
        if _is_corrupt(reason):
            return ConfigurationError(
                f"The {self.WHAT} {self.path} is damaged ({reason}).",
                hint=f"Move it aside (e.g. rename it to {self.path.name}.bad) and run again"
                + (f"; {self.DAMAGED_HINT}." if self.DAMAGED_HINT else "."),
            )
        if "newer" in reason:
            return ConfigurationError(
                f"The {self.WHAT} {self.path} {reason}.",
                hint=f"Upgrade tokenhot-jupyter, or set {ENV_HOME} to another folder.",
            )
        return ConfigurationError(
            f"The {self.WHAT} {self.path} cannot be used ({reason}).",
            hint=f"Make that folder writable, or set {ENV_HOME} to a writable folder.",
        )


def _is_corrupt(reason: str) -> bool:
    return any(w in reason for w in ("not a database", "malformed", "corrupt", "file is encrypted"))


def _wal(conn: sqlite3.Connection, timeout: float) -> None:
    """WAL mode.  Turning a new file to WAL needs it alone for a moment, and SQLite does not
    wait for that (no busy handler): two kernels creating it at once would see "database is
    locked" at once, so the switch is tried again until the busy timeout."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def migrate(conn: sqlite3.Connection, migrations: tuple[str, ...]) -> None:
    """Bring the schema up to ``len(migrations)``; one process migrates while others wait."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        found = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] or 0
        if found > len(migrations):
            raise sqlite3.OperationalError(f"was written by a newer version (schema {found})")
        for version in range(found, len(migrations)):
            for statement in migrations[version].split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version + 1,))
    except BaseException:
        conn.rollback()
        raise
    conn.commit()
