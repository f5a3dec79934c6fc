"""Issue 11's done-when: a notebook recorded from the simulator replays the same, offline.

The shipped record-and-replay notebook (streamed chat, a three-model comparison, an image and
a speech clip) plus a video cell is recorded in a real kernel against a simulator; then the
simulator is stopped and the notebook replayed in a fresh kernel with no key, no base URL
and a socket guard.  Every output must be the same apart from latency, file names and the
replayed mark, and the cassette must hold no key and no header outside the allowlist.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tokenhot_jupyter._cassette import KEPT_HEADERS, KEPT_PREFIXES

from cassette_support import (
    SHIPPED,
    SHIPPED_CASSETTE,
    execute,
    load,
    recording,
    replaying,
    shown,
    size,
)

pytestmark = pytest.mark.kernel
KEY = "sk-notebookRECORDINGkey0123456789XYZ"
VIDEO = "%%video -m doubao-seedance-2.0-fast --duration 4 --wait\nA paper boat on a rainy street"


def _with_video(nb: Any) -> Any:
    """The shipped notebook with a video cell before its last (stop) cell."""
    import nbformat

    nb.cells.insert(len(nb.cells) - 1, nbformat.v4.new_code_cell(VIDEO))  # type: ignore[no-untyped-call]
    return nb


def _environment(monkeypatch: pytest.MonkeyPatch, home: Path, **settings: str) -> None:
    for name in ("TOKENHOT_BASE_URL", "TOKENHOT_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TOKENHOT_HOME", str(home / "home"))
    monkeypatch.setenv("TOKENHOT_OUTPUT_DIR", str(home / "outputs"))
    for name, value in settings.items():
        monkeypatch.setenv(name, value)


def _printed(nb: Any) -> str:
    return "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))


def _cassette_lines(cassette: Path) -> list[dict[str, Any]]:
    lines = (cassette / "cassette.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines[1:]]


def test_a_recorded_notebook_replays_every_output_offline_with_no_secret_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tokenhot_jupyter.simulator import Simulator

    cassette = tmp_path / "lesson"
    with Simulator(speed=200, token_delay=0.002) as sim:
        _environment(monkeypatch, tmp_path / "record", TOKENHOT_BASE_URL=sim.base_url,
                     TOKENHOT_API_KEY=KEY)  # fmt: skip
        recorded = recording(_with_video(load()), cassette)
        record_time = execute(recorded, tmp_path)
    # The simulator is gone, and the replaying kernel has neither a key nor a base URL.
    _environment(monkeypatch, tmp_path / "replay")
    replayed = replaying(_with_video(load()), cassette)
    replay_time = execute(replayed, tmp_path)

    assert "guarded connection attempts: 0" in _printed(replayed)
    before, after = shown(recorded), shown(replayed)
    # chat, grid, image (the picture, then its footer), audio, video
    assert [len(outputs) for outputs in after] == [1, 1, 2, 1, 1]
    assert after == before  # text, image bytes and inline WAV bytes alike
    assert "image/png" in after[2][0] and "data:audio/wav;base64," in after[3][0]["text/html"]
    videos = [sorted((tmp_path / run / "outputs").glob("*.mp4")) for run in ("record", "replay")]
    assert len(videos[0]) == len(videos[1]) == 1
    assert videos[0][0].read_bytes() == videos[1][0].read_bytes()
    _assert_marked_replayed(replayed, cassette.name)
    _assert_no_secret(cassette)
    print(
        f"\ncassette {size(cassette):,} bytes; recording {record_time:.2f} s, "
        f"replay {replay_time:.2f} s (speed 0)"
    )


def _assert_marked_replayed(nb: Any, name: str) -> None:
    cells = [c for c in nb.cells if c.cell_type == "code" and c.source.startswith("%%")]
    for cell in cells:
        shown = [o for o in cell.outputs if "data" in o]
        kept = [o["metadata"]["tokenhot"] for o in shown if "tokenhot" in o.get("metadata", {})]
        assert kept, cell.source  # every magic's output carries its provenance
        for meta in kept:
            assert meta["replayed"] is True and meta["cassette"] == name, cell.source
        assert "replayed" in shown[-1]["data"]["text/plain"], cell.source  # the footer says so


def _assert_no_secret(cassette: Path) -> None:
    for file in [f for f in cassette.rglob("*") if f.is_file()]:
        data = file.read_bytes()
        assert KEY.encode() not in data and KEY[-8:].encode() not in data, file
    for line in _cassette_lines(cassette):
        assert "headers" not in line["request"]
        for header in line.get("response", {}).get("headers", {}):
            assert header in KEPT_HEADERS or header.startswith(KEPT_PREFIXES), header


def test_the_shipped_notebook_replays_from_its_shipped_cassette_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _environment(monkeypatch, tmp_path)
    nb = replaying(load(), SHIPPED_CASSETTE.relative_to(SHIPPED.parent))
    execute(nb, SHIPPED.parent)
    assert "guarded connection attempts: 0" in _printed(nb)
    assert size(SHIPPED_CASSETTE) < 200_000  # small enough to commit beside the notebook
    assert os.path.isdir(SHIPPED_CASSETTE / "media")
