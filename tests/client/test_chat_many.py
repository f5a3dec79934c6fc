"""`chat_many` / `image_many` against the simulator: throttles, failures, order, resume.

The simulator's log proves what went over the wire: how many requests were in flight when
each arrived, and which prompt each answered request carried.  Batches run on a fake clock
that only the batch's own waits move (``FAST``), so nothing here waits on real time.
"""

from __future__ import annotations

import asyncio
import collections
import threading
from pathlib import Path
from typing import Any

import pytest

import tokenhot_jupyter as th
from tokenhot_jupyter._batch import BatchProgress, BatchRow
from tokenhot_jupyter._poll import Clock
from tokenhot_jupyter._runtime import runtime
from tokenhot_jupyter.simulator import Simulator

from interrupt_support import ctrl_c_when

CHAT = "/v1/chat/completions"


class FakeClock:
    """Seconds that pass only when the batch sleeps (its pauses and its pacing)."""

    def __init__(self, sim: Simulator | None = None) -> None:
        self.now = 0.0
        self.sim = sim  # moved along too: its rate limit refills as the batch waits

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        if self.sim is not None:
            self.sim.clock.advance(seconds)
        await asyncio.sleep(0)

    @property
    def clock(self) -> Clock:
        return Clock(time=self.time, sleep=self.sleep)


def _client(sim: Simulator) -> th.Client:
    return th.Client(sim.api_key, sim.base_url, live_models=False)


def _prompts(n: int) -> list[str]:
    return [f"Row {i}: name a colour." for i in range(n)]


def _run(client: th.Client, prompts: list[str], clock: Clock, **kwargs: Any) -> list[Any]:
    """``chat_many`` on ``clock`` (planned, then run on the client's loop)."""
    batch = client.chat_batch(prompts, "gpt-5")
    return runtime.run(batch.run(clock=clock, **kwargs))


def _answered(sim: Simulator) -> collections.Counter[str]:
    """How many times each prompt got a whole successful answer."""
    return collections.Counter(
        r.json["messages"][-1]["content"]
        for r in sim.requests
        if r.path == CHAT and r.status == 200 and r.completed
    )


def _sent(sim: Simulator) -> collections.Counter[str]:
    """How many times each prompt went out and was not refused with a 429 (maybe billed)."""
    return collections.Counter(
        r.json["messages"][-1]["content"]
        for r in sim.requests
        if r.path == CHAT and r.status != 429
    )


def test_200_rows_with_429s_and_a_5xx_each_answered_once_in_order_within_n(
    sim: Simulator,
) -> None:
    sim.faults.add("429", path=CHAT, method="POST", times=15)
    sim.faults.add("429:retry-after=3", path=CHAT, method="POST", times=1)
    sim.faults.add("500", path=CHAT, method="POST", times=1)
    sim.faults.add("slow=0.01", path=CHAT, method="POST", times=-1)  # rows overlap on the wire
    prompts = _prompts(200)
    rows = _run(_client(sim), prompts, FakeClock().clock, concurrency=8)

    assert [r.index for r in rows] == list(range(200))
    failed = [r for r in rows if not r.ok]
    assert len(failed) == 1 and isinstance(failed[0].error, th.ServerError)
    assert failed[0].status == "failed" and failed[0].error.status_code == 500
    for row, prompt in zip(rows, prompts, strict=True):
        if row.ok:
            assert f"to: {prompt}" in row.unwrap().text  # its own answer, in its own place
    answered = _answered(sim)
    assert set(answered) == set(prompts) - {prompts[failed[0].index]}
    assert set(answered.values()) == {1}  # no row was paid for twice
    assert _sent(sim)[prompts[failed[0].index]] == 1  # a 500 may have been billed: not resent
    assert sum(r.status == 429 for r in sim.requests) == 16
    most = max(r.in_flight for r in sim.requests)
    assert 2 <= most <= 8  # concurrent, never more than N


def test_a_batch_at_the_simulators_rate_limit_answers_every_row_once(sim: Simulator) -> None:
    sim.rate_limit, sim.rate_burst = 40, 4
    prompts = _prompts(200)
    rows = _run(_client(sim), prompts, FakeClock(sim).clock, concurrency=8)
    assert all(r.ok for r in rows)
    assert [r.unwrap().text.split("to: ")[1].split("\n")[0] for r in rows] == prompts
    assert set(_answered(sim).values()) == {1} and len(_answered(sim)) == 200
    assert any(r.status == 429 for r in sim.requests)  # it met the limit, and went on
    assert max(r.in_flight for r in sim.requests) <= 8


def test_a_rerun_reuses_every_answer_and_sends_nothing(sim: Simulator) -> None:
    client = _client(sim)
    first = client.chat_many(_prompts(20), "gpt-5", concurrency=4)
    sim.clear_requests()
    again = client.chat_many(_prompts(20), "gpt-5", concurrency=4)
    assert [r.status for r in again] == ["reused"] * 20
    assert [r.unwrap().text for r in again] == [r.unwrap().text for r in first]
    assert [r for r in sim.requests if r.path == CHAT] == []
    changed = client.chat_many(_prompts(20), "gpt-5", concurrency=4, temperature=0.5)
    assert [r.status for r in changed] == ["answered"] * 20  # other parameters: other rows
    sim.clear_requests()
    fresh = client.chat_many(_prompts(3), "gpt-5", resume=False)
    assert [r.status for r in fresh] == ["answered"] * 3 and len(sim.requests) == 3


