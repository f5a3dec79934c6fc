"""``%%chat --over`` and ``%%image --over`` in a real InteractiveShell against the simulator.

What went over the wire comes from the simulator's log (which prompt, how many in flight,
whether the reply went out whole); the batch waits on a fake clock (``session.batch_clock``),
so no test waits out a backoff in real time.
"""

from __future__ import annotations

import asyncio
import collections
import json
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import tokenhot_jupyter as th
from tokenhot_jupyter._poll import Clock

from interrupt_support import ctrl_c_when

if TYPE_CHECKING:
    from magics_support import Shell

pytest_plugins = ("magics_support",)

CHAT = "/v1/chat/completions"
IMAGES = "/v1/images/generations"


class FakeClock:
    """Seconds that pass only when the batch waits."""

    def __init__(self) -> None:
        self.now = 0.0

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


@pytest.fixture
def sh(shell: Shell) -> Shell:
    fake = FakeClock()
    shell.session.batch_clock = Clock(time=fake.time, sleep=fake.sleep)
    shell.ok("import pandas as pd")
    return shell


def _contents(sim: Any, path: str = CHAT) -> list[str]:
    key = "prompt" if path == IMAGES else None
    out = []
    for r in sim.requests:
        if r.path == path:
            out.append(r.json[key] if key else r.json["messages"][-1]["content"])
    return out


def _answered(sim: Any) -> collections.Counter[str]:
    return collections.Counter(
        r.json["messages"][-1]["content"]
        for r in sim.requests
        if r.path == CHAT and r.status == 200 and r.completed
    )


def _texts(sh: Shell) -> str:
    return "\n".join(str(o["data"].get("text/plain", "")) for o in sh.outputs)


def _summary(sh: Shell) -> str:
    notes = [o for o in sh.outputs if "answered," in str(o["data"].get("text/plain", ""))]
    assert notes, _texts(sh)
    return str(notes[-1]["data"]["text/plain"])


# --- rows in, answers out -------------------------------------------------------------------


def test_a_dataframe_gets_a_new_column_and_each_row_its_own_prompt(sh: Shell) -> None:
    sh.ok("df = pd.DataFrame({'city': ['Paris', 'Rome', 'Oslo'], 'answer': [1, 2, 3]})")
    sh.ok("%%chat --over df -o out\nWhat is {city} known for? (row {index})")
    out = sh.ip.user_ns["out"]
    assert list(out.columns) == ["city", "answer", "answer_2"]  # the input's column is kept
    assert list(out["city"]) == ["Paris", "Rome", "Oslo"]
    for i, city in enumerate(["Paris", "Rome", "Oslo"]):
        assert f"to: What is {city} known for? (row {i})" in out["answer_2"][i]
    assert sh.ip.user_ns["df"].shape == (3, 2)  # the input is not changed
    assert sorted(_contents(sh.sim)) == sorted(
        f"What is {c} known for? (row {i})" for i, c in enumerate(["Paris", "Rome", "Oslo"])
    )
    assert "3 answered, 0 reused, 0 failed" in _summary(sh)


def test_a_list_gives_results_in_order_and_a_series_a_dataframe(sh: Shell) -> None:
    sh.ok("words = ['kite', 'lamp', 'moss']")
    sh.ok("%%chat --over words -o out --concurrency 2\nDefine {item}.")
    out = sh.ip.user_ns["out"]
    assert [type(r) for r in out] == [th.ChatResult] * 3
    assert [r.text.split("to: ")[1].split("\n")[0] for r in out] == [
        "Define kite.", "Define lamp.", "Define moss.",
    ]  # fmt: skip
    sh.ok("s = pd.Series(['ant', 'bee'], name='bug')")
    sh.ok("%%chat --over s -o frame\nDescribe the {bug} ({item}).")
    frame = sh.ip.user_ns["frame"]
    assert list(frame.columns) == ["bug", "answer"] and "Describe the bee (bee)." in frame.answer[1]


