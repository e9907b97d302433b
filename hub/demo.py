"""The demo launcher behind ``make run``: the hub on the embedded default plus the stand-ins
for the external systems — the WhatsApp provider and the bank's back office — wired to the
hub with demo-only credentials.

Nothing here is used outside the demo: production takes the ``WHATSAPP_*`` and
``BACKOFFICE_*`` settings from its environment and talks to the real systems.  Values
already in the environment win, so ``WHATSAPP_APP_SECRET=... make run`` still works.
Ctrl-C stops every process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from hub.serve import daphne_command

# Demo-only credentials, shared by the hub and its stand-in provider (never real secrets).
DEMO_WHATSAPP = {
    "WHATSAPP_APP_SECRET": "demo-app-secret",
    "WHATSAPP_VERIFY_TOKEN": "demo-verify-token",
    "WHATSAPP_ACCESS_TOKEN": "demo-access-token",
    "WHATSAPP_PHONE_NUMBER_ID": "100200300",
}
DEMO_BACKOFFICE_TOKEN = "demo-backoffice-token"
STANDIN_PORT_DEFAULT = 8081
BACKOFFICE_PORT_DEFAULT = 8082


def demo_environment(*, port: int, standin_port: int, backoffice_port: int) -> dict[str, str]:
    """The environment every process runs with: the demo switch and the wiring."""
    env = dict(os.environ)
    env.setdefault("HUB_DEMO", "1")
    for name, value in DEMO_WHATSAPP.items():
        env.setdefault(name, value)
    env.setdefault("WHATSAPP_API_BASE_URL", f"http://127.0.0.1:{standin_port}")
    env.setdefault("BACKOFFICE_TOKEN", DEMO_BACKOFFICE_TOKEN)
    env.setdefault("BACKOFFICE_BASE_URL", f"http://127.0.0.1:{backoffice_port}")
    env["PORT"] = str(port)
    return env


def main() -> int:
    port = int(os.environ.get("PORT", "8000"))
    standin_port = int(os.environ.get("HUB_DEMO_STANDIN_PORT", STANDIN_PORT_DEFAULT))
    backoffice_port = int(os.environ.get("HUB_DEMO_BACKOFFICE_PORT", BACKOFFICE_PORT_DEFAULT))
    env = demo_environment(port=port, standin_port=standin_port, backoffice_port=backoffice_port)
    standin = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "chat.channels.whatsapp_standin",
            "--port",
            str(standin_port),
            "--webhook-url",
            f"http://127.0.0.1:{port}/channels/whatsapp/webhook",
        ],
        env=env,
    )
    backoffice = subprocess.Popen(
        [sys.executable, "-m", "backoffice_bridge.standin", "--port", str(backoffice_port)],
        env=env,
    )
    hub = subprocess.Popen(daphne_command(port=port), env=env)
    processes = (hub, standin, backoffice)
    print(
        f"  WhatsApp customer (provider stand-in): http://127.0.0.1:{standin_port}/_standin/\n"
        f"  Back office (stand-in):                http://127.0.0.1:{backoffice_port}/_standin/calls",
        flush=True,
    )

    def stop(*_: object) -> None:
        for process in processes:
            if process.poll() is None:
                process.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        while all(process.poll() is None for process in processes):
            time.sleep(0.5)
    finally:
        stop()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
    return hub.returncode or 0


if __name__ == "__main__":
    raise SystemExit(main())