def test_a_failed_row_keeps_its_error_until_asked_to_retry(sim: Simulator) -> None:
    client = _client(sim)
    sim.faults.add("502", path=CHAT, method="POST", times=1)
    first = client.chat_many(_prompts(5), "gpt-5", concurrency=1)
    assert [r.status for r in first] == ["failed", "answered", "answered", "answered", "answered"]
    sim.clear_requests()
    again = client.chat_many(_prompts(5), "gpt-5")
    assert again[0].status == "failed" and again[0].reused  # shown again, not paid again
    assert str(again[0].error) == str(first[0].error)
    assert [r for r in sim.requests if r.path == CHAT] == []
    retried = client.chat_many(_prompts(5), "gpt-5", retry_failed=True)
    assert [r.status for r in retried] == ["answered"] + ["reused"] * 4
    assert list(_sent(sim)) == [_prompts(5)[0]]  # only the failed row went out


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="SIGINT")
def test_an_interrupt_at_row_100_then_a_rerun_sends_only_the_missing_rows(
    sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim.faults.add("slow=0.01", path=CHAT, method="POST", times=-1)
    prompts = _prompts(200)
    progress: list[BatchProgress] = []
    sender = ctrl_c_when(lambda: bool(progress) and progress[-1].done >= 100)
    with pytest.raises(KeyboardInterrupt):
        _client(sim).chat_many(prompts, "gpt-5", concurrency=4, on_progress=progress.append)
    sender.join()
    before = _answered(sim)
    assert 100 <= len(before) < 200
    sim.clear_requests()

    # A new client (and, for the store, nothing but the same TOKENHOT_HOME): a restart.
    rows = _client(sim).chat_many(prompts, "gpt-5", concurrency=4)
    assert all(r.ok for r in rows)
    reused = {prompts[r.index] for r in rows if r.status == "reused"}
    assert reused <= set(before) and len(reused) >= 100
    sent_now = _sent(sim)
    assert set(sent_now) == set(prompts) - reused and set(sent_now.values()) == {1}
    assert not set(sent_now) & set(before)  # what was paid for before is not paid again


def test_image_many_keeps_pictures_for_a_rerun(sim: Simulator) -> None:
    client = _client(sim)
    first = client.image_many(["a red kite", "a blue kite"], "gpt-image-2", concurrency=2)
    assert [r.status for r in first] == ["answered", "answered"]
    assert first[0].unwrap().images[0].data.startswith(b"\x89PNG")
    sim.clear_requests()
    again = client.image_many(["a red kite", "a blue kite"], "gpt-image-2")
    assert [r.status for r in again] == ["reused", "reused"] and sim.requests == []
    assert again[1].unwrap().images[0].data == first[1].unwrap().images[0].data


def test_bad_input_is_one_error_and_nothing_is_sent(sim: Simulator) -> None:
    client = _client(sim)
    cases: list[tuple[Any, dict[str, Any], str]] = [
        ("just one string", {}, "list of prompts"),
        ([], {}, "empty"),
        (["ok", 3], {}, "Prompt 1 is int"),
        (["ok", "  "], {}, "Prompt 1 is empty"),
        (["ok"], {"temperature": 9}, "temperature"),
        (["ok"], {"concurrency": 0}, "concurrency"),
    ]
    for prompts, kwargs, text in cases:
        with pytest.raises(th.InvalidInputError, match=text):
            client.chat_many(prompts, "gpt-5", **kwargs)
    with pytest.raises(th.InvalidInputError):
        client.chat_many(["ok"], "gpt-image-2")  # not a chat model
    assert sim.requests == []


def test_rows_are_batch_rows_that_unwrap() -> None:
    ok = BatchRow(index=0, result="x", sent=True)
    failed = BatchRow[str](index=1, error=th.ServerError("boom", status_code=500), sent=True)
    assert ok.unwrap() == "x" and ok.status == "answered"
    with pytest.raises(th.ServerError):
        failed.unwrap()
    assert BatchRow[str](index=2, error=th.RateLimitError("r", status_code=429)).status == (
        "not sent"
    )


def test_a_schema_gives_each_row_its_object_and_a_rerun_rebuilds_it(sim: Simulator) -> None:
    client = _client(sim)
    rows = client.chat_many(["tea", "soup"], "gpt-5", schema="stars int, reason")
    assert all(isinstance(r.unwrap().data, dict) for r in rows)
    assert set(rows[0].unwrap().data) == {"stars", "reason"}
    sim.clear_requests()
    again = client.chat_many(["tea", "soup"], "gpt-5", schema="stars int, reason")
    assert [r.status for r in again] == ["reused", "reused"] and sim.requests == []
    assert [r.unwrap().data for r in again] == [r.unwrap().data for r in rows]
    plain = client.chat_many(["tea", "soup"], "gpt-5")  # no schema: another question
    assert [r.status for r in plain] == ["answered", "answered"]
    with pytest.raises(th.InvalidInputError):
        client.chat_many(["tea"], "gpt-5", schema="stars frobnicate")  # one error, first
