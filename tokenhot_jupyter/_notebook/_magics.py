"""The magics: ``%%chat``, ``%%image``, ``%%video``, ``%%speak``, ``%transcribe``, ``%tokenhot``.

Each method parses its arguments with ``magic_arguments`` (so ``%%chat?`` shows help and a
bad argument raises ``UsageError``), builds a request and hands it to ``_actions``.  Errors
of the ``TokenhotError`` tree propagate: IPython prints their one-line
``_render_traceback_`` and the cell fails, so *Run All* stops.
"""

from __future__ import annotations

import contextlib
import functools
import getpass
import json
import keyword
import os
import re
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

from IPython.core import magic as _magic
from IPython.core import magic_arguments as _ma
from IPython.core.completer import (
    CompletionContext,
    SimpleCompletion,
    SimpleMatcherResult,
    context_matcher,
)
from IPython.core.error import UsageError
from IPython.core.magic import Magics, magics_class
from IPython.core.magic_arguments import MagicArgumentParser

from .._catalog import KINDS
from . import _display as D
from ._interpolate import MISSING, interpolate, lookup
from ._session import Session, close_session, open_session, session_of

if TYPE_CHECKING:
    from .._schema import Schema
    from ._actions import ChatRequest, ImageRequest, VideoRequest
    from ._batches import Over
    from ._tasks import Tracked

_MAGIC_KIND = {
    "%%chat": "chat", "%%image": "image", "%%video": "video", "%%speak": "audio",
    "%transcribe": "audio",
}  # fmt: skip
_VARS_HELP = (
    "Put variables into the prompt: {name} or {obj.attr} becomes its value "
    "(one pass; unknown "
    "names stay as written). Write {{name}} for a literal {name}. JSON, code and LaTeX braces "
    "(\\frac{a}{b}, x^{n}, ${HOME}) are never touched."
)

_SCHEMA_HELP = (
    "Ask for JSON of this shape and show it as a table; -o gets the parsed object (a "
    "ChatResult, its .text the raw answer, when the answer does not match). SPEC is a "
    "variable holding a dataclass, a pydantic model or a JSON Schema dict, or a quoted field "
    "list: 'name, age int, score float, ok bool, tags list[str], address {city, zip int}, "
    "mood happy|sad, nick str?: a description'. A type defaults to str; {...} nests an "
    "object, list[{...}] a list of them, a|b|c is one of those words, ? allows null, and "
    "'list[{name, age int}]' alone asks for a list of rows."
)

# What each magic sets itself, so ``-p`` may not: the flag (or place) to use instead.
_CELL = "the cell body"
_RESERVED: dict[str, dict[str, str]] = {
    "%%chat": {
        "model": "-m/--model", "messages": f"{_CELL} (and --thread for earlier turns)",
        "prompt": _CELL, "system": "-s/--system", "images": "--image", "stream": "--no-stream",
    },
    "%%image": {
        "model": "-m/--model", "prompt": _CELL, "images": "--input", "image": "--input",
        "mask": "--mask",
    },
    "%%video": {"model": "-m/--model", "prompt": _CELL, "image": "--image", "video": "--video"},
    "%%speak": {"model": "-m/--model", "text": _CELL, "input": _CELL},
}  # fmt: skip


class Interrupted(KeyboardInterrupt):
    """Ctrl-C / kernel interrupt during a magic: one line instead of a traceback.

    It stays a KeyboardInterrupt, so the cell fails and *Run All* stops; the frames below the
    magic (ours and IPython's) would tell the user nothing, as IPython says of ``!cmd``.
    """

    def __init__(self, magic: str) -> None:
        super().__init__(f"{magic} was interrupted.")

    def _render_traceback_(self) -> list[str]:
        """One line instead of a traceback."""
        return [f"KeyboardInterrupt: {self}"]


@contextlib.contextmanager
def _interruptible(magic: str) -> Iterator[None]:
    """One-line interrupts; and the cassette notes whether this call's answers are replayed."""
    from .._cassette import watching

    try:
        with watching():
            yield
    except KeyboardInterrupt as exc:
        if hasattr(exc, "_render_traceback_"):  # already short (e.g. --wait's own message)
            raise
        raise Interrupted(magic) from None


F = TypeVar("F", bound=Callable[..., Any])


class _Decorator(Protocol):
    def __call__(self, func: F, /) -> F: ...


