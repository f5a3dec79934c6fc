"""The task journal: durable at once, shared by kernels, clear when it cannot work."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tokenhot_jupyter._exceptions import ConfigurationError
from tokenhot_jupyter._redact import register_secret
from tokenhot_jupyter._store._journal import (
    PROMPT_EXCERPT,
    SCHEMA_VERSION,
    Journal,
    digest_inputs,
    excerpt,
    fingerprint,
    safe_url,
)
from tokenhot_jupyter._store._sqlite import default_home

KEY = "sk-journaltest0123456789abcdef"


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    return Journal(tmp_path / "tasks.sqlite3")


def _record(journal: Journal, task_id: str, **extra: object) -> None:
    fields: dict[str, object] = {"model": "sora-2", "prompt": "a cat", "fingerprint": "fp"}
    fields.update(extra)
    journal.record(task_id=task_id, **fields)  # type: ignore[arg-type]


def test_default_home_env_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TOKENHOT_HOME", str(tmp_path / "home"))
    assert default_home() == tmp_path / "home"
    assert Journal().path == tmp_path / "home" / "tasks.sqlite3"


@pytest.mark.parametrize(
    ("platform", "env", "expected"),
    [
        ("linux", {}, ".local/share/tokenhot-jupyter"),
        ("linux", {"XDG_DATA_HOME": "/xdg"}, "/xdg/tokenhot-jupyter"),
        ("darwin", {}, "Library/Application Support/tokenhot-jupyter"),
        ("win32", {"LOCALAPPDATA": "/local"}, "/local/tokenhot-jupyter"),
    ],
)
def test_default_home_per_platform(
    monkeypatch: pytest.MonkeyPatch, platform: str, env: dict[str, str], expected: str
) -> None:
    for name in ("TOKENHOT_HOME", "XDG_DATA_HOME", "LOCALAPPDATA", "APPDATA"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(sys, "platform", platform)
    assert default_home().as_posix().endswith(expected)


def test_nothing_touches_disk_until_used(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "sub" / "tasks.sqlite3")
    assert not (tmp_path / "sub").exists()
    assert journal.list() == []
    assert (tmp_path / "sub" / "tasks.sqlite3").exists()


def test_record_is_visible_to_another_connection_at_once(journal: Journal) -> None:
    row = journal.record(
        task_id="task_1", model="sora-2", prompt="a cat", params={"duration": 4},
        fingerprint="fp1", cell_key="nb.ipynb#3", base_url="http://127.0.0.1:9", status="queued",
    )  # fmt: skip
    other = Journal(journal.path)  # a second kernel
    seen = other.get("task_1")
    assert seen == row
    assert seen is not None and seen.params == {"duration": 4} and seen.cell_key == "nb.ipynb#3"
    assert seen.created_at > 0 and seen.updated_at >= seen.created_at


def test_record_keeps_the_first_row_of_an_id(journal: Journal) -> None:
    _record(journal, "task_1", prompt="first")
    _record(journal, "task_1", prompt="second")
    row = journal.get("task_1")
    assert row is not None and row.prompt == "first"


def test_update_and_unknown_fields(journal: Journal) -> None:
    _record(journal, "task_1")
    journal.update("task_1", status="running", progress=40)
    journal.update("task_1", status="succeeded", progress=100, file="/x/task_1.mp4")
    row = journal.get("task_1")
    assert row is not None
    assert (row.status, row.progress, row.file) == ("succeeded", 100, "/x/task_1.mp4")
    with pytest.raises(ValueError, match="prompt"):
        journal.update("task_1", prompt="changed")
    assert journal.get("missing") is None


def test_find_latest_not_failed(journal: Journal) -> None:
    _record(journal, "task_old", fingerprint="fp", created_at=100.0)
    _record(journal, "task_new", fingerprint="fp", created_at=200.0)
    _record(journal, "task_other", fingerprint="other", created_at=300.0)
    found = journal.find("fp")
    assert found is not None and found.task_id == "task_new"
    journal.update("task_new", status="failed", error="output rejected")
    found = journal.find("fp")
    assert found is not None and found.task_id == "task_old"
    journal.update("task_old", status="failed")
    assert journal.find("fp") is None


def test_list_newest_first_with_limit(journal: Journal) -> None:
    for i in range(5):
        _record(journal, f"task_{i}", created_at=float(i + 1))
    assert [r.task_id for r in journal.list(limit=3)] == ["task_4", "task_3", "task_2"]


def test_wal_mode_and_schema_version(journal: Journal) -> None:
    journal.list()
    conn = sqlite3.connect(journal.path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        versions = [v for (v,) in conn.execute("SELECT version FROM schema_version")]
    finally:
        conn.close()
    assert versions == list(range(1, SCHEMA_VERSION + 1))
    Journal(journal.path).list()  # opening again migrates nothing twice
    conn = sqlite3.connect(journal.path)
    try:
        assert conn.execute("SELECT COUNT(*) FROM schema_version").fetchone()[0] == SCHEMA_VERSION
    finally:
        conn.close()


def test_newer_schema_is_refused_clearly(journal: Journal) -> None:
    journal.list()
    journal.close()
    conn = sqlite3.connect(journal.path)
    conn.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION + 1,))
    conn.commit()
    conn.close()
    with pytest.raises(ConfigurationError, match="newer version") as info:
        Journal(journal.path).list()
    assert "Upgrade tokenhot-jupyter" in str(info.value)


def test_corrupt_file_says_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "tasks.sqlite3"
    path.write_bytes(b"this is not a database, just some bytes" * 100)
    with pytest.raises(ConfigurationError) as info:
        Journal(path).list()
    text = str(info.value)
    assert "damaged" in text and str(path) in text and "tasks.sqlite3.bad" in text
    assert info.value._render_traceback_()[0].startswith("ConfigurationError: ")


def test_unwritable_location_says_what_to_do(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")
    with pytest.raises(ConfigurationError, match="TOKENHOT_HOME") as info:
        Journal(blocker / "tasks.sqlite3").record(task_id="t", model="m", prompt="p")
    assert "cannot be used" in str(info.value)


def test_the_key_is_never_stored(journal: Journal) -> None:
    register_secret(KEY)
    journal.record(
        task_id="task_k", model="sora-2", prompt=f"say {KEY}", params={"note": KEY},
        base_url=f"https://user:{KEY}@gw.example", fingerprint="fp",
    )  # fmt: skip
    journal.update("task_k", error=f"boom {KEY}")
    row = journal.get("task_k")
    assert row is not None
    assert KEY not in repr(row)
    assert row.base_url == "https://gw.example"
    journal.close()
    for file in journal.path.parent.iterdir():
        assert KEY.encode() not in file.read_bytes(), file


def test_fingerprint_is_stable_and_sensitive() -> None:
    base = fingerprint("sora-2", "a cat", {"duration": 4, "ratio": "16:9"}, "d1", "http://gw")
    same = fingerprint("sora-2", "a cat", {"ratio": "16:9", "duration": 4}, "d1", "http://gw")
    assert base == same
    changed = [
        fingerprint("sora-2-pro", "a cat", {"duration": 4, "ratio": "16:9"}, "d1", "http://gw"),
        fingerprint("sora-2", "a dog", {"duration": 4, "ratio": "16:9"}, "d1", "http://gw"),
        fingerprint("sora-2", "a cat", {"duration": 8, "ratio": "16:9"}, "d1", "http://gw"),
        fingerprint("sora-2", "a cat", {"duration": 4, "ratio": "16:9"}, "d2", "http://gw"),
        fingerprint("sora-2", "a cat", {"duration": 4, "ratio": "16:9"}, "d1", "http://other"),
    ]
    assert base not in changed and len(set(changed)) == len(changed)
    assert fingerprint("m", "p", {"image": b"abc"}) != fingerprint("m", "p", {"image": b"abd"})


def test_safe_url_drops_userinfo() -> None:
    assert safe_url("https://u:p@host:8080/x") == "https://host:8080/x"
    assert safe_url("https://host/x") == "https://host/x"


def test_threads_with_separate_connections(journal: Journal) -> None:
    journal.list()
    errors: list[BaseException] = []

    def writer(prefix: str) -> None:
        mine = Journal(journal.path)
        try:
            for i in range(40):
                _record(mine, f"{prefix}_{i}")
                mine.update(f"{prefix}_{i}", progress=i)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(f"t{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(journal.list(limit=1000)) == 160


def test_another_process_writes_at_the_same_time(journal: Journal) -> None:
    journal.list()
    script = (
        "import sys; from pathlib import Path\n"
        "from tokenhot_jupyter._store._journal import Journal\n"
        "j = Journal(Path(sys.argv[1]))\n"
        "for i in range(60): j.record(task_id=f'p_{i}', model='m', prompt='p')\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script, str(journal.path)])
    for i in range(60):
        _record(journal, f"k_{i}")
    assert proc.wait(timeout=60) == 0
    ids = {r.task_id for r in journal.list(limit=1000)}
    assert {f"p_{i}" for i in range(60)} <= ids and {f"k_{i}" for i in range(60)} <= ids


def test_digest_inputs_by_content(tmp_path: Path) -> None:
    image = tmp_path / "frame.png"
    image.write_bytes(b"one")
    first = digest_inputs(str(image), "https://example.com/a.png")
    assert first == digest_inputs(image, "https://example.com/a.png")
    image.write_bytes(b"two")
    assert digest_inputs(str(image), "https://example.com/a.png") != first, "edited file"
    assert digest_inputs(b"abc") != digest_inputs(b"abd")
    assert digest_inputs(tmp_path / "missing.png") == digest_inputs(str(tmp_path / "missing.png"))
    assert digest_inputs(tmp_path) != "" and digest_inputs() == ""
    assert digest_inputs("x" * 10_000)  # too long for a file name: hashed as text


def test_big_inputs_are_stored_as_labelled_hashes(journal: Journal) -> None:
    data_url = "data:image/png;base64," + "B" * 200_000
    _record(journal, "task_big", params={"image": data_url, "frames": [b"\x01" * 10], "n": 2})
    row = journal.get("task_big")
    assert row is not None and len(repr(row)) < 2000
    assert row.params["n"] == 2 and "200022 chars sha256:" in row.params["image"]
    assert row.params["frames"][0].startswith("<10 bytes sha256:")


def test_promote_turns_the_in_flight_marker_into_the_task(journal: Journal) -> None:
    _record(journal, "inflight-1", status="creating", cell_key="nb#1")
    assert journal.promote("inflight-1", "task_a", model="sora-2", status="queued", progress=0)
    (row,) = journal.list()
    assert (row.task_id, row.status, row.cell_key, row.prompt) == (
        "task_a",
        "queued",
        "nb#1",
        "a cat",
    )
    assert not journal.promote("inflight-gone", "task_b", model="m", status="queued", progress=0)
    assert journal.get("task_b") is None, "no marker: the caller records the task in full"


def test_promote_onto_a_known_id_only_drops_the_marker(journal: Journal) -> None:
    _record(journal, "task_a", status="running", progress=30)
    _record(journal, "inflight-1", status="creating")
    assert journal.promote("inflight-1", "task_a", model="sora-2", status="queued", progress=0)
    (row,) = journal.list()
    assert (row.task_id, row.status, row.progress) == ("task_a", "running", 30)


def test_excerpt_flattens_and_cuts() -> None:
    assert excerpt("a\n  b") == "a b"
    cut = excerpt("x" * 300)
    assert len(cut) == PROMPT_EXCERPT and cut.endswith("…")
