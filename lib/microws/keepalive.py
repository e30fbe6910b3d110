"""Pings and the keepalive loop: imported only by connections that use them.

Kept out of ``connection`` so a board whose connections never ping does not carry
this code in its heap (MicroPython loads .mpy bytecode into RAM).
"""

import asyncio

from .errors import ConnectionClosed
from .frames import CLOSE_INTERNAL_ERROR, OP_PING
from .protocol import CLOSED, OPEN


async def ping(ws, data=b""):
    """Send a ping on ``ws``; returns an Event set when the matching pong arrives."""
    data = bytes(data.encode() if isinstance(data, str) else data)
    ev = asyncio.Event()
    if ws._pings is None:
        ws._pings = {}
    ws._pings[data] = ev
    await ws._send_frame(OP_PING, data)
    return ev


async def keepalive_loop(ws, interval):
    """Ping every ``interval`` s; no pong within ping_timeout -> the peer is dead: drop TCP (1011)."""
    p = ws.proto
    try:
        while p.state == OPEN:
            await asyncio.sleep(interval)
            if p.state != OPEN:
                break
            ev = await ping(ws)
            try:
                await asyncio.wait_for(_wait_pong(ws, ev), ws.ping_timeout or interval)
            except asyncio.TimeoutError:
                # Dead peer: no close handshake is possible, just drop TCP.
                p.fail(CLOSE_INTERNAL_ERROR, "keepalive ping timeout")
                p.out = ()
                await ws._close_tcp()
                return
    except (ConnectionClosed, OSError, asyncio.CancelledError):
        pass


async def _wait_pong(ws, ev):
    # Someone must read for the pong to be seen: the app's recv() if it is reading,
    # else this task (up to max_queue messages, which recv() then returns).
    while not ev.is_set():
        if len(ws._messages) >= ws.max_queue:
            await ev.wait()  # the app must read first; the timeout decides
        else:
            await ws._read(False, ev)
        if ws.proto.state == CLOSED:
            return
