"""Shared test setup.

The simulator fixtures (``tokenhot_simulator``, ``tokenhot_simulator_session``) come from
the ``tokenhot_simulator`` pytest plugin, registered by the package's entry point; this
loads it too when the package is on the path without being installed.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


def pytest_configure(config: pytest.Config) -> None:
    """Make sure the simulator plugin is active; keep every test out of the user's own home.

    ``TOKENHOT_HOME`` holds the task journal, the usage ledger and a stored API key: a test
    must never read a real key (and send it to the simulator) or write into a real ledger.
    """
    if not config.pluginmanager.has_plugin("tokenhot_simulator"):
        config.pluginmanager.import_plugin("tokenhot_jupyter.simulator.pytest_plugin")
    os.environ["TOKENHOT_HOME"] = tempfile.mkdtemp(prefix="tokenhot-test-home-")


@pytest.fixture
def kernel(tokenhot_simulator: Any, tmp_path: Path) -> Iterator[Any]:
    """A real kernel with the magics loaded, talking to the test's simulator."""
    from kernel_support import SETUP, Kernel, _start

    km = _start(tokenhot_simulator, tmp_path)
    started = Kernel(km)
    try:
        started.ok(SETUP)
        yield started
    finally:
        started.stop()
        km.shutdown_kernel(now=True)
