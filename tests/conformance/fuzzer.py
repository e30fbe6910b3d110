"""The fuzzing peer: plays one conformance case on the wire against a microws echo agent.

Plays the WebSocket *client* against the agent's server (``role="server"``) or the
WebSocket *server* against the agent's client (``role="client"``), sends exactly the
bytes a case asks for (invalid ones included, chopped as asked; frames built by
tests/device/wirepeer.py), and records what
comes back: messages, pongs, the close frame, when TCP ended, and every breach of
RFC 6455 by the agent (mask bit, RSV bits, reserved opcodes, control frame rules,
frames after its close, text that is not UTF-8). Runs in CPython; its framing is
written from the RFC, independent of lib/microws.
"""

import asyncio
import base64
import hashlib
import os
import socket
import struct

import wirepeer

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
CLOSE_WAIT = 5.0  # seconds an agent gets to answer or send a close
END_WAIT = 5.0  # seconds an agent's server gets to close TCP after the close handshake


class Pipe(asyncio.Protocol):
    """A TCP connection that keeps every byte that arrived, even when a reset follows.

    asyncio's StreamReader raises a pending connection error before handing out the
    bytes it already holds, so a close frame followed by a reset (an agent that closed
    TCP while we were still sending) would be lost; Autobahn's Twisted reader, like
    browsers, still sees it. ``on_made`` runs once connected (for the server role).
    """

    def __init__(self, on_made=None):
        self.buf = bytearray()
        self.lost = False
        self.transport = None
        self.on_made = on_made
        self._arrived = asyncio.Event()
        self._writable = asyncio.Event()
        self._writable.set()

    def connection_made(self, transport):
        self.transport = transport
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.on_made:
            asyncio.get_running_loop().create_task(self.on_made(self))

    def data_received(self, data):
        self.buf += data
        self._arrived.set()

    def eof_received(self):
        self.lost = True
        self._arrived.set()

    def connection_lost(self, exc):
        self.lost = True
        self._arrived.set()
        self._writable.set()

    def pause_writing(self):
        self._writable.clear()

    def resume_writing(self):
        self._writable.set()

    async def _more(self, want):
        if self.lost:
            raise asyncio.IncompleteReadError(bytes(self.buf), want)
        self._arrived.clear()
        await self._arrived.wait()

    async def readexactly(self, n):
        while len(self.buf) < n:
            await self._more(n)
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    async def readuntil(self, sep):
        while sep not in self.buf:
            await self._more(None)
        return await self.readexactly(self.buf.index(sep) + len(sep))

    def write(self, data):
        if self.lost:
            raise ConnectionResetError("the agent hung up")
        self.transport.write(data)

    async def drain(self):
        await self._writable.wait()

    def close(self):
        self.transport.close()


