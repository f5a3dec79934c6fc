"""The batch confirmation in a real kernel: asked through the frontend's stdin, or one line.

A frontend that allows stdin (JupyterLab, also during Run All) gets an ``input_request``
and its answer decides; one that does not (nbconvert, papermill, this suite's default
``allow_stdin: False``) gets one line saying to add --yes.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

pytestmark = pytest.mark.kernel
pytest.importorskip("ipykernel")

from kernel_support import Kernel  # noqa: E402

CONFIRM = (
    "from tokenhot_jupyter._notebook._budget import confirm_batch\n"
    "from tokenhot_jupyter._notebook._session import session_of\n"
    "confirm_batch(session_of(get_ipython()), 2.5, 40, yes=False)\n"
    "print('sent')"
)


def _errors(messages: list[dict[str, Any]]) -> list[list[str]]:
    return [m["content"]["traceback"] for m in messages if m["msg_type"] == "error"]


def test_no_stdin_in_a_kernel_is_one_line_saying_to_add_yes(kernel: Kernel) -> None:
    reply, messages = kernel.run(CONFIRM)
    assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "NotConfirmed"
    (traceback,) = _errors(messages)
    assert len(traceback) == 1 and "no way to ask" in traceback[0] and "--yes" in traceback[0]


def _answer(kernel: Kernel, answer: str) -> tuple[dict[str, Any], list[dict[str, Any]], str]:
    """Run CONFIRM with stdin allowed and type ``answer`` at the prompt it asks."""
    content = {"code": CONFIRM, "silent": False, "store_history": True, "user_expressions": {},
               "allow_stdin": True, "stop_on_error": True}  # fmt: skip
    msg = kernel.client.session.msg(
        "execute_request", content, metadata={"cellId": uuid.uuid4().hex}
    )
    kernel.client.shell_channel.send(msg)
    request = kernel.client.get_stdin_msg(timeout=60)
    assert request["msg_type"] == "input_request"
    kernel.client.input(answer)
    msg_id = str(msg["header"]["msg_id"])
    messages = kernel.until_idle(msg_id)
    return kernel.reply(msg_id), messages, str(request["content"]["prompt"])


@pytest.mark.parametrize(("answer", "sent"), [("y", True), ("n", False)])
def test_the_frontend_is_asked_and_its_answer_decides(
    kernel: Kernel, answer: str, sent: bool
) -> None:
    reply, messages, prompt = _answer(kernel, answer)
    assert prompt == "Send 40 requests, about $2.50? [y/N] "
    printed = "".join(m["content"].get("text", "") for m in messages if m["msg_type"] == "stream")
    assert ("sent" in printed) is sent
    assert (reply["content"]["status"] == "ok") is sent
    if not sent:
        (traceback,) = _errors(messages)
        assert traceback[0].startswith("NotConfirmed: Not sent: 40 requests, about $2.50")
