"""What each magic does once its arguments are parsed: call the gateway, show, keep score.

The magics stay thin: they build a request object and call one function here.  These
functions talk to the client (networking), the session (threads, tally, files) and the
display layer (bundles); comparisons run every model concurrently on the runtime loop and
merge their progress into one throttled output.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import _cassette
from .._catalog import Kind, price_text
from .._client import AsyncClient, Client
from .._exceptions import (
    BudgetExceeded,
    InvalidInputError,
    SchemaMismatch,
    StreamIncompleteError,
    TokenhotError,
)
from .._media import load_media
from .._redact import mask_key, redact
from .._runtime import runtime
from .._schema import Schema
from .._store._credentials import KeySource, store
from .._types import ChatResult, Image, ImageResult, Transcript
from . import _budget
from . import _display as D
from ._session import Session
from ._threads import Turn, as_messages

if TYPE_CHECKING:
    from ._tasks import Tracked

Event = tuple[int, str, Any]  # (column, "delta" | "done" | "error", payload)


@dataclass(kw_only=True)
class ChatRequest:
    """A parsed ``%%chat`` cell."""

    models: list[str]
    prompt: str
    system: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    images: list[Any] = field(default_factory=list)
    thread: str | None = None
    new: bool = False
    stream: bool = True
    vars_used: list[str] = field(default_factory=list)
    source: str = ""
    schema: Schema | None = None  # --schema: the answer is JSON of this shape


@dataclass(kw_only=True)
class ImageRequest:
    """A parsed ``%%image`` cell."""

    models: list[str]
    prompt: str
    size: str | None = None
    n: int = 1
    inputs: list[Any] = field(default_factory=list)
    mask: Any = None
    params: dict[str, Any] = field(default_factory=dict)


def show_banner(session: Session, screen: D.Screen) -> None:
    """The "answers are simulated" banner, once per session, before the first output."""
    if not session.banner_due():
        return
    detail = "this kernel talks to the local Tokenhot simulator, not the real gateway."
    screen.show(D.banner_bundle(detail))


def _meta(session: Session, kind: str, **fields: Any) -> dict[str, Any]:
    fields |= _cassette.provenance()  # replayed: true and the cassette's name
    return D.provenance(kind=kind, simulated=session.simulated() or None, **fields)


# --- before anything is paid -------------------------------------------------------------------


def paid(
    session: Session,
    kind: str,
    model: str,
    request: dict[str, Any],
    what: str,
    *,
    pending: float = 0.0,
) -> float | None:
    """The one gate before a paid request: its estimate, refused (BudgetExceeded) if it would
    pass the day or session budget.  Every action calls it right before it sends."""
    cost = _budget.estimate(session, kind, model, request)
    _budget.check(session, cost, what, pending=pending)
    return cost


def paid_columns(
    session: Session, kind: str, models: list[str], request: dict[str, Any], what: str
) -> dict[str, BudgetExceeded]:
    """`paid` for each column of a comparison, the earlier columns' estimates counted as on
    their way; the columns refused, by model (they are not sent)."""
    refused: dict[str, BudgetExceeded] = {}
    pending = 0.0
    for model in models:
        try:
            cost = paid(session, kind, model, request, what.format(model=model), pending=pending)
        except BudgetExceeded as exc:
            refused[model] = exc
        else:
            pending += cost or 0.0
    return refused


def _chat_estimate(req: ChatRequest, messages: list[dict[str, Any]]) -> dict[str, Any]:
    return {"prompt": _budget.final_prompt(messages, req.system), **req.params}


def _refuse(columns: list[D.Column], results: dict[str, Any], refused: dict[str, Any]) -> None:
    for column in columns:
        if column.model in refused:
            column.error = str(refused[column.model])
            results[column.model] = refused[column.model]


# --- chat ------------------------------------------------------------------------------------


def chat(session: Session, screen: D.Screen, req: ChatRequest) -> Any:
    """Ask one model (streamed) or several side by side; returns what ``-o`` keeps: the
    result (the parsed object with a schema), or a dict of them by model."""
    thread = session.thread(req.thread)
    if req.new:
        session.reset_threads(thread.name)
        thread = session.thread(req.thread)
    key = session.turn_key(req.source)
    earlier = thread.context(key, session.config.history_turns)
    messages = as_messages(earlier, req.prompt)
    show_banner(session, screen)
    if len(req.models) > 1:
        return compare_chat(session, screen, req, messages, len(earlier))
    result = ask(session, screen, req, messages, len(earlier))
    thread.record(Turn(key=key, prompt=req.prompt, answer=result.text, model=result.model))
    return result.data if req.schema else result


def ask(
    session: Session, screen: D.Screen, req: ChatRequest, messages: list[dict[str, Any]], turns: int
) -> ChatResult:
    """Ask one model and show its (streamed) answer; the caller keeps any thread."""
    client = session.client()
    model = client.model(req.models[0], "chat").id
    paid(session, "chat", model, _chat_estimate(req, messages), f"a chat with {model}")
    view = D.ChatView(screen, model, session.config.stream_interval, stream=req.stream)
    try:
        result = _stream_into(view, client, model, messages, req) if req.stream else None
        result = result or client.chat(
            messages,
            model,
            system=req.system,
            images=req.images or None,
            schema=req.schema,
            **req.params,
        )
    except SchemaMismatch as exc:
        _show_mismatch(session, view, req, exc, turns)
        raise
    except StreamIncompleteError as exc:
        usage = exc.result.usage
        session.tally.add(model, "chat", usage, session.prices.chat(model, usage))
        view.fail(ENDED_EARLY)  # the text that came stays, marked; the error fails the cell
        raise
    except TokenhotError as exc:
        view.fail(type(exc).__name__)
        raise
    except KeyboardInterrupt:
        view.fail("interrupted")
        raise
    cost = session.prices.chat(result.model, result.usage)
    session.tally.add(result.model, "chat", result.usage, cost)
    stats = D.Stats(
        result.model, latency=result.latency, usage=result.usage, cost=cost, turns_sent=turns
    )
    stats.extra += _thread_note(req)
    shaped = D.data_bundle(result.data, stats.line()) if req.schema else None
    view.finish(result.text, stats.line(), _chat_meta(session, req, result, stats), shaped)
    _show_chat_images(session, screen, result)
    return result


def _show_mismatch(
    session: Session, view: D.ChatView, req: ChatRequest, exc: SchemaMismatch, turns: int
) -> None:
    """An answer that does not match its schema: paid for, so counted, and shown as text."""
    result = exc.result
    if result is None:
        return
    cost = session.prices.chat(result.model, result.usage)
    session.tally.add(result.model, "chat", result.usage, cost)
    stats = D.Stats(
        result.model, latency=result.latency, usage=result.usage, cost=cost, turns_sent=turns
    )
    stats.extra.append("does not match the schema")
    view.finish(result.text, stats.line(), _chat_meta(session, req, result, stats))


ENDED_EARLY = "the stream ended early, so this answer is incomplete"


def _stream_into(
    view: D.ChatView, client: Any, model: str, messages: list[dict[str, Any]], req: ChatRequest
) -> ChatResult | None:
    """Read the stream on the runtime loop; wake only when the view can show something.

    Reading never waits for rendering: deltas pile up on the loop while an update is
    rendered or not yet due, and come over in one batch.
    """
    source = client.aio.chat_stream(
        messages,
        model,
        system=req.system,
        images=req.images or None,
        schema=req.schema,
        **req.params,
    )
    with contextlib.closing(runtime.handoff(source)) as stream:
        while not stream.done:
            timeout, first = view.wait()
            chunks = stream.take(timeout, first=first)
            result = next((c.result for c in chunks if c.result is not None), None)
            with view.batch(send=result is None):  # with the result, the final output is next
                for chunk in chunks:
                    if chunk.result is None:
                        view.feed(chunk.text, chunk.reasoning)
            if result is not None:
                return result  # type: ignore[no-any-return]
    return None


def _thread_note(req: ChatRequest) -> list[str]:
    notes = [f"thread {req.thread}"] if req.thread else []
    return notes + ([f"vars: {', '.join(req.vars_used)}"] if req.vars_used else [])


def _chat_meta(
    session: Session, req: ChatRequest, result: ChatResult, stats: D.Stats
) -> dict[str, Any]:
    return _meta(
        session,
        "chat",
        model=result.model,
        params=_params(req),
        usage=result.usage,
        latency=round(result.latency, 3),
        request_id=result.request_id,
        finish_reason=result.finish_reason,
        thread=req.thread or "default",
        turns_sent=stats.turns_sent,
        estimated_cost_usd=stats.cost,
        vars=req.vars_used or None,
    )


def _params(req: ChatRequest) -> dict[str, Any]:
    params = dict(req.params)
    if req.system:
        params["system"] = req.system
    if req.images:
        params["images"] = len(req.images)
    if req.schema:
        params["schema"] = req.schema.name
    return params


def _show_chat_images(session: Session, screen: D.Screen, result: ChatResult) -> None:
    for index, image in enumerate(result.images, 1):
        path = session.save(image.data, result.model, index, image.extension)
        data, meta = D.image_bundle(image, session.display_path(path))
        meta.update(
            _meta(session, "chat-image", model=result.model, file=session.display_path(path))
        )
        screen.show(data, meta)


# --- running several models at once --------------------------------------------------------------


def run_columns(
    screen: D.Screen,
    columns: list[D.Column],
    work: Callable[[Callable[[Event], None]], Coroutine[Any, Any, None]],
    apply: Callable[[D.Column, str, Any], None],
    interval: float,
    metadata: Callable[[], dict[str, Any]],
) -> None:
    """Run ``work`` on the runtime loop, folding its events into the grid every ``interval``.

    ``metadata`` is asked once every column has finished (or the user interrupted), for the
    final output's provenance.
    """
    events: queue.Queue[Event] = queue.Queue()

    async def until_end() -> None:
        try:
            await work(events.put)
        finally:
            events.put(_END)  # wakes the drain at once: no waiting out the interval

    future = runtime.submit(until_end())
    live = D.Live(screen, D.grid_bundle(columns), interval) if screen.rich else None
    try:
        while not _drain(events, columns, apply, interval):
            if live is not None:
                live.update(D.grid_bundle(columns))
    except KeyboardInterrupt:
        future.cancel()
        for column in columns:
            column.stop("interrupted")
        _final_grid(screen, live, columns, metadata)
        raise
    future.result()
    _final_grid(screen, live, columns, metadata)


def _final_grid(
    screen: D.Screen, live: D.Live | None, columns: list[D.Column], metadata: Callable[[], Any]
) -> None:
    if live is not None:
        live.update(D.grid_bundle(columns), metadata(), final=True)
    else:
        screen.show(D.grid_bundle(columns), metadata())


_END: Event = (-1, "end", None)


def _drain(
    events: queue.Queue[Event],
    columns: list[D.Column],
    apply: Callable[[D.Column, str, Any], None],
    wait: float,
) -> bool:
    """Apply the events of the next ``wait`` seconds; True once the work has ended."""
    deadline = time.monotonic() + wait
    while True:
        try:
            event = events.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            return False
        if event is _END:
            return True
        index, kind, payload = event
        apply(columns[index], kind, payload)
        if time.monotonic() >= deadline:
            return False


async def _each(jobs: list[Awaitable[None]]) -> None:
    await asyncio.gather(*jobs)


def compare_chat(
    session: Session, screen: D.Screen, req: ChatRequest, messages: list[dict[str, Any]], turns: int
) -> dict[str, Any]:
    """Stream one prompt to every model at once, into columns."""
    aclient = session.client().aio
    columns = [D.Column(m) for m in req.models]
    results: dict[str, Any] = {}
    estimate = _chat_estimate(req, messages)
    refused = paid_columns(session, "chat", req.models, estimate, "a chat with {model}")
    _refuse(columns, results, refused)

    def apply(column: D.Column, kind: str, payload: Any) -> None:
        if kind == "delta":
            column.text += payload
        elif kind == "error":
            column.error = str(payload)
            results[column.model] = payload
            paid = isinstance(payload, (StreamIncompleteError, SchemaMismatch))
            if paid and payload.result is not None:  # its text stays in the column
                usage = payload.result.usage
                cost = session.prices.chat(column.model, usage)
                session.tally.add(column.model, "chat", usage, cost)
        else:
            results[column.model] = payload
            column.text, column.data = payload.text, payload.data
            cost = session.prices.chat(payload.model, payload.usage)
            session.tally.add(payload.model, "chat", payload.usage, cost)
            column.stats = D.Stats(
                payload.model,
                latency=payload.latency,
                usage=payload.usage,
                cost=cost,
                turns_sent=turns,
            )

    async def work(put: Callable[[Event], None]) -> None:
        await _each(
            [
                _stream_column(aclient, i, m, messages, req, put)
                for i, m in enumerate(req.models)
                if m not in refused
            ]
        )

    def metadata() -> dict[str, Any]:
        per_column = [c.provenance() for c in columns]
        return _meta(
            session, "chat-compare", params=_params(req), turns_sent=turns, columns=per_column
        )

    run_columns(screen, columns, work, apply, session.config.stream_interval, metadata)
    _raise_if_all_failed(results)
    for result in results.values():
        if isinstance(result, StreamIncompleteError):  # a cut answer must not pass as whole
            raise result
    if req.schema:  # -o keeps each model's object (a mismatch keeps its error, with .result)
        return {m: r.data if isinstance(r, ChatResult) else r for m, r in results.items()}
    return results


async def _stream_column(
    aclient: AsyncClient,
    index: int,
    model: str,
    messages: list[dict[str, Any]],
    req: ChatRequest,
    put: Callable[[Event], None],
) -> None:
    try:
        async for chunk in aclient.chat_stream(
            messages,
            model,
            system=req.system,
            images=req.images or None,
            schema=req.schema,
            **req.params,
        ):
            put(
                (index, "done", chunk.result)
                if chunk.result is not None
                else (index, "delta", chunk.text)
            )
    except TokenhotError as exc:
        put((index, "error", exc))


def _raise_if_all_failed(results: dict[str, Any]) -> None:
    errors = [r for r in results.values() if isinstance(r, TokenhotError)]
    if results and len(errors) == len(results):
        raise errors[0]


# --- images --------------------------------------------------------------------------------------


def image(session: Session, screen: D.Screen, req: ImageRequest) -> ImageResult | dict[str, Any]:
    """Generate or edit pictures with one model, or several side by side."""
    show_banner(session, screen)
    if len(req.models) > 1:
        return compare_images(session, screen, req)
    client = session.client()
    model = client.model(req.models[0], "image").id
    paid(session, "image", model, {"n": req.n, **req.params}, _pictures(req.n, model))
    result = client.image(
        req.prompt,
        model,
        size=req.size,
        n=req.n,
        images=req.inputs or None,
        mask=req.mask,
        **req.params,
    )
    paths = _save_images(session, result)
    cost = _image_cost(session, result)
    notes = D.picture_notes(paths)
    stats = D.Stats(
        result.model, latency=result.latency, usage=result.usage, cost=cost, extra=notes
    )
    for image_, path in paths:
        data, meta = D.image_bundle(image_, path)
        meta.update(_image_meta(session, req, result, cost, path))
        screen.show(data, meta)
    screen.show(D.chat_bundle(result.text, stats.line()))  # the chat answer's footer
    return result


def _pictures(n: int, model: str) -> str:
    return f"{n} picture{'s' * (n != 1)} from {model}"


def _save_images(session: Session, result: ImageResult) -> list[tuple[Image, str]]:
    saved = []
    for index, picture in enumerate(result.images, 1):
        path = session.save(picture.data, result.model, index, picture.extension)
        saved.append((picture, session.display_path(path)))
    return saved


def _image_cost(session: Session, result: ImageResult) -> float | None:
    cost = session.prices.pictures(result.model, len(result.images))
    session.tally.add(result.model, "image", result.usage, cost)
    return cost


def _image_meta(
    session: Session, req: ImageRequest, result: ImageResult, cost: float | None, path: str
) -> dict[str, Any]:
    params = {
        "size": req.size,
        "n": req.n,
        "inputs": len(req.inputs) or None,
        "mask": req.mask is not None or None,
    }
    params.update(req.params)
    return _meta(
        session,
        "image",
        model=result.model,
        params={k: v for k, v in params.items() if v is not None},
        usage=result.usage,
        latency=round(result.latency, 3),
        request_id=result.request_id,
        estimated_cost_usd=cost,
        file=path,
    )


def compare_images(session: Session, screen: D.Screen, req: ImageRequest) -> dict[str, Any]:
    """The same picture request to every model at once, shown in columns."""
    aclient = session.client().aio
    columns = [D.Column(m) for m in req.models]
    results: dict[str, Any] = {}
    estimate = {"n": req.n, **req.params}
    refused = paid_columns(session, "image", req.models, estimate, _pictures(req.n, "{model}"))
    _refuse(columns, results, refused)

    def apply(column: D.Column, kind: str, payload: Any) -> None:
        results[column.model] = payload
        if kind == "error":
            column.error = str(payload)
            return
        column.images = _save_images(session, payload)
        cost = _image_cost(session, payload)
        notes = D.picture_notes(column.images, paths=False)
        column.stats = D.Stats(
            payload.model,
            latency=payload.latency,
            usage=payload.usage,
            cost=cost,
            extra=[*notes, payload.text],
        )

    async def one(index: int, model: str, put: Callable[[Event], None]) -> None:
        try:
            result = await aclient.image(
                req.prompt,
                model,
                size=req.size,
                n=req.n,
                images=req.inputs or None,
                mask=req.mask,
                **req.params,
            )
        except TokenhotError as exc:
            put((index, "error", exc))
        else:
            put((index, "done", result))

    async def work(put: Callable[[Event], None]) -> None:
        await _each([one(i, m, put) for i, m in enumerate(req.models) if m not in refused])

    def metadata() -> dict[str, Any]:
        params = {"size": req.size, "n": req.n, **req.params}
        per_column = [c.provenance() for c in columns]
        return _meta(session, "image-compare", params=params, columns=per_column)

    run_columns(screen, columns, work, apply, session.config.stream_interval, metadata)
    _raise_if_all_failed(results)
    return results


# --- audio -------------------------------------------------------------------------------------


def speak(
    session: Session,
    screen: D.Screen,
    text: str,
    model: str,
    voice: str | None,
    params: dict[str, Any],
) -> bytes:
    """Read ``text`` aloud: an inline player and a saved WAV."""
    show_banner(session, screen)
    client = session.client()
    resolved = client.model(model, "audio").id
    paid(session, "speech", resolved, {"text": text}, f"speech from {resolved}")
    started = time.monotonic()
    wav = client.speak(text, resolved, voice=voice, **params)
    latency = time.monotonic() - started
    path = session.display_path(session.save(wav, resolved, 1, ".wav"))
    cost = session.prices.speech(resolved, len(text))
    session.tally.add(resolved, "audio", None, cost)
    notes = [f"voice {voice}"] if voice else []
    stats = D.Stats(resolved, latency=latency, cost=cost, extra=notes)
    meta = _meta(
        session,
        "speech",
        model=resolved,
        params={"voice": voice, **params},
        latency=round(latency, 3),
        estimated_cost_usd=cost,
        file=path,
        characters=len(text),
    )
    screen.show(D.audio_bundle(wav, path, path, stats.line()), meta)
    return wav


def transcribe(
    session: Session,
    screen: D.Screen,
    source: Any,
    model: str,
    *,
    translate: bool,
    language: str | None,
) -> Transcript:
    """The text of an audio file or variable."""
    show_banner(session, screen)
    media = load_media(source, what="audio")
    known = D.wav_seconds(media.data) if media.data else 0.0
    paid(session, "transcript", model, {"seconds": known}, f"a transcript from {model}")
    started = time.monotonic()
    transcript = session.client().transcribe(media, model, translate=translate, language=language)
    latency = time.monotonic() - started
    seconds = transcript.duration or (D.wav_seconds(media.data) if media.data else 0.0)
    cost = session.prices.transcript(transcript.model, seconds) if seconds else None
    session.tally.add(transcript.model, "audio", None, cost)
    extra = [f"{seconds:.1f} s of audio"] if seconds else []
    notes = [*extra, transcript.language or ""]
    stats = D.Stats(transcript.model, latency=latency, cost=cost, extra=notes)
    meta = _meta(
        session,
        "transcript",
        model=transcript.model,
        latency=round(latency, 3),
        estimated_cost_usd=cost,
        params={"translate": translate or None, "language": language},
        language=transcript.language,
        audio_seconds=seconds or None,
        source=media.url or media.name,
    )
    screen.show(D.transcript_bundle(transcript.text, stats.line()), meta)
    return transcript


# --- video ---------------------------------------------------------------------------------------


@dataclass(kw_only=True)
class VideoRequest:
    """A parsed ``%%video`` cell."""

    model: str
    prompt: str
    params: dict[str, Any] = field(default_factory=dict)
    image: Any = None
    video: Any = None
    new: bool = False
    source: str = ""


def video(session: Session, screen: D.Screen, req: VideoRequest) -> Tracked:
    """Create (or, for an unchanged cell, reuse) a task and show its live card."""
    inputs, digest = video_inputs(req.image, req.video)
    params = req.params | inputs
    show_banner(session, screen)
    costs: list[float | None] = []  # a reused task is not paid again: no estimate, no check
    tracked, reused = session.tasks().create(
        model=req.model,
        prompt=req.prompt,
        params=params,
        inputs_digest=digest,
        new=req.new,
        cell_key=session.turn_key(req.source),
        before_send=lambda: costs.append(
            paid(session, "video", req.model, params, f"a video from {req.model}")
        ),
    )
    if costs:  # counted at its estimate (a video's price is per second, known up front)
        session.tally.add(req.model, "video", None, costs[0])
    if reused:
        note = (
            f"Same request as before: showing task {tracked.task_id} again (--new makes a new one)."
        )
        screen.show(D.note_bundle(note))
    tracked.display()
    return tracked


def video_inputs(image: Any, video: Any) -> tuple[dict[str, Any], str]:
    """First-frame image and reference video as stable params (bytes or URL) and their digest.

    Variables (PIL images, arrays, files) become bytes here, so an unchanged cell hashes the
    same and reuses its task instead of paying for a new one.
    """
    from .._store._journal import digest_inputs

    params: dict[str, Any] = {}
    for name, value in (("image", image), ("video", video)):
        if value is not None:
            media = load_media(value, what=name)
            params[name] = media.url or media.data
    return params, digest_inputs(*params.values())


def status_rows(session: Session) -> list[tuple[str, str]]:
    """``%tokenhot status``: key, gateway, simulated, reachable, budget, models, output folder."""
    client = session.client()
    rows = [
        ("API key", key_row(session)),
        ("Base URL", client.base_url),
        ("Simulated", f"yes: {D.SIMULATED_BANNER}" if session.simulated() else "no"),
        ("Cassette", client.cassette.status() if client.cassette else "none"),
        ("Reachable", _probe(session)),
        ("Budget", _budget.status_line(session)),
    ]
    rows += [
        (f"{kind} model", session.model_for(kind))
        for kind in ("chat", "image", "video", "audio", "transcribe")
    ]
    return [*rows, ("Output folder", session.display_path(session.output_dir()))]


_SOURCES: dict[KeySource, str] = {
    "argument": "given as an argument",
    "environment": "from TOKENHOT_API_KEY",
    "stored": "stored from the Tokenhot panel",
    "login": "from %tokenhot login, this kernel only",
}


def key_row(session: Session) -> str:
    """Which key is in force and where it comes from (masked: its last four characters)."""
    creds = session.credentials()
    if creds.simulated:
        return "not set (the simulator needs none)"
    if creds.key is None:
        cassette = session.client().cassette
        if cassette is not None and cassette.mode == "replay":
            return "not needed: replaying a cassette"
        return "not set: run %tokenhot login, or set it in the Tokenhot panel of JupyterLab"
    where = _SOURCES.get(creds.source, creds.source)
    if creds.source == "stored":
        where += f" ({store().path})"
    return f"{mask_key(creds.key)}, {where}"


def _probe(session: Session) -> str:
    """Ask the gateway for its model list, with a short timeout and no cached answer."""
    cassette = session.client().cassette
    if cassette is not None and cassette.mode == "replay":
        return "not asked: replaying a cassette, nothing goes to the network"
    probe = Client(
        session.api_key(),
        session.client().base_url,
        timeout=session.config.status_timeout,
        max_retries=0,
    )
    started = time.monotonic()
    try:
        models = probe.models(live=True, refresh=True)  # status must really ask
    except TokenhotError as exc:
        return f"no: {exc}"
    session.note_live(models)
    listed = sum(1 for m in models if m.live)
    return f"yes ({time.monotonic() - started:.2f} s, {listed} models listed)"


def start_cassette(session: Session, path: str, mode: str, speed: float = 1.0) -> str:
    """``%tokenhot record PATH`` / ``replay PATH``: every new request goes through it."""
    cassette = _cassette.open_cassette(path, mode, speed=speed, restart=True)
    session.use_cassette(cassette)
    if mode == "record":
        return (
            f"Recording every gateway exchange of this kernel into {cassette.path} until "
            "%tokenhot record --stop (response headers by allowlist, never the key)."
        )
    what = (
        "what is not recorded goes to the gateway and is added"
        if mode == "auto"
        else "nothing goes to the network; a request that was not recorded fails"
    )
    return f"Replaying {cassette.path} ({cassette.size} exchanges, speed {speed:g}): {what}."


def stop_cassette(session: Session, mode: str) -> str:
    """``%tokenhot record --stop`` / ``replay --stop``: new requests go to the gateway."""
    cassette = session.cassette or None
    recording = cassette is not None and cassette.mode == "record"
    if cassette is None or recording != (mode == "record"):
        doing = cassette.status() if cassette else "no cassette is in use"
        raise InvalidInputError(f"Nothing to stop with %tokenhot {mode} --stop: {doing}.")
    session.use_cassette(False)
    if not recording:
        return f"Stopped replaying {cassette.path}; requests go to the gateway again."
    cassette.prune()
    size = cassette.disk_size()
    return (
        f"Stopped recording: {cassette.recorded} exchanges in {cassette.path} "
        f"({size / 1024:.0f} KB). Commit it with the notebook; %tokenhot replay "
        f"{cassette.path} plays it back without a key."
    )


def model_rows(session: Session, kind: Kind | None) -> tuple[list[list[str]], str]:
    """``%tokenhot models [kind]``: the live list merged with the catalog (or the catalog alone)."""
    note = ""
    try:
        models = session.client().models(kind, live=True)
        session.note_live(models)
    except TokenhotError as exc:
        models = session.client().models(kind, live=False)
        note = f"The gateway did not answer ({exc}); this is the built-in catalog."
    rows = [
        [m.id, m.kind, m.family, m.vendor, "yes" if m.live else "", price_text(m) or ""]
        for m in models
    ]
    return rows, note


def history_rows(session: Session, thread: str | None) -> list[list[str]]:
    """``%tokenhot history``: every turn of this notebook's threads (or one thread)."""
    threads = [session.thread(thread)] if thread else session.notebook_threads()
    return [
        [t.name, str(i), turn.model, _excerpt(turn.prompt), _excerpt(turn.answer)]
        for t in threads
        for i, turn in enumerate(t.turns, 1)
    ]