class Wire:
    """One connection to the agent, seen from the fuzzer; ``events`` is what the agent sent."""

    def __init__(self, pipe, masks):
        self.pipe = pipe
        self.masks = masks  # the fuzzer is the client: it masks, the agent must not
        self.events = []  # ("text" | "binary" | "pong" | "ping", payload bytes)
        self.close = None  # (code or None, reason bytes) of the agent's close frame
        self.eof = False  # the agent ended TCP (or reset it)
        self.violations = []
        self.notes = []
        self.sent_close = False
        self._changed = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._read_all())

    # -- sending ---------------------------------------------------------------------

    def frame(self, op, payload=b"", fin=True, rsv=0):
        return wirepeer.frame(op, payload, fin, mask=self.masks, rsv=rsv)

    async def send(self, *frames, chop=None):
        """Write ``frames``: in one write, one write per frame (``"frame"``) or in ``chop``-byte writes.

        A write to an agent that already hung up (having failed the connection) is
        not an error: the case is judged on what the agent sent.
        """
        if any(f[0] & 0x0F == 8 for f in frames):
            self.sent_close = True
        if chop == "frame":
            pieces = frames
        else:
            data = b"".join(frames)
            step = chop or len(data) or 1
            pieces = [data[i : i + step] for i in range(0, len(data), step)]
        try:
            for piece in pieces:
                self.pipe.write(piece)
                await self.pipe.drain()
        except (ConnectionError, OSError):
            self.notes.append("write after the agent hung up")

    # -- waiting ---------------------------------------------------------------------

    async def until(self, predicate, timeout):
        """True once ``predicate()`` holds; False if ``timeout`` seconds pass first."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while not predicate():
            left = end - loop.time()
            if left <= 0:
                return False
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except TimeoutError:
                return predicate()
        return True

    def ended(self):
        return self.close is not None or self.eof

    async def events_at_least(self, n, timeout):
        return await self.until(lambda: len(self.events) >= n or self.ended(), timeout)

    # -- reading ---------------------------------------------------------------------

    async def _read_all(self):
        op_open = None  # opcode of the message being reassembled
        parts = []
        try:
            while True:
                fin, rsv, op, masked, payload = await self._read_frame()
                if self.close is not None:
                    self.violations.append("frame (opcode %d) after the agent's close frame" % op)
                if rsv:
                    self.violations.append("RSV bits %d set" % rsv)
                if masked == self.masks:
                    self.violations.append("mask bit %d from the agent" % masked)
                if op >= 8:
                    if not fin or len(payload) > 125:
                        self.violations.append("bad control frame (fin=%s, %d bytes)" % (fin, len(payload)))
                    if op == 8:
                        self._got_close(payload)
                    elif op == 9:
                        self.events.append(("ping", payload))
                    elif op == 10:
                        self.events.append(("pong", payload))
                    else:
                        self.violations.append("reserved opcode %d" % op)
                elif op in (1, 2):
                    if op_open is not None:
                        self.violations.append("new message inside a fragmented one")
                    op_open, parts = op, [payload]
                elif op == 0 and op_open is not None:
                    parts.append(payload)
                else:
                    self.violations.append("opcode %d out of place" % op)
                    continue
                if fin and op < 8 and op_open is not None:
                    self._got_message(op_open, b"".join(parts))
                    op_open, parts = None, []
                self._changed.set()
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        finally:
            self.eof = True
            self._changed.set()

    async def _read_frame(self):
        head = await self.pipe.readexactly(2)
        n = head[1] & 0x7F
        if n == 126:
            n = struct.unpack("!H", await self.pipe.readexactly(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", await self.pipe.readexactly(8))[0]
        masked = bool(head[1] & 0x80)
        key = await self.pipe.readexactly(4) if masked else None
        payload = await self.pipe.readexactly(n) if n else b""
        if key:
            payload = wirepeer.xor_with_key(payload, key)
        return bool(head[0] & 0x80), (head[0] >> 4) & 7, head[0] & 0x0F, masked, payload

    def _got_message(self, op, data):
        if op == 1:
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:
                self.violations.append("text message that is not UTF-8")
        self.events.append(("text" if op == 1 else "binary", data))

    def _got_close(self, payload):
        if len(payload) == 1:
            self.violations.append("close payload of 1 byte")
            self.close = (None, payload)
            return
        code = struct.unpack("!H", payload[:2])[0] if payload else None
        reason = payload[2:]
        try:
            reason.decode("utf-8")
        except UnicodeDecodeError:
            self.violations.append("close reason that is not UTF-8")
        self.close = (code, reason)

    # -- ending ----------------------------------------------------------------------

    async def finish(self):
        """The close handshake and TCP end as the RFC has them.

        If neither side has sent a close, the fuzzer sends a normal one; if the agent
        started, its close is answered. Then the server side closes TCP: the agent,
        when it is the server, within END_WAIT seconds.
        """
        if not self.sent_close and not self.ended():
            await self.send(self.frame(8, wirepeer.close_payload(1000)))
        if not await self.until(self.ended, CLOSE_WAIT):
            self.violations.append("no close frame within %ss" % CLOSE_WAIT)
        elif self.close is None:
            self.notes.append("TCP ended without a close frame")
        elif not self.sent_close:
            code = self.close[0]  # None: the agent's close was empty, so is ours
            await self.send(self.frame(8, b"" if code is None else wirepeer.close_payload(code)))
        if self.masks:  # the agent is the server: it closes TCP first (RFC 6455 7.1.1)
            if not await self.until(lambda: self.eof, END_WAIT):
                self.violations.append("agent's server kept TCP open %ss after the close handshake" % END_WAIT)
        self.pipe.close()
        self._task.cancel()


# -- both roles' ways in -------------------------------------------------------------------


async def open_to_server(port, path="/"):
    """Fuzzer as client: a raw connection to the agent's server that completed the upgrade."""
    _, pipe = await asyncio.get_running_loop().create_connection(Pipe, "127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    pipe.write(
        (
            "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n" % (path, port, key)
        ).encode()
    )
    await pipe.drain()
    head = await asyncio.wait_for(pipe.readuntil(b"\r\n\r\n"), CLOSE_WAIT)
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0].startswith("HTTP/1.1 101 "), "upgrade refused: %r" % head
    fields = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
    accept = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()
    assert fields.get("sec-websocket-accept") == accept, "wrong Sec-WebSocket-Accept: %r" % head
    assert "sec-websocket-extensions" not in fields, "agent accepted an extension it cannot do: %r" % head
    return Wire(pipe, masks=True)


