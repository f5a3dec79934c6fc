"""Model lists: ``GET /v1/models`` (three shapes), ``/v1/models/{id}``, ``/v1beta/models`` (§3)."""

from __future__ import annotations

from typing import Any

from ._channels import SERVED, Served, endpoint_types
from ._context import Ctx
from ._http import Result, json_reply

CREATED = 1626777600
CREATED_RFC3339 = "2021-07-20T10:40:00Z"


def _model(served: Served) -> dict[str, Any]:
    return {
        "id": served.id,
        "object": "model",
        "created": CREATED,
        "owned_by": served.channel.owned_by,
        "supported_endpoint_types": endpoint_types(served),
    }


def _missing(model_id: str) -> Result:
    error = {
        "message": f"The model '{model_id}' does not exist",
        "type": "invalid_request_error",
        "param": "model",
        "code": "model_not_found",
    }
    return json_reply({"error": error})


def list_models(ctx: Ctx) -> Result:
    """The OpenAI list, or the Anthropic list, or (Google key) a 200 error object."""
    req = ctx.req
    if req.header("x-api-key") and req.header("anthropic-version"):
        return json_reply(_anthropic_list())
    if req.header("x-goog-api-key") or req.arg("key"):
        return _missing("")  # routed to the single-model lookup with an empty id
    return openai_list(ctx)


def openai_list(ctx: Ctx) -> Result:
    """``{"success":true,"object":"list","data":[…]}``."""
    return json_reply(
        {"success": True, "object": "list", "data": [_model(s) for s in SERVED.values()]}
    )


def _anthropic_list() -> dict[str, Any]:
    data = [
        {"id": s.id, "created_at": CREATED_RFC3339, "display_name": s.id, "type": "model"}
        for s in SERVED.values()
    ]
    return {"data": data, "first_id": data[0]["id"], "last_id": data[-1]["id"], "has_more": False}


def get_model(ctx: Ctx) -> Result:
    """One model object; an unknown id is a **200** with an error object (§3.3)."""
    model_id = ctx.req.params.get("model", "")
    served = SERVED.get(model_id)
    return json_reply(_model(served)) if served else _missing(model_id)


def gemini_list(ctx: Ctx) -> Result:
    """``GET /v1beta/models``: names without the ``models/`` prefix."""
    models = [
        {
            "name": s.id,
            "displayName": s.id,
            "description": f"{s.id} (simulated)",
            "supportedGenerationMethods": ["generateContent", "streamGenerateContent"],
        }
        for s in SERVED.values()
    ]
    return json_reply({"models": models, "nextPageToken": None})
