"""What the REST API answers, as plain Python: the handlers only parse and serialise.

Everything here reads what the kernels already write (the task journal, the usage ledger,
the stored key) with the same rules they use (`_credentials.resolve`).  The key is never
part of an answer, a log line or an error message: answers carry its last four characters
at most.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from .._catalog import FAMILIES, Catalog, Model, price_text
from .._client import AsyncClient
from .._exceptions import APIConnectionError, TokenhotError
from .._redact import mask_key, redact
from .._store._budget import Budgets, today
from .._store._credentials import Credentials, KeyStore, check_key, resolve
from .._store._journal import IN_FLIGHT, STOPPED, Entry, Journal, excerpt
from .._store._ledger import Ledger, Totals
from .._store._sqlite import ENV_HOME
from .._version import __version__
from ._poller import ServerPoller

log = logging.getLogger("tokenhot_jupyter")
REACHABLE_EVERY = 60.0  # seconds between background checks of the gateway
TEST_TIMEOUT = 15.0


class ApiError(Exception):
    """A 4xx/5xx answer with a message that is safe to show (it never holds the key)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = redact(message)


@dataclass
class Reachability:
    """The last background check of the gateway: True, False, or None before the first."""

    reachable: bool | None = None
    checked_for: str = ""  # the base URL it was checked for
    checked_at: float = 0.0
    task: asyncio.Task[None] | None = field(default=None, repr=False)


