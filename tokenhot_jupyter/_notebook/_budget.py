"""What a request will cost before it is sent, and the budgets that may refuse it.

This is the one home of the estimates.  They use the tally's list prices (`_usage.Prices`:
the session's catalog, with what the gateway's live list adds) and are *estimates*, never
a bill:

- ``"chat"``: input tokens from the final prompt (every message sent: earlier turns and the
  system prompt included) by a rule of thumb, `tokens_of`: 4 ASCII characters to a token,
  one token for every other character (CJK scripts, emoji: a slight over-count for accented
  Latin).  Output: ``max_tokens`` when given, else `TYPICAL_ANSWER_TOKENS`.  Images sent
  with the prompt are not counted: the catalog prices no image input.  Reasoning tokens are
  billed as output; only ``max_tokens`` bounds them.
- ``"image"``: the price per picture × ``n`` (default 1).
- ``"video"``: the price per second × ``duration`` (the flag, else the model's default);
  a model with no duration has no estimate.
- ``"speech"``: the price per 1M characters × the characters of ``text``.
- ``"transcript"``: the price per minute × ``seconds`` of audio, when known (a WAV header
  says; other formats are not measured).

A model without a list price (a live-only model, say) has no estimate: None.  The
confirmation then says the cost is unknown, and a budget lets the request through while
any of it is left, and refuses it once nothing is: a budget measures estimated dollars, and
a call that cannot be priced never moves that measure, so refusing it while money is left
would make every unpriced model unusable under any budget without protecting the budget;
once the budget is used up, nothing that may be paid goes out.

Budgets (``%tokenhot budget``): a day budget shared by every kernel (`_store._budget`, set in
any of them, read by the server extension), against today's spend in the usage ledger of
the mode in force (simulated calls against a simulated day, live against live); and a
session budget for this kernel, against this session's tally (since the kernel started or
``%tokenhot usage --reset``).  A request is refused when what is spent, plus what is in
flight, plus its estimate would pass either.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .._exceptions import BudgetExceeded, InvalidInputError, NotConfirmed, TokenhotError
from .._store._budget import Standing, today
from .._types import Usage
from ._display import dollars

if TYPE_CHECKING:
    from ._session import Session

CHARS_PER_TOKEN = 4  # ASCII characters per token, the usual rule of thumb for English
TYPICAL_ANSWER_TOKENS = 1_000  # output assumed when max_tokens is not given
MAX_TOKENS_KEYS = ("max_tokens", "max_completion_tokens", "max_output_tokens")
YES = ("y", "yes")

Request = Mapping[str, Any]


# --- estimates ------------------------------------------------------------------------------


def estimate(session: Session, kind: str, model: str, request: Request) -> float | None:
    """The estimated USD of one request of ``kind`` to ``model``; None when it has no price.

    ``request`` holds what the kind needs (see the module docstring): ``prompt`` for chat,
    ``n`` for images, ``duration`` for video, ``text`` for speech, ``seconds`` for a
    transcript, and any other parameter, flat or under ``params``.
    """
    try:
        estimator = ESTIMATES[kind]
    except KeyError:
        raise ValueError(f"no estimate for kind {kind!r}; one of {', '.join(ESTIMATES)}") from None
    return estimator(session, model, _flat(request))


def _flat(request: Request) -> dict[str, Any]:
    nested = request.get("params")
    params = dict(nested) if isinstance(nested, Mapping) else {}
    return params | {k: v for k, v in request.items() if k != "params"}


def tokens_of(text: str) -> int:
    """Estimated tokens of ``text``: 4 ASCII characters each, 1 for any other character."""
    ascii_chars = sum(1 for c in text if c.isascii())
    return math.ceil(ascii_chars / CHARS_PER_TOKEN) + len(text) - ascii_chars


def final_prompt(messages: Sequence[Mapping[str, Any]], system: str | None = None) -> str:
    """Every text that goes to the model: the system prompt and each message's text."""
    parts = [system or ""]
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, Sequence):  # content parts: their text (images are unpriced)
            parts += [str(p.get("text") or "") for p in content if isinstance(p, Mapping)]
    return "\n".join(p for p in parts if p)


def _chat(session: Session, model: str, request: dict[str, Any]) -> float | None:
    given = next((request[k] for k in MAX_TOKENS_KEYS if request.get(k)), None)
    output = int(given) if given else TYPICAL_ANSWER_TOKENS
    prompt = tokens_of(str(request.get("prompt") or ""))
    return session.prices.chat(model, Usage(prompt, output, prompt + output))


