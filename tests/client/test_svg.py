"""SVG results display as SVG and can run nothing and fetch nothing."""

from __future__ import annotations

import base64
import re
import xml.etree.ElementTree as ET

import pytest

from tokenhot_jupyter._notebook import _display as D
from tokenhot_jupyter._svg import SVG_NS, XLINK_NS, inert_svg
from tokenhot_jupyter._types import Image

NS = f'xmlns="{SVG_NS}" xmlns:xlink="{XLINK_NS}"'
PICTURE = (
    f'<svg {NS} viewBox="0 0 10 10" width="10" height="10"><title>A box</title>'
    '<defs><linearGradient id="g"><stop offset="0" stop-color="red"/></linearGradient>'
    '<rect id="r" width="4" height="4"/></defs>'
    '<rect width="10" height="10" fill="url(#g)" style="stroke:blue"/>'
    '<use href="#r" x="5"/><use xlink:href="#r" y="5"/>'
    '<text x="1" y="5" xml:space="preserve">Hi &amp; &lt;bye&gt;</text>'
    '<image width="1" height="1" href="data:image/png;base64,iVBORw0KGgo="/>'
    '<animate attributeName="opacity" values="0;1" dur="1s"/></svg>'
)
EVIL = "https://evil.example/x"
ATTACKS = [
    f"<svg {NS}><script>alert(1)</script><circle r='5'/></svg>",
    f"<svg {NS} onload='alert(1)'><circle r='5' onclick='alert(2)'/></svg>",
    f"<svg {NS}><a xlink:href='javascript:alert(1)'><text>x</text></a></svg>",
    f"<svg {NS}><a xlink:href='&#106;avascript:alert(1)'><text>x</text></a></svg>",
    f"<svg {NS}><a href='{EVIL}'><text>x</text></a></svg>",
    f"<svg {NS}><foreignObject><iframe xmlns='http://www.w3.org/1999/xhtml' src='{EVIL}'/>"
    "</foreignObject></svg>",
    f"<svg {NS}><image href='{EVIL}.png'/><image xlink:href='//evil.example/p.png'/></svg>",
    f"<svg {NS}><image href='data:image/svg+xml;base64,PHN2Zz48L3N2Zz4='/></svg>",
    f"<svg {NS}><use href='{EVIL}.svg#x'/></svg>",
    f"<svg {NS}><style>@import url({EVIL}.css);</style></svg>",
    f"<svg {NS}><style>rect {{ fill: url({EVIL}.svg#g) }}</style></svg>",
    f"<svg {NS}><style>rect {{ background: u\\72l({EVIL}) }}</style></svg>",
    f"<svg {NS}><rect style=\"fill:url('{EVIL}')\"/><rect fill='url({EVIL}#g)'/></svg>",
    f"<svg {NS}><rect filter='url({EVIL}#f)' cursor='url({EVIL}.png), auto'/></svg>",
    f"<svg {NS}><filter id='f'><feImage href='{EVIL}.png'/></filter></svg>",
    f"<svg {NS}><animate attributeName='href' values='javascript:alert(1)'/></svg>",
    f"<svg {NS}><set attributeName='onmouseover' to='alert(1)'/></svg>",
    f"<svg {NS}><animate attributeName='xlink:href' to='{EVIL}'/></svg>",
    f"<svg {NS}><rect><set attributeName='fill' to='url({EVIL}#p)'/></rect></svg>",
    f"<?xml-stylesheet href='{EVIL}.css'?><svg {NS}><circle r='5'/></svg>",
    f"<svg {NS}><h:script xmlns:h='http://www.w3.org/1999/xhtml'>alert(1)</h:script></svg>",
    f"<svg {NS} xml:base='{EVIL}/'><rect/></svg>",
    f"<svg {NS}><text>&lt;script&gt;alert(1)&lt;/script&gt;</text></svg>",
]