class Service:
    """The Tokenhot API of one Jupyter server."""

    def __init__(
        self,
        *,
        root_dir: Path,
        journal: Journal,
        ledger: Ledger,
        keys: KeyStore,
        poller: ServerPoller,
        clock: Callable[[], float] = time.time,
        allow_hidden: bool = False,
        transport: httpx.AsyncBaseTransport | None = None,
        budgets: Budgets | None = None,
    ) -> None:
        self.root_dir = Path(root_dir).resolve()
        self.journal, self.ledger, self.keys, self.poller = journal, ledger, keys, poller
        self.budgets = budgets or Budgets()  # %tokenhot budget's, under TOKENHOT_HOME
        self.clock = clock
        self.allow_hidden = allow_hidden
        self._transport = transport  # tests reach a fake gateway through it
        self._reach = Reachability()

    def credentials(self) -> Credentials:
        """The key and gateway in force for this server (the kernels' rule)."""
        return resolve(keys=self.keys)

    # --- GET status ----------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """Mode, gateway, key source, reachability, spend and budget left today, running tasks."""
        creds = self.credentials()
        self._check_soon(creds)
        now = self.clock()
        return {
            "mode": "simulator" if creds.simulated else "live",
            "base_url": creds.base_url,
            "key_source": _source(creds),
            "reachable": self._reach.reachable
            if self._reach.checked_for == creds.base_url
            else None,
            "spend_today": round(self._today(creds.simulated).cost, 6),
            "spend_currency": "USD",
            "budget_left": self._budget_left(creds.simulated),
            "running_tasks": sum(
                1 for e in self.journal.unfinished() if self.poller.poller(e, now) is not None
            ),
            "version": __version__,
        }

    def _budget_left(self, simulated: bool) -> float | None:
        """What is left of the day budget every kernel shares (None: no budget is set)."""
        standing = today(self.budgets, self.ledger, simulated=simulated)
        return None if standing is None else round(standing.left, 6)

    def _today(self, simulated: bool) -> Totals:
        return self.ledger.total(simulated=simulated, day=self.ledger.today())

    def _check_soon(self, creds: Credentials) -> None:
        """Start a background reachability check when the last one is old (or another URL)."""
        reach = self._reach
        stale = self.clock() - reach.checked_at >= REACHABLE_EVERY
        if (reach.task is not None and not reach.task.done()) or (
            not stale and reach.checked_for == creds.base_url
        ):
            return
        reach.task = asyncio.get_running_loop().create_task(self._check(creds.base_url))

    async def _check(self, base_url: str) -> None:
        # Unauthenticated on purpose: any HTTP answer means the gateway answers, and the key
        # is never sent for a mere liveness check.
        try:
            async with httpx.AsyncClient(timeout=5.0, transport=self._transport) as http:
                await http.get(f"{base_url}/v1/models")
            reachable = True
        except httpx.HTTPError:
            reachable = False
        self._reach.reachable, self._reach.checked_for = reachable, base_url
        self._reach.checked_at = self.clock()

    # --- GET tasks -----------------------------------------------------------------------

    def tasks(self, since: float | None = None) -> dict[str, Any]:
        """Every video task of every kernel (changed after ``since``), newest first."""
        now = self.clock()
        entries = self.journal.changed(since, now)
        rows = [self._task(e, now) for e in entries if not e.row.task_id.startswith(IN_FLIGHT)]
        if since is not None:
            rows = [r for r in rows if r["updated_at"] > since]
        return {"now": now, "tasks": rows}

    def _task(self, entry: Entry, now: float) -> dict[str, Any]:
        row = entry.row
        poller = self.poller.poller(entry, now)
        lease = entry.lease
        lost = lease.expires_at if lease is not None and lease.expires_at <= now else 0.0
        status, progress = _status(row.status, row.progress, row.file, poller)
        finished = row.updated_at if status in ("succeeded", "failed") else None
        return {
            "id": row.task_id,
            "model": row.model,
            "prompt": excerpt(redact(row.prompt)),
            "status": status,
            "progress": progress,
            "created_at": row.created_at,
            "updated_at": max(row.updated_at, lost),
            "finished_at": finished,
            "notebook": self._relative(entry.origin.notebook if entry.origin else None),
            "video_path": self._relative(row.file),
            "error": redact(row.error) if row.error else None,
            "poller": poller,
        }

    def _relative(self, path: str | None) -> str | None:
        """``path`` relative to the server's root (forward slashes), or None outside it."""
        if not path:
            return None
        try:
            return Path(path).resolve().relative_to(self.root_dir).as_posix()
        except (ValueError, OSError):
            return None

    # --- GET usage -----------------------------------------------------------------------

    def usage(self) -> dict[str, Any]:
        """Today's totals, totals by model (all time) and by day (30 days), of the mode in force."""
        simulated = self.credentials().simulated
        today = self._today(simulated)
        return {
            "today": {
                "cost": round(today.cost, 6), "requests": today.requests,
                "input_tokens": today.input_tokens, "output_tokens": today.output_tokens,
            },
            "by_model": [
                {"model": t.name, "cost": round(t.cost, 6), "requests": t.requests,
                 "input_tokens": t.input_tokens, "output_tokens": t.output_tokens}
                for t in self.ledger.by_model(simulated=simulated)
            ],
            "by_day": [
                {"day": t.name, "cost": round(t.cost, 6), "requests": t.requests}
                for t in self.ledger.by_day(simulated=simulated)
            ],
        }  # fmt: skip

    # --- GET models ----------------------------------------------------------------------

    async def models(self) -> dict[str, Any]:
        """The catalog merged with the gateway's live list (the catalog alone if it fails)."""
        creds = self.credentials()
        live_loaded = False
        models = Catalog().of_kind(None)
        if creds.key:
            try:
                models = await self._client(creds).models(live=True)
                live_loaded = True
            except TokenhotError as exc:
                log.info("live model list unavailable: %s", exc)
        return {"models": [_model(m) for m in models], "live_loaded": live_loaded}

    def _client(self, creds: Credentials, **options: Any) -> AsyncClient:
        return AsyncClient(creds.key, creds.base_url, transport=self._transport, **options)

    # --- the key ---------------------------------------------------------------------------

    def set_key(self, body: bytes) -> dict[str, Any]:
        """``PUT key``: check and store ``{"key": ...}``; says where the key in force comes from."""
        key = _key_from(body)
        self._check_location()
        try:
            check_key(key)
            self.keys.write(key)
        except TokenhotError as exc:
            raise ApiError(400, str(exc)) from None
        log.info("an API key was stored in %s", self.keys.path.parent)
        return self._key_state()

    def forget_key(self) -> dict[str, Any]:
        """``DELETE key``: remove the stored key; an environment key may still be in force."""
        try:
            self.keys.delete()
        except TokenhotError as exc:
            raise ApiError(500, str(exc)) from None
        log.info("the stored API key was forgotten")
        return self._key_state()

    def _key_state(self) -> dict[str, Any]:
        creds = self.credentials()
        real = creds.key if creds.source != "none" else None
        return {"set": real is not None, "source": _source(creds),
                "masked": mask_key(real) if real else None}  # fmt: skip

    def _check_location(self) -> None:
        """Refuse to store the key where the server would serve it as a file."""
        folder = self.keys.path.parent.resolve()
        try:
            inside = folder.relative_to(self.root_dir)
        except ValueError:
            return
        hidden = any(part.startswith(".") for part in inside.parts)
        if hidden and not self.allow_hidden:
            return  # the contents API does not serve hidden folders
        raise ApiError(
            400,
            f"{ENV_HOME} ({folder}) is inside the notebook folder this server serves, so the "
            f"key is not stored there. Set {ENV_HOME} to a folder outside it and restart.",
        )

    async def test_key(self) -> dict[str, Any]:
        """``POST key/test``: ask the gateway for its model list with the key in force."""
        creds = self.credentials()
        if creds.key is None:
            message = "No API key is set: store one with Set key…, or set TOKENHOT_API_KEY."
            return {"ok": False, "models": None, "message": message}
        client = self._client(creds, timeout=TEST_TIMEOUT, max_retries=0)
        try:
            models = await client.models(live=True, refresh=True)
        except APIConnectionError as exc:
            return {"ok": False, "models": None, "message": f"The gateway did not answer: {exc}"}
        except TokenhotError as exc:
            return {"ok": False, "models": None, "message": f"The gateway refused: {exc}"}
        count = sum(1 for m in models if m.live)
        where = "The simulator" if creds.simulated else f"The gateway at {creds.base_url}"
        return {"ok": True, "models": count,
                "message": f"{where} accepted the key and lists {count} models."}  # fmt: skip


