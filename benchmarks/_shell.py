"""The shared set-up of the benchmarks: an IPython shell with the magics, aimed at a simulator."""

from __future__ import annotations

import os
import tempfile
from typing import Any


def magic_shell(sim: Any, **settings: Any) -> Any:
    """An InteractiveShell that captures displays, talks to ``sim`` and has the magics loaded.

    ``settings`` are ``Tokenhot`` traits, e.g. ``video_poll_interval=0.5``.
    """
    from IPython.core.displaypub import CapturingDisplayPublisher
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    os.environ.update(TOKENHOT_BASE_URL=sim.base_url, TOKENHOT_API_KEY=sim.api_key)
    os.environ["TOKENHOT_HOME"] = tempfile.mkdtemp()
    os.environ["TOKENHOT_OUTPUT_DIR"] = tempfile.mkdtemp()
    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    for name, value in settings.items():
        setattr(config.Tokenhot, name, value)
    ip = InteractiveShell.instance(config=config)
    # IPython's display publishers have no annotations.
    ip.display_pub = CapturingDisplayPublisher(shell=ip)  # type: ignore[no-untyped-call]
    ip.run_line_magic("load_ext", "tokenhot_jupyter")
    return ip