def magic_arguments(magic: str) -> _Decorator:
    """IPython's ``magic_arguments`` decorator, typed; ``magic?`` starts with its usage."""
    build = cast(_Decorator, _ma.magic_arguments())  # type: ignore[no-untyped-call]

    def decorate(func: F) -> F:
        func = build(func)
        func.__doc__ = _usage_first(func.__doc__ or "", magic)
        return func

    return decorate


def _usage_first(doc: str, magic: str) -> str:
    """``%%chat [-m MODEL] ...`` instead of IPython's reST ``::`` block naming ``%chat``."""
    usage, sep, rest = doc.removeprefix("::\n\n").partition("\n\n")
    lines = usage.split("\n")
    first = lines[0].strip().split(None, 1)  # ["%chat", "[-m MODEL] ..."]
    indent = " " * (len(magic) + 1)
    head = " ".join([magic, *first[1:]])
    return "\n".join([head, *(indent + line.strip() for line in lines[1:])]) + sep + rest


def argument(*args: Any, **kwargs: Any) -> _Decorator:
    """IPython's ``argument`` decorator, typed."""
    return cast(_Decorator, _ma.argument(*args, **kwargs))  # type: ignore[no-untyped-call]


def cell_magic(func: F) -> F:
    """IPython's ``cell_magic`` marker, typed."""
    return cast(F, _magic.cell_magic(func))


def line_magic(func: F) -> F:
    """IPython's ``line_magic`` marker, typed."""
    return cast(F, _magic.line_magic(func))


def batch_arguments(func: F) -> F:
    """``--over VAR``, ``--concurrency N``, ``--retry-failed`` and ``--yes`` (a batch)."""
    for args, kwargs in reversed(_BATCH_ARGUMENTS):
        func = argument(*args, **kwargs)(func)
    return func


_BATCH_ARGUMENTS: list[tuple[tuple[str, ...], dict[str, Any]]] = [
    (("--over",), {"metavar": "VAR", "help": (
        "Run the prompt once per item of VAR: a list ({item}, {index}), a pandas Series or a "
        "DataFrame ({column}); answers are kept as they come, so re-running the cell sends "
        "only the rows without one."
    )}),
    (("--concurrency",), {"type": int, "metavar": "N", "help": (
        "With --over: at most N requests at once (default 8; fewer while the gateway "
        "rate-limits)."
    )}),
    (("--retry-failed",), {"action": "store_true", "help": (
        "With --over: send the rows that failed last time again (they are kept otherwise)."
    )}),
    (("--yes",), {"action": "store_true", "help": (
        "With --over: send without asking, whatever the estimated cost."
    )}),
]  # fmt: skip


# --- argument helpers -----------------------------------------------------------------------


def _parse(magic: Any, line: str) -> Any:
    """``parse_argstring``, unquoted, with unbalanced quotes reported as a UsageError too."""
    try:
        args = _ma.parse_argstring(magic, line)  # type: ignore[no-untyped-call]
    except ValueError as exc:
        raise UsageError(f"{exc}: check the quotes in the magic's options.") from None
    return _unquoted(args)


def _unquoted(args: Any) -> Any:
    # IPython splits magic lines without POSIX rules, so "a b" keeps its quotes.
    for name, value in vars(args).items():
        if isinstance(value, str):
            setattr(args, name, _unquote(value))
        elif isinstance(value, list):
            setattr(args, name, [_unquote(v) if isinstance(v, str) else v for v in value])
    return args


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def _models(value: str | None, default: str) -> list[str]:
    names = [m.strip() for m in (value or "").split(",") if m.strip()] or [default]
    return list(dict.fromkeys(names))


def _prompt(cell: str, magic: str, use_vars: bool, ns: dict[str, Any]) -> tuple[str, list[str]]:
    if not cell.strip():
        raise UsageError(f"The cell is empty: write the prompt below {magic}.")
    if not use_vars:
        return cell.strip("\n"), []
    result = interpolate(cell.strip("\n"), ns)
    return result.text, result.used


def _params(pairs: list[str] | None, magic: str) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for pair in pairs or []:
        name, sep, raw = pair.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--param needs KEY=VALUE, not {pair!r}.")
        _not_reserved(name.strip(), _RESERVED.get(magic, {}), magic)
        try:
            params[name.strip()] = json.loads(raw)
        except ValueError:
            params[name.strip()] = raw
    return params


def _not_reserved(name: str, reserved: Mapping[str, str], magic: str) -> None:
    if name in reserved:
        raise UsageError(f"{magic} sets {name!r} itself: use {reserved[name]}, not -p {name}=….")


