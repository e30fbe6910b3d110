"""Sans-I/O WebSocket connection state machine (RFC 6455 sections 5-7).

Bytes in: ``receive_data(data[, n])`` (or, for large payloads, ``payload_view()`` +
``payload_received(n)`` so the I/O layer can read straight into the message
buffer). Events out: ``events`` is a list of ``(opcode, data)`` — 1 text (str),
2 binary (bytes-like), 9 ping and 10 pong (bytes), 8 close ((code, reason)).
``state``: 1 open, 2 closing, 3 closed. ``error``: (code, reason) when a bad frame came
after messages still in ``events``: take them (and answer them if you like), then call
``fail(*error)``.
Bytes out: ``out`` is a list of buffers to write in order; an item may be a
generator of buffers (a large frame written in chunks, masked on the fly).
No sockets, no clocks: the asyncio layer (``connection``) drives it.
"""

import gc
import os
import sys

from .errors import PayloadTooBig, ProtocolError
from .frames import Utf8Stream, apply_mask, build_close, const, decode_text, encode_header, parse_close

# RFC 6455 numbers this module uses, as private const()s: see the note in frames.py.
_OP_CONT = const(0)
_OP_TEXT = const(1)
_OP_BINARY = const(2)
_OP_CLOSE = const(8)
_OP_PING = const(9)
_OP_PONG = const(10)
_CLOSE_NO_STATUS = const(1005)
_CLOSE_ABNORMAL = const(1006)
_CLOSE_INVALID_DATA = const(1007)
_CLOSE_TOO_BIG = const(1009)
_OPEN = const(1)
_CLOSING = const(2)
_CLOSED = const(3)
_ONE_BUFFER = const(16384)  # see send_frame
# Pongs queued before later pings are answered by replacing the last (see _control). Above
# Autobahn's 10 pings sent at once (case 2.10 wants a pong for each).
_MAX_PONGS_QUEUED = const(32)
# Error texts, by number into texts.T (see errors.error_text).
_E_UTF8 = const(0)
_E_RSV = const(3)
_E_CONTROL_OPCODE = const(4)
_E_CONTROL_FRAGMENTED = const(5)
_E_CONTROL_LONG = const(6)
_E_DATA_OPCODE = const(7)
_E_LONE_CONTINUATION = const(8)
_E_DATA_IN_MESSAGE = const(9)
_E_MASKED = const(10)
_E_UNMASKED = const(11)
_E_LENGTH_MSB = const(12)
_E_TOO_BIG = const(13)

_WHOLE_PAYLOAD = sys.implementation.name == "micropython"


def _heap_size():
    if not _WHOLE_PAYLOAD:
        return 0  # CPython: no fixed heap
    return gc.mem_free() + gc.mem_alloc()  # pyright: ignore


_HEAP_SIZE = _heap_size()
del _heap_size  # run once: its bytecode need not stay in the heap

# A heap of 512 KiB or more (always on CPython): bigger I/O buffers pay off there and
# cost nothing that matters; a board keeps the small ones. Read once, at import.
ROOMY_HEAP = not _HEAP_SIZE or _HEAP_SIZE >= 512 * 1024

# A payload buffer (_big_buffer) bigger than a quarter of the heap collects garbage before it is
# allocated: the allocation would rarely succeed without a collection, and MicroPython
# runs one only after a first-fit search of the whole heap has failed. Instructions per
# 1 MiB echo as server (cachegrind): 2 MiB heap 6.41M -> 6.10M, 3 MiB 10.5M -> 6.55M,
# 4 MiB 8.12M -> 7.02M. On bigger heaps the buffers fit between collections and
# collecting each time costs more (8 MiB: 6.75M -> 8.83M), hence the quarter.
_COLLECT_ABOVE = _HEAP_SIZE // 4 if _HEAP_SIZE else 1 << 62

