"""The asyncio WebSocket object shared by client and server: recv/send/ping/close.

Reading is driven by whoever needs data (``recv``, ``close``, the keepalive), one
reader at a time, so a connection costs no background task unless keepalive is
on. Small frames go out in one write (MicroPython leaves Nagle on); large ones in
chunks, so the heap never holds a second copy of a big message. Heap per idle
connection is budgeted: options equal to the defaults live on the class, and
contention events and ping waiters are only created when needed.
"""

import asyncio
import gc
import sys

from .errors import ConnectionClosedError, InvalidHandshake, closed_error
from .frames import const  # MicroPython's, or a stand-in on CPython
from .handshake import parse_head
from .protocol import ROOMY_HEAP, Protocol

# RFC 6455 numbers this module uses, as private const()s: see the note in frames.py.
_OP_TEXT = const(1)
_OP_BINARY = const(2)
_OP_PONG = const(10)
_CLOSE_ABNORMAL = const(1006)
_OPEN = const(1)
_CLOSED = const(3)
_MAX_HEAD_SIZE = const(8192)  # a whole request or response head
_MAX_LINE = const(4096)  # its start line (handshake's limit, repeated: a const is per module)
# Error texts, by number into texts.T (see errors.error_text).
_E_HEAD_CLOSED = const(18)
_E_HEAD_TOO_LARGE = const(19)

MICROPYTHON = sys.implementation.name == "micropython"
_BYTES_LIKE = (bytes, bytearray, memoryview)  # sent as binary
# Largest message accepted unless max_size says otherwise: what a board's heap can take,
# and on CPython the 1 MiB that `websockets` users expect. max_size=None: no limit (as
# in `websockets`), i.e. the largest length a frame header can carry here.
DEFAULT_MAX_SIZE = 65536 if MICROPYTHON else 1 << 20
NO_LIMIT = 0x3FFFFFFF if MICROPYTHON else (1 << 63) - 1  # a small int on 32-bit boards


# Where the heap is roomy, 2 KiB: pipelined small messages are then parsed ~29 per
# read instead of ~7, 17% less CPU per message. 512 B on a board-sized heap, where
# 1.5 KiB decides whether a reconnect finds memory (the node at 96 KiB).
_SCRATCH_SIZE = 2048 if MICROPYTHON and ROOMY_HEAP else 512  # CPython reads with read()

# One read buffer shared by every connection (MicroPython): readinto() fills it on
# resume and the data is parsed before the next await, so no two tasks overlap.
_SCRATCH = bytearray(_SCRATCH_SIZE)
_SCRATCH_MV = memoryview(_SCRATCH)
# A failed server connection closes TCP once the peer has sent nothing for this long.
_QUIET = 0.2


