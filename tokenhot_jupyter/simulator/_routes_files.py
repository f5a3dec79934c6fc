"""The simulated vendor file host: ``GET /__files/<name>`` (no key), like a signed URL.

Result URLs of images and videos point here; a file answers 404 before it exists and 403
once it has expired (24 simulated hours after it was made, unless a fault says otherwise).
"""

from __future__ import annotations

from ._context import Ctx
from ._http import Reply, Result


def hosted_file(ctx: Ctx) -> Result:
    """``GET /__files/<name>``: the simulated vendor file host (signed URLs that expire)."""
    with ctx.state.lock:
        stored = ctx.state.files.get(ctx.req.params.get("name", ""))
    now = ctx.now()
    if stored is None or now < stored.available_at:
        body = b"<Error><Code>NoSuchKey</Code><Message>No such key.</Message></Error>"
        return Reply(404, body, "application/xml")
    if now >= stored.expires_at:
        body = b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"
        return Reply(403, body, "application/xml")
    return Reply(200, stored.content(), stored.content_type, {"Cache-Control": "max-age=86400"})
