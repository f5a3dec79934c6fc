"""`AsyncClient` and `Client`: every model family of the gateway behind one small API.

Both share the process-wide connection pool (`_runtime`).  `Client` runs each coroutine of
`AsyncClient` on that pool's loop thread and waits, so it works inside a running notebook
kernel without touching the kernel's event loop.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import threading
import time
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterable,
    Iterator,
    Sequence,
)
from typing import Any, Concatenate, Literal, ParamSpec, TypeVar

import httpx

from . import _audio, _cassette, _video
from . import _exceptions as E
from ._batch import (
    CHAT,
    DEFAULT_CONCURRENCY,
    IMAGE,
    Batch,
    BatchProgress,
    BatchRow,
    batch_prompts,
    parsed,
    plan,
    usage_tokens,
)
from ._cassette import Cassette
from ._catalog import DEFAULTS, TRANSCRIBE_DEFAULT, Catalog, Kind, Model
from ._chat import ChatCall
from ._config import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_POLL_INTERVAL,
    DEFAULT_TIMEOUT,
    DEFAULT_VIDEO_DEADLINE,
)
from ._http import Connection, Sleep, json_body
from ._images import ImageCall
from ._media import Media, load_inputs, load_media
from ._redact import mask_key, register_secret
from ._runtime import runtime
from ._schema import SchemaSpec, schema_of
from ._store._answers import Answers
from ._store._credentials import resolve
from ._store._journal import digest_inputs
from ._types import ChatChunk, ChatResult, ImageResult, Transcript, VideoTask

log = logging.getLogger("tokenhot_jupyter")
# A folder, an open Cassette, None (TOKENHOT_CASSETTE decides) or False (none, whatever it says).
CassetteArg = str | os.PathLike[str] | Cassette | Literal[False] | None
P = ParamSpec("P")
T = TypeVar("T")
LIVE_TTL = 600.0
LIVE_RETRY_AFTER_FAILURE = 60.0

_live_lock = threading.Lock()
_live_cache: dict[tuple[str, str], tuple[float, Catalog | None]] = {}
_task_models: dict[str, str] = {}  # task id → model id, so get_video(id) needs no model


class AsyncClient:
    """The Tokenhot gateway, as coroutines.

    Without ``api_key`` and ``base_url`` the credentials are resolved again at every request
    (argument → ``TOKENHOT_API_KEY`` → the stored key → ``%tokenhot login``; see
    `_credentials.resolve`), so a key stored from the JupyterLab panel is used at once.
    """

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        backoff: float = 1.0,
        live_models: bool = True,
        sleep: Sleep | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        cassette: CassetteArg = None,
        cassette_mode: str | None = None,
    ) -> None:
        if max_retries < 0:
            raise E.InvalidInputError("max_retries must be 0 or more.")
        if not timeout > 0:
            raise E.InvalidInputError("timeout must be more than 0 seconds.")
        self._args = (api_key, base_url)
        self._fixed = api_key is not None and base_url is not None
        creds = resolve(api_key, base_url)
        register_secret(creds.key)  # before anything else could put it in a message
        self._connection = Connection(
            creds.key,
            creds.base_url,
            float(timeout),
            max_retries,
            backoff,
            transport=transport,
            cassette=_cassette.resolve(cassette, cassette_mode),
        )
        if sleep is not None:
            self._connection.sleep = sleep
        self._live_models = live_models
        self._catalog = Catalog()

    @property
    def _conn(self) -> Connection:
        """The connection, with the credentials in force now (cheap: env and one stat)."""
        conn = self._connection
        if not self._fixed:
            creds = resolve(*self._args)
            if (creds.key, creds.base_url) != (conn.api_key, conn.base_url):
                register_secret(creds.key)
                conn.api_key, conn.base_url = creds.key, creds.base_url
        return conn

    @property
    def base_url(self) -> str:
        """The gateway host in use (no ``/v1``)."""
        return self._conn.base_url

    @property
    def has_key(self) -> bool:
        """Whether an API key is configured."""
        return self._conn.api_key is not None

    @property
    def cassette(self) -> Cassette | None:
        """The cassette this client records into or replays from, if any."""
        return self._conn.cassette

    def __repr__(self) -> str:
        key = mask_key(self._conn.api_key)
        return f"{type(self).__name__}(base_url={self.base_url!r}, api_key={key!r})"

    # --- models --------------------------------------------------------------------------

    async def models(
        self, /, kind: Kind | None = None, *, live: bool = True, refresh: bool = False
    ) -> list[Model]:
        """The built-in catalog merged with the live ``GET /v1/models`` (which wins).

        The live list is cached for ten minutes per gateway and key; ``refresh=True`` asks
        the gateway again.
        """
        if refresh:
            with _live_lock:
                _live_cache.pop(self._cache_key(), None)
        catalog = await self._call(self._live_catalog(required=True)) if live else None
        return (catalog or self._catalog).of_kind(kind)

    async def model(self, /, model_id: str, kind: Kind | None = None) -> Model:
        """One model by id; unknown ids raise UnknownModelError with suggestions."""
        return await self._call(self._resolve(model_id, kind))

    async def _resolve(self, model_id: str | None, kind: Kind | None) -> Model:
        model_id = (model_id or DEFAULTS[kind] if kind else model_id) or ""
        catalog = self._catalog
        if model_id not in catalog.models and self._live_models and self.has_key:
            catalog = await self._live_catalog(required=False) or catalog
        live = _live_cache.get(self._cache_key())
        if live and live[1] is not None:
            catalog = live[1]
        return catalog.get(model_id, kind)

    def _cache_key(self) -> tuple[str, str]:
        conn = self._conn  # resolved once: that is the cost of a call
        return (conn.base_url, mask_key(conn.api_key) + str(hash(conn.api_key)))

    async def _live_catalog(self, *, required: bool) -> Catalog | None:
        key = self._cache_key()
        with _live_lock:
            cached = _live_cache.get(key)
        now = time.monotonic()
        fresh = cached and now - cached[0] < (LIVE_TTL if cached[1] else LIVE_RETRY_AFTER_FAILURE)
        if cached and fresh and (cached[1] is not None or not required):
            return cached[1]
        try:
            response = await self._conn.request("GET", "/v1/models", mode="read", what="model list")
            entries = json_body(response, model=None, what="model list").get("data") or []
        except E.TokenhotError as exc:
            with _live_lock:
                _live_cache[key] = (now, None)
            if required:
                raise
            log.debug("live model list unavailable: %s", exc)
            return None
        catalog = self._catalog.merge_live(e for e in entries if isinstance(e, dict))
        with _live_lock:
            _live_cache[key] = (now, catalog)
        return catalog

    # --- chat ----------------------------------------------------------------------------

    async def _chat_call(
        self,
        prompt: str | Sequence[dict[str, Any]],
        model: str | None,
        system: str | None,
        images: Any,
        api: str | None,
        params: dict[str, Any],
        schema: SchemaSpec | None = None,
    ) -> ChatCall:
        resolved = await self._resolve(model, "chat")
        return ChatCall.of(
            self._conn,
            resolved,
            prompt,
            system=system,
            images=images,
            api=api,
            params=params,
            schema=schema,
        )

    async def chat(
        self,
        /,
        prompt: str | Sequence[dict[str, Any]],
        model: str | None = None,
        *,
        system: str | None = None,
        images: Any = None,
        api: str | None = None,
        schema: SchemaSpec | None = None,
        **params: Any,
    ) -> ChatResult:
        """Ask ``model``; returns text, usage, model, latency and the raw body.

        ``prompt`` is a string or OpenAI-style messages; ``images`` (paths, URLs, bytes, PIL
        images, arrays) join the last user turn.  ``temperature``, ``max_tokens`` and
        ``reasoning`` work in every family; other keyword arguments go into the body as is.
        ``api="responses"`` sends a chat-completions model through the Responses API.
        ``schema`` (a field list such as ``"name, age int, tags list[str]"``, a JSON Schema
        dict, a dataclass or a pydantic class) asks for JSON of that shape: the parsed object
        is in ``.data``, and an answer that does not match raises SchemaMismatch (``.result``).
        """

        async def run() -> ChatResult:
            call = await self._chat_call(prompt, model, system, images, api, params, schema)
            return await call.run()

        return await self._call(run())

    def chat_stream(
        self,
        /,
        prompt: str | Sequence[dict[str, Any]],
        model: str | None = None,
        *,
        system: str | None = None,
        images: Any = None,
        api: str | None = None,
        schema: SchemaSpec | None = None,
        **params: Any,
    ) -> AsyncIterator[ChatChunk]:
        """Like `chat`, yielding text deltas as they arrive; the last chunk has the result
        (with a ``schema``, its ``.data``; or SchemaMismatch is raised after the deltas)."""

        async def run() -> AsyncIterator[ChatChunk]:
            call = await self._chat_call(prompt, model, system, images, api, params, schema)
            async for chunk in call.stream():
                yield chunk

        return runtime.aiterate(run())

    # --- batches -------------------------------------------------------------------------

    async def chat_many(
        self,
        /,
        prompts: Iterable[str | Sequence[dict[str, Any]]],
        model: str | None = None,
        *,
        system: str | None = None,
        images: Any = None,
        api: str | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        schema: SchemaSpec | None = None,
        resume: bool = True,
        retry_failed: bool = False,
        on_progress: Callable[[BatchProgress], Any] | None = None,
        **params: Any,
    ) -> list[BatchRow[ChatResult]]:
        """Ask ``model`` each of ``prompts``; one `BatchRow` per prompt, in their order.

        At most ``concurrency`` requests are in flight; on 429s and overloads the batch
        slows down, honours ``Retry-After`` and speeds up again (never above
        ``concurrency``).  A row that fails keeps its error (``row.error``; ``row.unwrap()``
        raises it) and the others go on; only throttled rows are sent again.  With
        ``resume`` every finished row is kept under ``TOKENHOT_HOME`` as it finishes, so
        calling this again (after an interrupt, a crash or a restart) sends only the rows
        without an answer; earlier failures keep their error unless ``retry_failed``.
        ``on_progress`` gets a `BatchProgress` at every change (on the client's loop
        thread: keep it short).  The other arguments are those of `chat`, for every row
        (with a ``schema``, each row's ``.data``; a row whose answer does not match fails
        with SchemaMismatch, which carries the paid answer).
        """
        batch = await self.chat_batch(
            prompts, model, system=system, images=images, api=api, schema=schema,
            resume=resume, retry_failed=retry_failed, **params,
        )  # fmt: skip
        return await self._call(batch.run(concurrency=concurrency, on_progress=on_progress))

    async def chat_batch(
        self,
        /,
        prompts: Iterable[str | Sequence[dict[str, Any]]],
        model: str | None = None,
        *,
        system: str | None = None,
        images: Any = None,
        api: str | None = None,
        schema: SchemaSpec | None = None,
        resume: bool = True,
        retry_failed: bool = False,
        **params: Any,
    ) -> Batch[ChatResult]:
        """`chat_many` planned, nothing sent: ``.to_send`` and ``.reused`` say what the
        resume store holds; ``await batch.run(concurrency=...)`` sends the rest."""

        async def run() -> Batch[ChatResult]:
            rows = batch_prompts(prompts, chat=True)
            resolved = await self._resolve(model, "chat")
            media = load_inputs(images)
            shape = None if schema is None else schema_of(schema)
            # A bad parameter or schema, a model that cannot chat: one error, before any row.
            ChatCall.of(
                self._conn, resolved, rows[0], system=system, images=media, api=api,
                params=params, schema=shape,
            )  # fmt: skip
            shared = {"system": system, "api": api, "params": params, "inputs": _digest(media),
                      "schema": shape.canonical() if shape else None}  # fmt: skip
            ask = functools.partial(
                self.chat, model=resolved.id, system=system, images=media or None, api=api,
                schema=shape, **params,
            )  # fmt: skip
            return plan(
                model=resolved.id,
                codec=CHAT if shape is None else parsed(CHAT, shape),
                requests=[{"prompt": prompt, **shared} for prompt in rows],
                jobs=[functools.partial(ask, prompt) for prompt in rows],
                store=Answers() if resume else None,
                retry_failed=retry_failed,
                measure=usage_tokens,
            )

        return await self._call(run())

    async def image_many(
        self,
        /,
        prompts: Iterable[str],
        model: str | None = None,
        *,
        size: str | None = None,
        n: int = 1,
        images: Any = None,
        mask: Any = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        resume: bool = True,
        retry_failed: bool = False,
        on_progress: Callable[[BatchProgress], Any] | None = None,
        **params: Any,
    ) -> list[BatchRow[ImageResult]]:
        """Pictures for each of ``prompts``, as `chat_many` asks for answers (same rules)."""
        batch = await self.image_batch(
            prompts, model, size=size, n=n, images=images, mask=mask, resume=resume,
            retry_failed=retry_failed, **params,
        )  # fmt: skip
        return await self._call(batch.run(concurrency=concurrency, on_progress=on_progress))

    async def image_batch(
        self,
        /,
        prompts: Iterable[str],
        model: str | None = None,
        *,
        size: str | None = None,
        n: int = 1,
        images: Any = None,
        mask: Any = None,
        resume: bool = True,
        retry_failed: bool = False,
        **params: Any,
    ) -> Batch[ImageResult]:
        """`image_many` planned, nothing sent (see `chat_batch`)."""

        async def run() -> Batch[ImageResult]:
            rows = batch_prompts(prompts, chat=False)
            resolved = await self._resolve(model, "image")
            media = load_inputs(images)
            masked = load_media(mask, what="mask") if mask is not None else None
            ImageCall.of(
                self._conn, resolved, rows[0], size=size, n=n, images=media, mask=masked,
                params=params,
            )  # fmt: skip
            shared = {"size": size, "n": n, "params": params, "inputs": _digest(media),
                      "mask": _digest([masked] if masked else [])}  # fmt: skip
            draw = functools.partial(
                self.image, model=resolved.id, size=size, n=n, images=media or None,
                mask=masked, **params,
            )  # fmt: skip
            return plan(
                model=resolved.id,
                codec=IMAGE,
                requests=[{"prompt": prompt, **shared} for prompt in rows],
                jobs=[functools.partial(draw, prompt) for prompt in rows],
                store=Answers() if resume else None,
                retry_failed=retry_failed,
                measure=usage_tokens,
            )

        return await self._call(run())

    # --- images --------------------------------------------------------------------------

    async def image(
        self,
        /,
        prompt: str,
        model: str | None = None,
        *,
        size: str | None = None,
        n: int = 1,
        images: Any = None,
        mask: Any = None,
        **params: Any,
    ) -> ImageResult:
        """Generate (or, with ``images``, edit) pictures; always returns image bytes."""

        async def run() -> ImageResult:
            resolved = await self._resolve(model, "image")
            call = ImageCall.of(
                self._conn,
                resolved,
                prompt,
                size=size,
                n=n,
                images=images,
                mask=mask,
                params=params,
            )
            return await call.run()

        return await self._call(run())

    # --- video ---------------------------------------------------------------------------

    async def video(
        self,
        /,
        prompt: str,
        model: str | None = None,
        *,
        duration: int | None = None,
        resolution: str | None = None,
        ratio: str | None = None,
        image: Any = None,
        video: Any = None,
        **params: Any,
    ) -> VideoTask:
        """Create a video task and return its handle at once (poll with `wait_video`)."""

        async def run() -> VideoTask:
            resolved = await self._resolve(model, "video")
            call = _video.VideoCall.of(
                resolved,
                prompt,
                duration=duration,
                resolution=resolution,
                ratio=ratio,
                image=image,
                video=video,
                params=params,
            )
            task = await _video.create(self._conn, call)
            _task_models[task.id] = resolved.id
            return task

        return await self._call(run())

    async def get_video(self, /, task_id: str, model: str | None = None) -> VideoTask:
        """Poll a task once (``model`` is needed only for tasks made in another session)."""
        return await self._call(self._get_video(task_id, model))

    async def _task_model(self, task_id: str, model: str | None) -> Model:
        _video.check_task_id(task_id)
        return await self._resolve(model or _task_models.get(task_id) or DEFAULTS["video"], "video")

    async def _get_video(self, task_id: str, model: str | None) -> VideoTask:
        return await _video.get(self._conn, await self._task_model(task_id, model), task_id)

    async def wait_video(
        self,
        /,
        task_id: str,
        model: str | None = None,
        *,
        timeout: float = DEFAULT_VIDEO_DEADLINE,
        on_update: Callable[[VideoTask], Any] | None = None,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
    ) -> VideoTask:
        """Poll until the task succeeds (returned) or fails (TaskFailedError), or ``timeout``."""

        async def run() -> VideoTask:
            resolved = await self._task_model(task_id, model)
            task = await _video.wait(
                self._conn, resolved, task_id, timeout=timeout, on_update=on_update,
                poll_interval=poll_interval,
            )  # fmt: skip
            if task.status == "failed":
                raise E.TaskFailedError(
                    f"The {resolved.id} task {task_id} failed: {task.error}.",
                    task_id=task_id,
                    model=resolved.id,
                )
            return task

        return await self._call(run())

    async def download_video(self, /, task: str | VideoTask, model: str | None = None) -> bytes:
        """The finished video's MP4 bytes (fetched from the vendor URL, else the gateway)."""

        async def run() -> bytes:
            task_id = task.id if isinstance(task, VideoTask) else task
            resolved = await self._task_model(task_id, model or getattr(task, "model", None))
            current = task if isinstance(task, VideoTask) and task.status == "succeeded" else None
            current = current or await _video.get(self._conn, resolved, task_id)
            return await _video.download(self._conn, resolved, current)

        return await self._call(run())

    # --- audio ---------------------------------------------------------------------------

    async def speak(
        self, /, text: str, model: str | None = None, *, voice: str | None = None, **params: Any
    ) -> bytes:
        """WAV bytes of ``text`` read aloud."""

        async def run() -> bytes:
            resolved = await self._resolve(model, "audio")
            return await _audio.speak(self._conn, resolved, text, voice, params)

        return await self._call(run())

    async def transcribe(
        self,
        /,
        audio: Any,
        model: str = TRANSCRIBE_DEFAULT,
        *,
        translate: bool = False,
        language: str | None = None,
        response_format: str = "json",
        **params: Any,
    ) -> Transcript:
        """Text of an audio file (path, bytes or file object); English when ``translate``."""

        async def run() -> Transcript:
            resolved = await self._resolve(model, "audio")
            return await _audio.transcribe(
                self._conn,
                resolved,
                audio,
                translate=translate,
                language=language,
                response_format=response_format,
                extra=params,
            )

        return await self._call(run())

    async def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return await runtime.call(coro)


