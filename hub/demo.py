"""The demo launcher behind ``make run``: the hub on the embedded default plus the WhatsApp
provider stand-in, wired to each other with demo-only credentials.

Nothing here is used outside the demo: production takes the ``WHATSAPP_*`` settings from
its environment and talks to the real provider.  Values already in the environment win,
so ``WHATSAPP_APP_SECRET=... make run`` still works.  Ctrl-C stops both processes.
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
STANDIN_PORT_DEFAULT = 8081


def demo_environment(*, port: int, standin_port: int) -> dict[str, str]:
    """The environment both processes run with: the demo switch and the channel wiring."""
    env = dict(os.environ)
    env.setdefault("HUB_DEMO", "1")
    for name, value in DEMO_WHATSAPP.items():
        env.setdefault(name, value)
    env.setdefault("WHATSAPP_API_BASE_URL", f"http://127.0.0.1:{standin_port}")
    env["PORT"] = str(port)
    return env


def main() -> int:
    port = int(os.environ.get("PORT", "8000"))
    standin_port = int(os.environ.get("HUB_DEMO_STANDIN_PORT", STANDIN_PORT_DEFAULT))
    env = demo_environment(port=port, standin_port=standin_port)
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
    hub = subprocess.Popen(daphne_command(port=port), env=env)
    print(
        f"  WhatsApp customer (provider stand-in): http://127.0.0.1:{standin_port}/_standin/",
        flush=True,
    )

    def stop(*_: object) -> None:
        for process in (hub, standin):
            if process.poll() is None:
                process.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        while hub.poll() is None and standin.poll() is None:
            time.sleep(0.5)
    finally:
        stop()
        for process in (hub, standin):
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
    return hub.returncode or 0


if __name__ == "__main__":
    raise SystemExit(main())