# A frame whose payload is up to this size goes out as one buffer with its header
# (one write: MicroPython leaves Nagle on); a client's is masked into that buffer (the
# copy is needed anyway: the caller's data must not change).
# Bigger frames are written in chunks of this size; a client's are masked chunk by
# chunk into one buffer of this size that the connection keeps (a big allocation costs
# MicroPython's allocator ~35 us per 64 KiB, its first-fit search, as much as masking).
# 64 KiB on a roomy heap: a client's 1 MiB message then goes out in 16 pieces instead
# of 64, each a system call and a wake-up of the peer (1 MiB client echo on the unix
# port: 2.06 -> 1.7 ms). MicroPython writes a server's big payload in one piece.
WRITE_CHUNK = 65536 if ROOMY_HEAP else 16384


class Protocol:
    """One WebSocket connection's protocol state, client (masks) or server side."""

    # Defaults live on the class; an instance stores only what differs, and
    # ``events`` / ``out`` are empty tuples until something is queued: an idle
    # connection on a board then costs a few dozen bytes here.
    client = False
    max_size = 65536
    state = _OPEN
    events = ()
    out = ()
    close_rcvd = None  # (code, reason) received
    close_sent = None  # (code, reason) sent
    failed = False  # we failed the connection (or hold a failure, ``error``): parse no more
    error = None  # (code, reason): a bad frame came after messages not yet taken (receive_data)
    eof = False
    _buf = b""  # unparsed bytes: a partial header (or a header waiting for ``want``)
    # The payload buffer for the header in _buf could not be made here (MemoryError):
    # the I/O layer makes one this size and hands it over with payload_room().
    want = 0
    _room = None
    # A frame whose payload arrives in pieces: [buffer, filled, fin, opcode, mask key,
    # Utf8Stream (text) or None, bytes of text already unmasked and checked].
    partial = None
    # A fragmented message in progress: [opcode, buffer, bytes used in it, Utf8Stream or None].
    _msg = None
    # WRITE_CHUNK (+ a header) bytes to mask big client frames into, made on the first one.
    _mask_buf = None

    def __init__(self, client, max_size=65536):
        if client:
            self.client = True
        if max_size != 65536:
            self.max_size = max_size
        self.state = _OPEN
        self.failed = False

    def _event(self, event):
        if self.events:
            self.events.append(event)
        else:
            self.events = [event]

    def _emit(self, buf):
        if self.out:
            self.out.append(buf)
        else:
            self.out = [buf]

    # ---- input -------------------------------------------------------------

    def payload_view(self):
        """A writable view the I/O layer may read the current large payload into, or None."""
        pl = self.partial
        if pl is None:
            return None
        return memoryview(pl[0])[pl[1] :]

    def payload_received(self, n):
        """``n`` bytes were read into ``payload_view()``."""
        pl = self.partial
        pl[1] += n
        try:
            buf, filled, _, _, key, utf8, done = pl  # pyright: ignore[reportGeneralTypeIssues]
            if utf8 is not None and filled > done:
                # Text is unmasked and checked as it comes, so invalid UTF-8 fails at
                # once, not when the whole frame is in (Autobahn 6.4.3, strict).
                part = memoryview(buf)[done:filled]
                if key is not None:
                    o = done & 3  # the mask key's phase at this offset
                    apply_mask(part, filled - done, key[o:] + key[:o] if o else key)
                pl[6] = filled
                if not utf8.feed(part):
                    raise ProtocolError(_E_UTF8, _CLOSE_INVALID_DATA)
            if filled == len(buf):
                self._payload_complete()
        except ProtocolError as e:
            self.fail(e.code, str(e))
        except MemoryError:
            self._no_memory()

    def payload_room(self, buf):
        """The ``want``-byte buffer the I/O layer made, or None if it could not (1009)."""
        n = self.want
        self.want = 0
        if buf is None:
            self.fail(_CLOSE_TOO_BIG, "no memory for a %d-byte message" % n)
        else:
            self._room = buf
            self.receive_data(b"")  # parse the kept header again, into buf

    def receive_eof(self):
        """The peer closed TCP."""
        self.eof = True
        if self.state != _CLOSED:
            self.state = _CLOSED
            if self.close_rcvd is None:
                self._event((_OP_CLOSE, (_CLOSE_ABNORMAL, "")))

    def receive_data(self, data, n=-1):
        """Feed bytes from the peer (the first ``n`` of ``data`` when given); parse
        every complete frame into ``events``."""
        # One function, few attribute reads per frame: this runs for every message.
        if self.state == _CLOSED or self.failed:
            return
        if n < 0:
            n = len(data)
        i = 0
        try:
            pl = self.partial
            if pl is not None:  # finish the partial payload first
                k = len(pl[0]) - pl[1]
                if k > n:
                    k = n
                pl[0][pl[1] : pl[1] + k] = data[:k]
                self.payload_received(k)
                i = k
                if i == n or self.failed or self.state == _CLOSED:
                    return
            buf = data
            if self._buf:
                buf = self._buf + bytes(data[i:n])
                i = 0
                n = len(buf)
                self._buf = b""
            client = self.client
            max_size = self.max_size
            msg_none = self._msg is None
            while n - i >= 2:
                b0 = buf[i]
                b1 = buf[i + 1]
                op = b0 & 0x0F
                ln = b1 & 0x7F
                hl = 2
                if ln == 126:
                    hl = 4
                    if n - i < 4:
                        break
                    ln = (buf[i + 2] << 8) | buf[i + 3]
                elif ln == 127:
                    hl = 10
                    if n - i < 10:
                        break
                    ln = int.from_bytes(buf[i + 2 : i + 10], "big")
                masked = b1 & 0x80
                if masked:
                    hl += 4
                if n - i < hl:
                    break
                # Fast path for the usual frame (whole text/binary, masked as it must be,
                # not inside a fragmented message, within max_size); anything else gets
                # the full check.
                fast = (b0 == 0x81 or b0 == 0x82) and (not masked) == client and msg_none and ln <= max_size
                if not fast:
                    self._check_header(b0, op, ln, masked, hl)
                start = i + hl
                key = buf[start - 4 : start] if masked else None
                if n - start >= ln:
                    i = start + ln
                    if not fast and op == _OP_CONT and ln and _WHOLE_PAYLOAD:
                        pl = self._in_message(ln)  # no buffer of its own
                        if pl is None:  # see want: this frame is parsed again
                            self._buf = bytes(buf[start - hl : n])
                            return
                        pl[:] = buf[start:i]
                        if key is not None:
                            apply_mask(pl, ln, key)
                    elif key is not None:
                        pl = bytearray(buf[start:i])
                        apply_mask(pl, ln, key)
                    elif client:
                        pl = bytes(buf[start:i])
                    else:
                        pl = buf[start:i]
                    if fast:  # the usual frame: _frame() reduced to its end
                        # _event() inlined: the call is 1.4% of a message's instructions.
                        ev = (op, decode_text(pl) if op == _OP_TEXT else pl)
                        if self.events:
                            self.events.append(ev)
                        else:
                            self.events = [ev]
                    else:
                        self._frame(b0 & 0x80, op, pl)
                        if self.state == _CLOSED:  # a close frame: nothing after it counts
                            break
                        msg_none = self._msg is None
                else:  # partial payload: allocate it once (size already checked), fill as it comes
                    # Text gets a spare byte after its end, so that its str can be made
                    # without a copy (frames.decode_text).
                    room = ln + (op == _OP_TEXT)
                    if op == _OP_CONT and ln and _WHOLE_PAYLOAD:  # read into the message's buffer
                        pl = self._in_message(ln)
                        room = ln
                        if pl is None:  # see want
                            self._buf = bytes(buf[i:n])
                            return
                    elif self._room is not None:
                        pl = self._room
                        self._room = None
                    else:
                        try:
                            pl = _big_buffer(room)
                        except MemoryError:
                            # Keep the header; the I/O layer tries again from a shallow stack.
                            self.want = room
                            self._buf = bytes(buf[i:n])
                            return
                    if room > ln:
                        pl[ln:] = b""
                    k = n - start
                    pl[:k] = buf[start:n]
                    utf8 = None  # text: checked as it comes (payload_received)
                    if op == _OP_TEXT:
                        utf8 = Utf8Stream()
                    elif op == _OP_CONT:
                        utf8 = self._msg[3]  # pyright: ignore[reportOptionalSubscript]
                    self.partial = [pl, 0, b0 & 0x80, op, bytes(key) if key is not None else None, utf8, 0]
                    self.payload_received(k)
                    return
            if i < n:
                self._buf = bytes(buf[i:n])
        except ProtocolError as e:
            # Frames are acted on in order: messages parsed before the bad frame stay in
            # ``events`` and the failure waits behind them in ``error`` (the I/O layer
            # calls fail(*error) once the application has taken them), so it may still
            # answer them, as Autobahn's strict verdict for 3.2, 4.x.3 and 5.15 wants.
            # Nothing after the bad frame is parsed.
            for ev in self.events:
                if ev[0] < 8:
                    self.failed = True
                    self.error = (e.code, str(e))
                    return
            self.fail(e.code, str(e))
        except MemoryError:
            self._no_memory()

    def _in_message(self, ln):
        # Where a continuation's ``ln`` payload bytes go in its message's buffer (on
        # MicroPython): a fragment gets no buffer of its own to be copied from.
        # None when it cannot grow: ``want`` then asks the I/O layer for the grown
        # buffer, made from a shallow stack (see payload_room), and the frame is
        # parsed again.
        msg = self._msg
        used = msg[2]  # pyright: ignore[reportOptionalSubscript]
        room = self._room  # that grown buffer, if made
        self._room = None
        try:
            return memoryview(_reserve(msg, used + ln, self.max_size, room))[used : used + ln]
        except MemoryError:
            # As _reserve would grow it (less the in-place doubling, which just failed).
            self.want = max(min(2 * len(msg[1]), self.max_size + 1), used + ln + 1)  # pyright: ignore[reportOptionalSubscript]
            return None

    def _no_memory(self):
        # A message that fits max_size but not the heap (a text message needs its bytes
        # and its str; a fragmented one a buffer that doubles): too big for us, 1009.
        self.fail(_CLOSE_TOO_BIG, "message too big for free memory")

    def _check_header(self, b0, op, ln, masked, hl):
        if b0 & 0x70:
            raise ProtocolError(_E_RSV)
        if op >= 8:
            if op > _OP_PONG:
                raise ProtocolError(_E_CONTROL_OPCODE, 1002, op)
            if not b0 & 0x80:
                raise ProtocolError(_E_CONTROL_FRAGMENTED)
            if ln > 125:
                raise ProtocolError(_E_CONTROL_LONG)
        elif op > _OP_BINARY:
            raise ProtocolError(_E_DATA_OPCODE, 1002, op)
        elif op == _OP_CONT:
            if self._msg is None:
                raise ProtocolError(_E_LONE_CONTINUATION)
        elif self._msg is not None:
            raise ProtocolError(_E_DATA_IN_MESSAGE)
        if self.client:
            if masked:
                raise ProtocolError(_E_MASKED)
        elif not masked:
            raise ProtocolError(_E_UNMASKED)
        if hl >= 10 and ln >> 63:
            raise ProtocolError(_E_LENGTH_MSB)
        if op < 8 and (self._msg[2] if op == _OP_CONT else 0) + ln > self.max_size:
            raise PayloadTooBig(_E_TOO_BIG, self.max_size)

    def _payload_complete(self):
        buf, _, fin, op, key, utf8, _ = self.partial  # pyright: ignore[reportGeneralTypeIssues]
        self.partial = None
        if key is not None and utf8 is None:  # (text was unmasked as it came)
            apply_mask(buf, len(buf), key)
        self._frame(fin, op, buf, utf8)

    def _frame(self, fin, op, pl, fed=None):
        # ``fed``: the Utf8Stream this text payload was already fed to, as it came.
        if op >= 8:
            self._control(op, pl)
            return
        if self.close_rcvd is not None:
            return  # data after the peer's close: ignore
        if op == _OP_CONT:
            msg = self._msg
            op, _, used, utf8 = msg  # pyright: ignore[reportGeneralTypeIssues]
            end = used + len(pl)
            if type(pl) is not memoryview:  # else read into the message's buffer already
                _reserve(msg, end, self.max_size)[used:end] = pl
            msg[2] = end  # pyright: ignore[reportOptionalSubscript]
            if utf8 is not None and not utf8.feed(b"" if fed else pl, fin):
                raise ProtocolError(_E_UTF8, _CLOSE_INVALID_DATA)
            if not fin:
                return
            self._msg = None
            pl = msg[1]
            if len(pl) > 2 * end:  # max_size taken at once (_reserve), most of it unused:
                try:  # a copy of its size (+1: the spare byte a text's str takes)
                    pl = pl[: end + 1]
                except MemoryError:
                    pass  # it keeps the big one
            pl[end:] = b""  # the unused end (no copy; the memory stays with it)
            if op == _OP_TEXT:  # validated fragment by fragment already
                self._event((op, decode_text(pl, True)))
                return
        elif not fin:  # first fragment
            utf8 = fed
            if op == _OP_TEXT and fed is None:
                utf8 = Utf8Stream()
                if not utf8.feed(pl):
                    raise ProtocolError(_E_UTF8, _CLOSE_INVALID_DATA)
            self._msg = [op, pl if type(pl) is bytearray else bytearray(pl), len(pl), utf8]
            return
        if op == _OP_TEXT:
            self._event((op, decode_text(pl, fed is not None and fed.feed(b"", True))))
        else:
            self._event((op, pl))

    def _control(self, op, pl):
        if op == _OP_PING:  # answered here; no event (the I/O layer has no use for one)
            if self.close_sent is None:
                out = self.out
                if len(out) >= _MAX_PONGS_QUEUED:  # (a list then)
                    last = out[-1]  # pyright: ignore[reportGeneralTypeIssues]
                    if not hasattr(last, "send") and last[0] == 0x80 | _OP_PONG:
                        # A flood of pings in one read: its latest answered in place of
                        # the last pong not yet sent (RFC 6455 5.5.3 allows it), so the
                        # queue, and the heap it holds, stops growing.
                        out.pop()  # pyright: ignore[reportAttributeAccessIssue]
                self.send_frame(_OP_PONG, pl)
        elif op == _OP_PONG:
            self._event((_OP_PONG, bytes(pl)))
        else:
            code, reason = parse_close(pl)
            self.close_rcvd = (code, reason)
            if self.close_sent is None:  # echo the close (1005 -> empty payload)
                self.send_close(code, reason if code != _CLOSE_NO_STATUS else "")
            self.state = _CLOSED
            self._event((_OP_CLOSE, (code, reason)))

    # ---- output ------------------------------------------------------------

    def send_frame(self, op, data, fin=True):
        """Queue one frame. ``data`` is bytes-like (str already encoded).

        True when ``out`` now holds just this frame, in one buffer: the caller may
        write it at once.
        """
        # Few locals on purpose: a MicroPython function whose locals and stack need
        # more than 11 slots gets its frame from the heap on every call.
        if self.client:
            return self._send_masked(op, data, fin)
        n = len(data)
        if n < 126 and fin and not self.out:  # the usual small frame: one buffer, no helpers
            frame = bytearray(n + 2)
            frame[0] = 0x80 | op
            frame[1] = n
            frame[2:] = data
            self.out = [frame]
            return True
        if n <= _ONE_BUFFER:
            self._emit(encode_header(op, n, fin) + data if n else encode_header(op, 0, fin))
        else:
            self._emit(_plain_chunks(encode_header(op, n, fin), data))
        return False

    def _send_masked(self, op, data, fin):
        n = len(data)
        key = os.urandom(4)
        hdr = encode_header(op, n, fin, key)
        if n > _ONE_BUFFER:  # masked chunk by chunk as it is written
            self._emit(self._masked_chunks(hdr, data, key))
            return False
        # One buffer, one write.
        h = len(hdr)
        frame = bytearray(h + n)
        frame[:h] = hdr
        frame[h:] = data
        apply_mask(memoryview(frame)[h:], n, key)
        alone = not self.out
        self._emit(frame)
        return alone

    def _masked_chunks(self, hdr, data, key):
        # The header (at most 14 bytes) goes out with the first chunk, so a 64 KiB
        # message is one write. Chunks are consumed one after the other (the writer
        # sends or copies each before asking for the next), so one buffer serves every
        # big frame of this connection. Every chunk starts at a payload offset that is
        # a multiple of WRITE_CHUNK, hence of 4: the mask key never needs rotating.
        buf = self._mask_buf
        if buf is None:
            buf = self._mask_buf = bytearray(WRITE_CHUNK + 14)
        mv = memoryview(buf)
        src = memoryview(data)
        n = len(src)
        h = len(hdr)
        mv[:h] = hdr
        i = 0
        while i < n:
            k = min(WRITE_CHUNK, n - i)
            mv[h : h + k] = src[i : i + k]
            apply_mask(mv[h : h + k], k, key)
            yield mv[: h + k]
            i += k
            h = 0

    def send_close(self, code=1000, reason=""):
        """Start (or answer) the closing handshake."""
        if self.close_sent is not None:
            return
        payload = build_close(code, reason)  # first: a code we may not send raises, nothing changed
        self.close_sent = (code, reason)
        self.send_frame(_OP_CLOSE, payload)
        if self.state == _OPEN:
            self.state = _CLOSING

    def fail(self, code, reason=""):
        """Fail the connection (RFC 6455 7.1.7): send a close with ``code``, then stop reading."""
        self.failed = True
        self.error = None
        self.partial = None
        self._buf = b""
        try:
            self.send_close(code, reason)
            if self.close_rcvd is None:
                self._event((_OP_CLOSE, (code, reason)))
        except MemoryError:
            pass  # not even a close frame fits: TCP is closed without one (the peer sees 1006)
        self.state = _CLOSED