def _timeout(args: Any) -> float | None:
    if args.timeout is not None and not args.timeout > 0:
        raise UsageError(f"--timeout needs a number of seconds above 0, not {args.timeout:g}.")
    return args.timeout  # type: ignore[no-any-return]


def _out_name(name: str | None) -> str | None:
    if name is not None and (not name.isidentifier() or keyword.iskeyword(name)):
        raise UsageError(f"-o/--out needs a variable name, not {name!r}.")
    return name


def _over(args: Any, magic: str, models: list[str]) -> Over | None:
    """The batch options, checked (None without --over)."""
    from .._batch import DEFAULT_CONCURRENCY
    from ._batches import Over

    if args.over is None:
        used = [
            f
            for f, v in (
                ("--concurrency", args.concurrency),
                ("--retry-failed", args.retry_failed),
                ("--yes", args.yes),
            )
            if v
        ]
        if used:
            raise UsageError(f"{used[0]} goes with --over VAR (a batch).")
        return None
    if len(models) > 1:
        raise UsageError(
            f"--over runs one model; -m names {len(models)} ({', '.join(models)}): "
            "run one cell per model."
        )
    for flag, value in (("--thread", getattr(args, "thread", None)),
                        ("--new", getattr(args, "new", False))):  # fmt: skip
        if value:
            raise UsageError(f"{magic} --over asks each row on its own: leave out {flag}.")
    concurrency = DEFAULT_CONCURRENCY if args.concurrency is None else args.concurrency
    return Over(name=args.over, concurrency=concurrency, retry_failed=args.retry_failed,
                yes=args.yes, vars=args.vars)  # fmt: skip


def _input(token: str | None, ns: dict[str, Any]) -> Any:
    """A notebook variable of that name if there is one, else the text as a path or URL."""
    if token is None:
        return None
    if re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", token):
        value = lookup(token, ns)
        if value is not MISSING and value is not None:
            return value
        if "." not in token and not os.path.exists(token):  # a bare name: an undefined variable
            raise UsageError(
                f"No variable or file named {token!r}: define the variable first, "
                "or give a path or URL."
            )
    return token


def _inputs(tokens: list[str] | None, ns: dict[str, Any]) -> list[Any]:
    return [_input(t, ns) for t in tokens or []]


def _schema(spec: str | None, ns: dict[str, Any]) -> Schema | None:
    """--schema: a variable (class, dict) by that name, or else a concise field list."""
    if spec is None:
        return None
    from .._schema import schema_of

    if re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", spec):
        value = lookup(spec, ns)
        if value is MISSING or value is None:
            raise UsageError(
                f"--schema {spec}: no variable by that name. Define it first, or give a "
                f"field list with types, e.g. --schema '{spec} str, n int'."
            )
        return schema_of(value)
    return schema_of(spec)


# --- the magics -----------------------------------------------------------------------------


