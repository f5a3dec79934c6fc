"""The resume store: rows keyed by what they asked, kept at once, shared by kernels."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tokenhot_jupyter._exceptions import (
    APITimeoutError,
    RateLimitError,
    SchemaMismatch,
    ServerError,
    TokenhotError,
)
from tokenhot_jupyter._media import encode_png
from tokenhot_jupyter._redact import register_secret
from tokenhot_jupyter._store._answers import (
    Answers,
    answer_key,
    chat_body,
    chat_result,
    error_body,
    error_from,
    image_body,
    image_result,
)
from tokenhot_jupyter._types import ChatResult, Image, ImageResult, Usage

PNG = encode_png(2, 2, bytes(12))
REQUEST = {"prompt": "Summarise row 1", "system": None, "params": {"temperature": 0.2}}


@pytest.fixture
def store(tmp_path: Path) -> Answers:
    return Answers(tmp_path / "answers.sqlite3")


def test_the_key_is_the_request_in_canonical_form() -> None:
    key = answer_key("chat", "gpt-5", REQUEST)
    reordered = {"params": {"temperature": 0.2}, "system": None, "prompt": "Summarise row 1"}
    assert answer_key("chat", "gpt-5", reordered) == key  # the order of keys does not matter
    changed = [
        answer_key("image", "gpt-5", REQUEST),
        answer_key("chat", "gpt-5.4", REQUEST),
        answer_key("chat", "gpt-5", {**REQUEST, "prompt": "Summarise row 2"}),
        answer_key("chat", "gpt-5", {**REQUEST, "system": "Be brief."}),
        answer_key("chat", "gpt-5", {**REQUEST, "params": {"temperature": 0.3}}),
        answer_key("chat", "gpt-5", {**REQUEST, "schema": {"type": "object"}}),
        answer_key("chat", "gpt-5", {**REQUEST, "inputs": b"another picture"}),
    ]
    assert len({key, *changed}) == len(changed) + 1


def test_a_chat_answer_comes_back_whole(store: Answers) -> None:
    result = ChatResult(
        text="An answer",
        model="gpt-5",
        usage=Usage(3, 4, 7),
        latency=1.5,
        reasoning="thought",
        finish_reason="stop",
        request_id="rid-1",
        images=[Image(PNG, "image/png")],
        raw={"choices": []},
    )
    store.put("k", "chat", "gpt-5", ok=True, body=chat_body(result, store))
    stored = Answers(store.path).get(["k", "absent"])  # another connection: on disk at once
    assert list(stored) == ["k"] and stored["k"].ok
    again = chat_result(stored["k"].body, store)
    assert again is not None
    assert (again.text, again.usage, again.reasoning, again.request_id, again.raw) == (
        "An answer", Usage(3, 4, 7), "thought", "rid-1", {"choices": []},
    )  # fmt: skip
    assert again.images[0].data == PNG


def test_pictures_are_files_and_a_missing_one_means_no_answer(store: Answers) -> None:
    result = ImageResult(images=[Image(PNG, "image/png", revised_prompt="a crane")], model="m")
    store.put("k", "image", "m", ok=True, body=image_body(result, store))
    files = list(store.media.iterdir())
    assert len(files) == 1 and files[0].read_bytes() == PNG
    again = image_result(store.get(["k"])["k"].body, store)
    assert again is not None and again.images[0].revised_prompt == "a crane"
    files[0].unlink()
    assert image_result(store.get(["k"])["k"].body, store) is None  # sent again, not lost


def test_a_failure_never_replaces_an_answer(store: Answers) -> None:
    answer = {"text": "kept"}
    failure = error_body(ServerError("HTTP 500", status_code=500))
    store.put("a", "chat", "m", ok=False, body=failure)
    store.put("a", "chat", "m", ok=True, body=answer)  # an answer replaces a failure ...
    store.put("a", "chat", "m", ok=False, body=failure)  # ... never the other way round
    assert store.get(["a"])["a"].ok and store.get(["a"])["a"].body == answer


@pytest.mark.parametrize(
    "error",
    [
        ServerError("Chat for m failed (HTTP 502).", status_code=502, request_id="r", model="m"),
        RateLimitError("Too many requests (HTTP 429).", status_code=429),
        APITimeoutError("No complete answer after 240 s.", model="m"),
        TokenhotError("Something else."),
        SchemaMismatch("'age' is not an integer", raw='{"age": "x"}', model="m"),
    ],
)
def test_a_stored_error_reads_as_it_did(store: Answers, error: TokenhotError) -> None:
    store.put("e", "chat", "m", ok=False, body=error_body(error))
    again = error_from(store.get(["e"])["e"].body)
    assert type(again) is type(error) and str(again) == str(error)
    for name in ("status_code", "code", "request_id", "model", "raw"):
        assert getattr(again, name, None) == getattr(error, name, None)


def test_many_keys_are_looked_up_at_once(store: Answers) -> None:
    for n in range(1200):
        store.put(f"k{n}", "chat", "m", ok=True, body={"text": str(n)})
    found = store.get(f"k{n}" for n in range(0, 2400, 2))
    assert len(found) == 600 and found["k1198"].body == {"text": "1198"}


def test_the_key_is_never_stored(store: Answers) -> None:
    secret = "sk-answersSECRET0123456789"
    register_secret(secret)
    store.put("k", "chat", "m", ok=True, body={"text": f"the key is {secret}"})
    on_disk = b"".join(f.read_bytes() for f in store.path.parent.glob("answers.sqlite3*"))
    assert b"the key is" in on_disk and secret.encode() not in on_disk  # WAL file included
    assert secret not in str(store.get(["k"])["k"].body)


WRITER = """
import sys
from tokenhot_jupyter._store._answers import Answers
store = Answers(__import__("pathlib").Path(sys.argv[1]))
for n in range(int(sys.argv[2])):
    store.put(f"{sys.argv[3]}-{n}", "chat", "m", ok=True, body={"text": str(n)})
"""


def test_two_kernels_write_at_once_and_lose_nothing(store: Answers) -> None:
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(store.path), "150", name],
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("a", "b")
    ]
    errors = [w.communicate(timeout=60)[1] for w in writers]
    assert [w.returncode for w in writers] == [0, 0], errors
    keys = [f"{name}-{n}" for name in ("a", "b") for n in range(150)]
    assert len(store.get(keys)) == 300


def test_an_unwritable_home_is_one_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    store = Answers(blocker / "answers.sqlite3")
    with pytest.raises(TokenhotError, match="answer store"):
        store.put("k", "chat", "m", ok=True, body={})
