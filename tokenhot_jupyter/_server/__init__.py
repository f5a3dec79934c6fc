"""The Jupyter server extension: Tokenhot's REST API and the poller of orphaned video tasks.

Enabled by ``jupyter-config/server-config/tokenhot_jupyter.json`` (installed under
``etc/jupyter/jupyter_server_config.d``).  Only a Jupyter server imports this package; a
kernel never does (the magics work with no extension at all).  Handlers live in
`_handlers`, the answers in `_service`, the takeover of tasks in `_poller`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any

from .._store._budget import Budgets
from .._store._credentials import store
from .._store._journal import Journal
from .._store._ledger import Ledger
from ._handlers import handlers
from ._poller import SCAN_INTERVAL, ServerPoller
from ._service import Service

log = logging.getLogger("tokenhot_jupyter")
SETTINGS_KEY = "tokenhot_service"


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    """Where jupyter_server finds this extension."""
    return [{"module": "tokenhot_jupyter._server"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    """Make the service and register every handler under ``{base_url}tokenhot/api/``."""
    journal = Journal()
    service = Service(
        root_dir=Path(serverapp.root_dir),
        journal=journal,
        ledger=Ledger(),
        budgets=Budgets(),
        keys=store(),
        poller=ServerPoller(journal),
        allow_hidden=bool(getattr(serverapp.contents_manager, "allow_hidden", False)),
    )
    serverapp.web_app.settings[SETTINGS_KEY] = service
    serverapp.web_app.add_handlers(".*$", handlers(serverapp.base_url))
    join_server_log(serverapp.log)
    log.debug("tokenhot_jupyter server extension loaded (journal %s)", journal.path)


def join_server_log(server_log: logging.Logger) -> None:
    """Send our records through the server's log: its handlers, format and ``--log-level``.

    Without this, only warnings reached stderr (Python's last-resort handler) and the
    info lines (a key stored or forgotten, a task taken over) were lost.
    """
    log.parent = server_log
    log.propagate = True


async def _start_jupyter_server_extension(serverapp: Any) -> None:
    """Once the server's loop runs: scan the journal for orphaned tasks in the background."""
    service: Service = serverapp.web_app.settings[SETTINGS_KEY]
    task = asyncio.get_running_loop().create_task(scan_forever(service.poller))
    serverapp.web_app.settings[f"{SETTINGS_KEY}_scanner"] = task  # keep a reference


async def scan_forever(poller: ServerPoller, interval: float = SCAN_INTERVAL) -> None:
    """Scan every ``interval`` seconds until cancelled; a failed scan is logged, not fatal."""
    try:
        while True:
            try:
                await asyncio.to_thread(poller.scan)
            except Exception as exc:  # a damaged journal must not stop the server
                log.warning("video task scan failed: %s", exc)
            await asyncio.sleep(interval)
    finally:
        with contextlib.suppress(Exception):
            await asyncio.to_thread(poller.close)
