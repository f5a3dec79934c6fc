"""One poller per video task across kernels and servers: leases in the task journal.

The process that polls a task holds its lease and renews it before every sleep, for a
little more than twice the sleep; a lease that was not renewed in time has lost its owner
(the kernel was shut down, restarted or crashed).  On the same host a lease whose process
is gone is dead at once, without waiting.  A kernel that attaches to a task takes it over
from the server; the server never takes a task from a live kernel, and two servers never
poll the same task.  Standard library only.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from .._exceptions import TokenhotError
from ._journal import Journal, Lease

Role = Literal["kernel", "server"]
MIN_LEASE = 30.0  # seconds; a lease covers at least this much
GRACE = 15.0  # added to twice the next sleep: a slow poll or a busy journal is not death
_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def lease_for(delay: float) -> float:
    """How long a lease lasts when its holder next polls after ``delay`` seconds."""
    return max(MIN_LEASE, 2 * delay + GRACE)


def host_id() -> str:
    """This machine: its host name and, on Linux, its boot (pids mean nothing elsewhere)."""
    try:
        boot = _BOOT_ID.read_text().strip()
    except OSError:
        boot = ""
    return f"{socket.gethostname()}/{boot}" if boot else socket.gethostname()


def pid_alive(pid: int) -> bool:
    """Whether a process of this id exists here (True when that cannot be told)."""
    if os.name != "posix" or pid <= 0:
        return True  # os.kill(pid, 0) would terminate the process on Windows
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists but belongs to someone else
        return True
    return True


@dataclass
class Keeper:
    """This process's leases: taken, renewed and given back on one journal."""

    journal: Journal
    role: Role
    clock: Callable[[], float] = time.time
    host: str = field(default_factory=host_id)
    pid: int = field(default_factory=os.getpid)
    holder: str = ""
    _held: set[str] = field(default_factory=set, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self.holder = self.holder or f"{self.role}:{self.host}:{self.pid}:{uuid.uuid4().hex[:8]}"

    def hold(self, task_id: str, delay: float) -> bool:
        """Take or renew the lease on ``task_id`` for the next ``delay`` seconds of sleep."""
        return self.hold_all({task_id: delay})[task_id]

    def hold_all(self, delays: dict[str, float]) -> dict[str, bool]:
        """`hold` for several tasks (task id → delay) in one journal transaction."""
        now = self.clock()
        leases = [
            Lease(
                task_id=task_id,
                holder=self.holder,
                role=self.role,
                host=self.host,
                pid=self.pid,
                acquired_at=now,
                expires_at=now + lease_for(delay),
            )
            for task_id, delay in delays.items()
        ]
        taken = self.journal.claim_all(leases, lambda current: self.may_displace(current, now))
        with self._lock:
            for task_id, held in zip(delays, taken, strict=True):
                (self._held.add if held else self._held.discard)(task_id)
        return dict(zip(delays, taken, strict=True))

    def may_displace(self, current: Lease, now: float | None = None) -> bool:
        """Whether ``current`` has lost its owner, or yields to us (a kernel over a server)."""
        now = self.clock() if now is None else now
        if current.holder == self.holder or current.expires_at <= now:
            return True
        if self.role == "kernel" and current.role == "server":
            return True
        return current.host == self.host and not pid_alive(current.pid)

    def live(self, lease: Lease | None, now: float | None = None) -> bool:
        """Whether ``lease`` has an owner polling its task right now."""
        if lease is None:
            return False
        now = self.clock() if now is None else now
        return lease.expires_at > now and not (lease.host == self.host and not pid_alive(lease.pid))

    def release(self, task_id: str) -> None:
        """Give the lease back (a finished task, a stopped poller); never raises."""
        with self._lock:
            if task_id not in self._held:
                return
            self._held.discard(task_id)
        with contextlib.suppress(TokenhotError):
            self.journal.release(task_id, self.holder)

    def release_all(self) -> None:
        """Give back every lease (a kernel shutting down: the server may take over at once)."""
        with self._lock:
            held = list(self._held)
        for task_id in held:
            self.release(task_id)
