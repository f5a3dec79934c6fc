"""Pytest fixtures for the gateway simulator (registered as the ``tokenhot_simulator`` plugin).

``tokenhot_simulator``: a fresh running `Simulator` per test, with a manual clock (advance
it with ``sim.clock.advance(seconds)``) and no token pacing. ``tokenhot_simulator_session``:
one shared simulator for the whole session (do not rely on its state being clean).
Imports stay inside the fixtures, because pytest loads this module in every run.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tokenhot_jupyter.simulator import Simulator


def _make() -> Simulator:
    from tokenhot_jupyter.simulator import Simulator

    return Simulator(speed=0, token_delay=0.0, image_delay=0.0)


@pytest.fixture
def tokenhot_simulator() -> Iterator[Simulator]:
    """A fresh simulator: manual clock (speed 0), no pacing; stopped after the test."""
    with _make() as sim:
        yield sim


@pytest.fixture(scope="session")
def tokenhot_simulator_session() -> Iterator[Simulator]:
    """One simulator shared by the whole session (manual clock, no pacing)."""
    with _make() as sim:
        yield sim
