"""Pings and keepalive (a client's loop, a server's sweep): imported only when used.

Kept out of ``connection`` so a board whose connections never ping does not carry
this code in its heap (MicroPython loads .mpy bytecode into RAM).
"""

import asyncio

from .errors import ConnectionClosed
from .frames import const  # MicroPython's, or a stand-in on CPython

# RFC 6455 numbers this module uses, as private const()s: see the note in frames.py.
_OP_PING = const(9)
_CLOSE_INTERNAL_ERROR = const(1011)
_OPEN = const(1)
_CLOSED = const(3)


async def ping(ws, data=b""):
    """Send a ping on ``ws``; returns an Event set when the matching pong arrives."""
    data = bytes(data.encode() if isinstance(data, str) else data)
    ev = asyncio.Event()
    if ws._pings is None:
        ws._pings = {}
    ws._pings[data] = ev
    await ws._send_frame(_OP_PING, data)
    return ev


async def keepalive_loop(ws, interval):
    """A client's keepalive: ping every ``interval`` s; no pong within ping_timeout ->
    the peer is dead: drop TCP (1011)."""
    try:
        while ws.proto.state == _OPEN:
            await asyncio.sleep(interval)
            if ws.proto.state != _OPEN or not await probe(ws, ws.ping_timeout or interval):
                return
    except asyncio.CancelledError:
        pass


async def keepalive_sweep(connections, interval, timeout=None):
    """A server's keepalive: every ``interval`` s, probe each open connection in
    ``connections`` (no pong within ``timeout``, else ``interval``, s -> dropped).
    One task per server; a probe task per connection lives only while its ping is
    out, so an idle connection costs no task of its own (a task per connection for
    its whole life cost 288 B of heap each on the unix port)."""
    timeout = timeout or interval  # as keepalive_loop
    while True:
        await asyncio.sleep(interval)
        for ws in list(connections):
            if ws.proto.state == _OPEN and not ws._pings:  # not while a ping is out
                try:
                    asyncio.create_task(probe(ws, timeout))
                except MemoryError:
                    pass  # a full heap: this connection is probed next time


async def probe(ws, timeout):
    """Ping ``ws`` and wait for the pong. None within ``timeout`` s (sending the ping
    included: a dead peer's full send buffer blocks it) -> the peer is dead: fail the
    connection with 1011 and drop TCP, no close handshake. True when the pong came."""
    try:
        await asyncio.wait_for(_ping_pong(ws), timeout)
        return True
    except asyncio.TimeoutError:
        p = ws.proto
        p.fail(_CLOSE_INTERNAL_ERROR, "keepalive ping timeout")
        p.out = ()
        await ws._close_tcp(True)
    except (ConnectionClosed, OSError):
        pass  # closed meanwhile: nothing to keep alive
    return False


async def _ping_pong(ws):
    # Someone must read for the pong to be seen: the app's recv() if it is reading,
    # else this task (up to max_queue messages, which recv() then returns).
    ev = await ping(ws)
    while not ev.is_set():
        if len(ws._messages) >= ws.max_queue:
            await ev.wait()  # the app must read first; the timeout decides
        else:
            await ws._read(False, ev)
        if ws.proto.state == _CLOSED:
            return