class WebSocket:
    """An open WebSocket connection (client or server side).

    Attributes: ``path``, ``headers`` (the peer's handshake headers, names in lower
    case), ``subprotocol``, ``close_code`` / ``close_reason`` (None while open).
    """

    # Defaults on the class: an instance only stores what differs (heap per connection).
    max_queue = 16
    close_timeout = 10
    ping_timeout = None
    _pings = None  # [(payload, PongWaiter), ...] in the order sent (keepalive.ping)
    _wake = None  # Event for tasks waiting to read or write
    _reading = False
    _writing = False
    _sending_parts = False  # a fragmented message is going out: other data frames wait
    _tls = False  # a MicroPython client over TLS (see _read_until_closed)
    _tcp_closed = False
    _keepalive = None
    path = "/"
    subprotocol = None

    def __init__(self, reader, writer, client, path="/", head=b"", subprotocol=None, max_size=DEFAULT_MAX_SIZE,
                 max_queue=16, ping_interval=None, ping_timeout=None, close_timeout=10, leftover=b""):
        self._reader = reader
        self._writer = writer
        if path != "/":
            self.path = path
        self._head = head  # raw header lines; parsed into a dict on first use of .headers
        if subprotocol is not None:
            self.subprotocol = subprotocol
        self.proto = Protocol(client, NO_LIMIT if max_size is None else max_size)
        self._messages = []
        if max_queue != 16:
            self.max_queue = max_queue
        if close_timeout != 10:
            self.close_timeout = close_timeout
        if ping_timeout is not None:
            self.ping_timeout = ping_timeout
        if leftover:
            p = self.proto
            p.receive_data(leftover)
            if p.want:  # a big payload's header came with the handshake: its buffer, or 1009
                # now (recv() sends the close), not once more bytes come. No stale message
                # can pin the heap yet, so no retry from a new task as in _make_room.
                try:
                    room = bytearray(p.want)
                except MemoryError:
                    room = None
                p.payload_room(room)
            self._drain_events()
        if ping_interval:
            from .keepalive import keepalive_loop

            self._keepalive = asyncio.create_task(keepalive_loop(self, ping_interval))

    # ---- public API ----------------------------------------------------------

    @property
    def headers(self):
        """The peer's handshake headers as a dict with lower-case names."""
        if not isinstance(self._head, dict):
            self._head = parse_head(self._head, False)[1] if self._head else {}
        return self._head

    @property
    def open(self):
        """True until a close frame has been sent or received."""
        return self.proto.state == _OPEN

    @property
    def close_code(self):
        """The close code: the peer's, or the one we failed with, or 1006; None while open."""
        p = self.proto
        if p.state != _CLOSED and not self._tcp_closed:
            return None
        if p.close_rcvd is not None:
            return p.close_rcvd[0]
        if p.failed and p.close_sent is not None:
            return p.close_sent[0]
        return _CLOSE_ABNORMAL

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

    async def recv(self, _iterating=False):
        """``await ws.recv()``: the next message, ``str`` for text, bytes-like for binary.

        Raises ConnectionClosedOK / ConnectionClosedError when the connection ends.
        """
        msgs = self._messages
        if self.proto.out:  # replies to frames that came with the handshake
            await self._flush()
        while not msgs:
            p = self.proto
            if p.state == _CLOSED:
                await self._finish()
                exc = self._closed_exc()
                if _iterating and not isinstance(exc, ConnectionClosedError):
                    raise StopAsyncIteration
                raise exc
            if MICROPYTHON and not self._reading and not p.failed:
                # Same as _read(), inlined: an idle connection then waits with one
                # suspended coroutine less (heap per connection on a board). (Failed
                # but open: a failure held behind the messages just taken; _read fails.)
                self._reading = True
                view = None if p.partial is None else p.payload_view()
                try:
                    n = await self._reader.readinto(_SCRATCH if view is None else view)
                except (OSError, EOFError):
                    n = 0
                finally:
                    self._reading = False
                    if self._wake is not None:
                        self._release(True)
                if self._received(view, n):
                    await self._after_read()
            else:
                await self._read()
        return msgs.pop(0)

    def __aiter__(self):
        return self

    def __anext__(self):
        # Returns recv's coroutine itself: one suspended frame less per idle connection.
        return self.recv(True)

    async def send(self, message):
        """Send a message: str -> text, bytes/bytearray/memoryview -> binary.

        Any other iterable (or async iterable) of str or of bytes is sent as one
        fragmented message, a frame per item: for payloads too big to hold twice.
        """
        if isinstance(message, str):
            # MicroPython: a view of the str's UTF-8, no copy. (encode() shares the data
            # too, but hashes a str made without a hash: 1 ms per MiB, frames.decode_text.)
            op, message = _OP_TEXT, memoryview(message) if MICROPYTHON else message.encode()  # pyright: ignore[reportArgumentType]
        elif isinstance(message, _BYTES_LIKE):
            op = _OP_BINARY
        else:
            from .fragments import send_fragments

            try:
                await send_fragments(self, message)
            except OSError:
                await self._lost()
            return
        while self._sending_parts:  # no data frame may come between a fragmented message's frames
            await self._wait_turn()
        p = self.proto
        if p.close_sent is not None or p.state == _CLOSED:
            self._check_sendable()  # raises the right ConnectionClosed
        # send_frame says when this frame alone is queued, in one buffer: no need for
        # _write_now's checks before writing it.
        if p.send_frame(op, message) and not self._writing:
            try:
                if self._write_lone():
                    return
            except OSError:
                await self._lost()
        await self._flush()

    async def ping(self, data=b""):
        """Send a ping; returns an Event that is set when the matching pong arrives."""
        from .keepalive import ping

        return await ping(self, data)

    async def pong(self, data=b""):
        """Send an unsolicited pong (a one-way heartbeat)."""
        from .keepalive import control_payload

        await self._send_frame(_OP_PONG, control_payload(data))

    async def close(self, code=1000, reason=""):
        """Close handshake: send a close frame, wait (close_timeout) for the peer's, close TCP."""
        p = self.proto
        if p.error is not None:  # a bad frame is waiting behind the messages taken: its code
            p.fail(*p.error)
        elif p.close_sent is None and not self._tcp_closed:
            p.send_close(code, reason)
        await self._finish()

    async def wait_closed(self):
        """Wait until the connection is fully closed (reads until the peer's close)."""
        await self._finish()

    # ---- internals -------------------------------------------------------------

    def _closed_exc(self):
        return closed_error(self.close_code, self.close_reason or "")

    def _check_sendable(self):
        p = self.proto
        if p.state == _CLOSED:
            raise self._closed_exc()
        if p.close_sent is not None:
            raise closed_error(p.close_sent[0], p.close_sent[1])

    async def _send_frame(self, op, data, fin=True):
        self._check_sendable()
        self.proto.send_frame(op, data, fin)
        await self._flush()

    async def _wait_turn(self):
        if self._wake is None:
            self._wake = asyncio.Event()
        await self._wake.wait()

    async def _acquire_write(self):
        while self._writing:
            await self._wait_turn()
        self._writing = True

    def _release(self, reader):
        if reader:
            self._reading = False
        else:
            self._writing = False
        self._wake_all()

    def _wake_all(self):
        wake = self._wake
        if wake is not None:  # everyone waiting re-checks; the losers wait again
            self._wake = None
            wake.set()

    def _write_now(self):
        """Fast path: write a single small queued frame at once (write() is atomic).

        True when nothing is left to do; False when ``_flush`` must run (several or
        chunked frames, another writer busy, or the stream needs draining).
        """
        out = self.proto.out
        if self._writing or len(out) != 1 or hasattr(out[0], "send"):
            return False
        return self._write_lone()

    def _write_lone(self):
        # out holds one buffer and nobody else is writing: write() is atomic (it takes
        # it all or keeps the rest for drain()). True when no drain is needed.
        p = self.proto
        buf = p.out[0]  # pyright: ignore[reportGeneralTypeIssues] (a list here)
        p.out = ()
        w = self._writer
        w.write(buf)
        return not _needs_drain(w)

    async def _flush(self):
        try:
            if self._write_now():
                return
            # Draining too is one writer at a time: two tasks in MicroPython's drain()
            # would write its buffer twice and wait on one socket, and one never wakes.
            await self._acquire_write()
            try:
                await self._write_out()
            finally:
                self._release(False)
        except OSError:
            await self._lost()

    async def _lost(self):
        # A write failed (reset, broken pipe): the peer is gone, so is the connection.
        # The caller sees ConnectionClosedError 1006, as for a read that finds EOF.
        await self._close_tcp()
        raise self._closed_exc()

    async def _write_out(self):
        w = self._writer
        while True:
            if _needs_drain(w):  # what write() kept, this task's or a fast path's before it
                await w.drain()
            if not self.proto.out:
                return
            item = self.proto.out.pop(0)
            if hasattr(item, "send"):  # generator of chunks
                try:
                    for chunk in item:
                        if MICROPYTHON:
                            await _write_all(w, chunk)  # pyright: ignore[reportGeneralTypeIssues]
                        else:
                            w.write(chunk)
                            await w.drain()
                except BaseException:
                    # Cancelled (or failed) with the frame half written: nothing can follow
                    # it on this stream, so the connection ends here (1006).
                    await self._close_tcp(True)
                    raise
            else:
                w.write(item)

    async def _read(self, for_message=True, done=None):
        """Read once from the socket (one reader at a time) and process what arrived.

        Returns at once if, while we waited our turn, another reader already got
        what we need (a message, or ``done`` set, e.g. a pong).
        """
        p = self.proto
        if p.error is not None:  # a bad frame came after messages now taken (or not ours to wait for)
            p.fail(*p.error)
            await self._after_read()
            return
        while True:
            if (for_message and self._messages) or p.state == _CLOSED or (done is not None and done.is_set()):
                return
            if not self._reading:
                break
            await self._wait_turn()
        self._reading = True
        view = p.payload_view()
        data = None
        try:
            if MICROPYTHON:
                n = await self._reader.readinto(_SCRATCH if view is None else view)
            else:
                data = await self._reader.read(65536 if view is None else min(len(view), 1 << 20))
                n = len(data)
        except (OSError, EOFError):
            n = 0
        finally:
            self._release(True)
        if self._received(view, n, data):
            await self._after_read()

    def _received(self, view, n, data=None):
        """Feed what a read returned to the protocol; True if replies or a close need handling."""
        p = self.proto
        if n is None:  # TLS record without application data yet
            return False
        if not n:
            p.receive_eof()
        elif data is not None:
            p.receive_data(data)
        elif view is not None:
            p.payload_received(n)
        else:
            p.receive_data(_SCRATCH_MV, n)
            if p.partial is not None:
                # A big payload began: its rest is usually in the socket already. Take
                # it now (the socket is non-blocking) instead of after a round through
                # the scheduler's poll, one of the two a 64 KiB message cost.
                try:
                    k = self._reader.s.readinto(p.payload_view())
                except OSError:
                    k = None  # the next awaited read reports it
                if k:  # None: nothing there yet; 0 (EOF): left to the next read
                    p.payload_received(k)
        if p.events:
            self._drain_events()
        return p.out or p.state == _CLOSED or p.want

    async def _after_read(self):
        p = self.proto
        if p.want:
            await self._make_room()
        if p.out:
            try:
                await self._flush()
            except ConnectionClosedError:
                pass  # the peer is gone; the state says so
        if p.state == _CLOSED:
            if p.failed and not p.eof:
                await self._finish()
            elif not p.client or p.eof:
                await self._close_tcp()

    async def _make_room(self):
        # The protocol could not allocate a big payload buffer. Often the last big
        # message is dead but a stale copy of its address on the C stack of this
        # task's call chain (the handler's frames) still pins it: the GC scans the
        # stack conservatively. A new task runs from the scheduler's shallow stack.
        p = self.proto
        box = []
        self._reading = True  # nobody parses more until the buffer is in place
        try:
            await asyncio.create_task(_new_buffer(p.want, box))
        except MemoryError:
            pass
        finally:
            self._release(True)
        p.payload_room(box.pop() if box else None)
        self._drain_events()

    def _drain_events(self):
        p = self.proto
        if not p.events:
            return
        msgs = self._messages
        for op, data in p.events:
            if op == _OP_TEXT:
                msgs.append(data)
            elif op == _OP_BINARY:
                msgs.append(data if MICROPYTHON else bytes(data))  # pyright: ignore[reportArgumentType]
            elif op == _OP_PONG and self._pings:
                from .keepalive import pong_received  # loaded by the ping() that made _pings

                pong_received(self._pings, data)
            # Pings are answered by the protocol; close state lives on the protocol.
        p.events = ()

    async def _finish(self):
        """Complete the closing handshake (bounded by close_timeout), then close TCP."""
        if self._tcp_closed:
            return
        try:
            await asyncio.wait_for(self._read_until_closed(), self.close_timeout)
            abort = False
        except asyncio.TimeoutError:
            # No close frame out or back in time (a peer that reads nothing keeps even our
            # close frame waiting behind a full send buffer): drop TCP, do not wait on it.
            abort = True
        except asyncio.CancelledError:
            # The closing task was cancelled (a reconnecting loop's task, a timeout around
            # close()): nobody will finish this close, so drop TCP now rather than leak it.
            # _close_tcp(True) completes without waiting on anything.
            await self._close_tcp(True)
            raise
        await self._close_tcp(abort)

    async def _read_until_closed(self):
        p = self.proto
        if p.out:  # our close frame (and what was queued before it)
            try:
                await self._flush()
            except ConnectionClosedError:
                return  # TCP is closed already
        while p.state != _CLOSED or (not p.eof and (p.client or p.failed)):
            if p.state == _CLOSED:
                # Client: the server closes TCP first (RFC 6455 7.1.1); wait for EOF.
                # Failed: drop what the peer still sends until it hangs up or goes quiet:
                # closing with unread bytes makes TCP send a reset, and the peer may
                # then lose our close frame (and with it the close code).
                # A MicroPython client over TLS waits only until quiet too: a server on
                # CPython sends its TLS close_notify and waits for ours before it closes
                # TCP, and MicroPython's TLS takes that close_notify without a word.
                while self._reading:
                    await self._wait_turn()
                if p.eof:
                    break
                self._reading = True
                read = read_to_drop(self._reader)
                try:
                    n = await (read if p.client and not self._tls else asyncio.wait_for(read, _QUIET))
                except asyncio.TimeoutError:
                    break
                except (OSError, EOFError):
                    n = 0
                finally:
                    self._release(True)
                if not n:
                    p.eof = True
                continue
            self._messages = []  # closing: nobody will read these
            await self._read(False)

    async def _close_tcp(self, abort=False):
        # abort: the peer is dead, or a frame is half written. CPython's close() first sends
        # what the transport holds, which a peer that reads nothing never takes: abort()
        # drops it (a writer blocked on it gets the error), and close() is bounded by
        # close_timeout too. MicroPython's wait_closed() closes the socket at once (also
        # from a cancelled task: nothing here waits there).
        if self._tcp_closed:
            return
        self._tcp_closed = True
        if self.proto.state != _CLOSED:
            self.proto.receive_eof()
        ka = self._keepalive
        if ka is not None and ka is not asyncio.current_task():
            ka.cancel()
        w = self._writer
        try:
            if MICROPYTHON:
                await w.wait_closed()
            elif abort:
                w.transport.abort()
            else:
                w.close()
                await asyncio.wait_for(w.wait_closed(), self.close_timeout)
        except asyncio.TimeoutError:
            w.transport.abort()
        except Exception:
            pass


