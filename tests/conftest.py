"""Shared test setup.

The simulator fixtures (``tokenhot_simulator``, ``tokenhot_simulator_session``) come from
the ``tokenhot_simulator`` pytest plugin, registered by the package's entry point; this
loads it too when the package is on the path without being installed.
"""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    """Make sure the simulator plugin is active."""
    if not config.pluginmanager.has_plugin("tokenhot_simulator"):
        config.pluginmanager.import_plugin("tokenhot_jupyter.simulator.pytest_plugin")
