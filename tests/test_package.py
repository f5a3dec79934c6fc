"""The public surface: a sorted __all__, lazy imports, nothing done at import time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import tokenhot_jupyter

ROOT = Path(__file__).resolve().parents[1]


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


def test_the_kernel_never_imports_the_server_extension(tmp_path: Path) -> None:
    code = (
        "import sys, tokenhot_jupyter\n"
        "assert tokenhot_jupyter._jupyter_server_extension_points() == "
        "[{'module': 'tokenhot_jupyter._server'}]\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "ip = InteractiveShell.instance()\n"
        "ip.run_line_magic('load_ext', 'tokenhot_jupyter')\n"
        "ip.run_line_magic('tokenhot', 'usage --today')\n"
        "print(sorted(m for m in sys.modules if m.startswith('tokenhot_jupyter._server')"
        " or m.split('.')[0] in ('jupyter_server', 'tornado')))\n"
    )
    env = {**os.environ, "TOKENHOT_HOME": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_the_server_config_enables_the_extension() -> None:
    config = ROOT / "jupyter-config" / "server-config" / "tokenhot_jupyter.json"
    data = json.loads(config.read_text())
    assert data == {"ServerApp": {"jpserver_extensions": {"tokenhot_jupyter": True}}}


def test_the_labextension_paths_point_at_the_built_extension() -> None:
    (entry,) = tokenhot_jupyter._jupyter_labextension_paths()
    built = Path(tokenhot_jupyter.__file__).parent / entry["src"] / "package.json"
    assert entry["dest"] == "tokenhot-jupyter" and built.is_file()
