"""`ModelPicker`: per kind, a searchable model list, its parameters and a comparison set.

Every choice goes straight into the session (``Session.use`` / ``Session.use_param``), so
the next magic uses it, and is noted as its ``%tokenhot use`` line in a plain-text output
that survives in a saved notebook.
"""

from __future__ import annotations

import contextlib
import html
from collections.abc import Iterator
from typing import Any

import ipywidgets as W
import traitlets

from .._catalog import FAMILIES, KINDS, Kind, Model
from .._exceptions import TokenhotError
from .._notebook import _display as D
from .._notebook._session import Session, accepts
from ._common import UseLog, close_tree, current_session, show_widget
from ._params import ParamControl
from ._tryit import TRY_KINDS, TryIt

MAGIC = {"chat": "%%chat", "image": "%%image"}
_LIST = W.Layout(width="100%", max_width="46em")


def load_models(session: Session, live: bool = True) -> tuple[list[Model], str]:
    """The catalog merged with the gateway's live list, or the catalog and why not."""
    client = session.client()
    if not live:
        return client.models(None, live=False), ""
    try:
        models = client.models(None, live=True)
    except TokenhotError as exc:
        return client.models(None, live=False), f"The gateway did not answer ({exc}); " + (
            "this is the built-in catalog."
        )
    session.note_live(models)
    return models, ""


def badge_label(model: Model) -> str:
    """A list entry: the id, then its badges (vendor, live, inferred)."""
    badges = [model.vendor] if model.vendor else []
    badges += ["live"] if model.live else []
    badges += ["inferred"] if model.inferred else []
    return model.id + "".join(f"  [{b}]" for b in badges)


def matches(model: Model, query: str) -> bool:
    """Every word of ``query`` is part of the id, vendor or family (any case)."""
    haystack = f"{model.id} {model.vendor} {model.family}".lower()
    return all(word in haystack for word in query.lower().split())


def info_html(model: Model | None, model_id: str) -> str:
    """What the list does not say about the chosen model, escaped."""
    if model is None:
        return f"<b>{html.escape(model_id)}</b> <i>(not in the list)</i>"
    facts = [model.vendor, FAMILIES[model.family].summary]
    facts += ["accepts images"] * model.vision + ["edits images"] * model.edits
    facts += [f"needs --{need}" for need in model.requires]
    facts += ["family inferred"] * model.inferred + [model.notes]
    text = " · ".join(html.escape(f) for f in facts if f)
    return f"<b>{html.escape(model.id)}</b> · {text} · <code>{html.escape(model.endpoint)}</code>"


