"""``python -m tokenhot_jupyter.simulator``: run the gateway simulator until SIGINT/SIGTERM.

The first stdout line is the base URL (e.g. ``http://127.0.0.1:8765``); hints go to stderr.
The default ``--speed 4`` runs simulated time four times faster than real time, so a 5 s
Seedance video (90 simulated seconds of work) finishes in about 23 real seconds.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from ._simulator import Simulator

DEFAULT_SPEED = 4.0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tokenhot_jupyter.simulator",
        description="A local simulator of the Tokenhot AI gateway (offline demos and tests).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    parser.add_argument("--port", type=int, default=0, help="port (default 0: pick a free one)")
    parser.add_argument(
        "--speed",
        type=float,
        default=DEFAULT_SPEED,
        help=f"simulated seconds per real second (default {DEFAULT_SPEED:g})",
    )
    parser.add_argument("--key", default=None, help="accept only this key (default: any sk-… key)")
    parser.add_argument(
        "--token-delay", type=float, default=0.02, help="seconds per streamed token"
    )
    parser.add_argument(
        "--image-delay", type=float, default=0.0, help="seconds added to image calls"
    )
    parser.add_argument("--wan-shape2", action="store_true", help="wan2.6-image answers in shape 2")
    parser.add_argument("--ping", action="store_true", help="chat streams carry a ': PING' comment")
    parser.add_argument(
        "--rate-limit",
        type=float,
        default=None,
        help="billable requests per simulated second per key; over it, 429 (default: none)",
    )
    parser.add_argument(
        "--rate-burst", type=float, default=None, help="the limit's burst (default: 1 s worth)"
    )
    parser.add_argument(
        "--retry-after", action="store_true", help="over-limit 429s carry a Retry-After header"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the simulator; return the exit status."""
    args = _parser().parse_args(argv)
    sim = Simulator(
        args.host,
        args.port,
        speed=args.speed,
        api_keys=[args.key] if args.key else None,
        token_delay=args.token_delay,
        image_delay=args.image_delay,
        wan_shape2=args.wan_shape2,
        ping=args.ping,
        rate_limit=args.rate_limit,
        rate_burst=args.rate_burst,
        rate_retry_after=args.retry_after,
    )
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    sim.start()
    print(sim.base_url, flush=True)
    print(
        f"Tokenhot gateway simulator at {sim.base_url} (speed {args.speed:g}x); "
        f"use key {args.key or sim.api_key + ' (or any sk-… key)'}.",
        file=sys.stderr,
    )
    print(
        f"OpenAI SDK: base_url='{sim.base_url}/v1'. Faults: header X-Sim-Fault or "
        f"POST {sim.base_url}/__sim__/faults. Ctrl-C stops.",
        file=sys.stderr,
        flush=True,
    )
    while not stop.wait(0.2):
        pass
    sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