def _big_buffer(n):
    if n > _COLLECT_ABOVE:
        gc.collect()
    return bytearray(n)


def _reserve(msg, end, max_size, new=None):
    # The fragmented message's buffer, grown to hold ``end`` bytes (into ``new`` when
    # the I/O layer made it: see Protocol._in_message). A buffer per fragment joined
    # at the end would cost 2x the message, and growing by each fragment would copy it
    # every time; so it doubles, by extend() of itself:
    # MicroPython's realloc grows it in place when the heap after it is free (the
    # message then needs its size once, not the old and the new buffer: 1.5x); never
    # past max_size (+ 1: the spare byte of a text, see frames.decode_text). (CPython
    # copies: a bytearray with a memoryview of it alive cannot be resized there.)
    # From a 32nd of the heap on, it first tries max_size at once, if that is at most
    # 3/4 of the heap: one block, found while the heap holds little of the message.
    # Doubling on needs, at each step, a free run for the new size while the old buffer
    # lies somewhere mid-heap; near the end there is often none. 1 MiB messages in 64 B
    # to 1 MiB fragments, echoed by a server on the unix port's 2 MiB heap, 20 rounds
    # per size: 183 of 240 echoed before, 598 of 600 in three runs with this (the retry
    # from a shallow stack alone, see _in_message: 74 of 96 in 8 rounds). A message
    # that ends below half of it is copied out to its size if the heap allows (_frame).
    buf = msg[1]
    size = len(buf)
    if end <= size:
        return buf
    cap = max_size + 1
    if new is None and size >= _HEAP_SIZE >> 5 and 2 * size < cap <= _HEAP_SIZE * 3 >> 2:  # (CPython: 0)
        try:
            new = _big_buffer(cap)
        except MemoryError:
            pass  # doubling may still find room
    if new is None:
        n = 2 * size
        if not end <= n <= cap:
            n = max(min(n, cap), end + (msg[0] == _OP_TEXT))
        elif _WHOLE_PAYLOAD:
            if n > _COLLECT_ABOVE:
                gc.collect()
            buf.extend(buf)  # pyright: ignore[reportAttributeAccessIssue]
            return buf
        new = _big_buffer(n)
    new[: msg[2]] = memoryview(buf)[: msg[2]]
    msg[1] = new
    return new


def _plain_chunks(hdr, data):
    yield hdr
    if _WHOLE_PAYLOAD:  # MicroPython's writer sends a view of it without copying
        yield data
        return
    mv = memoryview(data)
    for i in range(0, len(mv), WRITE_CHUNK):
        yield mv[i : i + WRITE_CHUNK]