async def listen(on_connection):
    """Fuzzer as server: a listener on 127.0.0.1 (free port) running ``on_connection(pipe)``."""
    return await asyncio.get_running_loop().create_server(lambda: Pipe(on_connection), "127.0.0.1", 0)


async def accept_client(pipe):
    """Fuzzer as server: check the agent's upgrade request as the RFC asks, answer 101."""
    head = await asyncio.wait_for(pipe.readuntil(b"\r\n\r\n"), CLOSE_WAIT)
    lines = head.decode("latin-1").split("\r\n")
    method, _, rest = lines[0].partition(" ")
    assert method == "GET" and rest.endswith(" HTTP/1.1"), "bad request line %r" % lines[0]
    fields = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
    assert "host" in fields, "no Host"
    assert fields.get("upgrade", "").lower() == "websocket", "Upgrade: %r" % fields.get("upgrade")
    assert "upgrade" in [t.strip().lower() for t in fields.get("connection", "").split(",")], "Connection"
    assert fields.get("sec-websocket-version") == "13", "version %r" % fields.get("sec-websocket-version")
    key = fields.get("sec-websocket-key", "")
    assert len(base64.b64decode(key)) == 16, "key %r is not 16 bytes in base64" % key
    accept = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()
    pipe.write(
        (
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Accept: %s\r\n\r\n" % accept
        ).encode()
    )
    await pipe.drain()
    return Wire(pipe, masks=False)


# -- one case, start to verdict ---------------------------------------------------------------


def _show(events):
    out = []
    for kind, payload in events:
        p = payload if len(payload) <= 40 else payload[:40] + b"...(%d bytes)" % len(payload)
        out.append("%s %r" % (kind, p))
    return "[%s]" % ", ".join(out)


async def play(case, w):
    """Run ``case`` on ``w`` and judge it: ("OK" | "NON-STRICT: ...", []) or (verdict, problems)."""
    for step in case.steps:
        await step(w)
    if case.close == "clean":
        enough = case.done or (lambda events: len(events) >= len(case.expect[0]))
        if not await w.until(lambda: enough(w.events) or w.ended(), case.limit):
            w.violations.append("answers still missing after %ss" % case.limit)
        if w.ended():
            w.violations.append("the agent closed a connection that had nothing wrong with it")
    await w.finish()
    problems = list(w.violations)
    code = w.close[0] if w.close else "no close frame"
    allowed = (1000,) if case.close == "clean" else case.codes
    if code not in allowed:
        problems.append("close code %s, expected %s" % (code, " or ".join(map(str, allowed))))
    strict = [n for n in w.notes if n.startswith("NON-STRICT")]
    if w.events == case.expect[0]:
        verdict = strict[0] if strict else "OK"
    elif w.events in case.expect[1:]:
        verdict = "NON-STRICT: answered %s" % _show(w.events)
    else:
        verdict = "FAILED"
        problems.append("got %s, expected %s" % (_show(w.events), " or ".join(map(_show, case.expect))))
    return ("FAILED" if problems else verdict), problems
