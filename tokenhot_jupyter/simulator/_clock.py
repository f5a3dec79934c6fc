"""The simulated clock: real time multiplied by a speed, plus manual jumps."""

from __future__ import annotations

import threading
import time


class SimClock:
    """Simulated epoch seconds: ``start + speed * real_elapsed + advanced``.

    ``speed=0`` gives a manual clock that only moves through `advance` (what tests use);
    ``speed=1000`` lets 15 simulated seconds pass in 15 real milliseconds.
    """

    def __init__(self, speed: float = 1.0, start: float | None = None) -> None:
        if speed < 0:
            raise ValueError("speed must be >= 0")
        self._lock = threading.Lock()
        self._speed = float(speed)
        self._base_sim = time.time() if start is None else float(start)
        self._base_real = time.monotonic()

    def now(self) -> float:
        """The current simulated time, in epoch seconds."""
        with self._lock:
            return self._base_sim + (time.monotonic() - self._base_real) * self._speed

    def advance(self, seconds: float) -> float:
        """Jump forward ``seconds`` simulated seconds; return the new time."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        with self._lock:
            self._base_sim += seconds
        return self.now()

    @property
    def speed(self) -> float:
        """Simulated seconds per real second."""
        return self._speed

    @speed.setter
    def speed(self, value: float) -> None:
        if value < 0:
            raise ValueError("speed must be >= 0")
        with self._lock:
            real = time.monotonic()
            self._base_sim += (real - self._base_real) * self._speed
            self._base_real = real
            self._speed = float(value)

    def __repr__(self) -> str:
        return f"SimClock(speed={self._speed:g}, now={self.now():.1f})"
