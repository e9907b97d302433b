"""The one way the hub's web process is started: ``python -m hub.serve``.

``make run``, the ``Procfile``, the end-to-end tests and the benchmark all start daphne
through here, so its limits are set in one place:

* a deep listen backlog (daphne's ``-p`` gives 50; a reconnect storm of thousands of
  consoles overflows it and the kernel resets connections before HTTP);
* frame and message limits (daphne 4.2.2+ enforces them; 256 KiB leaves room for a
  console snapshot, while the hub itself refuses client frames over 64 KiB);
* a handshake timeout of 30 s instead of daphne's 5 s: under a storm the handshakes queue
  behind each other, and dropping one after 5 s throws away the work already done for it
  and makes the client come back (a retry livelock that resumed no console at all).

Environment: ``PORT`` (8000), ``HUB_BIND`` (127.0.0.1; ``0.0.0.0`` behind a load balancer),
``HUB_PROXY_HEADERS=1`` to trust ``X-Forwarded-For`` from the balancer.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

FRAME_LIMIT_BYTES = 262_144
HANDSHAKE_TIMEOUT_SECONDS = 30
LISTEN_BACKLOG = 4096


def daphne_args(*, port: int, bind: str = "127.0.0.1", proxy_headers: bool = False) -> list[str]:
    """daphne's command-line arguments (without the program name)."""
    args = [
        "-e",
        f"tcp:port={port}:interface={bind}:backlog={LISTEN_BACKLOG}",
        "--websocket-max-message-size",
        str(FRAME_LIMIT_BYTES),
        "--websocket-max-frame-size",
        str(FRAME_LIMIT_BYTES),
        "--websocket_connect_timeout",
        str(HANDSHAKE_TIMEOUT_SECONDS),
        "--ping-interval",
        "20",
        "--ping-timeout",
        "30",
    ]
    if proxy_headers:
        args.append("--proxy-headers")
    return [*args, "hub.asgi:application"]


def daphne_command(*, port: int, bind: str = "127.0.0.1", proxy_headers: bool = False) -> list[str]:
    """The full command: the daphne next to this interpreter (the venv's)."""
    daphne = str(Path(sys.executable).with_name("daphne"))
    return [daphne, *daphne_args(port=port, bind=bind, proxy_headers=proxy_headers)]


def main() -> None:
    command = daphne_command(
        port=int(os.environ.get("PORT", "8000")),
        bind=os.environ.get("HUB_BIND", "127.0.0.1"),
        proxy_headers=os.environ.get("HUB_PROXY_HEADERS") == "1",
    )
    os.execv(command[0], command)


if __name__ == "__main__":
    main()