def _fetches_or_runs(svg: str) -> list[str]:
    """Whatever in ``svg`` could run or load: checked on the parsed result, not by regex alone."""
    found = []
    for element in ET.fromstring(svg).iter():
        tag = element.tag.rpartition("}")[2]
        if tag in ("script", "foreignObject") or not element.tag.startswith(f"{{{SVG_NS}}}"):
            found.append(tag)
        for name, value in element.attrib.items():
            local = name.rpartition("}")[2]
            if local.lower().startswith("on") or (
                local == "href" and not value.startswith(("#", "data:image/png", "data:image/jpeg"))
            ):
                found.append(f"{local}={value}")
            if re.search(r"(?i)url\s*\(\s*['\"]?(?!#)|javascript|//", value):
                found.append(f"{local}={value}")
        if tag == "style" and re.search(r"(?i)url|@import|\\", element.text or ""):
            found.append(element.text or "")
    return found


@pytest.mark.parametrize("attack", ATTACKS)
def test_an_svg_keeps_nothing_that_runs_or_fetches(attack: str) -> None:
    svg = inert_svg(attack.encode())
    assert svg is not None and _fetches_or_runs(svg) == [], svg
    assert "evil" not in svg and "alert(1)" not in svg.replace("&lt;script&gt;alert(1)", "")


def test_the_check_can_fail() -> None:
    assert len(_fetches_or_runs(ATTACKS[1])) == 2 and _fetches_or_runs(ATTACKS[6])


def test_a_picture_keeps_what_it_draws() -> None:
    svg = inert_svg(PICTURE.encode())
    assert svg is not None
    assert _fetches_or_runs(svg) == []
    tags = [e.tag.rpartition("}")[2] for e in ET.fromstring(svg).iter()]
    assert tags == [
        "svg", "title", "defs", "linearGradient", "stop", "rect", "rect", "use", "use", "text",
        "image", "animate",
    ]  # fmt: skip
    assert 'fill="url(#g)"' in svg and 'xlink:href="#r"' in svg and 'href="#r"' in svg
    assert "Hi &amp; &lt;bye&gt;" in svg and 'xml:space="preserve"' in svg


@pytest.mark.parametrize(
    "data",
    [
        b"not xml",
        b"<html><body>an error page</body></html>",
        b'<!DOCTYPE svg [<!ENTITY a "aaaaaaaaaa">]><svg>&a;</svg>',
        b"<svg xmlns='http://www.w3.org/1999/xhtml'>x</svg>",
    ],
)
def test_what_is_not_an_svg_picture_is_not_shown(data: bytes) -> None:
    assert inert_svg(data) is None
    bundle, _ = D.image_bundle(Image(data, "image/svg+xml"), "o/x.svg")
    assert set(bundle) == {"text/plain"} and "saved to o/x.svg" in bundle["text/plain"]


def test_deep_nesting_ends() -> None:
    deep = f"<svg {NS}>" + "<g>" * 500 + "</g>" * 500 + "</svg>"
    svg = inert_svg(deep.encode())
    assert svg is not None and svg.count("<g>") < 100


def test_an_svg_result_is_sent_as_svg_text() -> None:
    data, meta = D.image_bundle(Image(ATTACKS[0].encode(), "image/svg+xml"), "o/x.svg", "cap")
    assert data["image/svg+xml"].startswith("<svg ") and "<circle" in data["image/svg+xml"]
    assert "script" not in data["image/svg+xml"] and meta == {"image/svg+xml": {"path": "o/x.svg"}}
    assert data["text/plain"].startswith("cap\n[image image/svg+xml")


def test_a_comparison_column_shows_the_cleaned_svg() -> None:
    column = D.Column("m", images=[(Image(ATTACKS[0].encode(), "image/svg+xml"), "o/x.svg")])
    html = D.grid_bundle([column])["text/html"]
    (encoded,) = re.findall(r"data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)", html)
    assert "<script" not in base64.b64decode(encoded).decode()
    broken = D.Column("m", images=[(Image(b"nope", "image/svg+xml"), "o/y.svg")])
    assert "not an SVG picture" in D.grid_bundle([broken])["text/html"]


def test_an_svg_is_saved_as_svg() -> None:
    assert Image(b"<svg/>", "image/svg+xml").extension == ".svg"
