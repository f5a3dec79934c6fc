"""The notebook panels (core ipywidgets only): the model picker and the video task monitor.

``ModelPicker`` sets the magics' default models and parameters and tries models side by
side; ``TaskMonitor`` follows video tasks live.  Both are plain objects that own their
widgets (``.widget``) and display themselves; in terminal IPython they print text instead.
Loaded lazily: ``import tokenhot_jupyter`` does not import ipywidgets.
"""

from __future__ import annotations

from ._monitor import TaskMonitor, show_monitor
from ._picker import ModelPicker, show_picker

__all__ = ["ModelPicker", "TaskMonitor", "show_monitor", "show_picker"]
