"""``POST /v1/images/generations`` and ``/v1/images/edits`` for every image channel (§8)."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable, Iterator
from typing import Any

from . import media
from ._context import Ctx
from ._errors import relay_error
from ._http import FilePart, Result, Stream, json_reply, sse
from ._state import StoredFile

DAY = 86400.0
KNOWN_FIELDS = frozenset(
    [
        "model",
        "prompt",
        "n",
        "size",
        "quality",
        "response_format",
        "style",
        "user",
        "background",
        "moderation",
        "output_format",
        "output_compression",
        "partial_images",
        "stream",
        "image",
        "images",
        "mask",
        "input_fidelity",
        "watermark",
        "extra_fields",
    ]
)
DALLE_SIZES = {
    "dall-e-2": ("256x256", "512x512", "1024x1024"),
    "dall-e-3": ("1024x1024", "1024x1792", "1792x1024"),
}
DASHSCOPE_PARAMETERS = frozenset(
    [
        "size",
        "n",
        "steps",
        "scale",
        "watermark",
        "prompt_extend",
        "thinking_mode",
        "enable_sequential",
        "bbox_list",
        "color_palette",
        "seed",
    ]
)


def generations(ctx: Ctx) -> Result:
    """Image generation, by the model's channel family."""
    return _FAMILIES[ctx.model.family](ctx, False)


def edits(ctx: Ctx) -> Result:
    """Image edits (multipart or JSON), by the model's channel family."""
    return _FAMILIES[ctx.model.family](ctx, True)


def _validate(ctx: Ctx) -> int:
    """The gateway's own image checks (relay/helper/valid_request.go); returns ``n``."""
    f = ctx.fields
    if not f.get("model"):
        raise ctx.invalid("model is required")
    size = str(f.get("size") or "")
    if "×" in size:
        raise ctx.invalid(
            "size an unexpected error occurred in the parameter, "
            "please use 'x' instead of the multiplication sign '×'"
        )
    allowed = DALLE_SIZES.get(ctx.model.id)
    if allowed and size and size not in allowed:
        raise ctx.invalid(f"size must be one of {', '.join(allowed)} for {ctx.model.id}")
    try:
        n = int(f.get("n") or 1)
    except (TypeError, ValueError):
        raise ctx.invalid("n must be an integer") from None
    if not 1 <= n <= 128:
        raise ctx.invalid("n must be between 1 and 128")
    return n


def _pixels(ctx: Ctx, size: Any, default: tuple[int, int]) -> tuple[int, int]:
    try:
        return media.image_size(str(size) if size else None, default)
    except ValueError as exc:
        raise relay_error(
            400,
            str(exc),
            ctx.rid,
            code="invalid_value",
            type_="invalid_request_error",
            param="size",
        ) from None


def _host(ctx: Ctx, data: bytes) -> str:
    """Put a PNG on the simulated vendor file host for 24 simulated hours."""
    now = ctx.now()
    stored = StoredFile("image/png", lambda: data, now, now + DAY, data)
    return ctx.state.add_file(f"{secrets.token_urlsafe(18)}.png", stored)


def _item(ctx: Ctx, data: bytes, fmt: str) -> dict[str, Any]:
    if fmt == "b64_json":
        return {"b64_json": base64.b64encode(data).decode()}
    return {"url": _host(ctx, data)}


def _pictures(ctx: Ctx, prompt: str, n: int, size: tuple[int, int]) -> list[bytes]:
    ctx.state.wait(ctx.state.options.image_delay)
    return [media.png(prompt if i == 0 else f"{prompt} #{i + 1}", *size) for i in range(n)]


# --- OpenAI-type: gpt-image-*, dall-e-* (§8.3.1) -------------------------------------------


def _input_images(ctx: Ctx) -> list[FilePart]:
    return [f for f in ctx.req.files if f.name == "image" or f.name.startswith("image[")]