@magics_class
class TokenhotMagics(Magics):
    """Chat, images, video and audio through the Tokenhot gateway."""

    def __init__(self, shell: Any, session: Session) -> None:
        super().__init__(shell)
        self.session = session
        self.screen = D.Screen(shell)

    def _keep(self, name: str | None, value: Any) -> None:
        if name:
            self.shell.user_ns[name] = value  # type: ignore[union-attr]

    @property
    def _ns(self) -> dict[str, Any]:
        return self.shell.user_ns  # type: ignore[union-attr,no-any-return]

    @magic_arguments("%%chat")
    @argument(
        "-m", "--model", help="Model id; a comma-separated list (a,b,c) compares them side by side."
    )
    @argument("-s", "--system", help="System prompt (quote it if it has spaces).")
    @argument("--temperature", type=float, help="Sampling temperature, 0 to 2.")
    @argument("--max-tokens", type=int, help="Longest answer, in tokens.")
    @argument(
        "--reasoning", help="Reasoning effort: none, minimal, low, medium, high, xhigh (per model)."
    )
    @argument(
        "--image",
        action="append",
        help="An image for vision models: path, URL or variable (repeatable).",
    )
    @argument("--thread", help="Conversation thread name (default: this notebook's own thread).")
    @argument(
        "--new", action="store_true", help="Start the thread afresh (forget its earlier turns)."
    )
    @argument(
        "-o", "--out", help="Keep the result in this variable (with --schema, the parsed object)."
    )
    @argument(
        "--no-stream",
        action="store_true",
        help="Wait for the whole answer instead of streaming it.",
    )
    @argument("--vars", action="store_true", help=_VARS_HELP)
    @argument("--schema", metavar="SPEC", help=_SCHEMA_HELP)
    @argument(
        "-p", "--param", action="append", help="Extra body field KEY=VALUE (JSON values allowed)."
    )
    @batch_arguments
    @cell_magic
    def chat(self, line: str, cell: str) -> None:
        """Ask a chat model; the cell body is the prompt.

        The answer streams into one output and ends with a footer: model, how many earlier
        turns of the thread were sent, latency, tokens and an estimated cost.  Re-running a
        cell replaces its own earlier turn in the thread instead of adding a copy.  With
        --over VAR, the prompt is sent once per item of VAR (see --over).
        """
        args = _parse(self.chat, line)
        request = self._chat_request(args, line, cell)
        over = _over(args, "%%chat", request.models)
        if over is not None:
            return self._chat_over(args, request, over)
        from . import _actions

        one = len(request.models) == 1  # a comparison keeps each model's outcome in its dict
        with _interruptible("%%chat"), self._keep_mismatch(args.out, one):
            self._keep(args.out, _actions.chat(self.session, self.screen, request))

    def _chat_over(self, args: Any, request: ChatRequest, over: Over) -> None:
        from ._batches import chat_over

        with _interruptible("%%chat"):
            chat_over(self.session, self.screen, request, over, self._ns, self._keeper(args))

    def _keeper(self, args: Any) -> Callable[[Any], None]:
        return lambda value: self._keep(args.out, value)

    @contextlib.contextmanager
    def _keep_mismatch(self, out: str | None, keep: bool) -> Iterator[None]:
        """--schema: an answer that does not match goes to -o as its ChatResult (paid for)."""
        from .._exceptions import SchemaMismatch

        try:
            yield
        except SchemaMismatch as exc:
            if not keep:
                raise
            self._keep(out, exc.result)
            exc.hint = f"Its text is in {out}.text." if out else "Add -o NAME to keep its text."
            raise

    def _chat_request(self, args: Any, line: str, cell: str) -> ChatRequest:
        from ._actions import ChatRequest

        _out_name(args.out)
        rows = args.over is not None  # each row fills the prompt in itself
        prompt, used = _prompt(cell, "%%chat", args.vars and not rows, self._ns)
        models = _models(args.model, self.session.model_for("chat"))
        flags = {
            "temperature": args.temperature,
            "max_tokens": args.max_tokens,
            "reasoning": args.reasoning,
        }
        params = self.session.params_for("chat", models, flags) | _params(args.param, "%%chat")
        return ChatRequest(
            models=models,
            prompt=prompt,
            system=args.system,
            params=params,
            images=_inputs(args.image, self._ns),
            thread=args.thread,
            new=args.new,
            stream=not args.no_stream,
            vars_used=used,
            source=f"{line}\n{cell}",
            schema=_schema(args.schema, self._ns),
        )

    @magic_arguments("%%image")
    @argument("-m", "--model", help="Model id; a comma-separated list compares them side by side.")
    @argument("--size", help="Image size or aspect ratio, e.g. 1024x1024, 2K, 16:9 (per model).")
    @argument("-n", type=int, help="How many images (default 1).")
    @argument(
        "--input", action="append", help="An image to edit: path, URL or variable (repeatable)."
    )
    @argument("--mask", help="A mask image for edits (gpt-image models): path, URL or variable.")
    @argument("-o", "--out", help="Keep the result object in this variable.")
    @argument("--vars", action="store_true", help=_VARS_HELP)
    @argument("-p", "--param", action="append", help="Extra parameter KEY=VALUE, e.g. quality=hd.")
    @batch_arguments
    @cell_magic
    def image(self, line: str, cell: str) -> None:
        """Generate (or with --input, edit) images; the cell body is the prompt.

        Images show inline and are saved under the output folder (tokenhot_outputs/ beside
        the notebook unless Tokenhot.output_dir says otherwise).  With --over VAR, once per
        item of VAR (see --over); those pictures are saved, not shown.
        """
        args = _parse(self.image, line)
        request = self._image_request(args, cell)
        over = _over(args, "%%image", request.models)
        if over is not None:
            return self._image_over(args, request, over)
        from . import _actions

        with _interruptible("%%image"):
            self._keep(args.out, _actions.image(self.session, self.screen, request))

    def _image_over(self, args: Any, request: ImageRequest, over: Over) -> None:
        from ._batches import image_over

        with _interruptible("%%image"):
            image_over(self.session, self.screen, request, over, self._ns, self._keeper(args))

    def _image_request(self, args: Any, cell: str) -> ImageRequest:
        from ._actions import ImageRequest

        _out_name(args.out)
        if args.n is not None and args.n < 1:
            raise UsageError("-n must be 1 or more.")
        rows = args.over is not None  # each row fills the prompt in itself
        prompt, _ = _prompt(cell, "%%image", args.vars and not rows, self._ns)
        models = _models(args.model, self.session.model_for("image"))
        flags = {"size": args.size, "n": args.n}
        params = self.session.params_for("image", models, flags) | _params(args.param, "%%image")
        return ImageRequest(
            models=models,
            prompt=prompt,
            size=params.pop("size", None),
            n=params.pop("n", 1),
            inputs=_inputs(args.input, self._ns),
            mask=_input(args.mask, self._ns),
            params=params,
        )

    @magic_arguments("%%video")
    @argument("-m", "--model", help="Video model id.")
    @argument("--duration", type=int, help="Seconds of video (per model).")
    @argument("--resolution", help="Resolution, e.g. 720p, 1080p (per model).")
    @argument("--ratio", help="Aspect ratio, e.g. 16:9, 9:16 (per model).")
    @argument("--image", help="First-frame image: path, URL or variable.")
    @argument("--video", help="Reference video: path, URL or variable.")
    @argument(
        "--new",
        action="store_true",
        help="Always start a new (paid) task, even for an unchanged cell.",
    )
    @argument("--wait", action="store_true", help="Block until the video is ready (or failed).")
    @argument("--timeout", type=float, help="With --wait: stop waiting after this many seconds.")
    @argument("-o", "--out", help="Keep the task handle in this variable.")
    @argument("--vars", action="store_true", help=_VARS_HELP)
    @argument("-p", "--param", action="append", help="Extra body field KEY=VALUE.")
    @cell_magic
    def video(self, line: str, cell: str) -> None:
        """Make a video; returns at once with a live card that turns into the video.

        Polling runs in the background while other cells run.  Re-running an unchanged
        cell shows the existing task again instead of paying for a new one (--new forces
        one).  ``%tokenhot tasks``, ``attach ID`` and ``cancel ID`` manage tasks.
        """
        args = _parse(self.video, line)
        timeout = _timeout(args)
        request = self._video_request(args, line, cell)
        from . import _actions

        with _interruptible("%%video"):
            tracked = _actions.video(self.session, self.screen, request)
            self._keep(args.out, tracked)
            if args.wait:
                _wait(tracked, timeout, self.screen.rich)

    def _video_request(self, args: Any, line: str, cell: str) -> VideoRequest:
        from ._actions import VideoRequest

        _out_name(args.out)
        prompt, _ = _prompt(cell, "%%video", args.vars, self._ns)
        model = self.session.model_for("video", args.model)
        flags = {"duration": args.duration, "resolution": args.resolution, "ratio": args.ratio}
        params = self.session.params_for("video", [model], flags) | _params(args.param, "%%video")
        return VideoRequest(
            model=model,
            prompt=prompt,
            params=params,
            image=_input(args.image, self._ns),
            video=_input(args.video, self._ns),
            new=args.new,
            source=f"{line}\n{cell}",
        )

    @magic_arguments("%%speak")
    @argument("-m", "--model", help="Speech model id.")
    @argument("--voice", help="Voice name (per model, e.g. Kore, alloy).")
    @argument("-o", "--out", help="Keep the WAV bytes in this variable.")
    @argument("--vars", action="store_true", help=_VARS_HELP)
    @argument("-p", "--param", action="append", help="Extra body field KEY=VALUE.")
    @cell_magic
    def speak(self, line: str, cell: str) -> None:
        """Read the cell body aloud: an inline audio player and a saved WAV file."""
        args = _parse(self.speak, line)
        _out_name(args.out)
        text, _ = _prompt(cell, "%%speak", args.vars, self._ns)
        from . import _actions

        model = self.session.model_for("audio", args.model)
        params = self.session.params_for("audio", [model], {"voice": args.voice})
        params |= _params(args.param, "%%speak")
        with _interruptible("%%speak"):
            wav = _actions.speak(
                self.session, self.screen, text, model, params.pop("voice", None), params
            )
        self._keep(args.out, wav)

    @magic_arguments("%transcribe")
    @argument("source", help="Audio file path, URL, or a variable holding bytes or a path.")
    @argument("-m", "--model", help="Transcription model (default whisper-1).")
    @argument("--translate", action="store_true", help="Translate the speech into English.")
    @argument("--language", help="The spoken language as ISO-639-1, e.g. en, de (a hint).")
    @argument("-o", "--out", help="Keep the Transcript object in this variable.")
    @line_magic
    def transcribe(self, line: str) -> None:
        """Transcribe an audio file or variable into text."""
        args = _parse(self.transcribe, line)
        _out_name(args.out)
        from . import _actions

        model = self.session.model_for("transcribe", args.model)
        with _interruptible("%transcribe"):
            transcript = _actions.transcribe(
                self.session,
                self.screen,
                _input(args.source, self._ns),
                model,
                translate=args.translate,
                language=args.language,
            )
        self._keep(args.out, transcript)

    @line_magic
    def tokenhot(self, line: str) -> None:
        """Manage the Tokenhot session.

        %tokenhot status              key set?, base URL, simulated?, reachable?, models
        %tokenhot login               ask for the API key (kept in this kernel only; an
                                      environment or stored key comes first)
        %tokenhot models [KIND]       list models (chat, image, video, audio)
        %tokenhot use chat=M image=M video=M audio=M transcribe=M
        %tokenhot use chat.temperature=0.3 image.size=2K   parameter defaults (=default unsets)
        %tokenhot picker              pick models and parameters in a panel (Jupyter widgets)
        %tokenhot tasks [--live]      video tasks of the journal (--live: a live monitor)
        %tokenhot attach ID [-m M]    follow a video task again (also after a restart)
        %tokenhot cancel ID           stop polling a video task here
        %tokenhot history [--reset] [--thread NAME]
        %tokenhot usage [--reset]     tokens and estimated spend this session
        %tokenhot usage --today|--all every kernel's calls, from the usage ledger
        %tokenhot budget [USD|off] [--session USD|off]   a day budget for every kernel, a
                                      budget for this session (shown without arguments)
        %tokenhot record PATH         record every gateway exchange into a cassette folder
        %tokenhot record --stop       stop recording
        %tokenhot replay PATH [--speed N] [--auto]   answer from a cassette, never the network
                                      (--speed 0: as fast as possible; --auto: record misses)
        %tokenhot replay --stop       back to the gateway
        """
        args = _parse_tokenhot(line or "status")
        with _interruptible("%tokenhot"):
            getattr(self, f"_cmd_{args.command}")(args)

    def _cmd_status(self, args: Any) -> None:
        from . import _actions

        _actions.show_banner(self.session, self.screen)
        self.screen.show(
            D.table_bundle(("Setting", "Value"), _actions.status_rows(self.session), "Tokenhot")
        )

    def _cmd_login(self, args: Any) -> None:
        key = getpass.getpass("Tokenhot API key (kept in this kernel only): ")
        creds = self.session.login(key)
        from .._redact import mask_key
        from ._actions import key_row

        note = f"Key {mask_key(key.strip())} set for this kernel; nothing was saved."
        if creds.source not in ("login", "none"):
            note += (
                f" It is not used while the key {key_row(self.session)} is in force "
                "(environment and stored keys come first)."
            )
        self.screen.show(D.note_bundle(note))

    def _cmd_models(self, args: Any) -> None:
        from . import _actions

        rows, note = _actions.model_rows(self.session, args.kind)
        headers = ("Model", "Kind", "Family", "Vendor", "Live", "List price (estimate)")
        self.screen.show(
            D.table_bundle(
                headers, rows, f"{len(rows)} {args.kind or ''} models".replace("  ", " ")
            )
        )
        if note:
            self.screen.show(D.note_bundle(note))

    def _cmd_use(self, args: Any) -> None:
        chosen = []
        for setting in args.settings:
            target, sep, value = setting.partition("=")
            if not sep or not value.strip():
                raise UsageError(
                    "Write KIND=MODEL (e.g. chat=gpt-5) or KIND.PARAM=VALUE "
                    f"(e.g. chat.temperature=0.3), not {setting!r}."
                )
            kind, dot, param = target.strip().partition(".")
            if dot:
                stored = self.session.use_param(kind, param, value.strip())
                chosen.append(f"{target.strip()}: {'default' if stored is None else stored}")
            else:
                chosen.append(f"{kind}: {self.session.use(kind, value.strip()).id}")
        self.screen.show(D.note_bundle("Using " + ", ".join(chosen) + " for this session."))

    def _cmd_picker(self, args: Any) -> None:
        from .._widgets import show_picker

        show_picker(self.session, self.screen)

    def _cmd_tasks(self, args: Any) -> None:
        if args.live:
            from .._widgets import show_monitor

            show_monitor(self.session, self.screen)
            return
        self.screen.show(self.session.tasks().table(args.n))

    def _cmd_attach(self, args: Any) -> None:
        tracked = self.session.tasks().attach(args.task_id, model=args.model)
        tracked.display()

    def _cmd_cancel(self, args: Any) -> None:
        tracked = self.session.tasks().cancel(args.task_id)
        self.screen.show(
            D.note_bundle(f"Stopped polling {tracked.task_id} here; it may still finish.")
        )

    def _cmd_history(self, args: Any) -> None:
        if args.reset:
            gone = self.session.reset_threads(args.thread)
            self.screen.show(D.note_bundle(f"Forgot {gone} turn{'s' * (gone != 1)}."))
            return
        from . import _actions

        rows = _actions.history_rows(self.session, args.thread)
        self.screen.show(
            D.table_bundle(
                ("Thread", "#", "Model", "Prompt", "Answer"), rows, "Conversation history"
            )
        )

    def _cmd_usage(self, args: Any) -> None:
        from . import _actions

        headers = ("Model", "Kind", "Calls", "Input tokens", "Output tokens", "Est. cost (USD)")
        if args.today or args.all:
            if args.reset:
                raise UsageError(
                    "--reset clears this session's count only; the ledger behind --today and "
                    "--all keeps every kernel's calls."
                )
            rows, title = _actions.ledger_rows(self.session, today=args.today)
            self.screen.show(D.table_bundle(headers, rows, title))
            return
        if args.reset:
            self.session.tally.reset()
        rows = _actions.usage_rows(self.session)
        self.screen.show(D.table_bundle(headers, rows, "Usage this session (costs are estimates)"))

    def _cmd_budget(self, args: Any) -> None:
        from . import _budget

        _budget.set_budgets(self.session, args.amount, args.session)
        rows, title = _budget.budget_rows(self.session)
        self.screen.show(D.table_bundle(("Budget", "Limit", "Spent", "Left"), rows, title))

    def _cmd_record(self, args: Any) -> None:
        from . import _actions

        if not args.stop and args.path is None:
            raise UsageError("Write %tokenhot record PATH (a folder), or --stop.")
        note = (
            _actions.stop_cassette(self.session, "record")
            if args.stop
            else _actions.start_cassette(self.session, args.path, "record")
        )
        self.screen.show(D.note_bundle(note))

    def _cmd_replay(self, args: Any) -> None:
        from . import _actions

        if not args.stop and args.path is None:
            raise UsageError("Write %tokenhot replay PATH (a cassette folder), or --stop.")
        if not args.speed >= 0:
            raise UsageError(f"--speed needs 0 or more (0: as fast as can be), not {args.speed:g}.")
        mode = "auto" if args.auto else "replay"
        note = (
            _actions.stop_cassette(self.session, "replay")
            if args.stop
            else _actions.start_cassette(self.session, args.path, mode, args.speed)
        )
        self.screen.show(D.note_bundle(note))


