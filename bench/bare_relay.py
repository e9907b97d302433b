"""Bench baseline: a bare ``websockets`` relay, the Python ceiling for this workload.

``/customer/<room>`` sockets send ``message.send`` frames; each is acknowledged to its sender
and forwarded, in-process, as a ``chat.message_created`` event to every ``/operator/<room>``
socket.  No persistence, no channel layer, no framework: one frame in, two frames out, as in
the hub.  Run: ``python -m bench.bare_relay --port N``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from collections import defaultdict

from websockets.asyncio.server import ServerConnection, serve

from bench.procstat import raise_nofile

operators: dict[str, set[ServerConnection]] = defaultdict(set)


async def handler(ws: ServerConnection) -> None:
    parts = (ws.request.path if ws.request else "").strip("/").split("/")
    if len(parts) != 2 or parts[0] not in {"customer", "operator"}:
        await ws.close(4404)
        return
    role, room = parts
    if role == "operator":
        operators[room].add(ws)
        try:
            await ws.send('{"type":"hello"}')
            await ws.wait_closed()
        finally:
            operators[room].discard(ws)
        return
    await ws.send('{"type":"session"}')
    async for raw in ws:
        frame = json.loads(raw)
        message = {"text": frame.get("text", ""), "direction": "in"}
        event = json.dumps(
            {"type": "event", "name": "chat.message_created", "data": {"message": message}},
            separators=(",", ":"),
        )
        for op in list(operators.get(room, ())):
            await op.send(event)
        await ws.send(json.dumps({"type": "ack", "client_id": frame.get("client_id")}))


async def main(port: int) -> None:
    raise_nofile()
    stop = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set_result, None)
    async with serve(
        handler, "127.0.0.1", port, compression=None, ping_interval=None, max_size=2**20
    ):
        await stop


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    asyncio.run(main(parser.parse_args().port))