def _openai(ctx: Ctx, edit: bool) -> Result:
    n = _validate(ctx)
    f = ctx.fields
    if edit and not (_input_images(ctx) or f.get("image") or f.get("images")):
        raise ctx.invalid("image is required")
    model = ctx.model.id
    default_fmt = "b64_json" if model.startswith("gpt-image") and model != "gpt-image-2" else "url"
    fmt = str(f.get("response_format") or default_fmt)
    prompt = str(f.get("prompt") or "")
    if edit:
        prompt = f"{prompt} (edit of {max(1, len(_input_images(ctx)))} image(s))"
    size = _pixels(ctx, f.get("size"), (1024, 1024))
    pictures = _pictures(ctx, prompt, n, size)
    if model.startswith("gpt-image") and str(f.get("stream")).lower() == "true":
        return Stream(_image_stream(ctx, pictures[0], "image_edit" if edit else "image_generation"))
    data = [_item(ctx, p, fmt) for p in pictures]
    if model == "dall-e-3":
        for item in data:
            item["revised_prompt"] = f"A detailed rendering of: {f.get('prompt') or ''}"
    body: dict[str, Any] = {"created": int(ctx.now()), "data": data}
    if model.startswith("gpt-image"):
        body.update(
            background="opaque",
            output_format="png",
            quality="high",
            size=f"{size[0]}x{size[1]}",
            usage=_usage(prompt, size, n),
        )
    return json_reply(body)