def _wait(tracked: Tracked, timeout: float | None, live: bool) -> None:
    """``--wait``: block, then fail the cell unless the video is done (Run All must stop).

    ``live``: the card updates in place (a notebook), not printed anew (a terminal).
    """
    tracked.wait(timeout)
    tracked.raise_for_status()
    if not tracked.done:
        from .._exceptions import TaskTimeoutError
        from ._cards import FOLLOW_UP

        waited = "waiting" if timeout is None else f"--timeout {timeout:g} s"
        raise TaskTimeoutError(
            f"The {tracked.model} task {tracked.task_id} is still {tracked.task.status} after "
            f"{waited}; it goes on polling in the background and {FOLLOW_UP[live]}.",
            task_id=tracked.task_id,
            model=tracked.model,
            hint=f"%tokenhot attach {tracked.task_id} shows it again; %tokenhot tasks lists it.",
        )


def _parse_tokenhot(line: str) -> Any:
    try:
        return _unquoted(_tokenhot_parser().parse_argstring(line))  # type: ignore[no-untyped-call]
    except ValueError as exc:
        raise UsageError(f"{exc}: check the quotes.") from None


@functools.cache
def _tokenhot_parser() -> MagicArgumentParser:
    parser = MagicArgumentParser(prog="%tokenhot")  # type: ignore[no-untyped-call]
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    sub.add_parser("status")
    sub.add_parser("login")
    sub.add_parser("models").add_argument("kind", nargs="?", choices=KINDS)
    sub.add_parser("use").add_argument("settings", nargs="+", metavar="KIND=MODEL")
    sub.add_parser("picker")
    tasks = sub.add_parser("tasks")
    tasks.add_argument("-n", type=int, default=50)
    tasks.add_argument("--live", action="store_true")
    attach = sub.add_parser("attach")
    attach.add_argument("task_id")
    attach.add_argument("-m", "--model")
    sub.add_parser("cancel").add_argument("task_id")
    history = sub.add_parser("history")
    history.add_argument("--reset", action="store_true")
    history.add_argument("--thread")
    usage = sub.add_parser("usage")
    usage.add_argument("--reset", action="store_true")
    when = usage.add_mutually_exclusive_group()
    when.add_argument("--today", action="store_true")
    when.add_argument("--all", action="store_true")
    budget = sub.add_parser("budget")
    budget.add_argument("amount", nargs="?", metavar="USD|off")
    budget.add_argument("--session", metavar="USD|off")
    record = sub.add_parser("record")
    record.add_argument("path", nargs="?")
    record.add_argument("--stop", action="store_true")
    replay = sub.add_parser("replay")
    replay.add_argument("path", nargs="?")
    replay.add_argument("--speed", type=float, default=1.0)
    replay.add_argument("--auto", action="store_true")
    replay.add_argument("--stop", action="store_true")
    return parser


