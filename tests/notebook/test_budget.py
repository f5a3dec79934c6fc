"""Cost before spending and budgets: estimates, the batch confirmation, refusals before sending.

The magics run in a real InteractiveShell against the simulator; "nothing was sent" is read
from the simulator's request log.  The day budget lives under TOKENHOT_HOME, so another
kernel (a second process) sets and reads the same one.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import wave
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tokenhot_jupyter import BudgetExceeded, NotConfirmed
from tokenhot_jupyter._notebook import _budget
from tokenhot_jupyter._notebook._budget import (
    TYPICAL_ANSWER_TOKENS,
    check,
    confirm_batch,
    estimate,
    final_prompt,
    tokens_of,
)
from tokenhot_jupyter._store._budget import Budgets
from tokenhot_jupyter._store._ledger import Call, Ledger

if TYPE_CHECKING:
    from magics_support import Shell

pytest_plugins = ("magics_support",)


def _plain(out: dict[str, Any]) -> str:
    return str(out["data"].get("text/plain", ""))


def _posts(shell: Shell) -> list[str]:
    return [r.path for r in shell.sim.requests if r.method == "POST"]


def _refused(shell: Shell, source: str) -> BudgetExceeded:
    """Run a cell that must fail with BudgetExceeded; its message is one line."""
    result = shell.run(source)
    error = result.error_in_exec
    assert isinstance(error, BudgetExceeded), error
    lines = error._render_traceback_()
    assert len(lines) == 1 and "\n" not in lines[0]
    return error


def _wav(seconds: float, rate: int = 16_000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(bytes(int(seconds * rate) * 2))
    return buffer.getvalue()


# --- estimates -------------------------------------------------------------------------------


def test_tokens_are_four_ascii_characters_or_one_other_character() -> None:
    assert tokens_of("") == 0
    assert tokens_of("a" * 400) == 100
    assert tokens_of("abcde") == 2  # rounded up
    assert tokens_of("日本語です") == 5
    assert tokens_of("héllo") == 2  # "hllo" is one token, "é" another


def test_the_final_prompt_is_every_text_sent() -> None:
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "earlier question"},
        {"role": "assistant", "content": "earlier answer"},
        {"role": "user", "content": [{"type": "text", "text": "look"}, {"type": "image_url"}]},
    ]
    assert final_prompt(messages, "be brief") == (
        "be brief\nearlier question\nearlier answer\nlook"
    )


def test_a_chat_estimate_counts_the_prompt_and_max_tokens(shell: Shell) -> None:
    session = shell.session  # gpt-5: $1.25 in, $10 out per 1M tokens
    prompt = "x" * 4000  # 1,000 tokens
    with_max = estimate(session, "chat", "gpt-5", {"prompt": prompt, "max_tokens": 200})
    assert with_max == pytest.approx((1000 * 1.25 + 200 * 10) / 1e6)
    nested = estimate(session, "chat", "gpt-5", {"prompt": prompt, "params": {"max_tokens": 200}})
    assert nested == with_max
    typical = estimate(session, "chat", "gpt-5", {"prompt": prompt})
    assert typical == pytest.approx((1000 * 1.25 + TYPICAL_ANSWER_TOKENS * 10) / 1e6)


@pytest.mark.parametrize(
    ("kind", "model", "request_", "usd"),
    [
        ("image", "gpt-image-2", {}, 0.04),
        ("image", "gpt-image-2", {"n": 3, "size": "1024x1024"}, 0.12),
        ("video", "sora-2", {}, 0.4),  # the model's default duration, 4 s, at $0.10 a second
        ("video", "sora-2", {"duration": 12}, 1.2),
        ("video", "doubao-seedance-2.0-fast", {"duration": 5}, 0.3),
        ("speech", "tts-1", {"text": "x" * 2000}, 2000 * 15.0 / 1e6),
        ("transcript", "whisper-1", {"seconds": 90}, 0.009),
    ],
)  # fmt: skip
def test_estimates_per_kind(
    shell: Shell, kind: str, model: str, request_: dict[str, Any], usd: float
) -> None:
    assert estimate(shell.session, kind, model, request_) == pytest.approx(usd)


@pytest.mark.parametrize(
    ("kind", "model", "request_"),
    [
        ("chat", "not-a-priced-model", {"prompt": "Hi"}),
        ("image", "not-a-priced-model", {"n": 2}),
        ("transcript", "whisper-1", {"seconds": 0}),  # length unknown (not a WAV)
        ("video", "happyhorse-1.0-video-edit", {}),  # no duration: no price per second to use
    ],
)
def test_an_unknown_price_is_none(
    shell: Shell, kind: str, model: str, request_: dict[str, Any]
) -> None:
    assert estimate(shell.session, kind, model, request_) is None


def test_an_estimate_uses_the_live_lists_prices(shell: Shell) -> None:
    import dataclasses

    catalog = shell.session.catalog()
    live = dataclasses.replace(catalog.models["gpt-image-2"], id="live-only-image", live=True)
    shell.session.note_live([live])
    assert estimate(shell.session, "image", "live-only-image", {"n": 2}) == pytest.approx(0.08)


# --- Tokenhot.confirm_over and confirm_batch ------------------------------------------------


def test_confirm_over_defaults_to_a_small_sum_and_is_checked(shell: Shell) -> None:
    assert shell.session.config.confirm_over == 1.0
    shell.ok("%config Tokenhot.confirm_over = 0")
    assert shell.session.config.confirm_over == 0.0
    shell.ok("%config Tokenhot.confirm_over = None")
    assert shell.session.config.confirm_over is None
    for bad in ("-1", "float('nan')", "float('inf')"):
        shell.run(f"%config Tokenhot.confirm_over = {bad}")
        assert shell.session.config.confirm_over is None, bad  # refused: unchanged


class Asker:
    """An ``ask`` that answers ``answer`` and remembers the questions."""

    def __init__(self, answer: str = "y") -> None:
        self.answer = answer
        self.questions: list[str] = []

    def __call__(self, question: str) -> str:
        self.questions.append(question)
        return self.answer


def test_a_batch_below_the_threshold_is_not_asked_about(shell: Shell) -> None:
    ask = Asker()
    confirm_batch(shell.session, 0.99, 40, yes=False, ask=ask)
    assert ask.questions == []


def test_a_batch_above_the_threshold_asks_and_a_yes_sends(shell: Shell) -> None:
    ask = Asker("Y")
    confirm_batch(shell.session, 2.5, 40, yes=False, ask=ask)
    assert ask.questions == ["Send 40 requests, about $2.50? [y/N] "]


@pytest.mark.parametrize("answer", ["n", "", "no", "maybe"])
def test_anything_but_yes_is_a_no(shell: Shell, answer: str) -> None:
    with pytest.raises(NotConfirmed) as caught:
        confirm_batch(shell.session, 2.5, 40, yes=False, ask=Asker(answer))
    assert "Not sent: 40 requests, about $2.50" in str(caught.value)
    assert "--yes" in str(caught.value) and len(caught.value._render_traceback_()) == 1


def test_yes_skips_the_question(shell: Shell) -> None:
    ask = Asker("n")
    confirm_batch(shell.session, 250.0, 40, yes=True, ask=ask)
    assert ask.questions == []


def test_zero_always_asks_none_never(shell: Shell) -> None:
    ask = Asker()
    shell.session.config.confirm_over = 0
    confirm_batch(shell.session, 0.0001, 2, yes=False, ask=ask)
    assert len(ask.questions) == 1
    shell.session.config.confirm_over = None
    confirm_batch(shell.session, 1000.0, 2, yes=False, ask=Asker("n"))  # no question: no error


def test_an_unknown_cost_is_asked_about_and_says_so(shell: Shell) -> None:
    ask = Asker()
    confirm_batch(shell.session, None, 3, yes=False, ask=ask)
    assert ask.questions == ["Send 3 requests, cost unknown (no list price)? [y/N] "]


def test_no_stdin_is_one_line_saying_to_add_yes(shell: Shell) -> None:
    # pytest's stdin is no tty and this shell has no kernel: there is nowhere to ask
    with pytest.raises(NotConfirmed) as caught:
        confirm_batch(shell.session, 2.5, 40, yes=False)
    lines = caught.value._render_traceback_()
    assert len(lines) == 1 and "no way to ask" in lines[0] and "--yes" in lines[0]


def test_a_kernel_without_stdin_is_one_line_too(shell: Shell) -> None:
    from IPython.core.error import StdinNotImplementedError

    def no_frontend(question: str) -> str:  # ipykernel's input when the frontend has no stdin
        raise StdinNotImplementedError("raw_input was called, but this frontend does not support")

    with pytest.raises(NotConfirmed, match="--yes"):
        confirm_batch(shell.session, 2.5, 40, yes=False, ask=no_frontend)


def test_a_batch_over_a_budget_is_refused_before_it_is_asked_about(shell: Shell) -> None:
    shell.ok("%tokenhot budget 1")
    ask = Asker()
    with pytest.raises(BudgetExceeded, match="40 requests"):
        confirm_batch(shell.session, 2.5, 40, yes=True, ask=ask)
    assert ask.questions == []


# --- refusals before anything is sent ------------------------------------------------------

TINY = "0.0000001"  # less than any priced request


@pytest.mark.parametrize(
    ("cell", "what"),
    [
        ("%%chat\nHi", "a chat with gpt-5.4-mini"),
        ("%%chat --no-stream -m gpt-5\nHi", "a chat with gpt-5"),
        ("%%chat -m gpt-5,claude-opus-4-6\nHi", "a chat with gpt-5"),
        ("%%image -n 2\nA red fox", "2 pictures from gpt-image-2"),
        ("%%image -m gpt-image-2,dall-e-3\nA red fox", "1 picture from gpt-image-2"),
        ("%%video\nA cat", "a video from doubao-seedance-2.0-fast"),
        ("%%speak -m tts-1\nHello there", "speech from tts-1"),
        ("%transcribe clip", "a transcript from whisper-1"),
    ],
)  # fmt: skip
def test_every_paid_magic_is_refused_before_it_sends(shell: Shell, cell: str, what: str) -> None:
    shell.ip.user_ns["clip"] = _wav(2.0)
    shell.ok(f"%tokenhot budget {TINY}")
    error = _refused(shell, cell)
    assert _posts(shell) == [], "nothing may be sent"
    text = str(error)
    assert text.startswith(f"Not sent: {what} (about $")
    assert "would pass today's budget" in text and "spent" in text and "left" in text
    assert "%tokenhot budget " in text and "%tokenhot budget off" in text
    assert error.scope == "day" and error.cost is not None and error.cost > 0


def test_the_estimate_in_the_refusal_is_the_estimators(shell: Shell) -> None:
    shell.ok("%tokenhot budget 0.001")
    error = _refused(shell, "%%chat -m gpt-5 --max-tokens 500\n" + "x" * 400)
    assert error.cost == pytest.approx((100 * 1.25 + 500 * 10) / 1e6)
    assert "(about $0.0051)" in str(error) and "$0.00 of $0.0010 spent" in str(error)
    shell.ok("%%chat -m gpt-5 --max-tokens 50\n" + "x" * 400)  # $0.000625: fits
    assert _posts(shell) == ["/v1/chat/completions"]


def test_earlier_turns_count_in_a_chat_estimate(shell: Shell) -> None:
    shell.ok("%%chat -m gpt-5 --max-tokens 10\n" + "x" * 4000, cell_id="a")
    spent = shell.session.tally.total_cost
    sent = len(_posts(shell))
    # room for the new prompt alone (1,000 tokens), not with the earlier turn sent again
    shell.ok(f"%tokenhot budget --session {spent + 0.0015:.6f}")
    _refused(shell, "%%chat -m gpt-5 --max-tokens 10\n" + "y" * 4000)
    assert len(_posts(shell)) == sent
    shell.ok("%%chat -m gpt-5 --max-tokens 10 --new\n" + "y" * 4000)
    assert len(_posts(shell)) == sent + 1


def test_a_comparison_sends_the_columns_that_fit(shell: Shell) -> None:
    shell.ok("%tokenhot budget 0.05")  # one picture at $0.04 fits, the second would not
    result = shell.run("%%image -m gpt-image-2,dall-e-3 -o shown\nA red fox")
    assert result.error_in_exec is None  # one column answered, as with any failed column
    assert _posts(shell) == ["/v1/images/generations"]
    grid = _plain(shell.final())
    assert "Not sent: 1 picture from dall-e-3 (about $0.04) would pass today's budget" in grid
    assert "$0.04 of it on its way" in grid  # the first column, counted before it is paid
    assert isinstance(shell.ip.user_ns["shown"]["dall-e-3"], BudgetExceeded)


def test_a_chat_comparison_refused_in_every_column_fails_the_cell(shell: Shell) -> None:
    shell.ok(f"%tokenhot budget {TINY}")
    _refused(shell, "%%chat -m gpt-5,gpt-5.4\nHi")
    assert _posts(shell) == []
    assert _plain(shell.final()).count("Not sent") == 2


def test_a_reused_video_is_not_refused(shell: Shell) -> None:
    shell.ok("%%video\nA cat", cell_id="v")
    assert len(_posts(shell)) == 1
    shell.ok("%tokenhot budget 0")
    shell.ok("%%video\nA cat", cell_id="v")  # the same task again: nothing to pay
    assert len(_posts(shell)) == 1
    _refused(shell, "%%video --new\nA cat")
    assert len(_posts(shell)) == 1


def test_a_video_counts_at_its_estimate(shell: Shell) -> None:
    shell.ok("%%video --duration 5\nA cat")
    assert shell.session.tally.total_cost == pytest.approx(0.3)  # 5 s at $0.06
    shell.ok("%tokenhot budget --session 0.5")
    _refused(shell, "%%video --duration 5\nA dog")  # 0.3 + 0.3 > 0.5
    assert len(_posts(shell)) == 1


def test_an_unknown_price_passes_until_the_budget_is_used_up(shell: Shell) -> None:
    session = shell.session
    session.budgets().set_day(1.0)
    check(session, None, "a chat with live-only")  # $1 left: an unpriced request goes
    Ledger().append(Call(model="gpt-5", kind="chat", cost=1.0))
    with pytest.raises(BudgetExceeded) as caught:
        check(session, None, "a chat with live-only")
    assert "Not sent: a chat with live-only has no known price and today's budget is used up" in (
        str(caught.value)
    )


def test_pending_requests_count_against_the_budget(shell: Shell) -> None:
    shell.session.budgets().set_day(1.0)
    check(shell.session, 0.5, "row 3", pending=0.5)
    with pytest.raises(BudgetExceeded, match=r"\$0.60 of it on its way"):
        check(shell.session, 0.5, "row 3", pending=0.6)


# --- the day budget, across kernels ---------------------------------------------------------

OTHER_KERNEL = """
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config
c = Config(); c.HistoryManager.hist_file = ':memory:'
ip = InteractiveShell.instance(config=c)
ip.run_line_magic('load_ext', 'tokenhot_jupyter')
for line in {lines!r}:
    ip.run_line_magic('tokenhot', line)
