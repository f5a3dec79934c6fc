"""The usage ledger: appended by every kernel at once, read as totals by model and day."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tokenhot_jupyter._store._ledger import Call, Ledger, day_of
from tokenhot_jupyter._types import Usage

DAY = 86_400.0
NOON = time.mktime((2026, 5, 4, 12, 0, 0, 0, 0, -1))  # local noon: no day boundary nearby


class Clock:
    """A settable clock."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(NOON)


@pytest.fixture
def ledger(tmp_path: Path, clock: Clock) -> Ledger:
    return Ledger(tmp_path / "usage.sqlite3", clock=clock)


def chat(model: str, cost: float | None, simulated: bool = False, tokens: int = 10) -> Call:
    return Call(model=model, kind="chat", usage=Usage(tokens, 2 * tokens, 3 * tokens),
                cost=cost, simulated=simulated)  # fmt: skip


def test_totals_by_model_day_and_mode(ledger: Ledger, clock: Clock) -> None:
    ledger.append(chat("gpt-5", 0.01))
    ledger.append(chat("gpt-5", 0.02))
    ledger.append(chat("claude-opus-4-6", 0.05))
    ledger.append(Call(model="sora-2", kind="video", cost=None))  # no list price
    ledger.append(chat("gpt-5", 9.0, simulated=True))  # never mixed into live spend
    clock.now += DAY
    ledger.append(chat("gpt-5", 0.5))
    today = ledger.total(simulated=False, day=ledger.today())
    assert (today.requests, today.cost, today.input_tokens) == (1, 0.5, 10)
    assert ledger.today() == day_of(NOON + DAY)
    models = ledger.by_model(simulated=False)
    assert [(t.name, t.kind, t.requests, t.unpriced) for t in models] == [
        ("gpt-5", "chat", 3, 0), ("claude-opus-4-6", "chat", 1, 0), ("sora-2", "video", 1, 1),
    ]  # fmt: skip
    assert models[0].cost == pytest.approx(0.53) and models[0].output_tokens == 60
    days = ledger.by_day(simulated=False)
    assert [(t.name, t.requests) for t in days] == [(day_of(NOON + DAY), 1), (day_of(NOON), 4)]
    assert ledger.total(simulated=True).cost == 9.0
    first_day = {t.name: t.cost for t in ledger.by_model(simulated=False, day=day_of(NOON))}
    assert first_day == {"claude-opus-4-6": 0.05, "gpt-5": pytest.approx(0.03), "sora-2": 0.0}


def test_empty_ledger_and_nothing_on_disk_until_used(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "sub" / "usage.sqlite3")
    assert not (tmp_path / "sub").exists()
    assert ledger.total(simulated=False).requests == 0 and ledger.by_model(simulated=False) == []


def test_default_location_is_tokenhot_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKENHOT_HOME", str(tmp_path / "home"))
    assert Ledger().path == tmp_path / "home" / "usage.sqlite3"


def test_an_unusable_ledger_says_what_to_do(tmp_path: Path) -> None:
    from tokenhot_jupyter import ConfigurationError

    bad = tmp_path / "usage.sqlite3"
    bad.write_bytes(b"not a database at all" * 100)
    with pytest.raises(ConfigurationError, match=r"usage ledger .* is damaged"):
        Ledger(bad).append(chat("gpt-5", 0.1))


WRITER = """
import sys
from pathlib import Path
from tokenhot_jupyter._store._ledger import Call, Ledger
from tokenhot_jupyter._types import Usage
ledger = Ledger(Path(sys.argv[1]))
for n in range(int(sys.argv[2])):
    ledger.append(Call(model=sys.argv[3], kind="chat", usage=Usage(1, 2, 3), cost=0.001))
"""


def test_many_kernels_append_at_once(tmp_path: Path) -> None:
    path = tmp_path / "usage.sqlite3"
    Ledger(path).total(simulated=False)  # created (and migrated) before the race, or not: both work
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(path), "60", f"model-{n}"])
        for n in range(6)
    ]
    assert [w.wait(timeout=60) for w in writers] == [0] * 6
    ledger = Ledger(path)
    assert ledger.total(simulated=False).requests == 360
    assert sorted((t.name, t.requests) for t in ledger.by_model(simulated=False)) == [
        (f"model-{n}", 60) for n in range(6)
    ]
    assert ledger.total(simulated=False).cost == pytest.approx(0.36)


def test_fresh_file_raced_by_many_processes(tmp_path: Path) -> None:
    path = tmp_path / "new" / "usage.sqlite3"  # nobody created it: they all migrate at once
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(path), "5", "m"]) for _ in range(6)
    ]
    assert [w.wait(timeout=60) for w in writers] == [0] * 6
    assert Ledger(path).total(simulated=False).requests == 30
