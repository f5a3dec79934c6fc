"""Run the notebooks under nbval against a gateway simulator.

nbval starts each notebook's kernel when the notebook's first cell is set up, and kernels
inherit this process's environment; so the simulator's address is put into the
environment just before that (in place of any ``TOKENHOT_*`` setting of the developer's
shell), and taken out again after the last notebook cell, so that the rest of the test suite
never sees it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
# Only the notebooks we ship are tests: a user's own notebook saved here is not.
SHIPPED = {
    "01-quick-tour.ipynb", "02-chat-and-compare.ipynb", "03-images.ipynb", "04-video.ipynb",
    "05-audio.ipynb", "06-teaching-demo.ipynb", "07-record-and-replay.ipynb",
    "08-prompts-over-data.ipynb",
}  # fmt: skip
_state: dict[str, Any] = {}


def pytest_ignore_collect(collection_path: Path, config: Any) -> bool | None:
    if collection_path.suffix == ".ipynb" and collection_path.parent == HERE:
        return collection_path.name not in SHIPPED
    return None


def _is_notebook_item(item: Any) -> bool:
    return item is not None and Path(str(item.path)).resolve().parent == HERE


def _start() -> None:
    from tokenhot_jupyter.simulator import Simulator

    # A fast clock: a 5 s video (about 90 simulated seconds) takes under half a real second.
    sim = Simulator(speed=200, token_delay=0.002)
    sim.start()
    home = tempfile.TemporaryDirectory(prefix="tokenhot-nbval-")
    _state.update(sim=sim, home=home, env=dict(os.environ))
    # The kernels get only these settings, never the developer's own (restored by _stop).
    for name in [name for name in os.environ if name.startswith(("TOKENHOT_", "JPY_SESSION_NAME"))]:
        del os.environ[name]
    os.environ.update(
        {
            "TOKENHOT_BASE_URL": sim.base_url,
            "TOKENHOT_API_KEY": sim.api_key,
            "TOKENHOT_SIMULATED": "1",
            "TOKENHOT_HOME": home.name,
            "TOKENHOT_OUTPUT_DIR": str(Path(home.name) / "outputs"),
        }
    )


def _stop() -> None:
    if "sim" in _state:
        _state.pop("sim").stop()
        _state.pop("home").cleanup()
        os.environ.clear()
        os.environ.update(_state.pop("env"))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: Any) -> None:
    if _is_notebook_item(item) and "sim" not in _state:
        _start()


def pytest_runtest_teardown(item: Any, nextitem: Any) -> None:
    if _is_notebook_item(item) and not _is_notebook_item(nextitem):
        _stop()


def pytest_unconfigure(config: Any) -> None:
    _stop()
