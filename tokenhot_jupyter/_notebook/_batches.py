"""``%%chat --over VAR`` and ``%%image --over VAR``: the cell's prompt once per item of VAR.

VAR is a list (or any other iterable), a pandas Series or a pandas DataFrame (recognised
by shape: pandas is never imported here).  Each row's fields go into the prompt with the
one-pass interpolation of ``--vars`` (`_interpolate`): ``{item}`` and ``{index}`` for a
list or a Series (a named Series also as ``{name}``), ``{column}`` for each column of a
DataFrame and ``{index}`` for its row label; with ``--vars`` notebook variables too.  A
placeholder that names nothing, or a prompt that uses no field, is one line and nothing is
sent: paying for ten thousand copies of one prompt is never what was meant.

The batch itself is the client's (`AsyncClient.chat_batch`): rows the resume store holds
are reused, the others sent with bounded, adaptive concurrency and kept as they finish.
One progress output follows the whole batch (`_progress`); a summary ends it.  ``-o``
gets the answers in input order: a list, or for a Series or DataFrame a new DataFrame
with the input and a new column.
"""

from __future__ import annotations

import collections
import keyword
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from IPython.core.error import UsageError

from .._batch import Batch, BatchProgress, BatchRow
from .._exceptions import SchemaMismatch, TokenhotError
from .._runtime import runtime
from .._schema import Schema
from .._types import ChatResult, ImageResult
from . import _budget
from . import _display as D
from ._actions import ChatRequest, ImageRequest, _meta, show_banner
from ._interpolate import interpolate
from ._progress import ProgressView
from ._session import Session

Keep = Callable[[Any], None]  # puts the -o value into the notebook
PREVIEW = 5  # rows shown in the table after a chat batch
FIRST_ERRORS = 3  # failures named, one line each, in the summary


# --- the rows of VAR ----------------------------------------------------------------------


@dataclass(frozen=True)
class Rows:
    """The items of ``--over VAR``: each row's fields, and what VAR was."""

    name: str
    kind: Literal["list", "series", "frame"]
    fields: list[dict[str, Any]]
    source: Any = field(repr=False)

    @property
    def names(self) -> list[str]:
        """The fields every row has (for messages)."""
        return list(self.fields[0]) if self.fields else []


def rows_of(name: str, namespace: Mapping[str, Any]) -> Rows:
    """The rows of the notebook variable ``name``; UsageError for anything else."""
    if name not in namespace:
        raise UsageError(
            f"--over: no variable named {name!r}: define it first (a list, a pandas Series "
            "or a DataFrame)."
        )
    value = namespace[name]
    if _is_frame(value):
        rows = Rows(name, "frame", _frame_fields(value), value)
    elif _is_series(value):
        rows = Rows(name, "series", _series_fields(value), value)
    else:
        rows = Rows(name, "list", _list_fields(name, value), value)
    if not rows.fields:
        raise UsageError(f"--over {name} is empty: there is nothing to send.")
    return rows


def _is_frame(value: Any) -> bool:
    return all(hasattr(value, a) for a in ("columns", "to_dict", "assign", "index"))


def _is_series(value: Any) -> bool:
    return all(hasattr(value, a) for a in ("to_frame", "items", "index"))


def _frame_fields(frame: Any) -> list[dict[str, Any]]:
    records = frame.to_dict("records")
    return [
        {"index": label} | {str(k): v for k, v in record.items()}
        for label, record in zip(frame.index, records, strict=True)
    ]


def _series_fields(series: Any) -> list[dict[str, Any]]:
    name = series.name if isinstance(series.name, str) and series.name.isidentifier() else None
    return [
        {"item": value, "index": label} | ({name: value} if name else {})
        for label, value in series.items()
    ]


def _list_fields(name: str, value: Any) -> list[dict[str, Any]]:
    what = type(value).__name__
    if isinstance(value, (str, bytes)):
        raise UsageError(f"--over {name} is a {what}, not a list: put the items in a list.")
    if isinstance(value, Mapping):
        raise UsageError(
            f"--over {name} is a {what}: pass list({name}.values()) or a pandas DataFrame."
        )
    if not isinstance(value, Iterable):
        raise UsageError(f"--over {name} is a {what}, not a list, a pandas Series or a DataFrame.")
    return [{"item": item, "index": i} for i, item in enumerate(value)]