def test_vars_add_notebook_variables_and_the_template_is_not_filled_in_first(sh: Shell) -> None:
    sh.ok("tone = 'gently'\nitems = ['a', 'b']")
    sh.ok('%%chat --over items --vars\nSay {item} {tone}, keep {{item}} and {"json": 1}.')
    assert sorted(_contents(sh.sim)) == [
        'Say a gently, keep {item} and {"json": 1}.',
        'Say b gently, keep {item} and {"json": 1}.',
    ]


# --- the batch at work ----------------------------------------------------------------------


def test_200_rows_with_429s_and_a_5xx_each_answered_once_in_order_within_n(sh: Shell) -> None:
    sim = sh.sim
    sim.faults.add("429", path=CHAT, method="POST", times=10)
    sim.faults.add("503", path=CHAT, method="POST", times=3)  # overloaded: sent again
    sim.faults.add("500", path=CHAT, method="POST", times=1)
    sim.faults.add("slow=0.005", path=CHAT, method="POST", times=-1)
    sh.ok("rows = [f'Row {i}: one colour.' for i in range(200)]")
    sh.ok("%%chat --over rows --concurrency 6 -o out\n{item}")
    out = sh.ip.user_ns["out"]
    failed = [i for i, r in enumerate(out) if isinstance(r, th.TokenhotError)]
    assert len(failed) == 1 and isinstance(out[failed[0]], th.ServerError)
    for i, result in enumerate(out):
        if i not in failed:
            assert f"to: Row {i}: one colour." in result.text
    answered = _answered(sim)
    assert len(answered) == 199 and set(answered.values()) == {1}  # nobody paid twice
    refused = f"Row {failed[0]}: one colour."
    assert [r.status for r in sim.requests if r.json["messages"][-1]["content"] == refused][
        -1
    ] == 500  # the 500 was its last request: it was not sent again
    assert max(r.in_flight for r in sim.requests) <= 6
    summary = _summary(sh)
    assert "199 answered, 0 reused, 1 failed" in summary
    assert f"row {failed[0]}: ServerError:" in summary and "HTTP 500" in summary


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="SIGINT")
def test_an_interrupt_at_row_100_and_a_restart_send_only_the_missing_rows(
    sh: Shell, capsys: pytest.CaptureFixture[str]
) -> None:
    sim = sh.sim
    sim.faults.add("slow=0.01", path=CHAT, method="POST", times=-1)
    sh.ok("rows = [f'Row {i}: one colour.' for i in range(200)]")
    cell = "%%chat --over rows --concurrency 4\n{item}"
    sender = ctrl_c_when(lambda: len(_answered(sim)) >= 100)
    result = sh.run(cell)
    sender.join()
    assert isinstance(result.error_in_exec, KeyboardInterrupt)
    assert "Interrupted:" in _texts(sh) and "sends only the" in _texts(sh)
    printed = capsys.readouterr()
    lines = [ln for ln in (printed.out + printed.err).splitlines() if ln.strip()]
    assert lines[-1] == "KeyboardInterrupt: %%chat was interrupted."
    before = set(_answered(sim))
    assert 100 <= len(before) < 200

    # A kernel restart: a new session (and client); only TOKENHOT_HOME is shared.
    sh.ip.run_line_magic("unload_ext", "tokenhot_jupyter")
    sh.ip.run_line_magic("load_ext", "tokenhot_jupyter")
    sh.session.batch_clock = Clock(time=FakeClock().time, sleep=FakeClock().sleep)
    sim.clear_requests()
    sh.ok(cell)
    sent = collections.Counter(_contents(sim))
    assert not (set(sent) & before) and set(sent.values()) == {1}
    assert len(sent) + len(before) >= 200
    assert f"{len(before)} answered before, reused" in _texts(sh)
    assert f"{200 - len(before)} answered, {len(before)} reused, 0 failed" in _summary(sh)


