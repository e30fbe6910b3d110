"""The asyncio WebSocket object shared by client and server: recv/send/ping/close.

Reading is driven by whoever needs data (``recv``, ``close``, the keepalive) under
one lock, so a connection costs no background task unless keepalive is on.
Small frames go out in one write (MicroPython leaves Nagle on); large ones in
chunks so the heap never holds a second copy of a big message.
"""

import asyncio
import sys

from .errors import ConnectionClosed, ConnectionClosedError, InvalidHandshake, closed_error
from .frames import (
    CLOSE_ABNORMAL,
    CLOSE_INTERNAL_ERROR,
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
)
from .handshake import MAX_HEAD_SIZE
from .protocol import CLOSED, OPEN, Protocol

MICROPYTHON = sys.implementation.name == "micropython"
# One read buffer shared by every connection (MicroPython): readinto() fills it on
# resume and the data is parsed before the next await, so no two tasks overlap.
_SCRATCH = bytearray(2048)
_SCRATCH_MV = memoryview(_SCRATCH)


class WebSocket:
    """An open WebSocket connection (client or server side).

    Attributes: ``path``, ``headers`` (the peer's handshake headers),
    ``subprotocol``, ``close_code`` / ``close_reason`` (None while open).
    """

    def __init__(
        self,
        reader,
        writer,
        client,
        path="/",
        headers=None,
        subprotocol=None,
        max_size=65536,
        max_queue=16,
        ping_interval=None,
        ping_timeout=None,
        close_timeout=10,
        leftover=b"",
    ):
        self._reader = reader
        self._writer = writer
        self.client = client
        self.path = path
        self.headers = headers
        self.subprotocol = subprotocol
        self.proto = Protocol(client, max_size)
        self.max_queue = max_queue
        self.close_timeout = close_timeout
        self.ping_timeout = ping_timeout
        self._messages = []
        self._rlock = asyncio.Lock()
        self._wlock = asyncio.Lock()
        self._pings = None  # {payload: Event} waiting for pongs
        self._tcp_closed = False
        self._keepalive = None
        if leftover:
            self.proto.receive_data(leftover)
            self._drain_events()
        if ping_interval:
            self._keepalive = asyncio.create_task(self._keepalive_loop(ping_interval))

    # ---- public API ----------------------------------------------------------

    @property
    def open(self):
        """True until a close frame has been sent or received."""
        return self.proto.state == OPEN

    @property
    def close_code(self):
        """The close code: the peer's, or the one we failed with, or 1006; None while open."""
        p = self.proto
        if p.state != CLOSED and not self._tcp_closed:
            return None
        if p.close_rcvd is not None:
            return p.close_rcvd[0]
        if p.failed and p.close_sent is not None:
            return p.close_sent[0]
        return CLOSE_ABNORMAL

    @property
    def close_reason(self):
        """The close reason matching ``close_code``; None while open."""
        p = self.proto
        if self.close_code is None:
            return None
        if p.close_rcvd is not None:
            return p.close_rcvd[1]
        if p.failed and p.close_sent is not None:
            return p.close_sent[1]
        return ""

    @property
    def remote_address(self):
        """(host, port) of the peer, when the transport knows it."""
        try:
            return self._writer.get_extra_info("peername")
        except (KeyError, AttributeError):
            return None

    async def recv(self):
        """The next message: ``str`` for text, bytes-like for binary.

        Raises ConnectionClosedOK / ConnectionClosedError when the connection ends.
        """
        msgs = self._messages
        if self.proto.out:  # replies to frames that came with the handshake
            await self._flush()
        while not msgs:
            if self.proto.state == CLOSED:
                await self._finish()
                raise self._closed_exc()
            await self._read()
        return msgs.pop(0)

    def __aiter__(self):
        return self

    async def __anext__(self):
        try:
            return await self.recv()
        except ConnectionClosedError:
            raise
        except ConnectionClosed:
            raise StopAsyncIteration

    async def send(self, message):
        """Send a message: str -> text, bytes/bytearray/memoryview -> binary.

        Any other iterable (or async iterable) of str or of bytes is sent as one
        fragmented message, a frame per item: for payloads too big to hold twice.
        """
        if isinstance(message, str):
            await self._send_frame(OP_TEXT, message.encode())
        elif isinstance(message, (bytes, bytearray, memoryview)):
            await self._send_frame(OP_BINARY, message)
        else:
            await self._send_fragments(message)

    async def ping(self, data=b""):
        """Send a ping; returns an Event that is set when the matching pong arrives."""
        if isinstance(data, str):
            data = data.encode()
        data = bytes(data)
        ev = asyncio.Event()
        if self._pings is None:
            self._pings = {}
        self._pings[data] = ev
        await self._send_frame(OP_PING, data)
        return ev

    async def pong(self, data=b""):
        """Send an unsolicited pong (a one-way heartbeat)."""
        await self._send_frame(OP_PONG, data.encode() if isinstance(data, str) else data)

    async def close(self, code=1000, reason=""):
        """Close handshake: send a close frame, wait (close_timeout) for the peer's, close TCP."""
        p = self.proto
        if p.close_sent is None and not self._tcp_closed:
            p.send_close(code, reason)
            try:
                await self._flush()
            except OSError:
                pass
        await self._finish()

    async def wait_closed(self):
        """Wait until the connection is fully closed (reads until the peer's close)."""
        await self._finish()

    # ---- internals -------------------------------------------------------------

    def _closed_exc(self):
        return closed_error(self.close_code, self.close_reason or "")

    async def _send_frame(self, op, data, fin=True):
        p = self.proto
        if p.close_sent is not None or p.state == CLOSED:
            raise self._closed_exc() if p.state == CLOSED else closed_error(p.close_sent[0], p.close_sent[1])
        p.send_frame(op, data, fin)
        await self._flush()

    async def _send_fragments(self, parts):
        # Hold the write lock over the whole message: no other data frame may
        # interleave (control frames from the reader queue up behind it).
        async with self._wlock:
            op = 0
            prev = None
            if hasattr(parts, "__aiter__"):
                async for part in parts:
                    op = await self._fragment(op, prev)
                    prev = part
            else:
                for part in parts:
                    op = await self._fragment(op, prev)
                    prev = part
            if prev is None:
                raise TypeError("empty fragmented message")
            await self._fragment(op, prev, True)

    async def _fragment(self, op, part, last=False):
        if part is None:
            return op
        if isinstance(part, str):
            kind, part = OP_TEXT, part.encode()
        elif isinstance(part, (bytes, bytearray, memoryview)):
            kind = OP_BINARY
        else:
            raise TypeError("message parts must be str or bytes")
        if op and op != kind:
            raise TypeError("a fragmented message mixes str and bytes")
        p = self.proto
        if p.close_sent is not None or p.state == CLOSED:
            raise self._closed_exc()
        p.send_frame(OP_CONT if op else kind, part, last)
        await self._write_out()
        return kind

    async def _flush(self):
        if self._wlock.locked():  # a fragmented/chunked write is in progress
            async with self._wlock:
                await self._write_out()
            return
        out = self.proto.out
        if len(out) == 1 and not hasattr(out[0], "send"):
            # Fast path: one frame, one write, no lock (write() itself is atomic).
            buf = out[0]
            self.proto.out = []
            w = self._writer
            w.write(buf)
            if not MICROPYTHON or w.out_buf:
                await w.drain()
            return
        async with self._wlock:
            await self._write_out()

    async def _write_out(self):
        w = self._writer
        while self.proto.out:
            item = self.proto.out.pop(0)
            if hasattr(item, "send"):  # generator of chunks
                for chunk in item:
                    w.write(chunk)
                    await w.drain()
            else:
                w.write(item)
                if not MICROPYTHON or w.out_buf:
                    await w.drain()

    async def _read(self, for_message=True, done=None):
        """Read once from the socket (under the read lock) and process what arrived.

        Returns at once if, while we waited for the lock, another reader already
        got what we need (a message, or ``done`` set, e.g. a pong).
        """
        async with self._rlock:
            if (for_message and self._messages) or self.proto.state == CLOSED or (done is not None and done.is_set()):
                return
            p = self.proto
            try:
                view = p.payload_view()
                if MICROPYTHON:
                    if view is not None:
                        n = await self._reader.readinto(view)
                        if n:
                            p.payload_received(n)
                    else:
                        n = await self._reader.readinto(_SCRATCH)
                        if n:
                            p.receive_data(_SCRATCH_MV[:n])
                    if n is None:  # TLS record without application data yet
                        return
                else:
                    data = await self._reader.read(65536 if view is None else min(len(view), 1 << 20))
                    n = len(data)
                    if n:
                        p.receive_data(data)
            except (OSError, EOFError):
                n = 0
            if not n:
                p.receive_eof()
            if p.out:
                try:
                    await self._flush()
                except OSError:
                    p.receive_eof()
            self._drain_events()
            if p.state == CLOSED and (p.failed or not self.client or p.eof):
                await self._close_tcp()

    def _drain_events(self):
        p = self.proto
        if not p.events:
            return
        msgs = self._messages
        for op, data in p.events:
            if op == OP_TEXT:
                msgs.append(data)
            elif op == OP_BINARY:
                msgs.append(data if MICROPYTHON else bytes(data))
            elif op == OP_PONG:
                pings = self._pings
                if pings:
                    ev = pings.pop(data, None)
                    if ev is not None:
                        ev.set()
            elif op == OP_PING:
                pass  # answered by the protocol already
            elif op == OP_CLOSE:
                pass  # state is on the protocol
        p.events = []

    async def _finish(self):
        """Complete the closing handshake (bounded by close_timeout), then close TCP."""
        if self._tcp_closed:
            return
        if self.proto.out:
            try:
                await self._flush()
            except OSError:
                pass
        try:
            await asyncio.wait_for(self._read_until_closed(), self.close_timeout)
        except asyncio.TimeoutError:
            pass
        await self._close_tcp()

    async def _read_until_closed(self):
        p = self.proto
        while p.state != CLOSED or (self.client and not p.eof and not p.failed):
            if p.state == CLOSED:
                # Client: the server closes TCP first (RFC 6455 7.1.1); wait for EOF.
                async with self._rlock:
                    if p.eof:
                        break
                    try:
                        n = await (self._reader.readinto(_SCRATCH) if MICROPYTHON else self._reader.read(4096))
                    except (OSError, EOFError):
                        n = 0
                    if not n:
                        p.eof = True
                continue
            self._messages = []  # closing: nobody will read these
            await self._read(False)

    async def _close_tcp(self):
        if self._tcp_closed:
            return
        self._tcp_closed = True
        if self.proto.state != CLOSED:
            self.proto.receive_eof()
        if self._keepalive is not None and self._keepalive is not _current_task():
            self._keepalive.cancel()
        w = self._writer
        try:
            w.close()
            await w.wait_closed()
        except Exception:
            pass

    async def _keepalive_loop(self, interval):
        try:
            while self.proto.state == OPEN:
                await asyncio.sleep(interval)
                if self.proto.state != OPEN:
                    break
                ev = await self.ping()
                try:
                    await asyncio.wait_for(self._wait_pong(ev), self.ping_timeout or interval)
                except asyncio.TimeoutError:
                    # Dead peer: no close handshake is possible, just drop TCP.
                    self.proto.fail(CLOSE_INTERNAL_ERROR, "keepalive ping timeout")
                    self.proto.out = []
                    await self._close_tcp()
                    return
        except (ConnectionClosed, OSError):
            pass
        except asyncio.CancelledError:
            pass

    async def _wait_pong(self, ev):
        while not ev.is_set():
            if len(self._messages) >= self.max_queue:
                await ev.wait()  # the app must read first; the timeout decides
            else:
                await self._read(False, ev)
            if self.proto.state == CLOSED:
                return


def _current_task():
    try:
        return asyncio.current_task()
    except Exception:
        return None


async def read_http_head(reader, limit=MAX_HEAD_SIZE):
    """Read an HTTP head (up to the blank line); returns (head, bytes read past it).

    Bounded: more than ``limit`` bytes without a blank line is 431 (414 when not
    even the first line ended), so a peer cannot grow our heap without end.
    """
    buf = b""
    while True:
        chunk = await reader.read(1024)
        if not chunk:
            raise InvalidHandshake("connection closed during the handshake", 400)
        start = len(buf) - 3 if len(buf) > 3 else 0
        buf += chunk
        end = buf.find(b"\r\n\r\n", start)
        if end >= 0 and end + 4 <= limit:
            return buf[: end + 4], buf[end + 4 :]
        if len(buf) > limit:
            raise InvalidHandshake("request head too large", 414 if buf.find(b"\r\n") < 0 else 431)