def prompts_for(template: str, rows: Rows, namespace: Mapping[str, Any] | None) -> list[str]:
    """The prompt of each row (``namespace``: notebook variables too, for ``--vars``)."""
    prompts = []
    for index, fields in enumerate(rows.fields):
        scope = collections.ChainMap(fields, dict(namespace or {}))
        result = interpolate(template, scope)
        if result.unknown:
            raise UsageError(_unknown(result.unknown[0], rows, namespace is not None))
        if index == 0 and not any(n.split(".")[0] in fields for n in result.used):
            raise UsageError(_unused(rows))
        prompts.append(result.text)
    return prompts


def _unknown(name: str, rows: Rows, with_vars: bool) -> str:
    where = "a column of" if rows.kind == "frame" else "a field of the rows of"
    also = " nor a notebook variable" if with_vars else ""
    return (
        f"The prompt names {{{name}}}, which is not {where} {rows.name}{also} (they have "
        f"{', '.join('{' + n + '}' for n in rows.names if _reachable(n))}); "
        f"write {{{{{name}}}}} for a literal {{{name}}}."
    )


def _unused(rows: Rows) -> str:
    what = "{column}" if rows.kind == "frame" else "{item}"
    return (
        f"The prompt uses nothing from {rows.name}: write {what} where each row's value goes "
        "(otherwise every row would send the same prompt)."
    )


def _reachable(name: str) -> bool:
    return name.isidentifier() and not keyword.iskeyword(name)


# --- running a batch ----------------------------------------------------------------------


@dataclass(kw_only=True)
class Over:
    """The batch options of a cell: ``--over VAR --concurrency N --retry-failed --yes``."""

    name: str
    concurrency: int
    retry_failed: bool = False
    yes: bool = False
    vars: bool = False


def chat_over(
    session: Session,
    screen: D.Screen,
    req: ChatRequest,
    over: Over,
    namespace: Mapping[str, Any],
    keep: Keep,
) -> None:
    """Ask one model the cell's prompt for every row of ``over.name``."""
    rows = rows_of(over.name, namespace)
    prompts = prompts_for(req.prompt, rows, namespace if over.vars else None)
    client = session.client()
    model = client.model(req.models[0], "chat").id
    batch = client.chat_batch(
        prompts, model, system=req.system, images=req.images or None, schema=req.schema,
        retry_failed=over.retry_failed, **req.params,
    )  # fmt: skip
    costs = {i: _chat_estimate(session, model, req, prompts[i]) for i in batch.to_send}

    def tally(row: BatchRow[ChatResult]) -> None:
        result = _paid_answer(row)
        if result is not None:  # an answer that did not match its schema was paid for too
            session.tally.add(model, "chat", result.usage, session.prices.chat(model, result.usage))

    def measure(result: ChatResult) -> tuple[int, float | None]:
        usage = result.usage
        return (usage.total_tokens if usage else 0), session.prices.chat(model, usage)

    title = f"{model} over {rows.name}"
    results = _run(session, screen, batch, over, title, costs, tally, measure)
    keep(collect(rows, results, _answer_columns(results, req.schema), data=req.schema is not None))
    _show_preview(screen, rows, results)
    _raise_if_stopped(results)


def _chat_estimate(session: Session, model: str, req: ChatRequest, prompt: str) -> float | None:
    messages = [{"role": "user", "content": prompt}]
    request = {"prompt": _budget.final_prompt(messages, req.system), **req.params}
    return _budget.estimate(session, "chat", model, request)


def _paid_answer(row: BatchRow[ChatResult]) -> ChatResult | None:
    """The answer a row that went out paid for: its result, or the one its mismatch keeps."""
    if not row.sent:
        return None
    if row.ok:
        return row.result
    return row.error.result if isinstance(row.error, SchemaMismatch) else None


def _answer_columns(
    results: list[BatchRow[ChatResult]], schema: Schema | None
) -> dict[str, list[Any]]:
    """The new columns: ``answer`` (the text; with a list schema, the list), or with an
    object schema one column per field of each row's object."""
    data = [r.result.data if r.ok and r.result else None for r in results]
    if schema is None:
        return {"answer": [r.result.text if r.ok and r.result else None for r in results]}
    if not schema.fields:
        return {"answer": data}
    return {name: [_field(d, name) for d in data] for name in schema.fields}


