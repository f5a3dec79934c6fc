"""tokenhot_jupyter: the Tokenhot AI gateway in Jupyter.

``%load_ext tokenhot_jupyter`` registers the magics; ``Client`` / ``AsyncClient`` speak
every endpoint family of the gateway.  Names are imported lazily, so loading the extension
costs little and nothing touches the network, disk or environment at import time.

The package has layers, and each module imports only from its own layer and the layers
below it (``tests/test_layers.py`` enforces this, imports inside functions included, and
that no import cycle appears)::

    tokenhot_jupyter/__init__.py   the face: lazy names, %load_ext; __main__ is the launcher
    _notebook/  _widgets/          notebook layer: magics, actions, the kernel session,
                                   display, cards, background tasks (IPython, ipywidgets)
    _server/                       Jupyter server extension (jupyter_server, tornado)
    _client.py, _http.py, ...      client layer: HTTP, catalog, endpoint families, media,
                                   errors, configuration, the video poll loop and the
                                   following of tasks in the background that kernels and
                                   the server share (stdlib and httpx only)
    _store/                        beside it, the files under TOKENHOT_HOME that kernels,
                                   the server and the CLI share: task journal, usage
                                   ledger, stored key (the client reads the stored key)
    simulator/                     the offline gateway (stdlib only, imports none of ours)

The notebook layer and the server extension never import each other; the client layer and
the store never import IPython, ipywidgets, traitlets or jupyter_server.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from ._batch import Batch, BatchProgress, BatchRow
    from ._cassette import Cassette
    from ._catalog import Model
    from ._client import AsyncClient, Client
    from ._exceptions import (
        APIConnectionError,
        APIStatusError,
        APITimeoutError,
        AuthenticationError,
        BadRequestError,
        BudgetExceeded,
        CassetteError,
        CassetteFormatError,
        CassetteMissError,
        ConfigurationError,
        InsufficientQuotaError,
        InvalidInputError,
        ModelUnavailableError,
        NotAnAPIResponseError,
        NotConfirmed,
        NotFoundError,
        PermissionDeniedError,
        RateLimitError,
        RequestTooLargeError,
        ResultUnavailableError,
        SchemaMismatch,
        ServerError,
        StreamIncompleteError,
        TaskFailedError,
        TaskMaybeCreatedError,
        TaskTimeoutError,
        TokenhotError,
        UnknownModelError,
        VideoTaskError,
    )
    from ._schema import Schema
    from ._types import ChatChunk, ChatResult, Image, ImageResult, Transcript, Usage, VideoTask
    from ._widgets import ModelPicker, TaskMonitor

_LAZY = {
    "AsyncClient": "_client",
    "Batch": "_batch",
    "BatchProgress": "_batch",
    "BatchRow": "_batch",
    "Cassette": "_cassette",
    "Client": "_client",
    "Model": "_catalog",
    "Schema": "_schema",
    "ModelPicker": "_widgets",
    "TaskMonitor": "_widgets",
    "ChatChunk": "_types",
    "ChatResult": "_types",
    "Image": "_types",
    "ImageResult": "_types",
    "Transcript": "_types",
    "Usage": "_types",
    "VideoTask": "_types",
}
_ERRORS = (
    "APIConnectionError", "APIStatusError", "APITimeoutError", "AuthenticationError",
    "BadRequestError", "BudgetExceeded", "CassetteError", "CassetteFormatError",
    "CassetteMissError", "ConfigurationError", "InsufficientQuotaError", "InvalidInputError",
    "ModelUnavailableError", "NotAnAPIResponseError", "NotConfirmed", "NotFoundError",
    "PermissionDeniedError", "RateLimitError", "RequestTooLargeError", "ResultUnavailableError",
    "SchemaMismatch", "ServerError", "StreamIncompleteError", "TaskFailedError",
    "TaskMaybeCreatedError", "TaskTimeoutError", "TokenhotError", "UnknownModelError",
    "VideoTaskError",
)  # fmt: skip
_LAZY.update(dict.fromkeys(_ERRORS, "_exceptions"))

__all__ = sorted([*_LAZY, "__version__", "load_ipython_extension", "unload_ipython_extension"])


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tokenhot_jupyter' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext tokenhot_jupyter``: register the magics."""
    from ._notebook._magics import register

    register(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext tokenhot_jupyter``: stop background work and remove the magics."""
    from ._notebook._magics import unregister

    unregister(ipython)


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    """Where jupyter_server finds the server extension (only a server imports it)."""
    return [{"module": "tokenhot_jupyter._server"}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """Where ``jupyter labextension develop`` finds the built JupyterLab extension."""
    return [{"src": "labextension", "dest": "tokenhot-jupyter"}]
