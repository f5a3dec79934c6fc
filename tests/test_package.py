"""The public surface: a sorted __all__, lazy imports, nothing done at import time."""

from __future__ import annotations

import subprocess
import sys

import tokenhot_jupyter


def test_all_is_sorted_and_resolves() -> None:
    assert tokenhot_jupyter.__all__ == sorted(tokenhot_jupyter.__all__)
    for name in tokenhot_jupyter.__all__:
        assert getattr(tokenhot_jupyter, name) is not None


def test_import_is_lazy_and_does_not_touch_httpx() -> None:
    code = (
        "import sys, tokenhot_jupyter; "
        "print('httpx' in sys.modules, 'tokenhot_jupyter._client' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_errors_share_one_root() -> None:
    for name in tokenhot_jupyter.__all__:
        obj = getattr(tokenhot_jupyter, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, tokenhot_jupyter.TokenhotError), name