def _field(obj: Any, name: str) -> Any:
    """A field of a row's object: a mapping's key, or a dataclass's or a model's attribute."""
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def image_over(
    session: Session,
    screen: D.Screen,
    req: ImageRequest,
    over: Over,
    namespace: Mapping[str, Any],
    keep: Keep,
) -> None:
    """Make pictures for every row of ``over.name``; each saved under the output folder."""
    rows = rows_of(over.name, namespace)
    prompts = prompts_for(req.prompt, rows, namespace if over.vars else None)
    client = session.client()
    model = client.model(req.models[0], "image").id
    batch = client.image_batch(
        prompts, model, size=req.size, n=req.n, images=req.inputs or None, mask=req.mask,
        retry_failed=over.retry_failed, **req.params,
    )  # fmt: skip
    saved: dict[int, list[str]] = {}
    estimate = _budget.estimate(session, "image", model, {"n": req.n, **req.params})
    costs: dict[int, float | None] = dict.fromkeys(batch.to_send, estimate)

    def tally(row: BatchRow[ImageResult]) -> None:
        if row.sent and row.ok and row.result is not None:
            cost = session.prices.pictures(model, len(row.result.images))
            session.tally.add(model, "image", row.result.usage, cost)

    def measure(result: ImageResult) -> tuple[int, float | None]:
        usage = result.usage
        return (usage.total_tokens if usage else 0), session.prices.pictures(model, len(result))

    def save(row: BatchRow[ImageResult]) -> None:
        if row.ok and row.result is not None:
            saved[row.index] = _save(session, model, batch.keys[row.index], row.result)

    for row in batch.settled.values():  # reused pictures: in this notebook's folder too
        save(row)
    title = f"{model} over {rows.name}"
    results = _run(session, screen, batch, over, title, costs, tally, measure, also=save)
    files = [_one_or_all(saved.get(r.index)) for r in results]
    keep(collect(rows, results, {"image": files}))
    if saved:
        folder = session.display_path(session.output_dir())
        count = sum(len(v) for v in saved.values())
        screen.show(D.note_bundle(f"{count} picture{'s' * (count != 1)} in {folder}/."))
    _raise_if_stopped(results)


def _save(session: Session, model: str, key: str, result: ImageResult) -> list[str]:
    return [
        session.display_path(session.save(p.data, model, n, p.extension, key=key[:16]))
        for n, p in enumerate(result.images, 1)
    ]


def _one_or_all(paths: list[str] | None) -> Any:
    if not paths:
        return None
    return paths[0] if len(paths) == 1 else paths


def _run(
    session: Session,
    screen: D.Screen,
    batch: Batch[Any],
    over: Over,
    title: str,
    costs: dict[int, float | None],
    tally: Callable[[BatchRow[Any]], None],
    measure: Callable[[Any], tuple[int, float | None]],
    *,
    also: Callable[[BatchRow[Any]], None] | None = None,
) -> list[BatchRow[Any]]:
    """Say what will be sent and what it may cost, ask if it is a lot (``--yes``: do not),
    send it with one progress output (each row checked against the budgets right before it
    goes), then the summary."""
    show_banner(session, screen)
    total = _total(costs)
    screen.show(D.note_bundle(_plan_note(batch, over, total)))
    if not batch.to_send:
        results = [batch.settled[i] for i in range(batch.total)]
        _summary(session, screen, batch, title, results, BatchProgress(total=batch.total))
        return results
    _budget.confirm_batch(session, total, len(batch.to_send), yes=over.yes)
    view = ProgressView(screen, title, batch.total, session.config.stream_interval)
    on_the_way: dict[int, float] = {}  # estimates of rows sent and not yet in the tally

    def before_send(index: int) -> None:
        what = f"row {index} to {batch.model}"
        _budget.check(session, costs.get(index), what, pending=sum(on_the_way.values()))
        on_the_way[index] = costs.get(index) or 0.0

    def settled(row: BatchRow[Any]) -> None:
        tally(row)
        on_the_way.pop(row.index, None)
        if also is not None:
            also(row)

    work = batch.run(
        concurrency=over.concurrency, clock=session.batch_clock, before_send=before_send,
        on_row=settled, on_progress=view.update, measure=measure,
    )  # fmt: skip
    try:
        results = runtime.run(work)
    except KeyboardInterrupt:
        view.finish()
        screen.show(D.note_bundle(_interrupted_note(view.last)))
        raise
    view.finish()
    _summary(session, screen, batch, title, results, view.last)
    return results


def _total(costs: Mapping[int, float | None]) -> float | None:
    """The batch's estimate: what its priced rows add up to (None when none is priced)."""
    known = [c for c in costs.values() if c is not None]
    return sum(known) if known else None