# --- completion ------------------------------------------------------------------------------

_MODEL_FLAG = re.compile(r"(?:^|\s)(?:-m|--model)(?:\s+|=)([^\s]*)$")
_USE_ARG = re.compile(r"^%tokenhot\s+use\s+(?:\S+\s+)*(\w+)=([^\s]*)$")


def model_matcher(session: Session) -> Any:
    """A completer: model ids after ``-m`` in our magics and in ``%tokenhot use kind=``."""

    @cast(_Decorator, context_matcher())
    def complete_model(context: CompletionContext) -> SimpleMatcherResult:
        found = _model_prefix(context)
        if found is None:
            return _result([], "", suppress=False)
        kind, prefix = found
        ids = [m for m in session.known_models(kind) if m.startswith(prefix)]
        return _result([SimpleCompletion(m, type="model") for m in ids], prefix, suppress=True)

    return complete_model


def _result(
    completions: list[SimpleCompletion], fragment: str, *, suppress: bool
) -> SimpleMatcherResult:
    return {
        "completions": completions,
        "suppress": suppress,
        "matched_fragment": fragment,
        "do_not_suppress": set(),
        "ordered": False,
    }


def _model_prefix(context: CompletionContext) -> tuple[str | None, str] | None:
    """(kind, the part of a model id typed so far) when the cursor is on one."""
    if context.cursor_line != 0:
        return None
    text = context.text_until_cursor.lstrip()
    use = _USE_ARG.match(text)
    if use:
        kind = use.group(1)
        return ("audio" if kind == "transcribe" else kind if kind in KINDS else None), use.group(2)
    magic = text.split(None, 1)[0] if text else ""
    flag = _MODEL_FLAG.search(text)
    if magic not in _MAGIC_KIND or flag is None:
        return None
    return _MAGIC_KIND[magic], flag.group(1).rsplit(",", 1)[-1]