def _source(creds: Credentials) -> str:
    return "none" if creds.source == "login" else creds.source  # a server has no login key


def _status(
    status: str, progress: int, file: str | None, poller: str | None
) -> tuple[str, int | None]:
    """The API's status and progress of a journal row."""
    if status == "succeeded" and not file:
        return ("running", 100) if poller else ("succeeded", 100)  # downloading, or not saved
    if status in ("queued", "running"):
        return (status, progress) if poller else ("unknown", None)
    if status in ("succeeded", "failed"):
        return status, 100
    if status == STOPPED:  # %tokenhot cancel (where the journal records it)
        return "cancelled", None
    return "unknown", None  # "maybe": the create's outcome is unknown


def _model(model: Model) -> dict[str, Any]:
    badges = [b for b in (model.vendor,) if b]
    flags = {
        "live": model.live, "inferred": model.inferred, "vision": model.vision,
        "edits": model.edits,
    }  # fmt: skip
    badges += [name for name, on in flags.items() if on]
    badges += [f"needs {need}" for need in model.requires]
    description = FAMILIES[model.family].summary + (f" — {model.notes}" if model.notes else "")
    return {
        "id": model.id, "kind": model.kind, "family": model.family, "badges": badges,
        "price": price_text(model), "live": model.live, "description": description,
    }  # fmt: skip


def _key_from(body: bytes) -> str:
    """The ``key`` of a JSON body; a bad body is a 400 that never quotes it."""
    try:
        data = json.loads(body or b"null")
    except ValueError:
        data = None
    key = data.get("key") if isinstance(data, dict) else None
    if not isinstance(key, str):
        raise ApiError(400, 'Send the key as JSON: {"key": "sk-..."}.')
    return key