def _usage(prompt: str, size: tuple[int, int], n: int) -> dict[str, Any]:
    text, out = max(1, len(prompt) // 4), n * size[0] * size[1] // 256
    return {
        "total_tokens": text + out,
        "input_tokens": text,
        "output_tokens": out,
        "input_tokens_details": {"text_tokens": text, "image_tokens": 0},
    }


def _image_stream(ctx: Ctx, picture: bytes, prefix: str) -> Iterator[bytes]:
    kind = f"{prefix}.completed"
    data = {
        "type": kind,
        "b64_json": base64.b64encode(picture).decode(),
        "created_at": int(ctx.now()),
        "output_format": "png",
    }
    yield sse(data, event=kind)


# --- Volcengine Seedream (§8.3.2) ---------------------------------------------------------


def _seedream(ctx: Ctx, edit: bool) -> Result:
    if ctx.req.is_multipart:
        # The multipart branch is disabled upstream: Ark receives no usable body.
        message = (
            "The parameter `prompt` specified in the request is not valid: "
            "missing required parameter."
        )
        raise relay_error(
            400, message, ctx.rid, code="MissingParameter", type_="BadRequest", param="prompt"
        )
    _validate(ctx)
    body = {k: v for k, v in ctx.fields.items() if k in KNOWN_FIELDS}
    body["model"] = ctx.model.upstream_name
    ctx.forward(body)
    refs = body.get("image") or []
    count = len(refs) if isinstance(refs, list) else 1
    prompt = str(body.get("prompt") or "")
    if count:
        prompt = f"{prompt} (with {count} reference image(s))"
    size = _pixels(ctx, body.get("size") or "2K", (2048, 2048))
    pictures = _pictures(ctx, prompt, 1, size)  # n is not an Ark field: one image
    fmt = str(body.get("response_format") or "url")
    data = [{**_item(ctx, p, fmt), "size": f"{size[0]}x{size[1]}"} for p in pictures]
    tokens = size[0] * size[1] // 256
    usage = {"generated_images": len(data), "output_tokens": tokens, "total_tokens": tokens}
    return json_reply(
        {"model": ctx.model.upstream_name, "created": int(ctx.now()), "data": data, "usage": usage}
    )


# --- DashScope qwen-image / wan (§8.3.3, §8.3.4) -------------------------------------------


def _dashscope(ctx: Ctx, edit: bool) -> Result:
    n = _validate(ctx)
    body, prompt, images = _dashscope_body(ctx)
    ctx.forward(body)
    if not prompt:
        raise relay_error(
            400,
            "Input text is empty or missing",
            ctx.rid,
            code="InvalidParameter",
            type_="invalid_request_error",
        )
    default = (1664, 928) if ctx.model.id.startswith("qwen-image") else (1024, 1024)
    size = _pixels(ctx, body["parameters"].get("size"), default)
    label = f"{prompt} (with {images} input image(s))" if images else prompt
    pictures = _pictures(ctx, label, n, size)
    urls = [_host(ctx, p) for p in pictures]
    if ctx.model.id.startswith("wan2.6") and ctx.state.options.wan_shape2:
        return _shape2(ctx, prompt, urls, size)
    b64 = str(ctx.fields.get("response_format") or "") == "b64_json"
    data = [
        {
            "url": "" if b64 else url,
            "b64_json": base64.b64encode(p).decode() if b64 else "",
            "revised_prompt": "",
        }
        for url, p in zip(urls, pictures, strict=True)
    ]
    metadata = {
        "request_id": ctx.rid,
        "output": {
            "choices": [
                {
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": [{"image": u} for u in urls]},
                }
            ]
        },
        "usage": {"width": size[0], "height": size[1], "image_count": len(urls)},
    }
    return json_reply({"created": int(ctx.now()), "data": data, "metadata": metadata})


def _dashscope_body(ctx: Ctx) -> tuple[dict[str, Any], str, int]:
    """The DashScope body the gateway builds: (body, prompt text, input image count)."""
    f = ctx.fields
    native = f.get("input") if isinstance(f.get("input"), dict) else None
    if native is not None:
        items = [i for m in native.get("messages") or [] for i in m.get("content") or []]
        prompt = " ".join(str(i["text"]) for i in items if isinstance(i, dict) and i.get("text"))
        images = [i["image"] for i in items if isinstance(i, dict) and i.get("image")]
        given: dict[str, Any] = f["parameters"] if isinstance(f.get("parameters"), dict) else {}
    else:
        prompt, images = str(f.get("prompt") or ""), [_data_url(p) for p in _input_images(ctx)]
        given = {k: f[k] for k in ("size", "n", "watermark") if k in f}
        if "size" in given:
            given["size"] = str(given["size"]).replace("x", "*")
    parameters = {k: v for k, v in given.items() if k in DASHSCOPE_PARAMETERS}
    content = [*({"image": i} for i in images), {"text": prompt}]
    body: dict[str, Any] = {
        "model": ctx.model.upstream_name,
        "input": {"messages": [{"role": "user", "content": content}]},
        "parameters": parameters,
    }
    if native is not None and native.get("negative_prompt"):
        body["input"]["negative_prompt"] = native["negative_prompt"]
    return body, prompt, len(images)


def _data_url(part: FilePart) -> str:
    return f"data:{part.content_type};base64,{base64.b64encode(part.data).decode()}"


def _shape2(ctx: Ctx, prompt: str, urls: list[str], size: tuple[int, int]) -> Result:
    """Tokenhot's documented wan2.6-image reply (shape 2), SSE when ``parameters.stream``."""
    text = {"type": "text", "text": f"A simulated picture of: {prompt}"}
    images = [{"type": "image", "text": url} for url in urls]
    tokens_in, tokens_out = max(1, len(prompt) // 4), size[0] * size[1] // 1024
    usage = {
        "input_tokens": tokens_in,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": tokens_out,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": tokens_in + tokens_out,
    }
    params = ctx.fields.get("parameters") or {}
    if isinstance(params, dict) and params.get("stream"):
        chunks = [
            {"output": [{"type": "message", "content": [text]}], "request_id": ctx.rid},
            {
                "output": [{"type": "message", "content": images}],
                "usage": usage,
                "request_id": ctx.rid,
            },
        ]
        return Stream(sse(c) for c in chunks)
    body = {
        "output": [{"type": "message", "content": [text, *images]}],
        "usage": usage,
        "request_id": ctx.rid,
    }
    return json_reply(body)


_FAMILIES: dict[str, Callable[[Ctx, bool], Result]] = {
    "openai-image": _openai,
    "seedream": _seedream,
    "dashscope-image": _dashscope,
}
