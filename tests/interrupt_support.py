"""A real Ctrl-C for tests: SIGINT sent to the main thread while it waits."""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable


def ctrl_c_when(ready: Callable[[], bool]) -> threading.Thread:
    """One real SIGINT to the main thread, once ``ready`` holds and it waits (as Ctrl-C)."""

    def waits() -> bool:
        frame = sys._current_frames().get(threading.main_thread().ident or 0)
        return frame is not None and frame.f_code.co_name == "wait"

    def send() -> None:
        deadline = time.monotonic() + 60
        while not (ready() and waits()) and time.monotonic() < deadline:
            time.sleep(0.002)
        signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread
