"""The picker's "Try it" area: one prompt, the chosen models side by side, in the panel.

The work runs on a worker thread, so the kernel stays free while models stream; the output
goes through `_actions` into an ``ipywidgets.Output``, so it looks exactly like the magics'.
"""

from __future__ import annotations

import html
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future

import ipywidgets as W

from .._catalog import Kind
from .._exceptions import TokenhotError
from .._notebook import _display as D
from .._notebook._session import Session
from .._notebook._threads import as_messages
from ._common import OutputScreen

log = logging.getLogger("tokenhot_jupyter")
TRY_KINDS: tuple[Kind, ...] = ("chat", "image")
Selection = Callable[[], tuple[Kind, list[str]]]


class TryIt:
    """A prompt box and a Run button; results render below, one column per model."""

    def __init__(self, session: Session, selection: Selection) -> None:
        self.session = session
        self._selection = selection
        self.prompt = W.Textarea(
            placeholder="A prompt to try with the chosen models…",
            rows=3,
            layout=W.Layout(width="100%", max_width="46em"),
        )
        self.run_button = W.Button(description="Run", icon="play", button_style="primary")
        self.status = W.HTML()
        self.output = W.Output()
        self.screen = OutputScreen(self.output)
        self.future: Future[None] | None = None
        self.run_button.on_click(lambda _: self.run())
        title = W.HTML("<b>Try it</b> <small>(the comparison set, or the default model)</small>")
        controls = W.HBox([self.run_button, self.status])
        self.widget = W.VBox([title, self.prompt, controls, self.output])
        self.follow(selection()[0])

    @property
    def running(self) -> bool:
        """True while a run is in progress."""
        return self.future is not None and not self.future.done()

    def follow(self, kind: Kind) -> None:
        """Enable Run for kinds it can try (chat, image), explain the others."""
        usable = kind in TRY_KINDS
        self.run_button.disabled = self.running or not usable
        if not self.running:
            self.status.value = "" if usable else _note("Try it runs chat and image models.")

    def run(self) -> Future[None]:
        """Run the prompt with the chosen models (what Run does); returns when it is done."""
        if self.future is not None and self.running:
            return self.future
        kind, models = self._selection()
        prompt = self.prompt.value.strip()
        future: Future[None] = Future()
        if kind not in TRY_KINDS or not prompt:
            self.follow(kind)
            if kind in TRY_KINDS:
                self.status.value = _note("Write a prompt first.")
            future.set_result(None)
            return future
        self.future = future
        self.run_button.disabled = True
        self.status.value = _note(f"running {', '.join(models)}…")
        threading.Thread(
            target=self._work,
            args=(future, kind, models, prompt),
            name="tokenhot-try-it",
            daemon=True,
        ).start()
        return future

    def close(self) -> None:
        """Nothing runs on after the picker is closed except a run already sent."""
        self.run_button.disabled = True

    # --- on the worker thread -----------------------------------------------------------

    def _work(self, future: Future[None], kind: Kind, models: list[str], prompt: str) -> None:
        future.set_running_or_notify_cancel()
        failure: BaseException | None = None
        try:
            self._render(kind, models, prompt)
        except BaseException as exc:  # a bug must show in the panel, not vanish in a thread
            log.exception("Try it failed")
            self.screen.show(D.note_bundle(f"{type(exc).__name__}: {exc}", strong=True))
            failure = exc
        self.status.value = ""
        self.run_button.disabled = False
        if failure is None:
            future.set_result(None)
        else:
            future.set_exception(failure)

    def _render(self, kind: Kind, models: list[str], prompt: str) -> None:
        from .._notebook import _actions

        self.screen.clear()
        _actions.show_banner(self.session, self.screen)
        try:
            if kind == "chat":
                self._chat(models, prompt)
            else:
                self._image(models, prompt)
        except TokenhotError as exc:  # every model failed: say so under the columns
            self.screen.show(D.note_bundle(f"{type(exc).__name__}: {exc}", strong=True))

    def _chat(self, models: list[str], prompt: str) -> None:
        from .._notebook import _actions

        params = self.session.params_for("chat", models, {})
        request = _actions.ChatRequest(models=models, prompt=prompt, params=params)
        messages = as_messages([], prompt)
        if len(models) > 1:
            _actions.compare_chat(self.session, self.screen, request, messages, 0)
        else:  # the magic's streamed answer, without taking a turn in a notebook thread
            _actions.ask(self.session, self.screen, request, messages, 0)

    def _image(self, models: list[str], prompt: str) -> None:
        from .._notebook import _actions

        params = self.session.params_for("image", models, {})
        size, n = params.pop("size", None), params.pop("n", 1)
        request = _actions.ImageRequest(models=models, prompt=prompt, size=size, n=n, params=params)
        _actions.image(self.session, self.screen, request)


def _note(text: str) -> str:
    return f"<small>{html.escape(text)}</small>" if text else ""
