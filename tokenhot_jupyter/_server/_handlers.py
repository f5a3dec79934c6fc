"""Thin handlers for ``{base_url}tokenhot/api/``: authenticate, call the service, write JSON.

Every method carries ``@tornado.web.authenticated`` (jupyter_server also refuses anything
without a token or login cookie, and checks XSRF on PUT, POST and DELETE unless the
request is token-authenticated).  Request bodies are parsed here, never by
``get_json_body``, which logs a body it cannot parse (it could hold the key).
"""

from __future__ import annotations

import json
from typing import Any

import tornado.web
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join

from ._service import ApiError, Service

PREFIX = "tokenhot/api"


class _Handler(APIHandler):
    """Shared plumbing: the service, JSON answers, ApiError as ``{"message": ...}``."""

    @property
    def service(self) -> Service:
        """The server's Tokenhot service (made at extension load)."""
        return self.settings["tokenhot_service"]  # type: ignore[no-any-return]

    def answer(self, payload: dict[str, Any]) -> None:
        """Write ``payload`` as JSON, never cached (a key may have just changed)."""
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(payload))

    def fail(self, error: ApiError) -> None:
        """Write an error answer (its message never holds the key)."""
        self.set_status(error.status)
        self.answer({"message": error.message})


class StatusHandler(_Handler):
    """``GET status``."""

    @tornado.web.authenticated
    def get(self) -> None:
        """Mode, gateway, key source, reachability, spend today, running tasks."""
        self.answer(self.service.status())


class TasksHandler(_Handler):
    """``GET tasks[?since=]``."""

    @tornado.web.authenticated
    def get(self) -> None:
        """Every video task of every kernel, from the journal."""
        raw = self.get_query_argument("since", None)
        try:
            since = float(raw) if raw not in (None, "") else None
        except ValueError:
            self.fail(ApiError(400, "since must be a number of epoch seconds."))
            return
        self.answer(self.service.tasks(since))


class UsageHandler(_Handler):
    """``GET usage``."""

    @tornado.web.authenticated
    def get(self) -> None:
        """Totals today, by model and by day, from the usage ledger."""
        self.answer(self.service.usage())


class ModelsHandler(_Handler):
    """``GET models``."""

    @tornado.web.authenticated
    async def get(self) -> None:
        """The catalog merged with the gateway's live list."""
        self.answer(await self.service.models())


class KeyHandler(_Handler):
    """``PUT key`` and ``DELETE key``."""

    @tornado.web.authenticated
    def put(self) -> None:
        """Store the key from the body; the answer says only whether and where a key is set."""
        try:
            self.answer(self.service.set_key(self.request.body))
        except ApiError as error:
            self.fail(error)

    @tornado.web.authenticated
    def delete(self) -> None:
        """Forget the stored key."""
        try:
            self.answer(self.service.forget_key())
        except ApiError as error:
            self.fail(error)


class KeyTestHandler(_Handler):
    """``POST key/test``."""

    @tornado.web.authenticated
    async def post(self) -> None:
        """Ask the gateway for its model list with the key in force."""
        self.answer(await self.service.test_key())


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
