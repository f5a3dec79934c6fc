"""One model parameter as a widget whose value is None ("the model's default") until set."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ipywidgets as W

from .._catalog import Param

OnChange = Callable[[str, Any], None]
SLIDER_SPAN = 100  # int ranges up to this wide get a slider, wider ones a number box
UNSET = ""  # the "default" entry of a dropdown (a Dropdown's None means "nothing selected")
_STYLE = {"description_width": "9em"}


class ParamControl:
    """A dropdown (choices), a checkbox + slider or number (numbers) or a text box.

    ``value`` is what the user chose, or None for the model's own default; setting it from
    code behaves like the user's change (``on_change`` is told once).
    """

    def __init__(self, spec: Param, value: Any, on_change: OnChange) -> None:
        self.spec = spec
        self._on_change = on_change
        self._quiet = False
        self._told = value
        self._enabled: Any = None  # the checkbox of a number
        self._input = self._make_input(spec)
        self.widget = self._layout()
        self._set(value)
        for widget in (self._input, self._enabled):
            if widget is not None:
                widget.observe(self._changed, names="value")

    @property
    def name(self) -> str:
        """The parameter's name, e.g. ``temperature``."""
        return self.spec.name

    @property
    def value(self) -> Any:
        """The chosen value, or None for the model's default."""
        if self._enabled is not None and not self._enabled.value:
            return None
        value = self._input.value
        return None if value == UNSET else value

    @value.setter
    def value(self, value: Any) -> None:
        self._set(value)
        self._changed(None)

    def close(self) -> None:
        """Close the widgets."""
        for widget in (self._input, self._enabled, self.widget):
            if widget is not None:
                widget.close()

    # --- building ---------------------------------------------------------------------

    def _make_input(self, spec: Param) -> Any:
        # Named as in `%tokenhot use chat.temperature=…`; the help text is the tooltip.
        label = dict(description=spec.name, tooltip=spec.help or spec.name)
        if spec.type in ("choice", "bool"):
            return W.Dropdown(options=_choices(spec), style=_STYLE, **label)
        if spec.type in ("float", "int"):
            self._enabled = W.Checkbox(value=False, indent=False, **label)
            return _number(spec)
        return W.Text(placeholder="model default", style=_STYLE, continuous_update=False, **label)

    def _layout(self) -> Any:
        if self._enabled is None:
            return self._input
        self._enabled.layout = W.Layout(width="10em")
        return W.HBox([self._enabled, self._input])

    # --- values -------------------------------------------------------------------------

    def _set(self, value: Any) -> None:
        self._quiet = True
        try:
            if self._enabled is not None:
                self._enabled.value = value is not None
                if value is not None:
                    self._input.value = value
                self._input.disabled = value is None
            elif self.spec.type == "str":
                self._input.value = UNSET if value is None else str(value)
            else:
                known = [v for _, v in self._input.options]
                self._input.value = value if value in known else UNSET
        finally:
            self._quiet = False

    def _changed(self, _change: Any) -> None:
        if self._enabled is not None:
            self._input.disabled = not self._enabled.value
        if self._quiet or self.value == self._told:
            return
        self._told = self.value
        self._on_change(self.name, self.value)


def _choices(spec: Param) -> list[tuple[str, Any]]:
    default = f"default ({spec.default})" if spec.default is not None else "default"
    values = spec.choices or (True, False)
    return [(default, UNSET), *((str(v), v) for v in values)]


def _number(spec: Param) -> Any:
    low = spec.min if spec.min is not None else 0
    high = spec.max if spec.max is not None else 1_000_000
    start = spec.default if spec.default is not None else _middle(spec, low, high)
    common = dict(min=low, max=high, value=start, disabled=True, continuous_update=False)
    if spec.type == "float":
        return W.FloatSlider(step=0.05, readout_format=".2f", **common)
    if high - low <= SLIDER_SPAN:
        return W.IntSlider(step=1, **common)
    return W.BoundedIntText(step=1, **common)


def _middle(spec: Param, low: float, high: float) -> float:
    if spec.name == "temperature":
        return 1.0
    if spec.name == "max_tokens":
        return 1024
    return low if spec.type == "int" else (low + high) / 2