def read_to_drop(reader):
    """One read of bytes nobody will use (into the shared buffer on MicroPython)."""
    return reader.readinto(_SCRATCH) if MICROPYTHON else reader.read(4096)


async def _new_buffer(n, box):
    # Not returned: the scheduler keeps a task's last result alive until the next one.
    box.append(bytearray(n))


if MICROPYTHON:
    from asyncio import core as _core  # pyright: ignore[reportAttributeAccessIssue]

    def _write_all(w, buf):
        # Straight to the socket, waiting for writability on a short write:
        # Stream.write would copy the unsent rest into out_buf (and drain would
        # slice it again), which for big payloads costs copies and heap.
        # (A generator: MicroPython's coroutines are generators, awaited alike.)
        if w.out_buf:
            yield from w.drain()
        mv = memoryview(buf)
        n = len(mv)
        off = w.s.write(mv) or 0
        while off < n:
            yield _core._io_queue.queue_write(w.s)
            off += w.s.write(mv[off:]) or 0


if MICROPYTHON:

    def _needs_drain(w):
        # When write() left bytes in out_buf. (One per platform: checked per message.)
        return w.out_buf

else:

    def _needs_drain(w):
        # drain() only matters for flow control, once the transport buffers a lot.
        t = w.transport  # a lost connection is only reported by drain()
        return t.get_write_buffer_size() >= 65536 or t.is_closing()


