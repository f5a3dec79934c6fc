"""The task journal: one SQLite row per video task, written the moment its id exists.

Video tasks cost money and outlive kernels, so their ids are kept on disk before anything
else happens.  Several kernels may share the file: it runs in WAL mode with a busy
timeout, and every write is its own committed transaction.  The API key is never stored;
neither is any URL userinfo.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from .._redact import redact
from ._sqlite import Database

FILE_NAME = "tasks.sqlite3"
LONG_TEXT = 512  # longer param strings (data URLs) are kept as a labelled hash

# Migration n (0-based) takes the schema from version n to n + 1; append, never edit.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE tasks (
        task_id     TEXT PRIMARY KEY,
        model       TEXT NOT NULL,
        prompt      TEXT NOT NULL,
        params      TEXT NOT NULL DEFAULT '{}',
        fingerprint TEXT NOT NULL DEFAULT '',
        cell_key    TEXT,
        base_url    TEXT NOT NULL DEFAULT '',
        created_at  REAL NOT NULL,
        status      TEXT NOT NULL DEFAULT 'queued',
        progress    INTEGER NOT NULL DEFAULT 0,
        error       TEXT,
        file        TEXT,
        updated_at  REAL NOT NULL
    );
    CREATE INDEX tasks_by_fingerprint ON tasks (fingerprint, created_at);
    CREATE INDEX tasks_by_created ON tasks (created_at);
    """,
    # Who made a task (its notebook and output folder) and who polls it now (a lease).
    """
    CREATE TABLE task_origins (
        task_id     TEXT PRIMARY KEY,
        notebook    TEXT,
        output_dir  TEXT,
        host        TEXT NOT NULL DEFAULT '',
        pid         INTEGER NOT NULL DEFAULT 0,
        created_at  REAL NOT NULL
    );
    CREATE TABLE task_leases (
        task_id     TEXT PRIMARY KEY,
        holder      TEXT NOT NULL,
        role        TEXT NOT NULL,
        host        TEXT NOT NULL,
        pid         INTEGER NOT NULL,
        acquired_at REAL NOT NULL,
        expires_at  REAL NOT NULL
    );
    CREATE INDEX tasks_by_updated ON tasks (updated_at);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)
UPDATABLE = frozenset({"status", "progress", "error", "file", "model", "cell_key"})


@dataclass(frozen=True, kw_only=True)
class TaskRow:
    """One journalled task."""

    task_id: str
    model: str
    prompt: str
    params: dict[str, Any] = field(default_factory=dict)
    fingerprint: str = ""
    cell_key: str | None = None
    base_url: str = ""
    created_at: float = 0.0
    status: str = "queued"
    progress: int = 0
    error: str | None = None
    file: str | None = None
    updated_at: float = 0.0


Rows = list[TaskRow]  # named, because `Journal.list` shadows the builtin in its class body
UNFINISHED = "status IN ('queued', 'running') OR (status = 'succeeded' AND file IS NULL)"
# Besides the gateway's four statuses, the journal's own words:
IN_FLIGHT = "inflight-"  # the id prefix of a create that has no gateway id yet
CREATING = "creating"  # the status of that marker while the create is on the wire
MAYBE = "maybe"  # ... and once the create's outcome is unknown
STOPPED = "stopped"  # a task whose polling the user cancelled


def is_unfinished(row: TaskRow) -> bool:
    """Still running at the gateway, or succeeded but not saved (the SQL of UNFINISHED)."""
    return row.status in ("queued", "running") or (row.status == "succeeded" and not row.file)


@dataclass(frozen=True, kw_only=True)
class Origin:
    """Where a task was made: the notebook (absolute path), its output folder, the process."""

    task_id: str
    notebook: str | None = None
    output_dir: str | None = None
    host: str = ""
    pid: int = 0
    created_at: float = 0.0


@dataclass(frozen=True, kw_only=True)
class Lease:
    """Who polls a task now: one holder at a time, until ``expires_at`` unless renewed."""

    task_id: str
    holder: str
    role: str  # "kernel" or "server"
    host: str
    pid: int
    acquired_at: float = 0.0
    expires_at: float = 0.0


@dataclass(frozen=True)
class Entry:
    """A task with its origin and lease (the server's view of the journal)."""

    row: TaskRow
    origin: Origin | None
    lease: Lease | None


Entries = list[Entry]  # named for the same reason as Rows
Record = TypeVar("Record", TaskRow, Origin, Lease)


# Each record's fields are the columns of its table, in order.
_NAMES: dict[type[Any], tuple[str, ...]] = {
    record: tuple(f.name for f in fields(record)) for record in (TaskRow, Origin, Lease)
}
_COLUMNS, _ORIGIN, _LEASE = (", ".join(names) for names in _NAMES.values())


def fingerprint(
    model: str, prompt: str, params: Mapping[str, Any], inputs_digest: str = "", base_url: str = ""
) -> str:
    """A stable hash of everything that makes two video requests the same request."""
    payload = {
        "model": model,
        "prompt": prompt,
        "params": dict(params),
        "inputs": inputs_digest,
        "gateway": safe_url(base_url),
    }
    text = json.dumps(payload, sort_keys=True, default=_json_default, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def digest_inputs(*items: Any) -> str:
    """One hash of input files (by content), bytes, and URLs or other values (as text)."""
    digest = hashlib.sha256()
    for item in items:
        digest.update(_item_digest(item).encode())
    return digest.hexdigest() if items else ""


def _item_digest(item: Any) -> str:
    if isinstance(item, (bytes, bytearray)):
        return hashlib.sha256(item).hexdigest()
    text = str(item)
    if isinstance(item, (str, os.PathLike)) and "://" not in text and not text.startswith("data:"):
        try:
            return _file_digest(Path(item).expanduser())
        except (OSError, ValueError):  # not a readable file: a name, a URL, a long string
            pass
    return f"text:{text}"


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()  # by content: an edited input file is a new request
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def safe_url(url: str) -> str:
    """``url`` without any user:password part."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def compact(value: Any, limit: int = LONG_TEXT) -> Any:
    """``value`` as small JSON: bytes and long strings (data URLs) become labelled hashes."""
    if isinstance(value, Mapping):
        return {str(k): compact(v, limit) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else value
        return [compact(v, limit) for v in items]
    if isinstance(value, str) and len(value) > limit:
        digest = hashlib.sha256(value.encode()).hexdigest()[:16]
        return f"{value[:48]}…<{len(value)} chars sha256:{digest}>"
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    return _json_default(value)


def _json_default(value: Any) -> Any:
    # Params should be JSON already; anything else is stored as a short, stable label.
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes sha256:{hashlib.sha256(value).hexdigest()[:16]}>"
    if isinstance(value, (set, frozenset, tuple)):
        return sorted(value, key=str) if isinstance(value, (set, frozenset)) else list(value)
    return str(value)


def dumps_params(params: Mapping[str, Any]) -> str:
    """Params as the JSON text the journal stores (secrets redacted)."""
    return redact(json.dumps(compact(params), sort_keys=True, ensure_ascii=False))


Claims = list[bool]  # named: `Journal.list` shadows the builtin in its class body


class Journal(Database):
    """The task journal file; opened lazily, safe to share between threads and kernels."""

    FILE_NAME = FILE_NAME
    WHAT = "task journal"
    MIGRATIONS = MIGRATIONS
    SYNCHRONOUS = "FULL"  # a recorded id survives a power cut too
    DAMAGED_HINT = "tasks already made keep running on the gateway"

    def record(
        self,
        *,
        task_id: str,
        model: str,
        prompt: str,
        params: Mapping[str, Any] | None = None,
        fingerprint: str = "",
        cell_key: str | None = None,
        base_url: str = "",
        status: str = "queued",
        progress: int = 0,
        created_at: float | None = None,
    ) -> TaskRow:
        """Store a new task and commit at once (an existing id keeps its first row)."""
        now = time.time()
        row = TaskRow(
            task_id=task_id,
            model=model,
            prompt=redact(prompt),
            params=json.loads(dumps_params(params or {})),
            fingerprint=fingerprint,
            cell_key=cell_key,
            base_url=safe_url(base_url),
            created_at=created_at or now,
            status=status,
            progress=int(progress),
            updated_at=now,
        )
        values = {**_values(row), "params": dumps_params(row.params)}
        sql = f"INSERT OR IGNORE INTO tasks ({_COLUMNS}) VALUES ({_slots(TaskRow)})"
        with self._transaction() as conn:
            conn.execute(sql, tuple(values.values()))
        return self.get(task_id) or row

    def update(self, task_id: str, **fields: Any) -> None:
        """Change some of status, progress, error, file, model, cell_key."""
        unknown = set(fields) - UPDATABLE
        if unknown:
            raise ValueError(f"cannot update journal fields {sorted(unknown)}")
        if not fields:
            return
        values = [redact(v) if isinstance(v, str) else v for v in fields.values()]
        assignments = ", ".join(f"{name} = ?" for name in fields)
        with self._transaction() as conn:
            conn.execute(
                f"UPDATE tasks SET {assignments}, updated_at = ? WHERE task_id = ?",
                (*values, time.time(), task_id),
            )

    def promote(self, marker: str, task_id: str, *, model: str, status: str, progress: int) -> bool:
        """Give the in-flight row ``marker`` its gateway id, in one transaction.

        False when there is no such marker (then record the task in full).

        The marker and the id are never both in the journal, so a crash at any moment leaves
        either the id or a marker whose outcome is honestly unknown, never a ghost beside the id.
        """
        now = time.time()
        with self._transaction() as conn:
            if conn.execute("SELECT 1 FROM tasks WHERE task_id = ?", (task_id,)).fetchone():
                conn.execute("DELETE FROM tasks WHERE task_id = ?", (marker,))
                return True  # journalled already (an attach adopted it meanwhile)
            renamed = conn.execute(
                "UPDATE tasks SET task_id = ?, model = ?, status = ?, progress = ?, "
                "created_at = ?, updated_at = ? WHERE task_id = ?",
                (task_id, model, status, int(progress), now, now, marker),
            )
            return renamed.rowcount == 1

    def get(self, task_id: str) -> TaskRow | None:
        """The row of ``task_id``, or None."""
        rows = self._query(f"SELECT {_COLUMNS} FROM tasks WHERE task_id = ?", (task_id,))
        return rows[0] if rows else None

    def forget(self, task_id: str) -> None:
        """Remove a row (the in-flight marker of a create that got its real id)."""
        with self._transaction() as conn:
            conn.execute("DELETE FROM tasks WHERE task_id = ?", (task_id,))

    def find(self, fingerprint: str) -> TaskRow | None:
        """The latest task with this fingerprint that has not failed, or None."""
        rows = self._query(
            f"SELECT {_COLUMNS} FROM tasks WHERE fingerprint = ? AND status != 'failed' "
            "ORDER BY created_at DESC, rowid DESC LIMIT 1",
            (fingerprint,),
        )
        return rows[0] if rows else None

    def list(self, limit: int = 50) -> Rows:
        """The newest ``limit`` tasks, newest first."""
        return self._query(
            f"SELECT {_COLUMNS} FROM tasks ORDER BY created_at DESC, rowid DESC LIMIT ?", (limit,)
        )

    def set_origin(self, origin: Origin) -> None:
        """Record where a task was made (the first record of an id stays)."""
        with self._transaction() as conn:
            values = {**_values(origin), "created_at": origin.created_at or time.time()}
            conn.execute(
                f"INSERT OR IGNORE INTO task_origins ({_ORIGIN}) VALUES ({_slots(Origin)})",
                tuple(values.values()),
            )

    def origin(self, task_id: str) -> Origin | None:
        """Where ``task_id`` was made, if recorded."""
        with self._guard() as conn:
            found = conn.execute(
                f"SELECT {_ORIGIN} FROM task_origins WHERE task_id = ?", (task_id,)
            ).fetchone()
        return _load(Origin, found) if found else None

    def lease(self, task_id: str) -> Lease | None:
        """The lease on ``task_id``, expired or not, if any."""
        with self._guard() as conn:
            found = conn.execute(
                f"SELECT {_LEASE} FROM task_leases WHERE task_id = ?", (task_id,)
            ).fetchone()
        return _load(Lease, found) if found else None

    def claim(self, lease: Lease, may_displace: Callable[[Lease], bool]) -> bool:
        """Take or renew ``lease`` atomically; another holder goes only if ``may_displace(it)``."""
        return self.claim_all([lease], may_displace)[0]

    def claim_all(self, leases: Sequence[Lease], may_displace: Callable[[Lease], bool]) -> Claims:
        """`claim` for several leases in one transaction (polls that fall due together)."""
        with self._transaction() as conn:
            return [_claim(conn, lease, may_displace) for lease in leases]

    def release(self, task_id: str, holder: str) -> None:
        """Give up ``holder``'s lease on ``task_id`` (someone else may poll it at once)."""
        with self._transaction() as conn:
            gone = conn.execute(
                "DELETE FROM task_leases WHERE task_id = ? AND holder = ?", (task_id, holder)
            ).rowcount
            if gone:
                conn.execute(
                    "UPDATE tasks SET updated_at = ? WHERE task_id = ?", (time.time(), task_id)
                )

    def unfinished(self, limit: int = 200) -> Entries:
        """Tasks still running at the gateway or not yet saved, newest first."""
        marker = f"{IN_FLIGHT}%"
        return self._entries(f"WHERE ({UNFINISHED}) AND t.task_id NOT LIKE ?", (marker,), limit)

    def changed(
        self, since: float | None = None, now: float | None = None, limit: int = 200
    ) -> Entries:
        """The newest tasks with their origins and leases; with ``since``, changed after it.

        A lease that expired after ``since`` (and by ``now``) counts as a change: its task
        lost its poller then.
        """
        if since is None:
            return self._entries("", (), limit)
        now = time.time() if now is None else now
        return self._entries(
            "WHERE t.updated_at > ? OR (l.expires_at > ? AND l.expires_at <= ?)",
            (since, since, now),
            limit,
        )

    def _entries(self, where: str, args: tuple[Any, ...], limit: int) -> Entries:
        columns = ", ".join(
            f"{alias}.{name}"
            for alias, record in (("t", TaskRow), ("o", Origin), ("l", Lease))
            for name in _NAMES[record]
        )
        sql = (
            f"SELECT {columns} FROM tasks t LEFT JOIN task_origins o ON o.task_id = t.task_id "
            f"LEFT JOIN task_leases l ON l.task_id = t.task_id {where} "
            "ORDER BY t.created_at DESC, t.rowid DESC LIMIT ?"
        )
        with self._guard() as conn:
            found = conn.execute(sql, (*args, limit)).fetchall()
        n, m = len(_NAMES[TaskRow]), len(_NAMES[Origin])
        return [
            Entry(
                _row(r[:n]),
                _load(Origin, r[n : n + m]) if r[n] is not None else None,
                _load(Lease, r[n + m :]) if r[n + m] is not None else None,
            )
            for r in found
        ]

    # --- plumbing ------------------------------------------------------------------------

    def _query(self, sql: str, args: tuple[Any, ...]) -> Rows:
        with self._guard() as conn:
            return [_row(r) for r in conn.execute(sql, args).fetchall()]


def _values(record: TaskRow | Origin | Lease) -> dict[str, Any]:
    """A record's column values, by name, in its table's order."""
    return {name: getattr(record, name) for name in _NAMES[type(record)]}


def _slots(record: type[Any]) -> str:
    return ", ".join("?" * len(_NAMES[record]))


def _load(record: type[Record], values: Sequence[Any]) -> Record:
    """A record from its table's columns, in order."""
    return record(**dict(zip(_NAMES[record], values, strict=True)))


def _row(values: Sequence[Any]) -> TaskRow:
    columns = dict(zip(_NAMES[TaskRow], values, strict=True))
    return TaskRow(**columns | {"params": _load_params(columns["params"])})


def _load_params(text: Any) -> dict[str, Any]:
    try:
        loaded = json.loads(text or "{}")
    except ValueError:
        return {}
    return loaded if isinstance(loaded, dict) else {}


PROMPT_EXCERPT = 120  # characters of a task's prompt that lists and cards show


def excerpt(text: str, limit: int = PROMPT_EXCERPT) -> str:
    """``text`` on one line, cut to ``limit`` characters (how every reader shows a prompt)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _claim(conn: sqlite3.Connection, lease: Lease, may_displace: Callable[[Lease], bool]) -> bool:
    found = conn.execute(
        f"SELECT {_LEASE} FROM task_leases WHERE task_id = ?", (lease.task_id,)
    ).fetchone()
    current = _load(Lease, found) if found else None
    if current is not None and current.holder != lease.holder and not may_displace(current):
        return False
    acquired = current.acquired_at if current and current.holder == lease.holder else None
    values = {**_values(lease), "acquired_at": acquired or lease.acquired_at}
    conn.execute(
        f"INSERT OR REPLACE INTO task_leases ({_LEASE}) VALUES ({_slots(Lease)})",
        tuple(values.values()),
    )
    if acquired is None:  # a new poller: readers of `changed` should see it
        conn.execute(
            "UPDATE tasks SET updated_at = ? WHERE task_id = ?", (lease.acquired_at, lease.task_id)
        )
    return True
