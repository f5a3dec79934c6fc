"""Token authentication as new-api's middleware/auth.go does it (spec §1.4, §1.5)."""

from __future__ import annotations

from ._errors import middleware_error, relay_error, task_error
from ._http import Request
from ._state import State

_GOOGLE_PREFIXES = ("/v1beta/models", "/v1beta/openai/models", "/v1/models/")
QUOTA_MESSAGE = "用户额度不足, 剩余额度: ＄0.000000"


def extract_key(req: Request) -> str:
    """The key the gateway would read for this path (later mechanisms override earlier)."""
    auth = req.header("authorization")
    path = req.path
    if ("/v1/messages" in path or "/v1/models" in path) and req.header("x-api-key"):
        auth = "Bearer " + req.header("x-api-key")
    if path.startswith(_GOOGLE_PREFIXES):
        if req.arg("key"):
            auth = "Bearer " + req.arg("key")
        if req.header("x-goog-api-key"):
            auth = "Bearer " + req.header("x-goog-api-key")
    auth = auth.strip()
    if auth[:7].lower() == "bearer ":
        auth = auth[7:].strip()
    return auth


def split_key(key: str) -> tuple[str, str]:
    """``(token, channel)``: strip ``sk-``, split on the first ``-``."""
    token, _, channel = key.removeprefix("sk-").partition("-")
    return token, channel


def authenticate(state: State, req: Request) -> str:
    """The caller's token, or raise the 401/403 the gateway would send."""
    key = extract_key(req)
    token, channel = split_key(key)
    if not _token_valid(state, key, token):
        raise middleware_error(401, "Invalid token", req.request_id)
    if channel:
        raise middleware_error(403, "普通用户不支持指定渠道", req.request_id)
    return token


def _token_valid(state: State, key: str, token: str) -> bool:
    if not token or token.startswith(("revoked", "exhausted")):
        return False
    with state.lock:
        if token in state.exhausted:
            return False
    allowed = state.options.api_keys
    if allowed is not None:
        return token in {split_key(k)[0] for k in allowed}
    return key.startswith("sk-") and token.isascii() and token.isalnum()


def check_balance(token: str, req: Request, task_route: bool) -> None:
    """403 ``insufficient_user_quota`` for ``sk-broke…`` keys (the pre-charge fails)."""
    if not token.startswith("broke"):
        return
    if task_route:
        raise task_error(403, "insufficient_user_quota", QUOTA_MESSAGE)
    raise relay_error(403, QUOTA_MESSAGE, req.request_id, code="insufficient_user_quota")
