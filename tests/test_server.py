"""The Jupyter server extension over HTTP (pytest-jupyter's ``jp_fetch``).

Every endpoint; 403 without a token for every handler the extension registers; XSRF on
PUT, DELETE and POST for cookie logins; the stored key's mode and place, and the key in no
answer, header or log line; the server finishing a task whose kernel is gone.

This file sits at the top of tests/ so that it runs after the browser and packaging tests:
pytest-jupyter's server fixture leaves a cleanup coroutine behind, and when the garbage
collector finds it during a later test that owns an event loop, that test errors.
"""

from __future__ import annotations

import asyncio
import json
import logging
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import tornado.web

import tokenhot_jupyter as th
from tokenhot_jupyter._notebook._tasks import TaskManager
from tokenhot_jupyter._server import _start_jupyter_server_extension
from tokenhot_jupyter._server._handlers import PREFIX, ROUTES
from tokenhot_jupyter._server._poller import ServerPoller
from tokenhot_jupyter._server._service import Service
from tokenhot_jupyter._store import _credentials
from tokenhot_jupyter._store._budget import Budgets
from tokenhot_jupyter._store._journal import Journal
from tokenhot_jupyter._store._leases import Keeper, pid_alive
from tokenhot_jupyter._store._ledger import Call, Ledger
from tokenhot_jupyter._types import Usage
from tokenhot_jupyter.simulator import Simulator

pytest_plugins = ("pytest_jupyter.jupyter_server", "magics_support")

KEY = "sk-serverkeysecret1234567890"
MODEL = "sora-2"
PROMPT = "A paper boat on a rainy street"
DONE_AFTER = 90.0  # simulated seconds until a 4 s sora-2 task succeeds
METHODS = ("get", "put", "post", "delete", "patch")


class Clock:
    """A settable wall clock (the server's view of lease expiry)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def home(clean_env: Path, caplog: pytest.LogCaptureFixture) -> Iterator[Path]:
    """A private TOKENHOT_HOME; the whole log captured at DEBUG and checked for the key."""
    caplog.set_level(logging.DEBUG)
    yield clean_env / "home"
    for when in ("setup", "call"):
        for record in caplog.get_records(when):
            assert KEY not in record.getMessage(), f"the key reached a log line: {record.name}"


@pytest.fixture
def jp_server_config(request: pytest.FixtureRequest) -> dict[str, Any]:
    extra = getattr(request, "param", {})
    return {"ServerApp": {"jpserver_extensions": {"tokenhot_jupyter": True}, **extra}}


@pytest.fixture
def sim(tokenhot_simulator: Any) -> Any:
    tokenhot_simulator.clock.speed = 0
    return tokenhot_simulator


class Api:
    """``jp_fetch`` for the Tokenhot API; keeps every answer (body, headers) for leak checks."""

    def __init__(self, fetch: Any, app: Any, loop: Any) -> None:
        self.fetch, self.app, self.loop = fetch, app, loop
        self.seen: list[str] = []

    @property
    def service(self) -> Service:
        return self.app.web_app.settings["tokenhot_service"]  # type: ignore[no-any-return]

    async def call(
        self, method: str, path: str, body: Any = None, **kwargs: Any
    ) -> tuple[int, dict[str, Any]]:
        if body is not None and not isinstance(body, bytes):
            body = json.dumps(body).encode()
        if method in ("PUT", "POST") and body is None:
            body = b""
        response = await self.fetch(
            *PREFIX.split("/"), *path.split("/"), method=method, body=body, raise_error=False,
            **kwargs,
        )  # fmt: skip
        text = response.body.decode()
        self.seen += [text, str(dict(response.headers))]
        return response.code, json.loads(text)

    async def get(self, path: str, **params: Any) -> dict[str, Any]:
        code, answer = await self.call("GET", path, params=params)
        assert code == 200, answer
        return answer

    async def settle(self) -> None:
        """Let the background reachability check finish."""
        task = self.service._reach.task
        if task is not None:
            await task

    def leaked(self) -> bool:
        return any(KEY in text for text in self.seen)


@pytest.fixture
def api(jp_fetch: Any, jp_serverapp: Any, jp_asyncio_loop: Any) -> Iterator[Api]:
    client = Api(jp_fetch, jp_serverapp, jp_asyncio_loop)
    yield client
    task = client.service._reach.task
    if task is not None and not task.done():
        jp_asyncio_loop.run_until_complete(task)
    client.service.poller.close()
    assert not client.leaked(), "the key reached an answer"


@pytest.fixture
def live_sim(sim: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The simulator stands in for the public gateway (a stored key goes to it)."""
    monkeypatch.setenv("TOKENHOT_BASE_URL", sim.base_url)
    return sim