class KindPanel:
    """One tab: search box, model list with badges, the model's parameters, comparison set."""

    def __init__(self, kind: Kind, models: list[Model], session: Session, log: UseLog) -> None:
        self.kind, self.session, self.log = kind, session, log
        self.all = [m for m in models if m.family != "whisper"]
        self._by_id = {m.id: m for m in models}
        self._quiet = False
        self._shown: str | None = None
        self.params: dict[str, ParamControl] = {}
        self.search = W.Text(placeholder="search: id, vendor or family", layout=_LIST)
        self.models = W.Select(rows=8, layout=_LIST)
        self.info, self.note, self.params_box = W.HTML(), W.HTML(), W.VBox()
        self.compare = CompareList() if kind in TRY_KINDS else None
        self.transcribe = _transcribers(models, session) if kind == "audio" else None
        self.widget = W.VBox(self._children())
        self.refilter()
        self.sync()
        self._watch()

    @property
    def current(self) -> str:
        """The model the magics use now."""
        return self.session.model_for(self.kind)

    @property
    def compared(self) -> list[str]:
        """The comparison set (in the order it was ticked)."""
        return list(self.compare.value) if self.compare is not None else []

    def visible(self) -> list[Model]:
        """The models the search box lets through."""
        return [m for m in self.all if matches(m, self.search.value)]

    def _children(self) -> list[Any]:
        extra = [w for w in (self.compare, self.transcribe) if w is not None]
        return [self.search, self.models, self.info, self.params_box, *extra, self.note]

    def _watch(self) -> None:
        self.search.observe(lambda _: self.refilter(), names="value")
        self.models.observe(self._picked, names="value")
        if self.compare is not None:
            self.compare.observe(self._compared, names="value")
        if self.transcribe is not None:
            self.transcribe.observe(self._transcriber, names="value")

    @contextlib.contextmanager
    def _quietly(self) -> Iterator[None]:
        self._quiet = True
        try:
            yield
        finally:
            self._quiet = False

    # --- the list ---------------------------------------------------------------------------

    def refilter(self) -> None:
        """Show the models that match the search; keep the choice and the comparison set."""
        shown = self.visible()
        ids = {m.id for m in shown}
        with self._quietly():  # new options reset a Select's value; that is not a choice
            self.models.options = [(badge_label(m), m.id) for m in shown]
            self.models.value = self.current if self.current in ids else None
            if self.compare is not None:
                kept = self.compared
                self.compare.options = [m.id for m in self.all if m.id in ids or m.id in kept]
                self.compare.value = tuple(kept)

    def _picked(self, change: dict[str, Any]) -> None:
        if not self._quiet and change["new"] is not None:
            self.choose(change["new"])

    def choose(self, model_id: str) -> None:
        """Make ``model_id`` this kind's default (what a click in the list does)."""
        try:
            model = self.session.use(self.kind, model_id)
        except TokenhotError as exc:
            self._fail(exc)
            self.sync()
            return
        self.note.value = ""
        self.log.add(self.kind, f"%tokenhot use {self.kind}={model.id}")
        self.sync()

    def sync(self) -> None:
        """Follow the session (also after a typed ``%tokenhot use``)."""
        current = self.current
        with self._quietly():
            known = [value for _, value in self.models.options]
            self.models.value = current if current in known else None
            if self.transcribe is not None:
                transcriber = self.session.model_for("transcribe")
                self.transcribe.value = (
                    transcriber if transcriber in self.transcribe.options else None
                )
        if current != self._shown:
            self._show(current)

    def close(self) -> None:
        """Close the parameter widgets (the picker closes the rest)."""
        for control in self.params.values():
            control.close()

    def _fail(self, exc: Exception) -> None:
        self.note.value = f"<span style='color:#c33'>⚠ {html.escape(str(exc))}</span>"

    # --- parameters --------------------------------------------------------------------------

    def _show(self, model_id: str) -> None:
        model = self._by_id.get(model_id)
        self._shown = model_id
        self.info.value = info_html(model, model_id)
        for control in self.params.values():
            control.close()
        chosen = self.session.param_defaults.get(self.kind, {})
        self.params = {
            spec.name: ParamControl(spec, self._start(model, spec.name, chosen), self._param)
            for spec in (model.params if model else ())
        }
        self.params_box.children = [c.widget for c in self.params.values()]

    @staticmethod
    def _start(model: Model | None, name: str, chosen: dict[str, Any]) -> Any:
        value = chosen.get(name)
        return value if model is not None and accepts(model, name, value) else None

    def _param(self, name: str, value: Any) -> None:
        try:
            stored = self.session.use_param(self.kind, name, value)
        except TokenhotError as exc:
            self._fail(exc)
            return
        self.note.value = ""
        shown = "default" if stored is None else stored
        self.log.add(f"{self.kind}.{name}", f"%tokenhot use {self.kind}.{name}={shown}")

    # --- comparison and transcription ------------------------------------------------------

    def _compared(self, change: dict[str, Any]) -> None:
        if self._quiet:
            return
        models = ",".join(change["new"])
        line = f"# Try it compares: {MAGIC[self.kind]} -m {models}"
        self.log.add(
            f"compare.{self.kind}", line if models else f"# Try it runs the {self.kind} default"
        )

    def _transcriber(self, change: dict[str, Any]) -> None:
        if self._quiet or change["new"] is None:
            return
        try:
            model = self.session.use("transcribe", change["new"])
        except TokenhotError as exc:
            self._fail(exc)
            return
        self.log.add("transcribe", f"%tokenhot use transcribe={model.id}")


class CompareList(W.VBox):  # type: ignore[misc]  # ipywidgets is untyped
    """Tick boxes for the models "Try it" runs side by side: no Ctrl-click to discover.

    ``options`` are the model ids listed; ``value`` the ticked ones, in the order ticked.
    Both are kernel-side traits (like a SelectMultiple's), the boxes follow them.
    """

    options = traitlets.List(traitlets.Unicode())
    value = traitlets.Tuple()

    def __init__(self) -> None:
        self._boxes: dict[str, Any] = {}
        self._syncing = False
        self.heading = W.HTML(
            "<b>Compare</b> <small>tick two or more models: Try it runs them side by side; "
            "none ticked runs the default</small>"
        )
        self.list = W.VBox(layout=W.Layout(max_height="9.5em", overflow="auto"))
        super().__init__([self.heading, self.list], layout=_LIST)
        self.observe(self._listed, names="options")
        self.observe(self._chosen, names="value")

    def boxes(self) -> list[Any]:
        """The tick boxes shown now, in list order."""
        return list(self.list.children)

    @traitlets.validate("value")
    def _known(self, proposal: dict[str, Any]) -> tuple[str, ...]:
        chosen = tuple(dict.fromkeys(proposal["value"]))
        unknown = [m for m in chosen if m not in self.options]
        if unknown:
            raise traitlets.TraitError(f"not in the compare list: {', '.join(unknown)}")
        return chosen

    def _listed(self, change: dict[str, Any]) -> None:
        self.list.children = [self._box(model_id) for model_id in change["new"]]
        self.value = tuple(m for m in self.value if m in change["new"])
        self._show_ticks()

    def _chosen(self, change: dict[str, Any]) -> None:
        self._show_ticks()

    def _box(self, model_id: str) -> Any:
        box = self._boxes.get(model_id)
        if box is None:  # made once and kept: searching only changes which boxes are shown
            box = W.Checkbox(description=model_id, indent=False, layout=W.Layout(width="auto"))
            box.observe(lambda change: self._ticked(model_id, change["new"]), names="value")
            self._boxes[model_id] = box
        return box

    def _ticked(self, model_id: str, ticked: bool) -> None:
        if self._syncing:
            return
        rest = tuple(m for m in self.value if m != model_id)
        self.value = (*rest, model_id) if ticked else rest

    def _show_ticks(self) -> None:
        self._syncing = True
        try:
            for model_id, box in self._boxes.items():
                box.value = model_id in self.value
        finally:
            self._syncing = False

    def close(self) -> None:
        """Close every tick box made, also those a search hides."""
        for box in self._boxes.values():
            box.close()
        super().close()