# --- loading --------------------------------------------------------------------------------

_HOOKS: dict[int, tuple[TokenhotMagics, Any]] = {}  # what `register` added, per shell


def register(ip: Any) -> None:
    """Register the magics, the settings and the completer on ``ip`` (``%load_ext``)."""
    if session_of(ip) is not None:
        return
    session = open_session(ip)
    magics = TokenhotMagics(ip, session)
    ip.register_magics(magics)
    ip.configurables.append(session.config)
    ip.events.register("pre_run_cell", session.on_pre_run_cell)
    matcher = model_matcher(session)
    completer = getattr(ip, "Completer", None)
    if completer is not None:
        completer.custom_matchers.append(matcher)
    _HOOKS[id(ip)] = (magics, matcher)


def unregister(ip: Any) -> None:
    """Stop background work and remove everything `register` added (``%unload_ext``)."""
    session = close_session(ip)
    hooks = _HOOKS.pop(id(ip), None)
    if session is None or hooks is None:
        return
    magics, matcher = hooks
    for kind, names in magics.magics.items():
        for name in names:
            ip.magics_manager.magics[kind].pop(name, None)
    _discard(ip.configurables, session.config)
    _discard(getattr(getattr(ip, "Completer", None), "custom_matchers", []), matcher)
    ip.events.unregister("pre_run_cell", session.on_pre_run_cell)


def _discard(items: list[Any], item: Any) -> None:
    if item in items:
        items.remove(item)
