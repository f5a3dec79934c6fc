"""CPU per request of `Client` against the openai SDK and plain httpx, on the same simulator.

The simulator runs in a process of its own without pacing, so this process's CPU time
(``time.process_time()``, every thread: our client's loop thread included) is the client's
work alone.  Three requests, each made by the three clients in a rotating order, ``--rounds``
times; every figure is CPU milliseconds per request, median with min–max, and the ratios
are taken round by round (interleaved, so load on the machine cancels out):

* **chat**: one non-streamed answer (its text);
* **stream**: a 500-piece streamed answer (its text, delta by delta);
* **image**: one gpt-image picture (its bytes: the openai SDK and httpx get base64 text,
  which is decoded, as `Client.image` does).

Targets: stream ≤ 2× plain httpx; chat ≤ 0.5× the openai SDK; image ≤ 1.0× the openai SDK.

    python benchmarks/bench_client.py [--rounds 15]
"""

from __future__ import annotations

import argparse
import base64
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import openai
from _sim import SimProcess
from _targets import Targets, spread

CHAT_MODEL, IMAGE_MODEL = "gpt-5.4-mini", "gpt-image-1.5"
PROMPT = "Name three primes and explain why they are prime."
STREAM_PROMPT = "Stream 500 words"
IMAGE_PROMPT = "A lighthouse at dusk"
# (request, how many of it one measurement makes)
REQUESTS = {"chat": 20, "stream": 4, "image": 6}
TARGETS = {"chat": ("openai", 0.5), "stream": ("httpx", 2.0), "image": ("openai", 1.0)}


def ours(sim: SimProcess) -> dict[str, Callable[[], Any]]:
    """The three requests made with `tokenhot_jupyter.Client`."""
    from tokenhot_jupyter import Client

    client = Client(sim.api_key, sim.base_url)
    return {
        "chat": lambda: client.chat(PROMPT, CHAT_MODEL).text,
        "stream": lambda: "".join(c.text for c in client.chat_stream(STREAM_PROMPT, CHAT_MODEL)),
        "image": lambda: client.image(IMAGE_PROMPT, IMAGE_MODEL).images[0].data,
    }


def sdk(sim: SimProcess) -> dict[str, Callable[[], Any]]:
    """The same with the openai SDK."""
    client = openai.OpenAI(base_url=sim.base_url + "/v1", api_key=sim.api_key)

    def chat() -> Any:
        reply = client.chat.completions.create(model=CHAT_MODEL, messages=_user(PROMPT))
        return reply.choices[0].message.content

    def stream() -> str:
        chunks = client.chat.completions.create(
            model=CHAT_MODEL, messages=_user(STREAM_PROMPT), stream=True
        )
        return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)

    def image() -> bytes:
        reply = client.images.generate(model=IMAGE_MODEL, prompt=IMAGE_PROMPT)
        assert reply.data and reply.data[0].b64_json
        return base64.b64decode(reply.data[0].b64_json)

    return {"chat": chat, "stream": stream, "image": image}


def plain(sim: SimProcess) -> dict[str, Callable[[], Any]]:
    """The same with a bare httpx.Client: the floor of doing it in Python."""
    http = httpx.Client(
        base_url=sim.base_url + "/v1",
        headers={"Authorization": f"Bearer {sim.api_key}"},
        timeout=60,
    )

    def chat() -> Any:
        body = {"model": CHAT_MODEL, "messages": _user(PROMPT)}
        return http.post("/chat/completions", json=body).json()["choices"][0]["message"]["content"]

    def stream() -> str:
        body = {"model": CHAT_MODEL, "messages": _user(STREAM_PROMPT), "stream": True}
        text = []
        with http.stream("POST", "/chat/completions", json=body) as reply:
            for line in reply.iter_lines():
                if line.startswith("data: {"):
                    choices = json.loads(line[6:])["choices"]
                    text.append(choices[0]["delta"].get("content") or "" if choices else "")
        return "".join(text)

    def image() -> bytes:
        body = {"model": IMAGE_MODEL, "prompt": IMAGE_PROMPT}
        reply = http.post("/images/generations", json=body).json()
        return base64.b64decode(reply["data"][0]["b64_json"])

    return {"chat": chat, "stream": stream, "image": image}


def _user(text: str) -> Any:  # the SDK's typed message params, as plain dicts
    return [{"role": "user", "content": text}]


def cpu_ms(call: Callable[[], Any], times: int) -> float:
    """CPU milliseconds of this process per call."""
    started = time.process_time()
    for _ in range(times):
        call()
    return (time.process_time() - started) / times * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()

    with SimProcess(token_delay=0) as sim:
        clients = {"tokenhot": ours(sim), "openai": sdk(sim), "httpx": plain(sim)}
        texts = {name: made["stream"]() for name, made in clients.items()}
        assert len(set(texts.values())) == 1, "the three clients read different streams"
        for made in clients.values():  # warm pools, imports and the live model list
            for call in made.values():
                call()
        figures: dict[str, dict[str, list[float]]] = {r: {c: [] for c in clients} for r in REQUESTS}
        names = list(clients)
        for i in range(args.rounds):
            for request, times in REQUESTS.items():
                for name in names[i % 3 :] + names[: i % 3]:
                    figures[request][name].append(cpu_ms(clients[name][request], times))
    print(f"CPU ms per request, {args.rounds} rounds (median, min–max):")
    for request, by_client in figures.items():
        row = "  ".join(f"{name} {spread(v, '{:.2f}')}" for name, v in by_client.items())
        print(f"  {request:<7} {row}")
    print("ratios, round by round:")
    targets = Targets()
    for request, by_client in figures.items():
        mine = by_client["tokenhot"]
        for other in ("openai", "httpx"):
            ratio = [a / b for a, b in zip(mine, by_client[other], strict=True)]
            label = f"{request:<7} CPU tokenhot / {other:<7}"
            if other == TARGETS[request][0]:
                targets.check(label, ratio, TARGETS[request][1], "{:.2f}")
            else:
                print(f"  {label}: {spread(ratio, '{:.2f}')}")
    targets.summary()


if __name__ == "__main__":
    main()
