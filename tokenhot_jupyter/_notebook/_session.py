"""The per-kernel session behind the magics: settings, client, threads, usage, tasks.

`%load_ext` opens one session per shell (`open_session`) and the panels find it with
`session_of`.  It applies the settings' precedence (`_settings`), keeps this kernel's
threads (`_threads`) and tally (`_usage`), the client, the usage ledger and the task
manager; other modules change it through its methods.  Nothing here runs at import time,
and the environment is read only when a value is needed.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .._catalog import DEFAULTS, KINDS, TRANSCRIBE_DEFAULT, Catalog, Kind, Model
from .._config import ENV_BASE_URL, ENV_SIMULATED
from .._exceptions import ConfigurationError, InvalidInputError, TokenhotError
from .._poll import REAL_CLOCK, Clock
from .._types import Usage
from ._settings import DEFAULT_OUTPUT_DIR, ENV_MODEL, ENV_OUTPUT_DIR, Tokenhot
from ._threads import DEFAULT_THREAD, Thread, Threads
from ._usage import Prices, Tally

if TYPE_CHECKING:
    from .._cassette import Cassette
    from .._client import Client
    from .._store._budget import Budgets
    from .._store._credentials import Credentials
    from .._store._ledger import Ledger
    from ._tasks import TaskManager

log = logging.getLogger("tokenhot_jupyter")
ENV_SESSION = "JPY_SESSION_NAME"  # the notebook's path, set by jupyter_server for its kernels


# --- where a call comes from ------------------------------------------------------------------


@dataclass(kw_only=True)
class CellRef:
    """The cell being run: its id from the frontend (ipykernel 7 sends one) and its source."""

    cell_id: str = ""
    source: str = ""
    calls: int = 0


def accepts(model: Model, name: str, value: Any) -> bool:
    """Whether ``model`` has parameter ``name`` and ``value`` is allowed for it."""
    spec = model.param(name)
    try:
        return spec is not None and spec.check(value, model.id) is not None
    except InvalidInputError:
        return False


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "model"


def _kept(path: Path, data: bytes) -> Path:
    """``path`` holding ``data``: written unless a file of that size is already there."""
    if not (path.is_file() and path.stat().st_size == len(data)):
        path.write_bytes(data)
    return path


class Session:
    """Everything one kernel keeps between magic calls."""

    def __init__(self, shell: Any, clock: Callable[[], float] = time.time) -> None:
        self.shell = shell
        self.config = Tokenhot(parent=shell)
        self.threads = Threads()
        self.tally = Tally(self._to_ledger)
        self.cell = CellRef()
        self.prices = Prices(self.catalog)
        self.banner_shown = False
        self.live_models: list[Model] = []  # the last live list the gateway sent
        self._catalog = Catalog()
        self.param_defaults: dict[str, dict[str, Any]] = {}  # kind → parameter → value
        self._clock = clock
        self.poll_clock: Clock = REAL_CLOCK  # what video tasks poll by (tests move a fake one)
        self.batch_clock: Clock = REAL_CLOCK  # what --over batches pace and back off by
        self._client: Client | None = None
        self._client_env: tuple[str | None, ...] = ()
        # %tokenhot record/replay: a cassette, False (stopped: none), None ($TOKENHOT_CASSETTE).
        self.cassette: Cassette | Literal[False] | None = None
        self._tasks: TaskManager | None = None
        self._ledger: Ledger | None = None
        self._ledger_warned = False
        self._budgets: Budgets | None = None
        self.session_budget: float | None = None  # %tokenhot budget --session, in USD

    # cells and threads --------------------------------------------------------------------

    def on_pre_run_cell(self, info: Any) -> None:
        """IPython's ``pre_run_cell`` event: remember which cell is running."""
        self.cell = CellRef(
            cell_id=str(getattr(info, "cell_id", None) or ""),
            source=str(getattr(info, "raw_cell", "") or ""),
        )

    def turn_key(self, fallback_source: str) -> str:
        """This call's key: the cell id (or source hash) and its position within the cell."""
        self.cell.calls += 1
        base = (
            self.cell.cell_id
            or "src:"
            + hashlib.sha1((self.cell.source or fallback_source).encode("utf-8")).hexdigest()[:16]
        )
        return f"{base}#{self.cell.calls}"

    @property
    def notebook(self) -> str:
        """Which notebook this kernel serves (Jupyter's session name, if it tells us)."""
        return self.notebook_path() or "default"

    def notebook_path(self) -> str | None:
        """The notebook's path as jupyter_server gave it to this kernel, if it did."""
        name = self.shell.user_ns.get("__session__") or os.environ.get(ENV_SESSION)
        return str(name) if name else None

    def thread(self, name: str | None) -> Thread:
        """A thread of this notebook."""
        return self.threads.get(self.notebook, name or DEFAULT_THREAD)

    def notebook_threads(self) -> list[Thread]:
        """This notebook's threads."""
        return self.threads.of(self.notebook)

    def reset_threads(self, name: str | None = None) -> int:
        """Forget one thread of this notebook (or all); returns how many turns went."""
        return self.threads.reset(self.notebook, name)

    def banner_due(self) -> bool:
        """True once, at the first output of a simulated session (the banner goes first)."""
        if self.banner_shown or not self.simulated():
            return False
        self.banner_shown = True
        return True

    # settings ------------------------------------------------------------------------------

    def model_for(self, kind: str, flag: str | None = None) -> str:
        """flag → Tokenhot.<kind>_model → $TOKENHOT_<KIND>_MODEL → catalog default."""
        configured = getattr(self.config, f"{kind}_model", "")
        env = os.environ.get(ENV_MODEL[kind], "").strip()
        default = TRANSCRIBE_DEFAULT if kind == "transcribe" else DEFAULTS[kind]  # type: ignore[index]
        return (flag or "").strip() or configured.strip() or env or default

    def use(self, kind: str, model_id: str) -> Model:
        """``%tokenhot use kind=model``: check the id, then set it for this session."""
        if kind not in ENV_MODEL:
            raise InvalidInputError(
                f"Unknown kind {kind!r}.", hint="Use chat=, image=, video=, audio= or transcribe=."
            )
        catalog_kind: Kind = "audio" if kind == "transcribe" else kind  # type: ignore[assignment]
        model = self.client().model(model_id, catalog_kind)
        setattr(self.config, f"{kind}_model", model.id)
        return model

    def use_param(self, kind: str, name: str, value: Any) -> Any:
        """``%tokenhot use chat.temperature=0.3``: a default used when the flag is not given.

        Checked against the kind's current model; None, "" or "default" forgets it.
        """
        if kind not in KINDS:
            raise InvalidInputError(
                f"Unknown kind {kind!r}.", hint="Use chat, image, video or audio."
            )
        model = self.client().model(self.model_for(kind), kind)
        spec = model.param(name)
        if spec is None:
            names = ", ".join(p.name for p in model.params) or "none"
            raise InvalidInputError(
                f"{model.id} has no parameter {name!r}.", hint=f"Its parameters: {names}."
            )
        chosen = self.param_defaults.setdefault(kind, {})
        if value is None or str(value).strip().lower() in ("", "default"):
            chosen.pop(name, None)
            return None
        chosen[name] = spec.check(value, model.id)
        return chosen[name]

    def params_for(self, kind: str, models: list[str], given: dict[str, Any]) -> dict[str, Any]:
        """The flags ``given`` (None: not given) over the chosen defaults every model accepts."""
        flags = {k: v for k, v in given.items() if v is not None}
        chosen = {k: v for k, v in self.param_defaults.get(kind, {}).items() if k not in flags}
        if chosen:
            specs = self._resolved(kind, models)
            chosen = {k: v for k, v in chosen.items() if all(accepts(m, k, v) for m in specs)}
        return chosen | flags

    def _resolved(self, kind: str, models: list[str]) -> list[Model]:
        found = []
        for model_id in models:
            try:
                found.append(self.client().model(model_id, kind))  # type: ignore[arg-type]
            except TokenhotError:
                continue  # the call itself reports an unknown model (in its column)
        return found

    def output_dir(self) -> Path:
        """The folder for saved media, relative paths resolved against the notebook's folder."""
        raw = (
            self.config.output_dir.strip()
            or os.environ.get(ENV_OUTPUT_DIR, "").strip()
            or DEFAULT_OUTPUT_DIR
        )
        return (Path.cwd() / Path(raw).expanduser()).resolve()

    def save(
        self, data: bytes, model: str, index: int, extension: str, *, key: str | None = None
    ) -> Path:
        """Write media under the output folder as ``<timestamp>-<model>-<n><ext>``.

        With ``key`` (a batch row's), as ``<model>-<key>-<n><ext>``: a re-run of the row
        finds its file there and writes nothing new.
        """
        folder = self.output_dir()
        try:
            folder.mkdir(parents=True, exist_ok=True)
            if key is not None:
                return _kept(folder / f"{_safe_name(model)}-{key}-{index}{extension}", data)
            stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(self._clock()))
            path = folder / f"{stamp}-{_safe_name(model)}-{index}{extension}"
            for n in range(2, 1000):
                if not path.exists():
                    break
                path = folder / f"{stamp}-{_safe_name(model)}-{index}-{n}{extension}"
            path.write_bytes(data)
        except OSError as exc:
            raise ConfigurationError(
                f"Could not save to {folder}: {exc.strerror or exc}.",
                hint="Set another folder with %config Tokenhot.output_dir = 'path'.",
            ) from None
        return path

    def display_path(self, path: Path) -> str:
        """``path`` relative to the notebook's folder when inside it (for links and players)."""
        try:
            return path.relative_to(Path.cwd().resolve()).as_posix()
        except ValueError:
            return path.as_posix()

    # the gateway ----------------------------------------------------------------------------

    def credentials(self) -> Credentials:
        """The key and gateway in force now (resolved afresh: see `_credentials.resolve`)."""
        from .._store._credentials import Credentials, resolve  # not at %load_ext: it stays light

        try:
            return resolve()
        except ConfigurationError:
            return Credentials(key=None, source="none", base_url="", simulated=False)

    def simulated(self) -> bool:
        """True when answers come from the local simulator, not the real gateway."""
        return self.credentials().simulated

    def api_key(self) -> str | None:
        """The key in use, or the simulator's stand-in when simulated."""
        return self.credentials().key

    def client(self) -> Client:
        """The shared client (it follows the key in force at every request); a new one when
        the timeout or the cassette changed."""
        from .._cassette import ENV_CASSETTE, ENV_MODE

        env = (str(self.config.timeout), os.environ.get(ENV_CASSETTE), os.environ.get(ENV_MODE),
               str(id(self.cassette)))  # fmt: skip
        if self._client is None or env != self._client_env:
            from .._client import Client

            self._client = Client(timeout=self.config.timeout, cassette=self.cassette)
            self._client_env = env
        return self._client

    def use_cassette(self, cassette: Cassette | Literal[False] | None) -> None:
        """``%tokenhot record/replay``: a cassette; False: none; None: $TOKENHOT_CASSETTE."""
        self.cassette = cassette

    def login(self, key: str) -> Credentials:
        """Use ``key`` in this kernel only, after any argument, environment or stored key."""
        from .._store._credentials import login

        if not (key or "").strip():
            raise InvalidInputError(
                "No key was entered.", hint="Run %tokenhot login again and paste the key."
            )
        login(key)
        if os.environ.get(ENV_SIMULATED, "").strip().lower() == "always":
            # `--simulate` pointed this kernel at the simulator; logging in means the gateway.
            os.environ.pop(ENV_SIMULATED, None)
            os.environ.pop(ENV_BASE_URL, None)
        return self.credentials()

    def _to_ledger(self, model: str, kind: str, usage: Usage | None, cost: float | None) -> None:
        """Append one call to the usage ledger; a ledger that cannot be written only warns."""
        from .._store._ledger import Call

        call = Call(
            model=model,
            kind=kind,
            usage=usage,
            cost=cost,
            simulated=self.simulated(),
            notebook=self.notebook_path(),
        )
        try:
            self.ledger().append(call)
        except TokenhotError as exc:
            if not self._ledger_warned:  # once per session: the calls themselves still work
                log.warning("usage not recorded: %s", exc)
                self._ledger_warned = True

    def ledger(self) -> Ledger:
        """The usage ledger of every kernel (``%tokenhot usage --today/--all``)."""
        from .._store._ledger import Ledger

        if self._ledger is None:
            self._ledger = Ledger()
        return self._ledger

    def budgets(self) -> Budgets:
        """The day budget every kernel shares (``%tokenhot budget``), beside the ledger."""
        from .._store._budget import Budgets

        if self._budgets is None:
            self._budgets = Budgets()
        return self._budgets

    def tasks(self) -> TaskManager:
        """The video task manager (journal and background polling), made on first use."""
        if self._tasks is None:
            from .._store._journal import Journal
            from .._store._leases import Keeper
            from ._tasks import TaskManager

            journal = Journal()
            self._tasks = TaskManager(
                self.client,
                journal,
                self.output_dir,
                poll_interval=self.config.video_poll_interval,
                deadline=self.config.video_deadline,
                leases=Keeper(journal, "kernel"),
                notebook=self.notebook_path,
                clock=self.poll_clock,
            )
        return self._tasks

    def note_live(self, models: Sequence[Model]) -> None:
        """Keep the gateway's live models (none: the last list stays) for names and prices."""
        live = [m for m in models if m.live]
        if live:
            self.live_models = live
            self._catalog = Catalog(models={**Catalog().models, **{m.id: m for m in live}})

    def catalog(self) -> Catalog:
        """The built-in models with the last live list's (no network)."""
        return self._catalog

    def known_models(self, kind: str | None = None) -> list[str]:
        """Model ids for completion: the catalog plus the last live list (no network)."""
        return [m.id for m in self._catalog.of_kind(None) if kind is None or m.kind == kind]

    def close(self) -> None:
        """Stop background work (``%unload_ext``)."""
        if self._tasks is not None:
            self._tasks.shutdown()
            self._tasks = None


# --- the loaded sessions ---------------------------------------------------------------------

_SESSIONS: dict[int, Session] = {}


def open_session(shell: Any) -> Session:
    """Make the session of ``shell`` (``%load_ext``); `session_of` finds it from then on."""
    session = _SESSIONS[id(shell)] = Session(shell)
    return session


def session_of(shell: Any) -> Session | None:
    """The session `%load_ext` opened for ``shell`` (the panels, tests and tools use it)."""
    return _SESSIONS.get(id(shell))


def close_session(shell: Any) -> Session | None:
    """Stop the session of ``shell`` and forget it (``%unload_ext``); None if it had none."""
    session = _SESSIONS.pop(id(shell), None)
    if session is not None:
        session.close()
    return session