def _plan_note(batch: Batch[Any], over: Over, total: float | None) -> str:
    sending = len(batch.to_send)
    text = f"Sending {sending} of {batch.total} rows to {batch.model} ({_budget.about(total)})"
    kept = []
    if batch.reused:
        kept.append(f"{batch.reused} answered before, reused")
    if batch.failed_before:
        kept.append(f"{batch.failed_before} failed before, kept (--retry-failed sends them)")
    if kept:
        text += f"; {'; '.join(kept)}"
    if not sending:
        return f"Nothing to send: all {batch.total} rows of {over.name} are stored " + (
            f"({'; '.join(kept)})."
        )
    return text + f", at most {over.concurrency} at once."


def _interrupted_note(progress: BatchProgress) -> str:
    kept = progress.answered + progress.failed
    return (
        f"Interrupted: {kept} rows finished this time and are kept; running the cell again "
        f"sends only the {progress.left + progress.not_sent} rows left."
    )


def _summary(
    session: Session,
    screen: D.Screen,
    batch: Batch[Any],
    title: str,
    results: list[BatchRow[Any]],
    progress: BatchProgress,
) -> None:
    counts = collections.Counter(r.status for r in results)
    line = (
        f"{title}: {counts['answered']} answered, {counts['reused']} reused, "
        f"{counts['failed']} failed"
    )
    if counts["not sent"]:
        line += f", {counts['not sent']} not sent"
    tail = [
        f"{progress.rate:.1f} rows/s" if progress.rate else "",
        f"{progress.tokens:,} tokens" if progress.tokens else "",
        D.money(progress.cost),
        D.seconds(progress.elapsed) if progress.elapsed else "",
    ]
    lines = [" · ".join(p for p in [line, *tail] if p)]
    failures = [r for r in results if not r.ok]
    for row in failures[:FIRST_ERRORS]:
        lines.append(f"row {row.index}: {type(row.error).__name__}: {_one_line(row.error)}")
    if len(failures) > FIRST_ERRORS:
        lines.append(f"… and {len(failures) - FIRST_ERRORS} more (see -o)")
    meta = _meta(
        session,
        f"{batch.codec.kind}-batch",
        model=batch.model,
        rows=batch.total,
        answered=counts["answered"],
        reused=counts["reused"],
        failed=counts["failed"],
        not_sent=counts["not sent"] or None,
        tokens=progress.tokens or None,
        estimated_cost_usd=progress.cost,
    )
    screen.show(D.note_bundle("\n".join(lines)), meta)


def _one_line(error: BaseException | None) -> str:
    text = " ".join(str(error).split())
    return text if len(text) <= 160 else text[:159] + "…"


def _show_preview(screen: D.Screen, rows: Rows, results: list[BatchRow[ChatResult]]) -> None:
    """The first few rows' answers (inert, cut short): the whole lot is in -o."""
    table = [
        [str(r.index), r.status, _excerpt(r.result.text if r.ok and r.result else str(r.error))]
        for r in results[:PREVIEW]
    ]
    more = f" (first {PREVIEW} of {len(results)})" if len(results) > PREVIEW else ""
    screen.show(D.table_bundle(("Row", "Status", "Answer"), table, f"{rows.name}{more}"))


def _excerpt(text: str, limit: int = 100) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _raise_if_stopped(results: list[BatchRow[Any]]) -> None:
    """Fail the cell (so Run All stops) when the batch stopped early or nothing got through."""
    unsent = next((r.error for r in results if r.status == "not sent"), None)
    if isinstance(unsent, TokenhotError):
        raise unsent
    if all(not r.ok for r in results):
        error = results[0].error
        if isinstance(error, TokenhotError):
            raise error


# --- -o -----------------------------------------------------------------------------------


def collect(
    rows: Rows,
    results: list[BatchRow[Any]],
    columns: Mapping[str, list[Any]],
    *,
    data: bool = False,
) -> Any:
    """The -o value: each row's result (``data``: its schema's object) or error in a list;
    for a Series or DataFrame a new DataFrame with ``columns`` (and an ``error`` column when
    a row failed) beside the input."""
    if rows.kind == "list":
        return [_value(r, data) for r in results]
    frame = rows.source.to_frame() if rows.kind == "series" else rows.source
    new = dict(columns)
    if any(not r.ok for r in results):
        new["error"] = [None if r.ok else _one_line(r.error) for r in results]
    taken = {str(c) for c in frame.columns}
    return frame.assign(**{_free(name, taken): values for name, values in new.items()})


def _value(row: BatchRow[Any], data: bool) -> Any:
    if not row.ok:
        return row.error
    return getattr(row.result, "data", None) if data else row.result


def _free(name: str, taken: set[str]) -> str:
    """``name``, or ``name_2``, ``name_3`` … when the input already has such a column."""
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        candidate = f"{name}_{n}"
    taken.add(candidate)
    return candidate