def settle_heap(big_heaps=True):
    """Collect before a connection's long-lived objects are made, so that they land in
    the lowest holes, not above the garbage the last messages left (the collector never
    moves a block). On a small heap they then fill the holes the handshake left (8 server
    connections fit in 64 KiB instead of 67-68 KiB, bench/README.md); on a heap that
    takes big messages they stay out of the middle of the free run a big message needs
    (the real Autobahn suite, one MicroPython agent for all its cases at the default
    2 MiB heap: its 1 MiB messages failed 1009 late in the run without this).
    About 16 us on the unix port, whatever the heap size. ``big_heaps=False``: only on
    a small heap (where packing low is what counts, not a big free run)."""
    if MICROPYTHON and (big_heaps or not ROOMY_HEAP):
        gc.collect()


def set_nodelay(sock):
    """Turn Nagle off (IPPROTO_TCP=6, TCP_NODELAY=1 on Linux and lwIP; MicroPython lacks the names)."""
    try:
        sock.setsockopt(6, 1, 1)
    except (OSError, AttributeError):
        pass


async def read_http_head(reader, limit=_MAX_HEAD_SIZE):
    """Read an HTTP head (up to the blank line); returns (head, bytes read past it).

    Bounded: more than ``limit`` bytes without a blank line is 431 (414 when not
    even the first line ended), so a peer cannot grow our heap without end.
    """
    # Grown in place: concatenated bytes left each shorter copy as garbage, and a long
    # head ran a small heap out of memory before reaching the limit.
    buf = bytearray()
    while True:
        if MICROPYTHON:
            n = await reader.readinto(_SCRATCH)
            if n is None:
                continue
            chunk = _SCRATCH_MV[:n]
        else:
            chunk = await reader.read(1024)
            n = len(chunk)
        if not n:
            raise InvalidHandshake(_E_HEAD_CLOSED, 0)  # no HTTP status fits: nothing to answer
        start = len(buf) - 3 if len(buf) > 3 else 0
        buf += chunk
        end = buf.find(b"\r\n\r\n", start)
        if end >= 0 and end + 4 <= limit:
            if end + 4 == len(buf):  # the usual case: no second copy of the head
                return buf, b""
            return buf[: end + 4], bytes(buf[end + 4 :])
        if len(buf) > limit:
            line = buf.find(b"\r\n")  # 414: the start line itself is too long (as parse_head says)
            raise InvalidHandshake(_E_HEAD_TOO_LARGE, 414 if not 0 <= line <= _MAX_LINE else 431)