# --- status -------------------------------------------------------------------------------------


async def test_status_says_simulator_then_live_once_a_key_is_stored(
    api: Api, sim: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOKENHOT_BASE_URL", sim.base_url)
    monkeypatch.setenv("TOKENHOT_SIMULATED", "1")  # as the launcher sets it with no key
    status = await api.get("status")
    assert status == {
        "mode": "simulator", "base_url": sim.base_url, "key_source": "none", "reachable": None,
        "spend_today": 0.0, "spend_currency": "USD", "budget_left": None, "running_tasks": 0,
        "version": th.__version__,
    }  # fmt: skip
    await api.settle()
    assert (await api.get("status"))["reachable"] is True
    assert not [r for r in sim.requests if "authorization" in r.headers], "checked without a key"
    monkeypatch.setattr(_credentials, "DEFAULT_BASE_URL", sim.base_url)  # "the public gateway"
    code, answer = await api.call("PUT", "key", {"key": KEY})
    assert (code, answer) == (200, {"set": True, "source": "stored", "masked": "sk-…7890"})
    status = await api.get("status")
    assert (status["mode"], status["key_source"]) == ("live", "stored")


async def test_status_unreachable_gateway(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKENHOT_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("TOKENHOT_API_KEY", KEY)
    status = await api.get("status")
    assert (status["mode"], status["key_source"]) == ("live", "environment")
    await api.settle()
    assert (await api.get("status"))["reachable"] is False


# --- the key ------------------------------------------------------------------------------------


async def test_put_key_stores_it_0600_under_tokenhot_home_outside_the_root(
    api: Api, home: Path, jp_root_dir: Path, live_sim: Any
) -> None:
    code, answer = await api.call("PUT", "key", {"key": f"  {KEY}\n"})
    assert code == 200 and answer == {"set": True, "source": "stored", "masked": "sk-…7890"}
    path = home / "api_key"
    assert path.read_text() == KEY + "\n"
    if sys.platform != "win32":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert jp_root_dir.resolve() not in path.resolve().parents, "never inside the notebook folder"
    for endpoint in ("status", "tasks", "usage", "models"):
        await api.get(endpoint)  # api's teardown checks that no answer holds the key
    await api.settle()


@pytest.mark.parametrize(
    "body",
    [
        {"key": "sk-has spacesecret12345"}, {"key": "sk-zerowidth\u200bsecret123"}, {"key": ""},
        {"key": 12345}, {"nokey": KEY}, b"not json " + KEY.encode(), b'{"key": "' + KEY.encode(),
    ],
)  # fmt: skip
async def test_a_malformed_key_is_a_400_that_never_echoes_it(
    api: Api, home: Path, body: Any, caplog: pytest.LogCaptureFixture
) -> None:
    code, answer = await api.call("PUT", "key", body)
    assert code == 400 and answer["message"]
    for secret in ("sk-has spacesecret12345", "sk-zerowidth", KEY):
        assert secret not in answer["message"] and secret not in caplog.text
    assert not (home / "api_key").exists()


@pytest.mark.parametrize(("inside", "stored"), [("keys", False), (".tokenhot", True)])
async def test_a_home_inside_the_notebook_folder_is_refused(
    api: Api, jp_root_dir: Path, monkeypatch: pytest.MonkeyPatch, inside: str, stored: bool
) -> None:
    monkeypatch.setenv("TOKENHOT_HOME", str(jp_root_dir / inside))
    code, answer = await api.call("PUT", "key", {"key": KEY})
    assert (code == 200) is stored, answer  # a hidden folder is not served by Jupyter
    assert (jp_root_dir / inside / "api_key").exists() is stored
    if not stored:
        assert "TOKENHOT_HOME" in answer["message"] and "outside" in answer["message"]


async def test_delete_key(api: Api, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    await api.call("PUT", "key", {"key": KEY})
    code, answer = await api.call("DELETE", "key")
    assert (code, answer) == (200, {"set": False, "source": "none", "masked": None})
    assert not (home / "api_key").exists()
    await api.call("PUT", "key", {"key": KEY})
    monkeypatch.setenv("TOKENHOT_API_KEY", "sk-fromtheserversenv9876")
    code, answer = await api.call("DELETE", "key")
    assert answer == {"set": True, "source": "environment", "masked": "sk-…9876"}


class Catcher(logging.Handler):
    """Keeps every record a logger hands it."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def test_info_lines_reach_the_jupyter_server_log(api: Api, jp_serverapp: Any) -> None:
    catcher = Catcher()
    jp_serverapp.log.addHandler(catcher)
    try:
        await api.call("PUT", "key", {"key": KEY})
        await api.call("DELETE", "key")
    finally:
        jp_serverapp.log.removeHandler(catcher)
    said = [r.getMessage() for r in catcher.records if r.name == "tokenhot_jupyter"]
    assert any("API key was stored" in line for line in said), said
    assert any("forgotten" in line for line in said), said


async def test_an_environment_key_comes_before_the_stored_one(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOKENHOT_API_KEY", "sk-fromtheserversenv9876")
    code, answer = await api.call("PUT", "key", {"key": KEY})
    assert (code, answer) == (200, {"set": True, "source": "environment", "masked": "sk-…9876"})


async def test_key_test(api: Api, live_sim: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TOKENHOT_BASE_URL")
    code, answer = await api.call("POST", "key/test")
    assert code == 200 and answer["ok"] is False and "No API key" in answer["message"]
    monkeypatch.setenv("TOKENHOT_BASE_URL", live_sim.base_url)
    await api.call("PUT", "key", {"key": KEY})
    code, answer = await api.call("POST", "key/test")
    assert answer["ok"] is True and answer["models"] > 10 and "accepted" in answer["message"]
    assert live_sim.requests[-1].path == "/v1/models"


async def test_key_test_with_a_refused_key(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    with Simulator(speed=0, token_delay=0, api_keys=["sk-theonlykey12345678"]) as other:
        monkeypatch.setenv("TOKENHOT_BASE_URL", other.base_url)
        await api.call("PUT", "key", {"key": KEY})
        code, answer = await api.call("POST", "key/test")
    assert code == 200 and answer["ok"] is False and "refused" in answer["message"]


# --- usage and models ------------------------------------------------------------------------


async def test_usage_totals_of_the_mode_in_force(
    api: Api, live_sim: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = Ledger()  # what kernels append to
    ledger.append(Call(model="gpt-5", kind="chat", usage=Usage(100, 50, 150), cost=0.5))
    ledger.append(Call(model="gpt-5", kind="chat", usage=Usage(10, 5, 15), cost=0.25))
    ledger.append(Call(model="sora-2", kind="video", cost=0.4))
    ledger.append(Call(model="gpt-5", kind="chat", cost=7.0, simulated=True))
    await api.call("PUT", "key", {"key": KEY})
    usage = await api.get("usage")
    today = ledger.today()
    assert usage["today"] == {"cost": 1.15, "requests": 3, "input_tokens": 110, "output_tokens": 55}
    assert usage["by_model"] == [
        {"model": "gpt-5", "cost": 0.75, "requests": 2, "input_tokens": 110, "output_tokens": 55},
        {"model": "sora-2", "cost": 0.4, "requests": 1, "input_tokens": 0, "output_tokens": 0},
    ]
    assert usage["by_day"] == [{"day": today, "cost": 1.15, "requests": 3}]
    assert (await api.get("status"))["spend_today"] == 1.15
    await api.call("DELETE", "key")  # no key, loopback base URL: the simulator's numbers
    assert (await api.get("usage"))["today"]["cost"] == 7.0
    await api.settle()


async def test_status_says_what_is_left_of_the_day_budget(api: Api, live_sim: Any) -> None:
    await api.call("PUT", "key", {"key": KEY})
    assert (await api.get("status"))["budget_left"] is None  # no budget set
    Budgets().set_day(2.0)  # %tokenhot budget 2, in any kernel
    ledger = Ledger()
    ledger.append(Call(model="gpt-5", kind="chat", usage=Usage(100, 50, 150), cost=0.5))
    ledger.append(Call(model="sora-2", kind="video", cost=0.75))
    ledger.append(Call(model="gpt-5", kind="chat", cost=1.5, simulated=True))
    assert (await api.get("status"))["budget_left"] == 0.75
    ledger.append(Call(model="sora-2", kind="video", cost=1.0))
    assert (await api.get("status"))["budget_left"] == 0.0, "never below nothing"
    await api.call("DELETE", "key")  # the simulator: its own spend against the same budget
    assert (await api.get("status"))["budget_left"] == 0.5
    Budgets().set_day(None)  # %tokenhot budget off
    assert (await api.get("status"))["budget_left"] is None
    await api.settle()


async def test_models_merges_the_live_list(api: Api, live_sim: Any) -> None:
    await api.call("PUT", "key", {"key": KEY})
    answer = await api.get("models")
    assert answer["live_loaded"] is True
    models = {m["id"]: m for m in answer["models"]}
    gpt5 = models["gpt-5"]
    assert gpt5["kind"] == "chat" and gpt5["live"] is True and "live" in gpt5["badges"]
    assert gpt5["price"] == "$1.25 / $10 per 1M tokens in/out" and "OpenAI" in gpt5["badges"]
    assert models["sora-2"]["price"] == "$0.1 per second"
    assert {m["kind"] for m in answer["models"]} == {"chat", "image", "video", "audio"}
    assert all(m["description"] for m in answer["models"])


async def test_models_without_a_key_is_the_catalog(api: Api) -> None:
    from tokenhot_jupyter._catalog import MODELS

    answer = await api.get("models")  # no key for the public gateway: nothing is asked
    assert answer["live_loaded"] is False
    assert [m["id"] for m in answer["models"]] == [m.id for m in MODELS]
    assert not any(m["live"] for m in answer["models"])


async def test_our_errors_are_one_line_json(api: Api, home: Path) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "tasks.sqlite3").write_bytes(b"this is not a database" * 100)
    code, answer = await api.call("GET", "tasks")
    assert code == 500 and "damaged" in answer["message"] and "rename" in answer["message"]
    if sys.platform != "win32":
        api.service.keys.write(KEY)
        api.service.keys.path.chmod(0o644)
        code, answer = await api.call("GET", "status")
        assert code == 500 and "chmod 600" in answer["message"]


# --- tasks ------------------------------------------------------------------------------------


def kernel(
    sim: Any, home: Path, root: Path, *, key: str | None = None, keeper: Keeper | None = None
) -> TaskManager:
    """A kernel's task manager, as `Session.tasks` makes it, for a notebook in ``root/sub``."""
    journal = Journal(home / "tasks.sqlite3")
    client = th.Client(key or sim.api_key, sim.base_url, max_retries=1, backoff=0.001)
    manager = TaskManager(
        lambda: client, journal, lambda: root / "sub" / "tokenhot_outputs", poll_interval=0.01,
        deadline=60, leases=keeper or Keeper(journal, "kernel"),
        notebook=lambda: str(root / "sub" / "nb.ipynb"),
    )  # fmt: skip
    manager.min_update_interval = 0.0
    return manager


def crash(manager: TaskManager) -> None:
    """The kernel dies: its pollers stop and its leases stay behind in the journal."""
    manager.leases = None
    manager.shutdown()


def until(predicate: Callable[[], bool], timeout: float = 20) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "timed out waiting"
        time.sleep(0.005)


async def wait_for(predicate: Callable[[], bool], timeout: float = 20) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "timed out waiting"
        await asyncio.sleep(0.01)


@pytest.fixture
def managers() -> Iterator[list[TaskManager]]:
    made: list[TaskManager] = []
    yield made
    for manager in made:
        manager.shutdown()


async def test_tasks_lists_every_kernels_tasks_and_changes_since(
    api: Api, sim: Any, home: Path, jp_root_dir: Path, managers: list[TaskManager]
) -> None:
    manager = kernel(sim, home, jp_root_dir)
    managers.append(manager)
    long_prompt = PROMPT + " and a very long tail" * 20
    tracked, _ = manager.create(model=MODEL, prompt=long_prompt, params={"duration": 4})
    until(lambda: any(tracked.task_id in r.path for r in sim.requests if r.method == "GET"))
    answer = await api.get("tasks")
    [task] = answer["tasks"]
    assert task["id"] == tracked.task_id and task["model"] == MODEL
    assert len(task["prompt"]) <= 120 and task["prompt"].startswith(PROMPT)
    assert task["prompt"].endswith("…")
    assert (task["status"], task["poller"], task["notebook"]) == (
        "queued",
        "kernel",
        "sub/nb.ipynb",
    )
    assert task["video_path"] is None and task["finished_at"] is None and task["error"] is None
    assert task["created_at"] <= task["updated_at"] <= answer["now"]
    assert (await api.get("tasks", since=answer["now"]))["tasks"] == [], "nothing changed"
    sim.clock.advance(45)
    journal = Journal(home / "tasks.sqlite3")
    await wait_for(lambda: getattr(journal.get(tracked.task_id), "status", "") == "running")
    changed = await api.get("tasks", since=answer["now"])
    assert [t["status"] for t in changed["tasks"]] == ["running"]
    assert 0 < changed["tasks"][0]["progress"] < 100
    sim.clock.advance(DONE_AFTER)
    await wait_for(lambda: tracked.done)
    [done] = (await api.get("tasks"))["tasks"]
    assert done["status"] == "succeeded" and done["poller"] is None
    assert done["video_path"] == f"sub/tokenhot_outputs/{tracked.task_id}.mp4"
    assert done["finished_at"] is not None and done["progress"] == 100
    code, answer = await api.call("GET", "tasks", params={"since": "yesterday"})
    assert code == 400 and "since" in answer["message"]
    assert (await api.get("status"))["running_tasks"] == 0
    await api.settle()


async def test_the_server_finishes_a_task_whose_kernel_died(
    api: Api, sim: Any, home: Path, jp_root_dir: Path, managers: list[TaskManager],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("TOKENHOT_BASE_URL", sim.base_url)
    monkeypatch.setenv("TOKENHOT_SIMULATED", "1")  # the launcher's environment, no key anywhere
    clock = Clock()
    api.service.poller = server = ServerPoller(api.service.journal, clock=clock, poll_interval=0.01)
    api.service.clock = clock
    manager = kernel(sim, home, jp_root_dir)
    tracked, _ = manager.create(model=MODEL, prompt=PROMPT, params={"duration": 4})
    task_id = tracked.task_id
    until(lambda: any(task_id in r.path for r in sim.requests if r.method == "GET"))
    crash(manager)
    assert server.scan() == [], "its lease has not run out: the kernel may be alive"
    [task] = (await api.get("tasks"))["tasks"]
    assert task["poller"] == "kernel"
    before = (await api.get("tasks"))["now"]
    clock.now += 120  # nobody renewed the lease (it lasts 30 s at this poll interval)
    [task] = (await api.get("tasks", since=before))["tasks"]
    assert task["poller"] == "server", "the panel sees the change"
    assert server.scan() == [task_id]
    second = ServerPoller(Journal(api.service.journal.path), clock=clock, poll_interval=0.01)
    assert second.scan() == [] and second.manager.tracked() == [], "one poller per task"
    [task] = (await api.get("tasks"))["tasks"]
    assert task["poller"] == "server"
    sim.clock.advance(DONE_AFTER)
    row = await _finished(api.service.journal, task_id)
    saved = jp_root_dir / "sub" / "tokenhot_outputs" / f"{task_id}.mp4"
    assert row.file == str(saved) and saved.read_bytes()[4:8] == b"ftyp"
    [task] = (await api.get("tasks"))["tasks"]
    assert (task["status"], task["poller"]) == ("succeeded", None)
    assert task["video_path"] == f"sub/tokenhot_outputs/{task_id}.mp4"
    polls = len([r for r in sim.requests if r.method == "GET"])
    fresh = kernel(sim, home, jp_root_dir)  # %tokenhot attach in a new kernel
    managers.append(fresh)
    again = fresh.attach(task_id)
    assert again.phase == "done" and again.file == saved
    assert len([r for r in sim.requests if r.method == "POST"]) == 1, "nothing paid twice"
    assert len([r for r in sim.requests if r.method == "GET"]) == polls, "nothing fetched again"
    second.close()
    await api.settle()


async def _finished(journal: Journal, task_id: str) -> Any:
    found: list[Any] = []

    def saved() -> bool:
        row = journal.get(task_id)
        found[:] = [row]
        return row is not None and row.file is not None

    await wait_for(saved)
    return found[0]


async def test_a_crashed_kernel_on_this_host_is_taken_over_at_once(
    api: Api, sim: Any, home: Path, jp_root_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOKENHOT_BASE_URL", sim.base_url)
    monkeypatch.setenv("TOKENHOT_SIMULATED", "1")
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not pid_alive(child.pid)
    journal = Journal(home / "tasks.sqlite3")
    manager = kernel(sim, home, jp_root_dir, keeper=Keeper(journal, "kernel", pid=child.pid))
    tracked, _ = manager.create(model=MODEL, prompt=PROMPT, params={"duration": 4})
    crash(manager)
    [task] = (await api.get("tasks"))["tasks"]
    assert task["poller"] == "server"
    scanner = asyncio.get_running_loop().create_task(_scan_soon(api))
    sim.clock.advance(DONE_AFTER)
    row = await _finished(journal, tracked.task_id)
    scanner.cancel()
    assert row.status == "succeeded"
    await api.settle()


async def _scan_soon(api: Api) -> None:
    """The extension's own background scan, as the server starts it."""
    from tokenhot_jupyter._server import scan_forever

    await scan_forever(api.service.poller, interval=0.05)


async def test_without_a_key_the_task_waits_for_a_kernel(
    api: Api, home: Path, jp_root_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Simulator(speed=0, token_delay=0, api_keys=[KEY]) as gateway:  # a real key needed
        manager = kernel(gateway, home, jp_root_dir, key=KEY)  # logged in inside the kernel
        tracked, _ = manager.create(model=MODEL, prompt=PROMPT, params={"duration": 4})
        crash(manager)
        clock = Clock()
        clock.now += 120  # the lease ran out
        api.service.poller = server = ServerPoller(
            api.service.journal, clock=clock, poll_interval=0.01
        )
        api.service.clock = clock
        [task] = (await api.get("tasks"))["tasks"]
        assert task["poller"] == "waiting-for-kernel" and task["status"] == "queued"
        assert server.scan() == []
        monkeypatch.setenv("TOKENHOT_BASE_URL", gateway.base_url)
        await api.call("PUT", "key", {"key": KEY})  # now the server has a key for that gateway
        [task] = (await api.get("tasks"))["tasks"]
        assert task["poller"] == "server"
        assert server.scan() == [tracked.task_id]
        gateway.clock.advance(DONE_AFTER)
        row = await _finished(api.service.journal, tracked.task_id)
        assert Path(row.file).exists()
    await api.settle()


async def test_the_extension_starts_its_scanner(api: Api, jp_serverapp: Any) -> None:
    await _start_jupyter_server_extension(jp_serverapp)
    scanner = jp_serverapp.web_app.settings["tokenhot_service_scanner"]
    await asyncio.sleep(0.05)
    assert not scanner.done()
    scanner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await scanner


# --- authentication ------------------------------------------------------------------------------


def _our_rules(app: Any) -> dict[str, type]:
    """Every URL pattern the web app routes under tokenhot/, with its handler class."""
    found: dict[str, type] = {}

    def walk(router: Any) -> None:
        for rule in getattr(router, "rules", []):
            target = rule.target
            if isinstance(target, type) and issubclass(target, tornado.web.RequestHandler):
                pattern = getattr(rule.matcher, "regex", None)
                if pattern is not None and "tokenhot" in pattern.pattern:
                    found[pattern.pattern] = target
            else:
                walk(target)

    walk(app.web_app.default_router)
    walk(app.web_app.wildcard_router)
    return found


def _methods(handler: type) -> list[str]:
    return [m for m in METHODS if getattr(handler, m) is not getattr(tornado.web.RequestHandler, m)]


@pytest.mark.parametrize(
    "jp_server_config",
    [{}, {"allow_unauthenticated_access": True}],  # then only our decorators stand guard
    indirect=True,
    ids=["default", "server-allows-unauthenticated"],
)
async def test_every_handler_refuses_a_request_without_a_token(
    jp_serverapp: Any, http_server_client: Any, jp_base_url: str
) -> None:
    rules = _our_rules(jp_serverapp)
    assert set(rules.values()) == {cls for _, cls in ROUTES}, "every handler is in ROUTES"
    assert len(rules) == len(ROUTES)
    tried = 0
    for path, handler in ROUTES:
        for method in _methods(handler):
            url = f"{jp_base_url}{PREFIX}/{path}"
            body = b"{}" if method in ("put", "post", "patch") else None
            response = await http_server_client.fetch(
                url, method=method.upper(), body=body, raise_error=False,
                headers={"Content-Type": "application/json"},
            )  # fmt: skip
            assert response.code == 403, (method, path, response.code)
            tried += 1
    assert tried == 7  # every method of every handler


async def _login(client: Any, base: str, token: str) -> tuple[str, str]:
    """Log in with the token as a password, as a browser does; (xsrf, cookie header)."""
    page = await client.fetch(f"{base}login", raise_error=False)
    jar: SimpleCookie = SimpleCookie()
    for header in page.headers.get_list("Set-Cookie"):
        jar.load(header)
    xsrf = jar["_xsrf"].value
    form = urlencode({"_xsrf": xsrf, "password": token})
    reply = await client.fetch(
        f"{base}login", method="POST", body=form, follow_redirects=False, raise_error=False,
        headers={"Cookie": f"_xsrf={xsrf}"},
    )  # fmt: skip
    for header in reply.headers.get_list("Set-Cookie"):
        jar.load(header)
    cookie = "; ".join(f"{name}={morsel.value}" for name, morsel in jar.items())
    return xsrf, cookie


async def test_writes_need_the_xsrf_token_without_token_auth(
    jp_serverapp: Any, http_server_client: Any, jp_base_url: str, home: Path
) -> None:
    xsrf, cookie = await _login(
        http_server_client, jp_base_url, jp_serverapp.identity_provider.token
    )
    url = f"{jp_base_url}{PREFIX}/"

    async def send(method: str, path: str, with_xsrf: bool, body: bytes | None = None) -> int:
        headers = {"Cookie": cookie, **({"X-XSRFToken": xsrf} if with_xsrf else {})}
        response = await http_server_client.fetch(
            url + path, method=method, body=body, headers=headers, raise_error=False
        )
        return int(response.code)

    assert await send("GET", "status", with_xsrf=False) == 200, "the login cookie works"
    put = json.dumps({"key": KEY}).encode()
    assert await send("PUT", "key", False, put) == 403 and not (home / "api_key").exists()
    assert await send("PUT", "key", True, put) == 200 and (home / "api_key").exists()
    assert await send("POST", "key/test", False, b"") == 403
    assert await send("POST", "key/test", True, b"") == 200
    assert await send("DELETE", "key", False) == 403 and (home / "api_key").exists()
    assert await send("DELETE", "key", True) == 200 and not (home / "api_key").exists()
    service = jp_serverapp.web_app.settings["tokenhot_service"]
    if service._reach.task is not None:
        await service._reach.task


@pytest.mark.kernel
def test_a_kernel_shut_down_mid_task_is_finished_by_the_server(
    sim: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kernel_support import SETUP, Kernel, _start

    km = _start(sim, tmp_path)
    running = Kernel(km)
    try:
        running.ok(SETUP)
        running.ok("%%video -m sora-2 --duration 4\nA paper boat on a rainy street")
    finally:
        running.stop()
        km.shutdown_kernel(now=False)  # as JupyterLab's "Shut Down Kernel" does
    journal = Journal(tmp_path / "home" / "tasks.sqlite3")
    [entry] = journal.changed()
    task_id = entry.row.task_id
    assert entry.origin is not None and entry.origin.output_dir == str(
        tmp_path / "tokenhot_outputs"
    )
    assert journal.lease(task_id) is None, "the kernel gave its lease back as it exited"
    monkeypatch.setenv("TOKENHOT_BASE_URL", sim.base_url)  # the server's own environment
    monkeypatch.setenv("TOKENHOT_API_KEY", sim.api_key)
    server = ServerPoller(journal, poll_interval=0.01)
    try:
        assert server.scan() == [task_id]
        sim.clock.advance(DONE_AFTER)
        until(lambda: (row := journal.get(task_id)) is not None and row.file is not None)
    finally:
        server.close()
    assert (tmp_path / "tokenhot_outputs" / f"{task_id}.mp4").read_bytes()[4:8] == b"ftyp"
    assert len([r for r in sim.requests if r.method == "POST"]) == 1