def _image(session: Session, model: str, request: dict[str, Any]) -> float | None:
    return session.prices.pictures(model, int(request.get("n") or 1))


def _video(session: Session, model: str, request: dict[str, Any]) -> float | None:
    known = session.catalog().models.get(model)
    spec = known.param("duration") if known else None
    duration = request.get("duration") or (spec.default if spec else None)
    return session.prices.video(model, float(duration)) if duration else None


def _speech(session: Session, model: str, request: dict[str, Any]) -> float | None:
    return session.prices.speech(model, len(str(request.get("text") or "")))


def _transcript(session: Session, model: str, request: dict[str, Any]) -> float | None:
    seconds = request.get("seconds")
    return session.prices.transcript(model, float(seconds)) if seconds else None


Estimator = Callable[["Session", str, dict[str, Any]], "float | None"]
ESTIMATES: dict[str, Estimator] = {
    "chat": _chat,
    "image": _image,
    "video": _video,
    "speech": _speech,
    "transcript": _transcript,
}


# --- budgets --------------------------------------------------------------------------------


def standings(session: Session) -> list[Standing]:
    """The budgets in force: the day's (every kernel), then this session's."""
    # today() reads the ledger only when there is a day budget to hold it against
    found = [today(session.budgets(), session.ledger(), simulated=session.simulated())]
    if session.session_budget is not None:
        spent = session.tally.total_cost
        found.append(Standing(scope="session", limit=session.session_budget, spent=spent))
    return [s for s in found if s is not None]


def check(session: Session, cost: float | None, what: str, *, pending: float = 0.0) -> None:
    """Refuse (BudgetExceeded) a request whose estimate would pass the day or session budget.

    Call it right before sending.  ``what`` names the request in the message ("%%chat to
    gpt-5"); ``pending`` is the estimate of requests already on their way and not yet in
    the tally or ledger (the earlier columns of a comparison, a batch's rows in flight).
    """
    for standing in standings(session):
        spent = standing.spent + pending
        over = spent >= standing.limit if cost is None else spent + cost > standing.limit
        if over:
            raise _refusal(standing, cost, what, pending)


def _refusal(standing: Standing, cost: float | None, what: str, pending: float) -> BudgetExceeded:
    spent, limit = standing.spent + pending, standing.limit
    left = max(0.0, limit - spent)
    where = _SCOPES[standing.scope]
    by = " today by every kernel" if standing.scope == "day" else ""
    by += " on simulated calls" if standing.simulated else ""
    flight = f" ({usd(pending)} of it on its way)" if pending else ""
    tally = f"{usd(spent)} of {usd(limit)} spent{by}{flight}, {usd(left)} left"
    if cost is None:
        message = f"Not sent: {what} has no known price and {where} is used up ({tally})."
    else:
        message = f"Not sent: {what} ({about(cost)}) would pass {where} ({tally})."
    flag = "--session " if standing.scope == "session" else ""
    raise_to = _round_up(spent + (cost or 0.0))
    command = f"%tokenhot budget {flag}"
    hint = f"Raise it with {command}{raise_to}, or end it with {command}off."
    return BudgetExceeded(
        message, hint=hint, scope=standing.scope, limit=limit, spent=spent, cost=cost
    )


_SCOPES = {"day": "today's budget", "session": "this session's budget"}


def _round_up(usd: float) -> str:
    """A budget a little above ``usd`` to suggest: whole dollars from $1, else cents."""
    if usd >= 1:
        return str(math.floor(usd) + 1)
    return f"{math.floor(usd * 100 + 1) / 100:.2f}"


def usd(amount: float) -> str:
    """A sum for budgets: cents when exact (``$4.20``), else to $0.0001 (``$0.9995``), so
    what is spent never reads as the whole budget while some is left."""
    if amount <= 0:
        return "$0.00"
    if amount < 0.01 or abs(amount - round(amount, 2)) < 1e-9:
        return dollars(amount)
    return f"${amount:.4f}"


def about(cost: float | None) -> str:
    """``about $0.42``, or that the cost is unknown."""
    return "cost unknown (no list price)" if cost is None else f"about {dollars(cost)}"


# --- %tokenhot budget and status ---------------------------------------------------------------


