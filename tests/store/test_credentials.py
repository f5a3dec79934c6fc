"""The stored key and the one resolution rule: argument → environment → stored → login."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

import tokenhot_jupyter as th
from tokenhot_jupyter._store import _credentials as C
from tokenhot_jupyter.simulator import Simulator

pytest_plugins = ("magics_support",)
KEY = "sk-storedsecret1234567890"
posix_only = pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")


@pytest.fixture
def home(clean_env: Path) -> Path:
    return clean_env / "home"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- the key file -------------------------------------------------------------------------


@posix_only
def test_stored_under_tokenhot_home_with_mode_0600(home: Path) -> None:
    old = os.umask(0)  # the most permissive umask: the file must still be private
    try:
        assert C.KeyStore().write(f"  {KEY}\n") == KEY
    finally:
        os.umask(old)
    path = home / "api_key"
    assert C.store().path == path and path.read_text() == KEY + "\n"
    assert mode(path) == 0o600 and mode(home) == 0o700
    assert not [p for p in home.iterdir() if p.name != "api_key"], "no temporary file left"


@posix_only
def test_never_readable_by_others_while_being_written(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[int] = []
    real_write = os.write

    def watching(fd: int, data: bytes) -> int:
        seen.append(stat.S_IMODE(os.fstat(fd).st_mode))  # before any byte of the key lands
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", watching)
    old = os.umask(0)
    try:
        C.KeyStore().write(KEY)
    finally:
        os.umask(old)
    assert seen == [0o600]


def test_replacing_a_key_is_atomic(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    keys = C.KeyStore()
    keys.write(KEY)

    def broken(src: Any, dst: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(th.ConfigurationError, match="could not be stored"):
        keys.write("sk-anothersecret12345678")
    assert keys.read() == KEY, "the old key is intact"
    assert [p.name for p in home.iterdir()] == ["api_key"], "the temporary file is gone"


def test_read_costs_a_stat_until_the_file_changes(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = C.KeyStore()
    keys.write(KEY)
    reads: list[Path] = []
    real = Path.read_text

    def counting(self: Path, *args: Any, **kwargs: Any) -> str:
        reads.append(self)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", counting)
    assert [keys.read() for _ in range(50)] == [KEY] * 50
    assert len(reads) == 1
    other = C.KeyStore()  # e.g. the panel in another process stores a new key
    other.write("sk-newersecret123456789")
    assert keys.read() == "sk-newersecret123456789" and len(reads) == 2
    other.delete()
    assert keys.read() is None


@posix_only
def test_a_key_file_others_can_read_is_refused(home: Path) -> None:
    keys = C.KeyStore()
    keys.write(KEY)
    keys.path.chmod(0o644)
    with pytest.raises(th.ConfigurationError, match="chmod 600") as exc:
        C.KeyStore().read()
    assert KEY not in str(exc.value)


@pytest.mark.parametrize(
    ("bad", "match"),
    [("", "No key"), ("   ", "No key"), (KEY + " extra", "spaces"), (KEY + "\u200b", "ASCII"),
     ("sk-" + "a" * 600, "over 512")],
)  # fmt: skip
def test_bad_keys_are_refused_without_being_echoed(home: Path, bad: str, match: str) -> None:
    with pytest.raises(th.TokenhotError, match=match) as exc:
        C.KeyStore().write(bad)
    assert not (bad.strip() and bad.strip() in str(exc.value))
    assert not C.store().path.exists()


def test_a_damaged_key_file_says_what_to_do(home: Path) -> None:
    home.mkdir(parents=True)
    path = home / "api_key"
    path.write_text("sk-has a space\n")
    path.chmod(0o600)
    with pytest.raises(th.ConfigurationError, match="not a valid key") as exc:
        C.KeyStore().read()
    assert "sk-has" not in str(exc.value)


def test_forget(home: Path) -> None:
    keys = C.KeyStore()
    assert keys.delete() is False
    keys.write(KEY)
    assert keys.delete() is True and keys.read() is None and not keys.path.exists()


# --- precedence and mode ---------------------------------------------------------------------


def test_precedence_argument_environment_stored_login(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert C.find_key() == (None, "none")
    C.login("sk-loginsecret123456789")
    assert C.find_key() == ("sk-loginsecret123456789", "login")
    C.store().write(KEY)
    assert C.find_key() == (KEY, "stored")
    monkeypatch.setenv("TOKENHOT_API_KEY", "sk-environment12345678")
    assert C.find_key() == ("sk-environment12345678", "environment")
    assert C.find_key("sk-argument1234567890") == ("sk-argument1234567890", "argument")
    C.logout()


@pytest.mark.parametrize(
    ("env", "stored", "expected"),
    [
        ({}, False, (None, "none", "https://api.tokenhot.ai", False)),
        ({}, True, (KEY, "stored", "https://api.tokenhot.ai", False)),
        # a simulator you started yourself
        ({"TOKENHOT_BASE_URL": "http://127.0.0.1:8765"}, False,
         ("sk-simulator", "none", "http://127.0.0.1:8765", True)),
        ({"TOKENHOT_BASE_URL": "http://127.0.0.1:8765"}, True,
         (KEY, "stored", "http://127.0.0.1:8765", False)),
        # the launcher's simulator: used until a real key appears
        ({"TOKENHOT_BASE_URL": "http://127.0.0.1:8765", "TOKENHOT_SIMULATED": "1"}, False,
         ("sk-simulator", "none", "http://127.0.0.1:8765", True)),
        ({"TOKENHOT_BASE_URL": "http://127.0.0.1:8765", "TOKENHOT_SIMULATED": "1"}, True,
         (KEY, "stored", "https://api.tokenhot.ai", False)),
        ({"TOKENHOT_BASE_URL": "http://127.0.0.1:8765", "TOKENHOT_SIMULATED": "1",
          "TOKENHOT_API_KEY": "sk-simulator"}, False,  # what older launchers gave kernels
         ("sk-simulator", "none", "http://127.0.0.1:8765", True)),
        # --simulate: the simulator whatever key there is
        ({"TOKENHOT_BASE_URL": "http://127.0.0.1:8765", "TOKENHOT_SIMULATED": "always",
          "TOKENHOT_API_KEY": "sk-environment12345678"}, True,
         ("sk-simulator", "none", "http://127.0.0.1:8765", True)),
    ],
)  # fmt: skip
def test_mode_follows_the_same_resolution(
    home: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], stored: bool,
    expected: tuple[Any, ...],
) -> None:  # fmt: skip
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    if stored:
        C.store().write(KEY)
    creds = C.resolve()
    assert (creds.key, creds.source, creds.base_url, creds.simulated) == expected
    assert KEY not in repr(creds)


def test_arguments_are_never_rewritten(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKENHOT_SIMULATED", "always")
    monkeypatch.setenv("TOKENHOT_BASE_URL", "http://127.0.0.1:8765")
    creds = C.resolve("sk-argument1234567890", "http://127.0.0.1:9999")
    assert (creds.key, creds.base_url, creds.simulated) == (
        "sk-argument1234567890", "http://127.0.0.1:9999", False,
    )  # fmt: skip
    explicit = C.resolve(None, "http://127.0.0.1:9999")  # Client(base_url=...) needs a real key
    assert (explicit.key, explicit.simulated) == (None, False)


def test_a_running_client_uses_a_key_stored_later(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Simulator(speed=0, token_delay=0, api_keys=[KEY]) as sim:  # accepts KEY only
        monkeypatch.setenv("TOKENHOT_BASE_URL", sim.base_url)
        client = th.Client(max_retries=0)  # made before any key exists: the stand-in is refused
        with pytest.raises(th.AuthenticationError):
            client.chat("hi", model="gpt-5")
        C.store().write(KEY)  # e.g. from the panel, while this "kernel" runs
        assert client.chat("hi", model="gpt-5").text, "the next request uses it"
        C.store().delete()
        with pytest.raises(th.AuthenticationError):
            client.chat("hi", model="gpt-5")


def test_stored_key_reaches_the_gateway_and_never_a_message(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Simulator(speed=0, token_delay=0, api_keys=[KEY]) as sim:
        monkeypatch.setenv("TOKENHOT_BASE_URL", sim.base_url)
        client = th.Client(max_retries=0)
        C.store().write(KEY)
        assert client.chat("hi", model="gpt-5").text  # accepted: only KEY is allowed
        assert KEY not in repr(client) and KEY[-4:] in repr(client)
        C.store().write("sk-wrongsecret123456789")
        with pytest.raises(th.AuthenticationError) as exc:
            client.chat("hi", model="gpt-5")
        assert "sk-wrongsecret123456789" not in str(exc.value)


def test_nothing_here_imports_ipython_or_a_server() -> None:
    code = (
        "import sys; import tokenhot_jupyter._store._credentials, tokenhot_jupyter._store._ledger, "
        "tokenhot_jupyter._store._leases; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('IPython', 'jupyter_server', 'tornado', 'traitlets')))"
    )
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
