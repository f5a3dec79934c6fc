"""The wheel ships the prebuilt JupyterLab extension and the server config, and needs no Node.

The wheel is built from this tree with no Node on ``PATH``, reusing the extension that
``pip install -e .`` built (the hatch hook's ``skip-if-exists``; the build venv has only the
hook's Python packages, so a hook that wanted to rebuild would fail), then installed into a
new venv, also without Node, where ``jupyter labextension list`` and ``jupyter server
extension list`` must say it is enabled and OK.  The TypeScript helpers in ``src/magic.ts``
are checked with node's own test runner where Node is installed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # jupyterlab depends on tomli before 3.11
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]  # absent on 3.11+

pytestmark = pytest.mark.packaging

ROOT = Path(__file__).resolve().parents[1]
BUILT = ROOT / "tokenhot_jupyter" / "labextension"
SHARE = "share/jupyter/labextensions/tokenhot-jupyter"
SERVER_CONFIG = "etc/jupyter/jupyter_server_config.d/tokenhot_jupyter.json"
NODE_TOOLS = ("node", "nodejs", "npm", "npx", "yarn", "jlpm")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _path_without_node(*first: Path) -> str:
    """PATH with every folder that holds a Node tool left out (``first`` put in front)."""
    kept = [
        folder
        for folder in os.environ.get("PATH", "").split(os.pathsep)
        if folder and not any((Path(folder) / tool).exists() for tool in NODE_TOOLS)
    ]
    path = os.pathsep.join([*map(str, first), *kept])
    assert shutil.which("node", path=path) is None
    return path


def _run(args: list[str | Path], env: dict[str, str], cwd: Path) -> str:
    done = subprocess.run(
        [str(a) for a in args], env=env, cwd=cwd, capture_output=True, text=True, timeout=600
    )
    out = ANSI.sub("", done.stdout + done.stderr)
    assert done.returncode == 0, f"{args[:3]} failed ({done.returncode}):\n{out[-3000:]}"
    return out


def _isolated_env(tmp: Path, path: str) -> dict[str, str]:
    """No Node, and no Jupyter config or data but the venv's own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "PYTHON"))}
    env.update(
        PATH=path,
        JUPYTER_CONFIG_DIR=str(tmp / "config"),
        JUPYTER_DATA_DIR=str(tmp / "data"),
        JUPYTER_PLATFORM_DIRS="1",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
    )
    return env


def _new_venv(folder: Path, env: dict[str, str], *requirements: str) -> Path:
    """A new venv at ``folder`` with ``requirements``; returns its python."""
    subprocess.run([sys.executable, "-m", "venv", folder], check=True)
    python = folder / "bin" / "python"
    if requirements:
        _run([python, "-m", "pip", "install", "--no-compile", *requirements], env, folder)
    return python


def _hook_requirements() -> list[str]:
    """The build-system's requirements less jupyterlab, which only a JavaScript build needs."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    requires: list[str] = pyproject["build-system"]["requires"]
    return [r for r in requires if not r.startswith("jupyterlab")]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel of this tree, built with no Node on PATH from the existing extension build."""
    if not (BUILT / "package.json").exists():
        pytest.fail('the extension is not built: `pip install -e ".[test]"` builds it')
    tmp = tmp_path_factory.mktemp("wheel")
    env = _isolated_env(tmp, _path_without_node(tmp / "builder" / "bin"))
    python = _new_venv(tmp / "builder", env, *_hook_requirements())
    cmd: list[str | Path] = [python, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
    _run([*cmd, "-w", tmp, ROOT], env, tmp)
    (found,) = tmp.glob("tokenhot_jupyter-*.whl")
    return found


def test_wheel_carries_the_built_extension_and_the_server_config(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    data = next(n.split("/data/")[0] for n in names if ".data/data/" in n) + "/data/"
    for shipped in ("package.json", "install.json", "schemas/tokenhot-jupyter/plugin.json"):
        assert f"{data}{SHARE}/{shipped}" in names
    assert any(n.startswith(f"{data}{SHARE}/static/remoteEntry.") for n in names)
    assert f"{data}{SERVER_CONFIG}" in names
    assert not any("node_modules" in n or n.endswith(".ts") for n in names)


def test_wheel_installs_and_enables_both_extensions_without_node(
    wheel: Path, tmp_path: Path
) -> None:
    venv = tmp_path / "venv"
    env = _isolated_env(tmp_path, _path_without_node(venv / "bin"))
    _new_venv(venv, env, f"{wheel}[lab]")

    labextensions = _run([venv / "bin" / "jupyter", "labextension", "list"], env, tmp_path)
    assert re.search(r"tokenhot-jupyter v\S+ enabled\s+OK", labextensions), labextensions
    servers = _run([venv / "bin" / "jupyter", "server", "extension", "list"], env, tmp_path)
    assert re.search(r"tokenhot_jupyter\s+enabled", servers), servers
    assert re.search(r"tokenhot_jupyter \S+ OK", servers), servers


@pytest.mark.parametrize("script", sorted(p.name for p in (ROOT / "tests" / "js").glob("*.mjs")))
def test_frontend_helpers_under_node(script: str) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node is not installed (only needed to build the extension)")
    if not (ROOT / "lib" / "index.js").exists():
        pytest.fail('the extension is not built: `pip install -e ".[test]"` builds it')
    _run([node, "--test", ROOT / "tests" / "js" / script], dict(os.environ), ROOT)