def test_a_failed_row_shows_its_error_and_retry_failed_sends_only_it(sh: Shell) -> None:
    sim = sh.sim
    sh.ok("rows = ['alpha', 'beta', 'gamma']")
    sim.faults.add("502", path=CHAT, method="POST", times=1)
    sh.ok("%%chat --over rows --concurrency 1 -o out\nSpell {item}.")
    assert isinstance(sh.ip.user_ns["out"][0], th.ServerError)
    assert "row 0: ServerError:" in _summary(sh) and "HTTP 502" in _summary(sh)
    sim.clear_requests()
    sh.ok("%%chat --over rows -o out\nSpell {item}.")  # a plain re-run: nothing is resent
    assert _contents(sim) == [] and "1 failed before, kept" in _texts(sh)
    assert isinstance(sh.ip.user_ns["out"][0], th.ServerError)
    sh.ok("%%chat --over rows --retry-failed -o out\nSpell {item}.")
    assert _contents(sim) == ["Spell alpha."]
    assert all(isinstance(r, th.ChatResult) for r in sh.ip.user_ns["out"])
    assert "1 answered, 2 reused, 0 failed" in _summary(sh)


def test_a_batch_where_every_row_fails_fails_the_cell(sh: Shell) -> None:
    sh.sim.faults.add("500", path=CHAT, method="POST", times=-1)
    sh.ok("rows = ['a', 'b']")
    result = sh.run("%%chat --over rows -o out\nSay {item}.")
    assert isinstance(result.error_in_exec, th.ServerError)
    assert len(sh.ip.user_ns["out"]) == 2  # -o is set before the cell fails


# --- the progress output --------------------------------------------------------------------


def test_one_progress_output_updated_in_place_then_a_summary(sh: Shell) -> None:
    sh.ok("rows = [str(i) for i in range(30)]")
    sh.ok("%%chat --over rows --concurrency 3\nCount {item}.")
    bars = [o for o in sh.outputs if "<progress" in str(o["data"].get("text/html", ""))]
    assert len(bars) >= 2 and len({o["transient"]["display_id"] for o in bars}) == 1
    assert all(o["update"] for o in bars[1:]) and not bars[0]["update"]
    final = bars[-1]["data"]
    assert "value='30' max='30'" in final["text/html"] and "30/30 rows" in final["text/plain"]
    assert "<script" not in json.dumps([o["data"] for o in sh.outputs])
    meta = [o["metadata"]["tokenhot"] for o in sh.outputs if "tokenhot" in o["metadata"]][-1]
    assert meta["kind"] == "chat-batch" and meta["answered"] == 30 and meta["rows"] == 30
    assert meta["tokens"] > 0 and meta["estimated_cost_usd"] > 0


def test_a_terminal_gets_a_text_bar(sh: Shell, capsys: pytest.CaptureFixture[str]) -> None:
    from IPython.core.displaypub import DisplayPublisher

    capturing = sh.ip.display_pub
    sh.ok("rows = ['x', 'y']")
    sh.ip.display_pub = DisplayPublisher(shell=sh.ip)  # type: ignore[no-untyped-call]
    try:
        result = sh.ip.run_cell("%%chat --over rows\nSay {item}.")
    finally:
        sh.ip.display_pub = capturing
    assert result.error_in_exec is None
    out = capsys.readouterr().out
    assert "\r[########################] 2/2 rows" in out
    assert "2 answered, 0 reused, 0 failed" in out


# --- pictures -------------------------------------------------------------------------------


