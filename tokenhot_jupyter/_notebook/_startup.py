"""Kernels started by ``python -m tokenhot_jupyter lab`` run this (via PYTHONSTARTUP).

It loads the magics, then runs the user's own PYTHONSTARTUP file if there was one.
"""

import os


def _load() -> None:
    from IPython import get_ipython

    from tokenhot_jupyter._notebook._magics import register

    shell = get_ipython()
    if shell is not None:
        # Not through the extension manager: then a notebook's own `%load_ext
        # tokenhot_jupyter` loads quietly (registering twice is a no-op) instead of
        # printing "already loaded" as its first output.
        register(shell)


_load()
_user_startup = os.environ.get("TOKENHOT_USER_PYTHONSTARTUP")
if _user_startup and os.path.isfile(_user_startup):
    with open(_user_startup, encoding="utf-8") as _f:
        exec(compile(_f.read(), _user_startup, "exec"))
