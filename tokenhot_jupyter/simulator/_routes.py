"""The route table of the simulated gateway: data, not an if-ladder."""

from __future__ import annotations

from . import _routes_admin as admin
from . import _routes_anthropic as anthropic
from . import _routes_audio as audio
from . import _routes_chat as chat
from . import _routes_files as files
from . import _routes_gemini as gemini
from . import _routes_images as images
from . import _routes_models as models
from . import _routes_responses as responses
from . import _routes_video as video
from ._context import Ctx, Handler, Route
from ._http import Result, json_reply


def not_implemented(ctx: Ctx) -> Result:
    """501 ``api_not_implemented`` (controller/relay.go ``RelayNotImplemented``)."""
    error = {
        "message": "API not implemented",
        "type": "new_api_error",
        "param": "",
        "code": "api_not_implemented",
    }
    return json_reply({"error": error}, 501)


def _relay(path: str, handler: Handler, kind: str, style: str = "A", default: str = "") -> Route:
    """A billable relay route whose model comes from the body."""
    return Route("POST", path, handler, kind, "body", default, style, billable=True)


def _task(path: str, handler: Handler) -> Route:
    """A billable video-task create route (envelope C)."""
    return Route("POST", path, handler, model="body", style="C", billable=True)


def _gemini(path: str) -> Route:
    """A Gemini native route: model in the path, Google errors wrapped in envelope A."""
    return Route("POST", path, gemini.generate, "gemini", "path", style="G", billable=True)


ROUTES: tuple[Route, ...] = (
    # simulator control and the simulated vendor file host (no key)
    Route("GET", "/__sim__", admin.status, auth=False),
    Route("GET", "/__sim__/faults", admin.list_faults, auth=False),
    Route("POST", "/__sim__/faults", admin.add_fault, auth=False),
    Route("DELETE", "/__sim__/faults", admin.clear_faults, auth=False),
    Route("GET", "/__sim__/clock", admin.clock, auth=False),
    Route("POST", "/__sim__/clock", admin.clock, auth=False),
    Route("GET", "/__sim__/requests", admin.requests, auth=False),
    Route("DELETE", "/__sim__/requests", admin.requests, auth=False),
    Route("POST", "/__sim__/tokens", admin.tokens, auth=False),
    Route("GET", "/__sim__/tasks", admin.tasks, auth=False),
    Route("GET", "/__files/{name}", files.hosted_file, auth=False),
    # model lists (§3)
    Route("GET", "/v1/models", models.list_models),
    Route("GET", "/v1/models/{model}", models.get_model),
    Route("DELETE", "/v1/models/{model}", not_implemented),
    Route("GET", "/v1beta/models", models.gemini_list),
    Route("GET", "/v1beta/openai/models", models.openai_list),
    # Gemini native (§7)
    _gemini("/v1beta/models/{model}:{action}"),
    _gemini("/v1/models/{model}:{action}"),
    # chat (§4-6)
    _relay("/v1/chat/completions", chat.chat_completions, "chat"),
    _relay("/v1/completions", chat.completions, "completions"),
    _relay("/v1/responses", responses.responses, "responses"),
    _relay("/v1/responses/compact", responses.responses, "responses"),
    _relay("/v1/messages", anthropic.messages, "messages", "B"),
    # images (§8)
    _relay("/v1/images/generations", images.generations, "images", default="dall-e-3"),
    _relay("/v1/images/edits", images.edits, "edits", default="dall-e-3"),
    _relay("/v1/edits", images.edits, "edits", default="dall-e-3"),
    Route("POST", "/v1/images/variations", not_implemented),
    Route("*", "/v1/files{*}", not_implemented),
    Route("*", "/v1/fine-tunes{*}", not_implemented),
    # audio (§9)
    _relay("/v1/audio/speech", audio.speech, "speech", default="tts-1"),
    _relay("/v1/audio/transcriptions", audio.transcriptions, "stt", default="whisper-1"),
    _relay("/v1/audio/translations", audio.translations, "stt", default="whisper-1"),
    # video tasks (§10)
    _task("/v1/video/generations", video.create),
    Route("GET", "/v1/video/generations/{task_id}", video.poll_generic, style="C"),
    _task("/v1/videos", video.create),
    Route("GET", "/v1/videos/{task_id}", video.poll_openai, style="C"),
    Route("GET", "/v1/videos/{task_id}/content", video.content, style="D"),
    Route("POST", "/v1/videos/{task_id}/remix", video.remix, style="C", billable=True),
)
