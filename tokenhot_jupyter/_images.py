"""Image generation and editing in every image family (spec §4.5, §7.5, §8).

Every reply shape is normalised by `find_images` in the order of spec §8.4, and every
URL is downloaded at once: vendor result URLs expire.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from . import _exceptions as E
from ._catalog import GEMINI_RATIOS, Model
from ._chat import ChatCall, Message, download_media, gemini_content, gemini_parts
from ._http import Connection, form_fields, json_body
from ._media import Media, decode_data_uri, extract_markdown_images, load_media, sniff_mime
from ._sse import parse_sse_text
from ._types import Image, ImageResult, Usage

Body = dict[str, Any]


@dataclass(frozen=True)
class Found:
    """An image located in a reply: inline bytes or a URL still to fetch."""

    data: bytes | None = None
    mime: str = "image/png"
    url: str | None = None
    revised_prompt: str | None = None


@dataclass
class ImageCall:
    """One image request, resolved against the catalog."""

    conn: Connection
    model: Model
    prompt: str
    size: str | None
    n: int
    images: list[Media]
    mask: Media | None
    options: Mapping[str, Any]
    extra: Mapping[str, Any]

    async def run(self) -> ImageResult:
        """Send, read whatever shape comes back, and download every image."""
        started = time.monotonic()
        family = self.model.family
        if family == "chat-image":
            return await self._via_chat(started)
        sender = {
            "openai-image": self._openai,
            "seedream": self._seedream,
            "gemini-image": self._gemini,
            "dashscope-image": self._dashscope,
        }.get(family)
        if sender is None:
            raise E.InvalidInputError(
                f"{self.model.id} is a {self.model.kind} model; it cannot make images.",
                hint="Pick an image model (Client().models('image') lists them).",
                model=self.model.id,
            )
        raw, request_id = await sender()
        found = list(find_images(raw))
        if not found:
            raise E.ServerError(
                f"{self.model.id} answered without any image.", status_code=200,
                request_id=request_id, model=self.model.id, body=raw,
            )  # fmt: skip
        images = await asyncio.gather(*(self._fetch(f) for f in found))
        usage = (
            Usage.parse(raw.get("usage") or raw.get("usageMetadata"))
            if isinstance(raw, Mapping)
            else None
        )
        return ImageResult(
            list(images), self.model.id, time.monotonic() - started, usage,
            find_text(raw), request_id, raw=raw,
        )  # fmt: skip

    async def _post_json(self, path: str, body: Body) -> tuple[Any, str | None]:
        body.update(self.extra)
        response = await self.conn.request(
            "POST", path, mode="write", model=self.model.id, what="image request", json=body
        )
        return await _read(response, self.model.id), response.headers.get("x-oneapi-request-id")

    async def _openai(self) -> tuple[Any, str | None]:
        if self.images:
            return await self._openai_edit()
        body: Body = {"model": self.model.id, "prompt": self.prompt, "n": self.n}
        _put(body, "size", self.size)
        body.update(self.options)
        if self.model.id.startswith("dall-e"):
            body.setdefault("response_format", "b64_json")  # no second round trip for a URL
        return await self._post_json("/v1/images/generations", body)

    async def _openai_edit(self) -> tuple[Any, str | None]:
        fields: dict[str, str] = {"model": self.model.id, "prompt": self.prompt, "n": str(self.n)}
        _put(fields, "size", self.size)
        fields.update(form_fields({**self.options, **self.extra}, model=self.model.id))
        sources = [await download_media(self.conn, m) for m in self.images]
        name = "image" if len(sources) == 1 else "image[]"
        files = [(name, (m.name or "image.png", m.as_bytes(), m.mime)) for m in sources]
        if self.mask is not None:
            mask = await download_media(self.conn, self.mask)
            files.append(("mask", (mask.name or "mask.png", mask.as_bytes(), mask.mime)))
        response = await self.conn.request(
            "POST", "/v1/images/edits", mode="write", model=self.model.id,
            what="image edit", data=fields, files=files,
        )  # fmt: skip
        return await _read(response, self.model.id), response.headers.get("x-oneapi-request-id")

    async def _seedream(self) -> tuple[Any, str | None]:
        # Seedream edits must be JSON: multipart is not forwarded on Volcengine channels.
        body: Body = {"model": self.model.id, "prompt": self.prompt, "n": self.n}
        _put(body, "size", self.size)
        body["response_format"] = "b64_json"
        if self.images:
            urls = [m.as_url() for m in self.images]
            body["image"] = urls[0] if len(urls) == 1 else urls
        body.update(self.options)
        return await self._post_json("/v1/images/generations", body)

    async def _gemini(self) -> tuple[Any, str | None]:
        sources = [await download_media(self.conn, m) for m in self.images]
        body: Body = {
            "contents": [gemini_content(Message("user", self.prompt, sources))],
            "generationConfig": {"responseModalities": ["TEXT", "IMAGE"]},
        }
        image_config = _gemini_image_config(self.size, self.options.get("image_size"))
        if image_config:
            body["generationConfig"]["imageConfig"] = image_config
        return await self._post_json(f"/v1beta/models/{self.model.id}:generateContent", body)

    async def _dashscope(self) -> tuple[Any, str | None]:
        content: list[Body] = [{"image": m.as_url()} for m in self.images]
        content.append({"text": self.prompt})
        params: Body = {"n": self.n, "watermark": False}
        _put(params, "size", self.size.replace("x", "*") if self.size else None)
        if self.model.id.startswith("wan2.6"):
            # Tokenhot's documented wan2.6 body (spec §8.3.4): interleave when generating.
            params.update({"enable_interleave": not self.images, "max_images": self.n})
            if not self.images:
                params.pop("n")
        params.update(self.options)
        body: Body = {
            "model": self.model.id,
            "input": {"messages": [{"role": "user", "content": content}]},
        }
        body["parameters"] = params
        path = (
            "/v1/images/edits"
            if self.images and "edit" in self.model.id
            else "/v1/images/generations"
        )
        return await self._post_json(path, body)

    async def _via_chat(self, started: float) -> ImageResult:
        google: Body = {}
        ratio = self.size if self.size in GEMINI_RATIOS else None
        config = {"aspect_ratio": ratio, "image_size": self.options.get("image_size")}
        config = {k: v for k, v in config.items() if v}
        if config:
            google["image_config"] = config  # snake_case is required here (spec §4.5)
        extra = {**self.extra, **({"extra_body": {"google": google}} if google else {})}
        message = Message("user", self.prompt, list(self.images))
        result = await ChatCall(self.conn, self.model, [message], {}, extra).run()
        if not result.images:
            raise E.ServerError(
                f"{self.model.id} answered without any image.", status_code=200, model=self.model.id
            )
        return ImageResult(
            result.images, self.model.id, time.monotonic() - started, result.usage,
            result.text, result.request_id, raw=result.raw,
        )  # fmt: skip

    async def _fetch(self, found: Found) -> Image:
        if found.data is not None:
            return Image(
                found.data, sniff_mime(found.data, found.mime), found.url, found.revised_prompt
            )
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
        return Image(data, mime, found.url, found.revised_prompt)


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
    elif not any(True for _ in _openai_data(raw.get("data"))):
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


def _gemini_image_config(size: str | None, image_size: Any) -> Body:
    config: Body = {}
    if size and size in GEMINI_RATIOS:
        config["aspectRatio"] = size
    if image_size:
        config["imageSize"] = str(image_size)
    return config


def load_inputs(images: Any) -> list[Media]:
    """One or several image inputs, as Media."""
    if images is None:
        return []
    if isinstance(images, (list, tuple)):
        return [load_media(i) for i in images]
    return [load_media(images)]


def _put(body: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        body[key] = value


def check_size(model: Model, size: str | None) -> str | None:
    """Reject ``×`` and sizes the model does not offer, with the list of those it does."""
    if size is None:
        return None
    size = str(size).strip()
    if "×" in size:
        raise E.InvalidInputError(
            f"size={size!r} uses '×'; write it with a plain x, e.g. {size.replace('×', 'x')}.",
            model=model.id,
        )
    param = model.param("size")
    return param.check(size, model.id) if param else size