def _transcribers(models: list[Model], session: Session) -> Any:
    ids = [m.id for m in models if m.family == "whisper"]
    current = session.model_for("transcribe")
    return W.Dropdown(
        options=ids, value=current if current in ids else None, description="Transcription"
    )


class ModelPicker:
    """Choose the default model and parameters of every kind; try models side by side.

    ``ModelPicker()`` (or ``%tokenhot picker``) in a notebook; choices apply at once.
    """

    def __init__(self, session: Session | None = None, *, live: bool = True) -> None:
        self.session = session if session is not None else current_session()
        models, problem = load_models(self.session, live)
        self.log = UseLog()
        self.panels = {
            kind: KindPanel(kind, [m for m in models if m.kind == kind], self.session, self.log)
            for kind in KINDS
        }
        self.tabs = W.Tab(
            children=[p.widget for p in self.panels.values()], titles=[k.title() for k in KINDS]
        )
        self.try_it = TryIt(self.session, self._selection)
        self.tabs.observe(lambda _: self.try_it.follow(self.kind), names="selected_index")
        self.note = W.HTML(f"<small>{html.escape(problem)}</small>" if problem else "")
        self.widget = W.VBox([self.note, self.tabs, self.try_it.widget])
        self._names = [f"{k}_model" for k in (*KINDS, "transcribe")]
        self.session.config.observe(self._config_changed, names=self._names)

    @property
    def chat(self) -> KindPanel:
        """The chat tab."""
        return self.panels["chat"]

    @property
    def image(self) -> KindPanel:
        """The image tab."""
        return self.panels["image"]

    @property
    def video(self) -> KindPanel:
        """The video tab."""
        return self.panels["video"]

    @property
    def audio(self) -> KindPanel:
        """The audio tab."""
        return self.panels["audio"]

    @property
    def kind(self) -> Kind:
        """The kind of the open tab."""
        return KINDS[self.tabs.selected_index or 0]

    @property
    def lines(self) -> list[str]:
        """The ``%tokenhot use`` lines written so far."""
        return list(self.log.lines)

    def _selection(self) -> tuple[Kind, list[str]]:
        panel = self.panels[self.kind]
        return self.kind, panel.compared or [panel.current]

    def _config_changed(self, change: Any) -> None:
        kind = change["name"].removesuffix("_model")
        self.panels["audio" if kind == "transcribe" else kind].sync()

    def summary(self) -> str:
        """The models in use when shown (the widget's text/plain; later choices are logged)."""
        models = " · ".join(f"{k}: {self.session.model_for(k)}" for k in KINDS)
        return f"Model picker, opened with {models}"

    def display(self) -> None:
        """Show the panel and its use log (a model table in a terminal)."""
        if show_widget(self.widget, self.summary(), self.session, show_fallback):
            self.log.display()

    def _ipython_display_(self) -> None:
        self.display()

    def close(self) -> None:
        """Stop following the session and close every widget."""
        self.session.config.unobserve(self._config_changed, names=self._names)
        self.try_it.close()
        for panel in self.panels.values():
            panel.close()
        close_tree(self.widget)


def show_fallback(session: Session, screen: D.Screen) -> None:
    """No widgets here (terminal IPython): the model table and how to choose by hand."""
    from .._notebook import _actions

    rows, note = _actions.model_rows(session, None)
    headers = ("Model", "Kind", "Family", "Vendor", "Live", "List price (estimate)")
    screen.show(D.table_bundle(headers, rows, f"{len(rows)} models"))
    hint = (
        "The picker needs Jupyter widgets. Choose by hand: %tokenhot use chat=MODEL image=MODEL "
        "video=MODEL audio=MODEL, and parameters with %tokenhot use chat.temperature=0.3 "
        "(KIND.PARAM=VALUE; =default forgets it)."
    )
    screen.show(D.note_bundle(f"{note} {hint}".strip()))


def show_picker(session: Session, screen: D.Screen) -> ModelPicker | None:
    """``%tokenhot picker``: the panel in a notebook, the text fallback in a terminal."""
    if not screen.rich:
        show_fallback(session, screen)
        return None
    picker = ModelPicker(session)
    picker.display()
    return picker