def parse_amount(text: str, flag: str) -> float | None:
    """A budget as typed: USD (``5``, ``0.5``, ``$2``), or ``off`` (None)."""
    value = text.strip().removeprefix("$")
    if value.lower() == "off":
        return None
    try:
        amount = float(value)
    except ValueError:
        amount = math.nan
    if not math.isfinite(amount) or amount < 0:
        raise InvalidInputError(
            f"{flag} needs an amount in USD (e.g. 5 or 0.50) or off, not {text!r}."
        )
    return amount


def set_budgets(session: Session, day: str | None, this_session: str | None) -> None:
    """``%tokenhot budget [USD|off] [--session USD|off]``: both checked before either is set."""
    amounts = {
        name: parse_amount(text, flag)
        for name, text, flag in (
            ("day", day, "%tokenhot budget"),
            ("session", this_session, "--session"),
        )
        if text is not None
    }
    if "day" in amounts:
        session.budgets().set_day(amounts["day"])
    if "session" in amounts:
        session.session_budget = amounts["session"]


def budget_rows(session: Session) -> tuple[list[list[str]], str]:
    """``%tokenhot budget``: each budget, what is spent against it and what is left; a title."""
    simulated = session.simulated()
    ledger = session.ledger()
    spent_today = ledger.total(simulated=simulated, day=ledger.today())
    rows = [
        _row("Today, every kernel", session.budgets().day(), spent_today.cost),
        _row("This session", session.session_budget, session.tally.total_cost),
    ]
    calls = "simulated calls" if simulated else "live calls"
    title = f"Budgets ({calls}, estimated USD)"
    if spent_today.unpriced:
        unpriced = spent_today.unpriced
        title += f"; {unpriced} call{'s' * (unpriced != 1)} today had no list price, not counted"
    return rows, title


def _row(name: str, limit: float | None, spent: float) -> list[str]:
    if limit is None:
        return [name, "none", usd(spent), ""]
    return [name, usd(limit), usd(spent), usd(max(0.0, limit - spent))]


def status_line(session: Session) -> str:
    """The budget row of ``%tokenhot status``: what is left of each budget, or how to set one."""
    try:
        found = standings(session)
    except TokenhotError as exc:  # a damaged budget or ledger file: say so, status goes on
        return f"unknown: {exc}"
    if not found:
        return "none (%tokenhot budget 5 sets $5 a day for every kernel; --session 1 this one)"
    return "; ".join(f"{_NAMES[s.scope]} {usd(s.left)} left of {usd(s.limit)}" for s in found)


_NAMES = {"day": "today (every kernel)", "session": "this session"}


# --- confirmation ---------------------------------------------------------------------------


def confirm_batch(
    session: Session,
    total: float | None,
    rows: int,
    *,
    yes: bool,
    ask: Callable[[str], str] | None = None,
) -> None:
    """Before a batch: refuse it over a budget (`check`), then above ``Tokenhot.confirm_over``
    and without ``yes`` ask "Send N requests, about $X? [y/N]" through ``ask`` (default: the
    kernel's ``input``).  A "no", or nowhere to ask (a terminal with no tty, a Run All that
    cannot answer), raises NotConfirmed: one line saying to add --yes.
    """
    what = f"{rows} request{'s' * (rows != 1)}"
    check(session, total, what)
    threshold = session.config.confirm_over
    if yes or threshold is None or not _needs_asking(total, threshold):
        return
    question = f"Send {what}, {about(total)}? [y/N] "
    try:
        answer = (ask or _asker(session))(question)
    except (EOFError, OSError, NotImplementedError):  # ipykernel: StdinNotImplementedError
        raise NotConfirmed(
            f"Not sent: {what}, {about(total)}, need a yes (Tokenhot.confirm_over is "
            f"{dollars(threshold)}) and there is no way to ask here."
        ) from None
    if answer.strip().lower() not in YES:
        raise NotConfirmed(f"Not sent: {what}, {about(total)}; the answer was not yes.")


def _needs_asking(total: float | None, threshold: float) -> bool:
    return total is None or threshold == 0 or total > threshold


def _asker(session: Session) -> Callable[[str], str]:
    """The kernel's ``input`` (it asks the frontend); a terminal's only with a tty."""
    in_kernel = getattr(session.shell, "kernel", None) is not None
    stdin = sys.stdin
    if in_kernel or (stdin is not None and stdin.isatty()):
        return input  # looked up now: ipykernel puts its own in builtins while a cell runs
    return _no_stdin


def _no_stdin(question: str) -> str:
    raise EOFError(question)