"""


def _other_kernel(*lines: str) -> str:
    """Run ``%tokenhot`` lines in another process with the same TOKENHOT_HOME; its output."""
    code = OTHER_KERNEL.format(lines=list(lines))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_the_day_budget_is_shared_by_every_kernel(shell: Shell) -> None:
    shell.ok("%tokenhot budget 1")
    Ledger().append(Call(model="gpt-5", kind="chat", cost=0.999))  # another kernel's spend
    shown = _other_kernel("budget")
    assert "Today, every kernel  $1.00  $0.9990  $0.0010" in shown  # limit, spent, left
    error = _refused(shell, "%%chat\nHi")  # about $0.002: more than the $0.001 left
    assert "$0.9990 of $1.00 spent today by every kernel, $0.0010 left" in str(error)
    assert "Raise it with %tokenhot budget 2" in str(error)
    _other_kernel("budget 3")  # raised in the other kernel: holds here at the next request
    shell.ok("%%chat\nHi")
    assert _posts(shell) == ["/v1/chat/completions"]
    assert Budgets().day() == 3.0
    _other_kernel("budget off")
    assert Budgets().day() is None
    shell.ok("%tokenhot budget")
    assert "Today, every kernel  none" in _plain(shell.final())


def test_simulated_spend_is_kept_apart_from_live(
    shell: Shell, monkeypatch: pytest.MonkeyPatch
) -> None:
    shell.ok("%tokenhot budget 1")
    Ledger().append(Call(model="gpt-5", kind="chat", cost=5.0, simulated=True))
    shell.ok("%%chat\nHi")  # a live kernel: the simulator's $5 do not count
    Ledger().append(Call(model="gpt-5", kind="chat", cost=5.0))
    monkeypatch.delenv("TOKENHOT_API_KEY")  # no key, loopback gateway: the simulator
    monkeypatch.setenv("TOKENHOT_SIMULATED", "1")
    error = _refused(shell, "%%chat\nHi")
    assert "spent today by every kernel on simulated calls" in str(error)
    assert error.spent == pytest.approx(5.0)


# --- the session budget and %tokenhot budget ------------------------------------------------


def test_the_session_budget_counts_this_kernels_tally(shell: Shell) -> None:
    shell.ok("%%chat --max-tokens 20\nHi")
    spent = shell.session.tally.total_cost
    assert spent > 0
    shell.ok(f"%tokenhot budget --session {spent + 0.00001:.8f}")
    error = _refused(shell, "%%chat --max-tokens 20\nHi again")
    assert error.scope == "session" and "would pass this session's budget" in str(error)
    assert "Raise it with %tokenhot budget --session 0.01" in str(error)
    assert "%tokenhot budget --session off" in str(error)
    assert len(_posts(shell)) == 1
    Ledger().append(Call(model="gpt-5", kind="chat", cost=50.0))  # other kernels' spend:
    shell.ok("%tokenhot budget --session off")  # no day budget, so it does not matter
    shell.ok("%%chat --max-tokens 20\nHi again")
    assert len(_posts(shell)) == 2


def test_budget_shows_both_with_spent_and_left(shell: Shell) -> None:
    Ledger().append(Call(model="gpt-5", kind="chat", cost=1.25))
    Ledger().append(Call(model="live-only", kind="chat", cost=None))
    shell.ok("%tokenhot budget 5 --session 2")
    text = _plain(shell.final())
    assert "Budgets (live calls, estimated USD)" in text
    assert "1 call today had no list price, not counted" in text
    rows = {line[:19].strip(): line[19:].split() for line in text.splitlines()[3:]}
    assert rows["Today, every kernel"] == ["$5.00", "$1.25", "$3.75"]
    assert rows["This session"] == ["$2.00", "$0.00", "$2.00"]
    shell.ok("%tokenhot budget --session off")
    assert "This session         none" in _plain(shell.final())


@pytest.mark.parametrize("line", ["budget abc", "budget -3", "budget --session nan", "budget inf"])
def test_a_bad_amount_is_one_line_and_sets_nothing(shell: Shell, line: str) -> None:
    shell.ok("%tokenhot budget 5")
    result = shell.run(f"%tokenhot {line}")
    error = result.error_in_exec or result.error_before_exec
    assert error is not None
    assert "USD" in str(error) or "argument" in str(error)
    assert Budgets().day() == 5.0 and shell.session.session_budget is None


def test_status_has_a_budget_row(shell: Shell) -> None:
    shell.ok("%tokenhot status")
    row = next(line for line in _plain(shell.final()).splitlines() if line.startswith("Budget"))
    assert "none (%tokenhot budget 5 sets" in row
    Ledger().append(Call(model="gpt-5", kind="chat", cost=1.5))
    shell.ok("%tokenhot budget 4 --session 1")
    shell.ok("%tokenhot status")
    row = next(line for line in _plain(shell.final()).splitlines() if line.startswith("Budget"))
    assert "today (every kernel) $2.50 left of $4.00; this session $1.00 left of $1.00" in row


def test_the_budget_helpers_are_one_home(shell: Shell) -> None:
    # the video estimate moved here from _actions: one estimator, used by every magic
    from tokenhot_jupyter._notebook import _actions

    assert not hasattr(_actions, "estimate_video")
    assert set(_budget.ESTIMATES) == {"chat", "image", "video", "speech", "transcript"}


def test_nothing_is_written_under_tokenhot_home_until_a_budget_is_set(
    shell: Shell, clean_env: Path
) -> None:
    shell.ok("%%chat\nHi")
    shell.ok("%tokenhot budget")
    assert not (clean_env / "home" / "budget.sqlite3").exists()
    shell.ok("%tokenhot budget 2")
    assert (clean_env / "home" / "budget.sqlite3").exists()
