"""Bad inputs and cut streams in a real ipykernel: one error line, the cell fails, nothing paid."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.kernel
pytest.importorskip("ipykernel")

from kernel_support import Kernel  # noqa: E402


def _one_error(messages: list[dict[str, Any]]) -> str:
    errors = [m for m in messages if m["msg_type"] == "error"]
    assert len(errors) == 1
    traceback = errors[0]["content"]["traceback"]
    assert len(traceback) == 1, traceback
    return str(traceback[0])


def test_a_stream_that_ends_early_fails_the_cell_and_keeps_its_text(
    kernel: Kernel, tokenhot_simulator: Any
) -> None:
    tokenhot_simulator.faults.add("end-early", path="/v1/chat/completions", method="POST")
    reply, messages = kernel.run("%%chat -m gpt-5\nTell me about the sea.")
    assert reply["content"]["status"] == "error"
    assert _one_error(messages).startswith("StreamIncompleteError: The gpt-5 stream ended early")
    shown = [m for m in messages if m["msg_type"] in ("display_data", "update_display_data")]
    final = shown[-1]["content"]["data"]["text/plain"]
    assert "Simulated answer" in final and "the stream ended early" in final


@pytest.mark.parametrize(
    ("cell", "said"),
    [
        ("%%video -m doubao-seedance-2.0 --image notes.png\nAnimate", "is text, not a PNG"),
        ("%%chat -p seed=NaN\nHi", "seed is nan"),
    ],
)
def test_a_bad_input_is_one_line_and_nothing_is_paid(
    kernel: Kernel, tokenhot_simulator: Any, tmp_path: Path, cell: str, said: str
) -> None:
    (tmp_path / "notes.png").write_text("milk, eggs, bread\n")
    reply, messages = kernel.run(cell)
    assert reply["content"]["status"] == "error"
    assert said in _one_error(messages)
    assert not [r for r in tokenhot_simulator.requests if r.method == "POST"]
