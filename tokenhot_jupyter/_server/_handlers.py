"""Thin handlers for ``{base_url}tokenhot/api/``: authenticate, call the service, write JSON.

Every method carries ``@tornado.web.authenticated`` (jupyter_server also refuses anything
without a token or login cookie, and checks XSRF on PUT, POST and DELETE unless the
request is token-authenticated).  Request bodies are parsed here, never by
``get_json_body``, which logs a body it cannot parse (it could hold the key).
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable
from typing import Any

import tornado.web
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join

from .._exceptions import TokenhotError
from .._redact import redact
from ._service import ApiError, Service

Answer = dict[str, Any]

PREFIX = "tokenhot/api"


class _Handler(APIHandler):
    """Shared plumbing: the service, JSON answers, errors as ``{"message": ...}``."""

    @property
    def service(self) -> Service:
        """The server's Tokenhot service (made at extension load)."""
        return self.settings["tokenhot_service"]  # type: ignore[no-any-return]

    async def serve(self, call: Callable[[], Answer | Awaitable[Answer]]) -> None:
        """Answer with ``call()``; our errors become 4xx/5xx with their one-line message."""
        try:
            result = call()
            answer = await result if inspect.isawaitable(result) else result
        except ApiError as error:
            self.send(error.status, {"message": error.message})
        except TokenhotError as error:  # e.g. a damaged journal; messages never hold the key
            self.send(500, {"message": redact(str(error))})
        else:
            self.send(200, answer)

    def send(self, status: int, payload: Answer) -> None:
        """Write ``payload`` as JSON, never cached (a key may have just changed)."""
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(payload))


class StatusHandler(_Handler):
    """``GET status``."""

    @tornado.web.authenticated
    async def get(self) -> None:
        """Mode, gateway, key source, reachability, spend today, running tasks."""
        await self.serve(self.service.status)


class TasksHandler(_Handler):
    """``GET tasks[?since=]``."""

    @tornado.web.authenticated
    async def get(self) -> None:
        """Every video task of every kernel, from the journal."""
        raw = self.get_query_argument("since", None)
        await self.serve(lambda: self.service.tasks(_since(raw)))


class UsageHandler(_Handler):
    """``GET usage``."""

    @tornado.web.authenticated
    async def get(self) -> None:
        """Totals today, by model and by day, from the usage ledger."""
        await self.serve(self.service.usage)


class ModelsHandler(_Handler):
    """``GET models``."""

    @tornado.web.authenticated
    async def get(self) -> None:
        """The catalog merged with the gateway's live list."""
        await self.serve(self.service.models)


class KeyHandler(_Handler):
    """``PUT key`` and ``DELETE key``."""

    @tornado.web.authenticated
    async def put(self) -> None:
        """Store the key from the body; the answer says only whether and where a key is set."""
        await self.serve(lambda: self.service.set_key(self.request.body))

    @tornado.web.authenticated
    async def delete(self) -> None:
        """Forget the stored key."""
        await self.serve(self.service.forget_key)


class KeyTestHandler(_Handler):
    """``POST key/test``."""

    @tornado.web.authenticated
    async def post(self) -> None:
        """Ask the gateway for its model list with the key in force."""
        await self.serve(self.service.test_key)


def _since(raw: str | None) -> float | None:
    try:
        return float(raw) if raw not in (None, "") else None
    except ValueError:
        raise ApiError(400, "since must be a number of epoch seconds.") from None


ROUTES: tuple[tuple[str, type[_Handler]], ...] = (
    ("status", StatusHandler),
    ("tasks", TasksHandler),
    ("usage", UsageHandler),
    ("models", ModelsHandler),
    ("key", KeyHandler),
    ("key/test", KeyTestHandler),
)


def handlers(base_url: str) -> list[tuple[str, type[_Handler]]]:
    """The URL patterns of every handler under ``{base_url}tokenhot/api/``."""
    return [(url_path_join(base_url, PREFIX, path) + "/?", cls) for path, cls in ROUTES]
