"""The server finishes video tasks whose kernel is gone.

Every ``scan_interval`` the server reads the journal for tasks that are still running at
the gateway (or succeeded but were never saved) and whose lease has no live owner.  It
takes the lease atomically, then follows the task as the kernels do (`_follow`: the same
poll loop, interval, server hints and download), saving the video into the folder its
notebook would have used; a kernel that attaches later finds it done.  It needs a key
for the task's gateway: the stored key or the server's environment (the simulator needs
none).  Without one the task waits for a kernel.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from .._client import Client
from .._config import DEFAULT_POLL_INTERVAL, DEFAULT_VIDEO_DEADLINE, SIMULATOR_KEY
from .._exceptions import TokenhotError
from .._follow import Followed, Follower
from .._poll import REAL_CLOCK, Clock
from .._store._credentials import Credentials, resolve, simulator_url
from .._store._journal import Entry, Journal, is_unfinished, safe_url
from .._store._leases import Keeper
from .._store._sqlite import default_home

log = logging.getLogger("tokenhot_jupyter")
SCAN_INTERVAL = 15.0  # seconds between journal scans (no gateway traffic unless taken over)


class ServerPoller:
    """Takes over the journal's orphaned video tasks, one lease per task."""

    def __init__(
        self,
        journal: Journal,
        *,
        clock: Callable[[], float] = time.time,
        credentials: Callable[[], Credentials] = resolve,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        deadline: float = DEFAULT_VIDEO_DEADLINE,  # older tasks are left alone
        poll_clock: Clock = REAL_CLOCK,
    ) -> None:
        self.journal = journal
        self.clock = clock
        self.deadline = deadline
        self._credentials = credentials
        self.keeper = Keeper(journal, "server", clock=clock)
        self.manager = Follower(
            Followed,
            self._default_client,
            journal,
            lambda: default_home() / "videos",
            poll_interval=poll_interval,
            deadline=deadline,
            leases=self.keeper,
            clock=poll_clock,
        )

    def key_for(self, base_url: str) -> str | None:
        """The key for a task made at ``base_url``, or None when the server has none for it.

        The key in force goes only to its own gateway; the simulator the launcher started
        gets the simulator's stand-in.  A key is never sent to any other host.
        """
        try:
            creds = self._credentials()
        except TokenhotError:
            return None
        if creds.key and safe_url(creds.base_url) == base_url:
            return creds.key
        if base_url and base_url in (safe_url(simulator_url() or ""), _sim(creds)):
            return SIMULATOR_KEY
        return None

    def orphans(self, now: float | None = None) -> list[Entry]:
        """Unfinished tasks made by a kernel, recent enough, with no live poller."""
        now = self.clock() if now is None else now
        return [
            e
            for e in self.journal.unfinished()
            if e.origin is not None
            and not e.row.error
            and now - e.row.created_at < self.deadline
            and not self.keeper.live(e.lease, now)
        ]

    def scan(self) -> list[str]:
        """One pass: take over every orphan the server can poll; returns their ids."""
        taken = []
        for entry in self.orphans():
            task_id, base_url = entry.row.task_id, entry.row.base_url
            key = self.key_for(base_url)
            if key is None or not self.keeper.hold(task_id, DEFAULT_POLL_INTERVAL):
                continue
            folder = entry.origin.output_dir if entry.origin else None
            log.info("taking over video task %s (its kernel is gone)", task_id)
            try:
                self.manager.attach(
                    task_id,
                    client=Client(key, base_url),
                    output_dir=Path(folder) if folder else None,
                )
            except TokenhotError as exc:
                log.warning("could not take over %s: %s", task_id, exc)
                self.keeper.release(task_id)
                continue
            taken.append(task_id)
        return taken

    def poller(self, entry: Entry, now: float | None = None) -> str | None:
        """ "kernel", "server" or "waiting-for-kernel": who polls it; None: nobody needs to."""
        now = self.clock() if now is None else now
        row = entry.row
        if not is_unfinished(row):
            return None  # (its lease goes a moment after the video is saved)
        if self.keeper.live(entry.lease, now):
            return entry.lease.role if entry.lease else None
        if row.error or now - row.created_at >= self.deadline:
            return None
        if entry.origin is not None and self.key_for(row.base_url) is not None:
            return "server"  # taken at the next scan
        return "waiting-for-kernel"

    def close(self) -> None:
        """Stop polling and give every lease back (the server is shutting down)."""
        self.manager.shutdown()

    def _default_client(self) -> Client:
        creds = self._credentials()
        return Client(creds.key, creds.base_url)


def _sim(creds: Credentials) -> str | None:
    return safe_url(creds.base_url) if creds.simulated else None