def _digest(media: list[Media]) -> str:
    """The inputs every row of a batch shares, by content (or URL)."""
    return digest_inputs(*(m.url or m.as_bytes() for m in media))


# --- the blocking client ---------------------------------------------------------------------


def _blocking(
    method: Callable[Concatenate[AsyncClient, P], Awaitable[T]],
) -> Callable[Concatenate[Client, P], T]:
    def call(self: Client, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return runtime.run(_awaited(method(self._async, *args, **kwargs)))

    return functools.wraps(method)(call)


async def _awaited(awaitable: Awaitable[T]) -> T:
    return await awaitable


def _blocking_paid(
    method: Callable[Concatenate[AsyncClient, P], Awaitable[T]],
) -> Callable[Concatenate[Client, P], T]:
    """Like `_blocking`, but an interrupt does not abandon a request that costs money.

    Once a video create is on the wire, cancelling it would lose the task id while the
    gateway still makes (and bills) the task; so the first interrupt waits for the reply,
    and only a second one gives up, with TaskMaybeCreatedError (unless the reply is in by
    then: the task it names is returned).
    """

    def call(self: Client, /, *args: P.args, **kwargs: P.kwargs) -> T:
        future = runtime.submit(_awaited(method(self._async, *args, **kwargs)))
        try:
            return future.result()
        except KeyboardInterrupt:
            print(_WAITING, file=sys.stderr, flush=True)
        try:
            return future.result()
        except KeyboardInterrupt:
            if not future.cancel():  # the reply landed with the interrupt: it is the answer
                return future.result()
            raise E.TaskMaybeCreatedError(
                "Stopped waiting for the gateway's reply to the video request; the task may exist."
            ) from None

    return functools.wraps(method)(call)


_WAITING = (
    "Interrupted while the gateway creates the video task: waiting for its id so that it "
    "is not lost (interrupt again to stop waiting)."
)


def _blocking_iter(
    method: Callable[Concatenate[AsyncClient, P], AsyncIterator[T]],
) -> Callable[Concatenate[Client, P], Iterator[T]]:
    def call(self: Client, /, *args: P.args, **kwargs: P.kwargs) -> Iterator[T]:
        return runtime.iterate(method(self._async, *args, **kwargs))

    return functools.wraps(method)(call)


class Client:
    """The Tokenhot gateway, as plain blocking calls (safe inside a running notebook)."""

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        backoff: float = 1.0,
        live_models: bool = True,
        sleep: Sleep | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        cassette: CassetteArg = None,
        cassette_mode: str | None = None,
    ) -> None:
        self._async = AsyncClient(
            api_key,
            base_url,
            timeout=timeout,
            max_retries=max_retries,
            backoff=backoff,
            live_models=live_models,
            sleep=sleep,
            transport=transport,
            cassette=cassette,
            cassette_mode=cassette_mode,
        )

    @property
    def base_url(self) -> str:
        """The gateway host in use (no ``/v1``)."""
        return self._async.base_url

    @property
    def has_key(self) -> bool:
        """Whether an API key is configured."""
        return self._async.has_key

    @property
    def cassette(self) -> Cassette | None:
        """The cassette this client records into or replays from, if any."""
        return self._async.cassette

    @property
    def aio(self) -> AsyncClient:
        """The same client, as coroutines."""
        return self._async

    def __repr__(self) -> str:
        return repr(self._async).replace("AsyncClient", "Client", 1)

    models = _blocking(AsyncClient.models)
    model = _blocking(AsyncClient.model)
    chat = _blocking(AsyncClient.chat)
    chat_stream = _blocking_iter(AsyncClient.chat_stream)
    chat_many = _blocking(AsyncClient.chat_many)
    chat_batch = _blocking(AsyncClient.chat_batch)
    image_many = _blocking(AsyncClient.image_many)
    image_batch = _blocking(AsyncClient.image_batch)
    image = _blocking(AsyncClient.image)
    video = _blocking_paid(AsyncClient.video)
    get_video = _blocking(AsyncClient.get_video)
    wait_video = _blocking(AsyncClient.wait_video)
    download_video = _blocking(AsyncClient.download_video)
    speak = _blocking(AsyncClient.speak)
    transcribe = _blocking(AsyncClient.transcribe)
