"""Pings and keepalive (a client's loop, a server's sweep): imported only when used.

Kept out of ``connection`` so a board whose connections never ping does not carry
this code in its heap (MicroPython loads .mpy bytecode into RAM).
"""

import asyncio
import os

from .errors import ConnectionClosed, error_text
from .frames import const  # MicroPython's, or a stand-in on CPython

# RFC 6455 numbers this module uses, as private const()s: see the note in frames.py.
_OP_PING = const(9)
_CLOSE_INTERNAL_ERROR = const(1011)
_OPEN = const(1)
_CLOSED = const(3)
_E_CONTROL_LONG = const(6)  # error text number (errors.error_text)


class PongWaiter(asyncio.Event):
    """What ``ws.ping()`` returns: an Event set when the pong comes. Its ``wait()``
    reads the connection when no other task does (there is no background reader), and
    raises ConnectionClosed if the connection ends first."""

    def __init__(self, ws):
        super().__init__()
        self._ws = ws

    async def wait(self):
        ws = self._ws
        while not self.is_set():
            if ws.proto.state == _CLOSED:
                raise ws._closed_exc()
            if len(ws._messages) >= ws.max_queue:
                await super().wait()  # the app must take its messages first
            else:
                await ws._read(False, self)
        return True


def control_payload(data):
    """A ping's or pong's payload as bytes (a str as UTF-8); more than 125 bytes, which
    RFC 6455 5.5 forbids a control frame and the peer would fail with 1002, is ValueError."""
    data = bytes(data.encode() if isinstance(data, str) else data)
    if len(data) > 125:
        raise ValueError(error_text(_E_CONTROL_LONG))
    return data


async def ping(ws, data=b""):
    """Send a ping on ``ws``; returns a PongWaiter, set when the matching pong arrives."""
    data = control_payload(data)
    waiter = PongWaiter(ws)
    if ws._pings is None:
        ws._pings = []
    ws._pings.append((data, waiter))
    await ws._send_frame(_OP_PING, data)
    return waiter


def pong_received(pings, data):
    # The pong answers the earliest ping with its payload still waiting, and every ping
    # sent before that one (a peer may answer only the latest of several, RFC 6455 5.5.3).
    # A list, not a dict by payload: two pings with one payload (the default b"") each
    # get their own pong.
    for i in range(len(pings)):
        if pings[i][0] == data:
            for _, waiter in pings[: i + 1]:
                waiter.set()
            del pings[: i + 1]
            return


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
    probing = set()  # connections whose keepalive ping is out (the app's own pings do not count)
    while True:
        await asyncio.sleep(interval)
        for ws in list(connections):
            if ws.proto.state == _OPEN and ws not in probing:
                try:
                    asyncio.create_task(probe(ws, timeout, probing))
                    probing.add(ws)
                except MemoryError:
                    pass  # a full heap: this connection is probed next time


async def probe(ws, timeout, probing=None):
    """Ping ``ws`` and wait for the pong. None within ``timeout`` s (sending the ping
    included: a dead peer's full send buffer blocks it) -> the peer is dead: fail the
    connection with 1011 and drop TCP, no close handshake. True when the pong came."""
    try:
        # A payload of its own: the app's pings (b"" by default) and unsolicited pongs
        # cannot be taken for this ping's answer.
        await asyncio.wait_for(_ping_pong(ws, os.urandom(4)), timeout)
        return True
    except asyncio.TimeoutError:
        p = ws.proto
        p.fail(_CLOSE_INTERNAL_ERROR, "keepalive ping timeout")
        p.out = ()
        await ws._close_tcp(True)
    except (ConnectionClosed, OSError):
        pass  # closed meanwhile: nothing to keep alive
    finally:
        if probing is not None:
            probing.discard(ws)
    return False


async def _ping_pong(ws, data):
    await (await ping(ws, data)).wait()