def test_image_over_saves_each_rows_pictures_and_a_rerun_writes_none(sh: Shell) -> None:
    sh.ok("df = pd.DataFrame({'thing': ['kite', 'lamp']})")
    sh.ok("%%image --over df -m gpt-image-2 -o pics\nA paper {thing}")
    pics = sh.ip.user_ns["pics"]
    files = list(pics["image"])
    assert len(files) == 2 and all(Path(f).read_bytes().startswith(b"\x89PNG") for f in files)
    assert sorted(_contents(sh.sim, IMAGES)) == ["A paper kite", "A paper lamp"]
    folder = Path(files[0]).parent
    before = sorted(p.name for p in folder.iterdir())
    sh.sim.clear_requests()
    sh.ok("%%image --over df -m gpt-image-2 -o again\nA paper {thing}")
    assert _contents(sh.sim, IMAGES) == [] and list(sh.ip.user_ns["again"]["image"]) == files
    assert sorted(p.name for p in folder.iterdir()) == before  # nothing new on disk


# --- bad input: one line, nothing sent ------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("%%chat --over missing\n{item}", "no variable named 'missing'"),
        ("%%chat --over number\n{item}", "is a int, not a list"),
        ("%%chat --over text\n{item}", "is a str, not a list"),
        ("%%chat --over mapping\n{item}", "list(mapping.values())"),
        ("%%chat --over empty\n{item}", "is empty"),
        ("%%chat --over df\nAbout {town}", "{town}, which is not a column of df"),
        ("%%chat --over df\nThe same for every row", "uses nothing from df"),
        ("%%chat --over empty_frame\n{city}", "is empty"),
        ("%%chat --over words -m gpt-5,claude-opus-4-6\n{item}", "runs one model"),
        ("%%chat --over words --thread t\n{item}", "leave out --thread"),
        ("%%chat --concurrency 4\nHi", "--concurrency goes with --over"),
        ("%%chat --retry-failed\nHi", "--retry-failed goes with --over"),
        ("%%image --yes\nA kite", "--yes goes with --over"),
        ("%%chat --over words --concurrency 0\n{item}", "concurrency"),
        ("%%image --over words -m gpt-image-2\nNo field", "uses nothing from words"),
    ],
)
def test_bad_input_is_one_line_and_nothing_is_sent(
    sh: Shell, source: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    sh.ok(
        "number = 5\ntext = 'abc'\nmapping = {'a': 1}\nempty = []\nwords = ['a']\n"
        "df = pd.DataFrame({'city': ['Paris']})\nempty_frame = df.iloc[0:0]"
    )
    capsys.readouterr()
    result = sh.run(source)
    assert result.error_in_exec is not None
    printed = capsys.readouterr()
    err = (printed.out + printed.err).strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert [r for r in sh.sim.requests if r.method == "POST"] == []


# --- cost before spending, and budgets ------------------------------------------------------


def _posts(sh: Shell) -> int:
    return sum(r.path == CHAT for r in sh.sim.requests)


def test_the_estimate_is_shown_and_above_confirm_over_the_batch_needs_yes(
    sh: Shell, capsys: pytest.CaptureFixture[str]
) -> None:
    sh.ok("rows = ['a', 'b', 'c']")
    sh.ok("%config Tokenhot.confirm_over = 0")  # always ask; this shell has nowhere to ask
    capsys.readouterr()
    result = sh.run("%%chat --over rows\nSay {item}.")
    assert isinstance(result.error_in_exec, th.NotConfirmed) and _posts(sh) == 0
    assert "Sending 3 of 3 rows to gpt-5.4-mini (about $" in _texts(sh)
    printed = capsys.readouterr()
    lines = [ln for ln in (printed.out + printed.err).splitlines() if ln.strip()]
    assert len(lines) == 1 and "Not sent: 3 requests" in lines[0] and "--yes" in lines[0]
    sh.ok("%%chat --over rows --yes\nSay {item}.")
    assert _posts(sh) == 3


def test_a_batch_whose_estimate_passes_the_budget_is_not_started(
    sh: Shell, capsys: pytest.CaptureFixture[str]
) -> None:
    sh.ok("rows = [f'word {i}' for i in range(20)]\n%tokenhot budget --session 0.000001")
    capsys.readouterr()
    result = sh.run("%%chat --over rows -o out\nSay {item}.")
    assert isinstance(result.error_in_exec, th.BudgetExceeded) and _posts(sh) == 0
    printed = capsys.readouterr()
    lines = [ln for ln in (printed.out + printed.err).splitlines() if ln.strip()]
    assert len(lines) == 1 and "20 requests" in lines[0]


def test_a_budget_refuses_the_row_that_would_pass_it_and_the_rest_wait(
    sh: Shell, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tokenhot_jupyter._store._ledger import Call, Ledger

    cell = "%%chat --over rows --concurrency 3 --max-tokens 50 -o out\nSay {item}."
    sh.ok("rows = [f'word {i}' for i in range(20)]\n%tokenhot budget 5")  # every kernel's day
    counted = sh.session.tally.add

    def add(*args: Any) -> None:  # after the 5th answer, another kernel spends the day's rest
        counted(*args)
        if sum(s.calls for s in sh.session.tally.models.values()) == 5:
            Ledger().append(Call(model="gpt-5", kind="chat", cost=4.9999))

    monkeypatch.setattr(sh.session.tally, "add", add)
    result = sh.run(cell)
    assert isinstance(result.error_in_exec, th.BudgetExceeded)
    assert "today's budget" in str(result.error_in_exec)
    out = sh.ip.user_ns["out"]  # -o is set before the cell fails
    answered = [r for r in out if isinstance(r, th.ChatResult)]
    refused = [r for r in out if isinstance(r, th.BudgetExceeded)]
    assert 5 <= len(answered) <= 8 and len(answered) + len(refused) == 20
    assert _posts(sh) == len(answered)  # a refused row is never sent
    assert f"{20 - len(answered)} not sent" in _summary(sh)
    sh.ok("%tokenhot budget off")
    sh.sim.clear_requests()
    sh.ok(cell)
    assert _posts(sh) == 20 - len(answered)  # only the rows the budget held back
    assert f"{len(answered)} reused" in _summary(sh)


# --- structured answers ---------------------------------------------------------------------


def test_a_schema_gives_a_dataframe_one_column_per_field(sh: Shell) -> None:
    sh.ok("df = pd.DataFrame({'review': ['Great tea', 'Cold soup', 'Fine bread']})")
    sh.ok("%%chat --over df --schema 'stars int, reason' -o out\nRate: {review}")
    out = sh.ip.user_ns["out"]
    assert list(out.columns) == ["review", "stars", "reason"]
    assert all(isinstance(v, int) for v in out["stars"]) and all(out["reason"])
    body = next(r.json for r in sh.sim.requests if r.path == CHAT)
    assert body["response_format"]["type"] == "json_schema"
    sh.ok("items = ['tea', 'soup']")
    sh.ok("%%chat --over items --schema 'stars int, reason' -o objects\nRate: {item}")
    assert all(
        isinstance(o, dict) and set(o) == {"stars", "reason"} for o in sh.ip.user_ns["objects"]
    )


def test_a_row_that_does_not_match_its_schema_is_counted_and_kept_as_failed(sh: Shell) -> None:
    sh.ok("items = ['tea', 'soup', 'bread']")
    sh.sim.faults.add("schema-mismatch", path=CHAT, method="POST", times=1)
    cell = "%%chat --over items --concurrency 1 --schema 'stars int, reason' -o out\nRate {item}"
    sh.ok(cell)
    out = sh.ip.user_ns["out"]
    assert isinstance(out[0], th.SchemaMismatch) and isinstance(out[1], dict)
    assert "row 0: SchemaMismatch:" in _summary(sh)
    assert sh.session.tally.models["gpt-5.4-mini"].calls == 3  # the mismatch was paid for
    sh.sim.clear_requests()
    sh.ok(cell)
    again = sh.ip.user_ns["out"]
    assert _posts(sh) == 0 and isinstance(again[0], th.SchemaMismatch)
    assert again[1] == out[1]  # rebuilt from the kept answer's text