def _excerpt(text: str, limit: int = 80) -> str:
    flat = " ".join(redact(text).split())  # redact first: a cut key would not be found later
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def usage_rows(session: Session) -> list[list[str]]:
    """``%tokenhot usage``: calls, tokens and estimated spend per model, and a total."""
    rows = [
        [
            model,
            s.kind,
            str(s.calls),
            f"{s.usage.input_tokens:,}",
            f"{s.usage.output_tokens:,}",
            f"{s.cost:.6f}" + ("" if s.priced else " (partly unpriced)"),
        ]
        for model, s in session.tally.models.items()
    ]
    total = session.tally
    calls = sum(s.calls for s in total.models.values())
    return [*rows, ["total", "", str(calls), "", "", f"{total.total_cost:.6f}"]]


def ledger_rows(session: Session, today: bool) -> tuple[list[list[str]], str]:
    """``%tokenhot usage --today/--all``: every kernel's calls from the ledger, and a title."""
    ledger = session.ledger()
    simulated = session.simulated()
    day = ledger.today() if today else None
    rows = [
        [
            t.name,
            t.kind,
            str(t.requests),
            f"{t.input_tokens:,}",
            f"{t.output_tokens:,}",
            f"{t.cost:.6f}" + (" (partly unpriced)" if t.unpriced else ""),
        ]
        for t in ledger.by_model(simulated=simulated, day=day)
    ]
    total = ledger.total(simulated=simulated, day=day)
    tokens_in, tokens_out = f"{total.input_tokens:,}", f"{total.output_tokens:,}"
    rows.append(["total", "", str(total.requests), tokens_in, tokens_out, f"{total.cost:.6f}"])
    when = f"today ({day})" if day else "all time"
    calls = "simulated calls" if simulated else "live calls"
    return rows, f"Usage {when}, every kernel, {calls} (costs are estimates)"
