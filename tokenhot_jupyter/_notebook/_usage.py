"""Usage and estimated spend: the session's tally per model, and list prices per unit.

Every cost here is an estimate from the catalog's list prices (the built-in models, with
what the gateway's live list adds): per 1M tokens in and out for chat, per picture, per
second of video, per 1M characters of speech, per minute of transcribed audio.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .._catalog import Catalog
from .._types import Usage


@dataclass
class Spend:
    """Calls, tokens and estimated USD for one model in this session."""

    kind: str
    calls: int = 0
    usage: Usage = field(default_factory=Usage)
    cost: float = 0.0
    priced: bool = True


Sink = Callable[[str, str, "Usage | None", "float | None"], None]


class Tally:
    """The session's usage, per model; costs are estimates from list prices.

    Every call counted here also goes to ``sink`` (the usage ledger shared by all kernels):
    this is the one place where usage is recorded.
    """

    def __init__(self, sink: Sink | None = None) -> None:
        self.models: dict[str, Spend] = {}
        self._sink = sink

    def add(self, model: str, kind: str, usage: Usage | None, cost: float | None) -> None:
        """Count one call."""
        spend = self.models.setdefault(model, Spend(kind))
        spend.calls += 1
        spend.usage = spend.usage + (usage or Usage())
        spend.cost += cost or 0.0
        spend.priced = spend.priced and cost is not None
        if self._sink is not None:
            self._sink(model, kind, usage, cost)

    @property
    def total_cost(self) -> float:
        """Estimated USD across every model."""
        return sum(s.cost for s in self.models.values())

    def reset(self) -> None:
        """Start counting again."""
        self.models.clear()


class Prices:
    """Estimated USD of calls, from the list prices of ``catalog()`` (the session's)."""

    def __init__(self, catalog: Callable[[], Catalog] = Catalog) -> None:
        self._catalog = catalog

    def of(self, model_id: str) -> tuple[float, ...]:
        """The list price tuple of a model (empty when unknown or unpriced)."""
        model = self._catalog().models.get(model_id)
        return model.price if model else ()

    def chat(self, model_id: str, usage: Usage | None) -> float | None:
        """A chat call, from its token usage."""
        price = self.of(model_id)
        if usage is None or len(price) < 2:
            return None
        output = usage.output_tokens
        reported = usage.input_tokens + usage.output_tokens + usage.reasoning_tokens
        if usage.total_tokens >= reported > 0:
            output += usage.reasoning_tokens  # reported apart from the answer (Gemini): billed too
        return (usage.input_tokens * price[0] + output * price[1]) / 1_000_000

    def pictures(self, model_id: str, count: int) -> float | None:
        """``count`` pictures."""
        return self._per_unit(model_id, count)

    def video(self, model_id: str, seconds: float) -> float | None:
        """A video of ``seconds``."""
        return self._per_unit(model_id, seconds)

    def speech(self, model_id: str, characters: int) -> float | None:
        """``characters`` read aloud."""
        return self._per_unit(model_id, characters / 1_000_000)

    def transcript(self, model_id: str, seconds: float) -> float | None:
        """``seconds`` of audio transcribed."""
        return self._per_unit(model_id, seconds / 60)

    def _per_unit(self, model_id: str, units: float) -> float | None:
        price = self.of(model_id)
        return price[0] * units if price else None
