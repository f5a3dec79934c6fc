"""Image generation and editing in every image family (spec §4.5, §7.5, §8).

Each family is an `ImageWire`: how it builds a body and where it sends it, whether the input
images go inline (downloaded first) or as a multipart upload, and which wire an edit takes.
`ImageCall` picks the wire from the catalog and does the common work.  Every reply shape is
normalised by `find_images` in the order of spec §8.4, and every URL is downloaded at once:
vendor result URLs expire.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from . import _exceptions as E
from ._catalog import GEMINI_RATIOS, Model
from ._chat import ChatCall, Message, download_media, gemini_content, gemini_parts
from ._http import Body, Connection, form_fields, json_body, set_if_given
from ._media import (
    Media,
    decode_data_uri,
    extract_markdown_images,
    load_inputs,
    load_media,
    sniff_mime,
)
from ._sse import parse_sse_text
from ._types import Image, ImageResult, Usage

Reply = tuple[Any, "str | None"]  # a reply's JSON (or its SSE chunks) and its request id


@dataclass(frozen=True)
class Found:
    """An image located in a reply: inline bytes or a URL still to fetch."""

    data: bytes | None = None
    mime: str = "image/png"
    url: str | None = None
    revised_prompt: str | None = None


@dataclass(kw_only=True)
class ImageCall:
    """One image request, checked against the catalog and ready to send."""

    conn: Connection
    model: Model
    prompt: str
    size: str | None
    n: int
    images: list[Media]
    mask: Media | None
    options: Mapping[str, Any]  # the model's own parameters (quality, image_size, ...)
    extra: Mapping[str, Any]  # anything else, into the body as it is

    @classmethod
    def of(
        cls,
        conn: Connection,
        model: Model,
        prompt: str,
        *,
        size: str | None,
        n: int,
        images: Any,
        mask: Any,
        params: Mapping[str, Any],
    ) -> ImageCall:
        """A call with its inputs loaded and checked, before anything is paid for."""
        count = int(model.check("n", n))
        inputs = load_inputs(images)
        _check_inputs(model, inputs, mask)
        extra = dict(params)
        options = {k: model.check(k, extra.pop(k)) for k in list(extra) if model.param(k)}
        masked = load_media(mask, what="mask") if mask is not None else None
        return cls(
            conn=conn,
            model=model,
            prompt=prompt,
            size=_check_size(model, size),
            n=count,
            images=inputs,
            mask=masked,
            options=options,
            extra=extra,
        )

    @property
    def wire(self) -> ImageWire:
        """The family wire for this call (its edit wire, when there are input images)."""
        wire = IMAGE_WIRES.get(self.model.family)
        if wire is None:
            raise E.InvalidInputError(
                f"{self.model.id} is a {self.model.kind} model; it cannot make images.",
                hint="Pick an image model (Client().models('image') lists them).",
                model=self.model.id,
            )
        return wire.edit if self.images and wire.edit else wire

    async def run(self) -> ImageResult:
        """Send, read whatever shape comes back, and download every image."""
        started = time.monotonic()
        wire = self.wire
        if wire.chat:
            return await self._via_chat(started, wire.build(self, self.images))
        raw, request_id = await self._send(wire)
        found = list(find_images(raw))
        if not found:
            raise E.ServerError(
                f"{self.model.id} answered without any image.",
                status_code=200,
                request_id=request_id,
                model=self.model.id,
                body=raw,
            )
        images = await asyncio.gather(*(self._fetch(f) for f in found))
        usage = (
            Usage.parse(raw.get("usage") or raw.get("usageMetadata"))
            if isinstance(raw, Mapping)
            else None
        )
        return ImageResult(
            images=list(images),
            model=self.model.id,
            latency=time.monotonic() - started,
            usage=usage,
            text=find_text(raw),
            request_id=request_id,
            raw=raw,
        )

    async def _send(self, wire: ImageWire) -> Reply:
        images = self.images
        if wire.inline:
            images = [await download_media(self.conn, m) for m in images]
        body = wire.build(self, images)
        if wire.form:
            body.update(form_fields({**self.options, **self.extra}, model=self.model.id))
            return await self._upload(wire.path(self), body)
        body.update(self.extra)
        response = await self.conn.request(
            "POST",
            wire.path(self),
            mode="write",
            model=self.model.id,
            what="image request",
            json=body,
        )
        return await _read(response, self.model.id), response.headers.get("x-oneapi-request-id")

    async def _upload(self, path: str, fields: Body) -> Reply:
        """A multipart edit: the input images as files (``image`` or ``image[]``), and a mask."""
        sources = [await download_media(self.conn, m) for m in self.images]
        name = "image" if len(sources) == 1 else "image[]"
        files = [(name, (m.name or "image.png", m.as_bytes(), m.mime)) for m in sources]
        if self.mask is not None:
            mask = await download_media(self.conn, self.mask)
            files.append(("mask", (mask.name or "mask.png", mask.as_bytes(), mask.mime)))
        response = await self.conn.request(
            "POST",
            path,
            mode="write",
            model=self.model.id,
            what="image edit",
            data=fields,
            files=files,
        )
        return await _read(response, self.model.id), response.headers.get("x-oneapi-request-id")

    async def _via_chat(self, started: float, extra: Body) -> ImageResult:
        message = Message("user", self.prompt, list(self.images))
        call = ChatCall(
            conn=self.conn, model=self.model, messages=[message], options={}, extra=extra
        )
        result = await call.run()
        if not result.images:
            raise E.ServerError(
                f"{self.model.id} answered without any image.", status_code=200, model=self.model.id
            )
        return ImageResult(
            images=result.images,
            model=self.model.id,
            latency=time.monotonic() - started,
            usage=result.usage,
            text=result.text,
            request_id=result.request_id,
            raw=result.raw,
        )

    async def _fetch(self, found: Found) -> Image:
        if found.data is not None:
            mime = sniff_mime(found.data, found.mime)
            return Image(found.data, mime, url=found.url, revised_prompt=found.revised_prompt)
        assert found.url is not None
        try:
            response = await self.conn.request("GET", found.url, mode="read", what="image download")
        except E.APIStatusError as exc:
            raise E.ResultUnavailableError(
                f"The {self.model.id} image could not be downloaded (HTTP {exc.status_code}).",
                model=self.model.id,
            ) from None
        data = response.content
        mime = sniff_mime(data, response.headers.get("content-type", found.mime).split(";")[0])
        return Image(data, mime, url=found.url, revised_prompt=found.revised_prompt)


# --- the families ----------------------------------------------------------------------------


def _openai_body(call: ImageCall, images: list[Media]) -> Body:
    body: Body = {"model": call.model.id, "prompt": call.prompt, "n": call.n}
    set_if_given(body, "size", call.size)
    body.update(call.options)
    if "b64-by-default" in call.model.quirks:
        body.setdefault("response_format", "b64_json")  # no second round trip for a URL
    return body


def _openai_fields(call: ImageCall, images: list[Media]) -> Body:
    fields: Body = {"model": call.model.id, "prompt": call.prompt, "n": str(call.n)}
    set_if_given(fields, "size", call.size)
    return fields


def _seedream_body(call: ImageCall, images: list[Media]) -> Body:
    body: Body = {"model": call.model.id, "prompt": call.prompt, "n": call.n}
    set_if_given(body, "size", call.size)
    body["response_format"] = "b64_json"
    if images:
        urls = [m.as_url() for m in images]
        body["image"] = urls[0] if len(urls) == 1 else urls
    body.update(call.options)
    return body


def _gemini_body(call: ImageCall, images: list[Media]) -> Body:
    body: Body = {
        "contents": [gemini_content(Message("user", call.prompt, images))],
        "generationConfig": {"responseModalities": ["TEXT", "IMAGE"]},
    }
    image_config = _gemini_image_config(call.size, call.options.get("image_size"))
    if image_config:
        body["generationConfig"]["imageConfig"] = image_config
    return body


def _gemini_image_config(size: str | None, image_size: Any) -> Body:
    config: Body = {}
    if size and size in GEMINI_RATIOS:
        config["aspectRatio"] = size
    if image_size:
        config["imageSize"] = str(image_size)
    return config


def _dashscope_body(call: ImageCall, images: list[Media]) -> Body:
    content: list[Body] = [{"image": m.as_url()} for m in images]
    content.append({"text": call.prompt})
    params: Body = {"n": call.n, "watermark": False}
    set_if_given(params, "size", call.size.replace("x", "*") if call.size else None)
    if "interleave" in call.model.quirks:
        # Tokenhot's documented wan2.6 body (spec §8.3.4): interleave when generating.
        params.update({"enable_interleave": not images, "max_images": call.n})
        if not images:
            params.pop("n")
    params.update(call.options)
    messages = [{"role": "user", "content": content}]
    return {"model": call.model.id, "input": {"messages": messages}, "parameters": params}


def _chat_extra(call: ImageCall, images: list[Media]) -> Body:
    """The fields on top of the chat completion: the caller's, and Google's image config."""
    google: Body = {}
    ratio = call.size if call.size in GEMINI_RATIOS else None
    config = {"aspect_ratio": ratio, "image_size": call.options.get("image_size")}
    config = {k: v for k, v in config.items() if v}
    if config:
        google["image_config"] = config  # snake_case is required here (spec §4.5)
    return {**call.extra, **({"extra_body": {"google": google}} if google else {})}


def _endpoint(call: ImageCall) -> str:
    return call.model.endpoint


def _edits(call: ImageCall) -> str:
    return "/v1/images/edits"


def _dashscope_path(call: ImageCall) -> str:
    return _edits(call) if call.images and "edits-route" in call.model.quirks else _endpoint(call)


@dataclass(frozen=True, kw_only=True)
class ImageWire:
    """How one image family builds and sends a request."""

    build: Callable[[ImageCall, list[Media]], Body]  # the body (form fields when `form`)
    path: Callable[[ImageCall], str] = _endpoint  # the family's endpoint in the catalog
    inline: bool = False  # the body carries the inputs' bytes: URLs are downloaded first
    form: bool = False  # a multipart upload: the inputs (and a mask) go as files
    mask: bool = False  # the family takes a mask with its input images
    edit: ImageWire | None = None  # the wire for requests with input images, when another
    chat: bool = False  # a chat completion (`build` adds to it); images come as data URIs


IMAGE_WIRES: dict[str, ImageWire] = {
    "openai-image": ImageWire(
        build=_openai_body,
        mask=True,
        edit=ImageWire(build=_openai_fields, path=_edits, form=True),
    ),
    # Seedream edits are JSON too: multipart is not forwarded on Volcengine channels.
    "seedream": ImageWire(build=_seedream_body),
    "gemini-image": ImageWire(build=_gemini_body, inline=True),
    "dashscope-image": ImageWire(build=_dashscope_body, path=_dashscope_path),
    "chat-image": ImageWire(build=_chat_extra, chat=True),  # Gemini images via chat (§4.5)
}


def _check_inputs(model: Model, inputs: list[Media], mask: Any) -> None:
    if inputs and not model.edits:
        raise E.InvalidInputError(
            f"{model.id} cannot edit images.",
            hint="Pick a model that edits (e.g. gpt-image-2, doubao-seedream-4-0-250828).",
            model=model.id,
        )
    if "images" in model.requires and not inputs:
        raise E.InvalidInputError(f"{model.id} edits images: pass images=[...].", model=model.id)
    wire = IMAGE_WIRES.get(model.family)
    if mask is not None and not (wire and wire.mask):
        raise E.InvalidInputError(
            f"{model.id} does not take a mask; gpt-image models do.", model=model.id
        )


def _check_size(model: Model, size: str | None) -> str | None:
    """Reject ``×`` and sizes the model does not offer, with the list of those it does."""
    if size is None:
        return None
    size = str(size).strip()
    if "×" in size:
        raise E.InvalidInputError(
            f"size={size!r} uses '×'; write it with a plain x, e.g. {size.replace('×', 'x')}.",
            model=model.id,
        )
    checked: str | None = model.check("size", size)
    return checked


# --- reading replies ---------------------------------------------------------------------------


async def _read(response: Any, model: str) -> Any:
    """JSON, or the chunks of an SSE reply gathered into a list (wan2.6 with stream)."""
    if "text/event-stream" in response.headers.get("content-type", ""):
        return {"chunks": [e.json() for e in parse_sse_text(response.text) if not e.done]}
    return json_body(response, model=model, what="image request")


def find_images(raw: Any) -> Iterator[Found]:
    """Every image in a reply, in the order of spec §8.4 (the one place for these guesses)."""
    if not isinstance(raw, Mapping):
        return
    for chunk in raw.get("chunks") or []:
        yield from find_images(chunk)
    yield from _openai_data(raw.get("data"))
    yield from _tokenhot_output(raw.get("output"))
    if not isinstance(raw.get("data"), list):
        yield from _dashscope_raw(raw.get("output"))
    elif not any(_has_image(item) for item in raw["data"]):
        yield from _dashscope_raw((raw.get("metadata") or {}).get("output"))
    yield from _gemini_inline(raw)
    yield from _markdown(raw)


def _openai_data(data: Any) -> Iterator[Found]:
    for item in data if isinstance(data, list) else []:
        if not isinstance(item, Mapping):
            continue
        revised = item.get("revised_prompt") or None
        if item.get("b64_json"):
            yield Found(base64.b64decode(item["b64_json"]), revised_prompt=revised)
        elif item.get("url"):
            yield _from_url(str(item["url"]), revised)


def _has_image(item: Any) -> bool:
    """Whether an OpenAI-style ``data`` item holds a picture (without decoding it)."""
    return isinstance(item, Mapping) and bool(item.get("b64_json") or item.get("url"))


def _tokenhot_output(output: Any) -> Iterator[Found]:
    # Tokenhot's wan2.6-image shape: the URL sits in "text" of a content item of type image.
    for item in output if isinstance(output, list) else []:
        for part in (item.get("content") or []) if isinstance(item, Mapping) else []:
            if isinstance(part, Mapping) and part.get("type") == "image":
                url = part.get("text") or part.get("image") or part.get("url")
                if url:
                    yield _from_url(str(url), None)


def _dashscope_raw(output: Any) -> Iterator[Found]:
    if not isinstance(output, Mapping):
        return
    for choice in output.get("choices") or []:
        for part in (choice.get("message") or {}).get("content") or []:
            if isinstance(part, Mapping) and part.get("image"):
                yield _from_url(str(part["image"]), None)
    for result in output.get("results") or []:
        if isinstance(result, Mapping) and result.get("url"):
            yield _from_url(str(result["url"]), None)


def _gemini_inline(raw: Mapping[str, Any]) -> Iterator[Found]:
    if "candidates" not in raw:
        return
    for part in gemini_parts(raw):
        inline = part.get("inlineData") or part.get("inline_data")
        if isinstance(inline, Mapping) and inline.get("data"):
            mime = inline.get("mimeType") or inline.get("mime_type") or "image/png"
            yield Found(base64.b64decode(inline["data"]), str(mime))


def _markdown(raw: Mapping[str, Any]) -> Iterator[Found]:
    for choice in raw.get("choices") or []:
        content = (choice.get("message") or {}).get("content")
        if isinstance(content, str) and "data:" in content:
            for data, mime in extract_markdown_images(content)[0]:
                yield Found(data, mime)


def _from_url(url: str, revised: str | None) -> Found:
    if url.startswith("data:"):
        data, mime = decode_data_uri(url)
        return Found(data, mime, revised_prompt=revised)
    return Found(url=url, revised_prompt=revised)


def find_text(raw: Any) -> str:
    """Text a model sent along with its images (Gemini parts, Tokenhot wan2.6 items)."""
    if not isinstance(raw, Mapping):
        return ""
    texts = (
        [p.get("text", "") for p in gemini_parts(raw) if "text" in p] if "candidates" in raw else []
    )
    output: Any = raw.get("output") if isinstance(raw.get("output"), list) else []
    for item in output:
        texts += [c.get("text", "") for c in item.get("content") or [] if c.get("type") == "text"]
    return "\n".join(t for t in texts if t).strip()
