"""SVG results as SVG text that cannot run anything or fetch anything.

Frontends render ``image/svg+xml`` from its text, and some (nbconvert's HTML, nbviewer)
put that text straight into the page, so a picture from the gateway is rebuilt from an
allow-list instead of being trusted: SVG elements that draw (no ``<script>``, no
``<foreignObject>``, nothing from another namespace), their attributes except ``on*``
handlers, links only to ``#`` fragments of the picture itself (embedded ``data:``
pictures for ``<image>``), and no CSS or attribute that could load a URL (``url(...)``
other than ``url(#id)``, ``@import``, ``image-set``).  Entity declarations are refused.
Comments, processing instructions and the DOCTYPE are left out.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape, quoteattr

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
_XML_NS = "http://www.w3.org/XML/1998/namespace"
_ELEMENTS = frozenset({
    "svg", "g", "defs", "symbol", "use", "title", "desc", "switch", "view", "a",
    "path", "rect", "circle", "ellipse", "line", "polyline", "polygon", "text", "tspan",
    "textPath", "image", "marker", "pattern", "clipPath", "mask", "linearGradient",
    "radialGradient", "stop", "filter", "style", "animate", "animateMotion",
    "animateTransform", "set", "mpath", "feBlend", "feColorMatrix", "feComponentTransfer",
    "feComposite", "feConvolveMatrix", "feDiffuseLighting", "feDisplacementMap",
    "feDistantLight", "feDropShadow", "feFlood", "feFuncA", "feFuncB", "feFuncG", "feFuncR",
    "feGaussianBlur", "feImage", "feMerge", "feMergeNode", "feMorphology", "feOffset",
    "fePointLight", "feSpecularLighting", "feSpotLight", "feTile", "feTurbulence",
})  # fmt: skip
_HREFS = frozenset({"href", f"{{{XLINK_NS}}}href"})
_NAMES = {f"{{{XLINK_NS}}}href": "xlink:href", f"{{{_XML_NS}}}space": "xml:space"}
_NAMES[f"{{{_XML_NS}}}lang"] = "xml:lang"
_PICTURE = re.compile(r"(?i)\s*data:image/(?:png|jpeg|gif|webp);base64,[a-z0-9+/=\s]*$")
# Anything in CSS or an attribute value that could load a resource or run a script; a
# backslash could hide one (CSS escapes), so it goes too.
_FETCHES = re.compile(
    r"(?i)url\s*\(\s*['\"]?\s*(?!#)|@import|image-set|image\s*\(|cross-fade|element\s*\(|"
    r"\\|javascript|vbscript|data\s*:"
)
_ANIMATED = frozenset({"animate", "animateMotion", "animateTransform", "set"})
_DEPTH = 64  # deeper groups are left out (no picture needs them; recursion must end)


def inert_svg(data: bytes) -> str | None:
    """The picture as SVG text that runs and fetches nothing, or None if it is not one."""
    text = data.decode("utf-8", "replace")
    if re.search(r"(?i)<!ENTITY", text):
        return None  # entity expansion is how XML bombs work; an SVG from a model needs none
    try:
        root = ET.fromstring(text)
    except ET.ParseError:
        return None
    if _local(root.tag) != "svg" or not _svg_namespace(root.tag):
        return None
    out: list[str] = []
    _write(root, out, 0)
    return "".join(out)


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _svg_namespace(tag: str) -> bool:
    return not tag.startswith("{") or tag.startswith(f"{{{SVG_NS}}}")


def _allowed(element: ET.Element) -> bool:
    tag = element.tag
    if not isinstance(tag, str) or not _svg_namespace(tag) or _local(tag) not in _ELEMENTS:
        return False
    if _local(tag) == "style":
        return not _FETCHES.search(element.text or "")
    if _local(tag) in _ANIMATED:  # animating a link or a handler is how SVG scripts sneak in
        target = (element.get("attributeName") or "").lower()
        return not (target.startswith("on") or target.endswith("href") or target == "style")
    return True


def _write(element: ET.Element, out: list[str], depth: int) -> None:
    tag = _local(element.tag)
    attributes = "".join(f" {name}={quoteattr(value)}" for name, value in _attributes(element))
    namespaces = "" if depth else f' xmlns="{SVG_NS}" xmlns:xlink="{XLINK_NS}"'
    out.append(f"<{tag}{namespaces}{attributes}>{escape(element.text or '')}")
    for child in element if depth < _DEPTH else ():
        if _allowed(child):
            _write(child, out, depth + 1)
        out.append(escape(child.tail or ""))  # text after a child belongs to this element
    out.append(f"</{tag}>")


def _attributes(element: ET.Element) -> list[tuple[str, str]]:
    kept = []
    for name, value in element.attrib.items():
        written = _NAMES.get(name, name)
        if "{" in written or written.lower().startswith("on") or written.startswith("xmlns"):
            continue
        if name in _HREFS:
            if value.strip().startswith("#") or (
                _local(element.tag) in ("image", "feImage") and _PICTURE.match(value)
            ):
                kept.append((written, value))
        elif not _FETCHES.search(value):
            kept.append((written, value))
    return kept
