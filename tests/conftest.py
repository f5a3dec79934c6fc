"""Shared test setup.

The simulator fixtures (``tokenhot_simulator``, ``tokenhot_simulator_session``) come from
the ``tokenhot_simulator`` pytest plugin, registered by the package's entry point; this
loads it too when the package is on the path without being installed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# The simulator tests' ``sim`` and ``http`` fixtures (their helpers are imported by name).
pytest_plugins = ("simulator_support",)

# Settings the package reads from the environment: a developer's shell must not reach a test.
_SHELL_PREFIXES = ("TOKENHOT_", "JPY_SESSION_NAME")


def pytest_configure(config: pytest.Config) -> None:
    """Make sure the simulator plugin is active; keep every test out of the user's own home.

    ``TOKENHOT_HOME`` holds the task journal, the usage ledger and a stored API key: a test
    must never read a real key (and send it to the simulator) or write into a real ledger.
    """
    if not config.pluginmanager.has_plugin("tokenhot_simulator"):
        config.pluginmanager.import_plugin("tokenhot_jupyter.simulator.pytest_plugin")


@pytest.fixture(autouse=True)
def _no_settings_from_the_shell(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Clear ``TOKENHOT_*`` and ``JPY_SESSION_NAME``: a test that needs one sets it itself.

    ``TOKENHOT_HOME`` points at a fresh folder: it holds the task journal, the usage ledger
    and a stored API key, and a test must never read a real key or write a real ledger.
    """
    # monkeypatch edits os.environ, so subprocesses and kernels a test starts inherit this too.
    for name in [name for name in os.environ if name.startswith(_SHELL_PREFIXES)]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("TOKENHOT_HOME", str(tmp_path_factory.mktemp("tokenhot-home")))


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


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Debian Chromium with a fresh profile, shared by one module's browser tests."""
    from browser_support import launch_chromium

    with launch_chromium() as launched:
        yield launched
