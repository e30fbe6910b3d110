"""A hand-written RFC 6455 peer for tests, independent of lib/microws's framing code.

Builds exact bytes (including invalid ones) and parses what microws sends, so the
library is checked against the RFC rather than against itself. Runs under
MicroPython and CPython.
"""

import asyncio
import os
import struct
import sys

from microws.server import Server

# RFC 6455 numbers, from the RFC (5.2, 7.4.1): opcodes, close codes; and the states
# of microws's Protocol. test_frames checks the library's private copies against these.
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10
OPEN, CLOSING, CLOSED = 1, 2, 3
RFC_NUMBERS = {
    "OP_CONT": OP_CONT,
    "OP_TEXT": OP_TEXT,
    "OP_BINARY": OP_BINARY,
    "OP_CLOSE": OP_CLOSE,
    "OP_PING": OP_PING,
    "OP_PONG": OP_PONG,
    "CLOSE_NORMAL": 1000,
    "CLOSE_GOING_AWAY": 1001,
    "CLOSE_PROTOCOL_ERROR": 1002,
    "CLOSE_UNSUPPORTED": 1003,
    "CLOSE_NO_STATUS": 1005,
    "CLOSE_ABNORMAL": 1006,
    "CLOSE_INVALID_DATA": 1007,
    "CLOSE_POLICY": 1008,
    "CLOSE_TOO_BIG": 1009,
    "CLOSE_INTERNAL_ERROR": 1011,
    "OPEN": OPEN,
    "CLOSING": CLOSING,
    "CLOSED": CLOSED,
}
ONE_BUFFER = 16384  # microws's own: the largest frame it writes as one buffer (protocol)

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def frame(op, payload=b"", fin=True, mask=True, rsv=0, key=None):
    """Bytes of one frame; ``mask`` applies a random (or given) key."""
    if isinstance(payload, str):
        payload = payload.encode()
    b0 = (0x80 if fin else 0) | (rsv << 4) | op
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        hdr = bytes((b0, mbit | n))
    elif n < 65536:
        hdr = bytes((b0, mbit | 126)) + struct.pack("!H", n)
    else:
        hdr = bytes((b0, mbit | 127)) + struct.pack("!Q", n)
    if not mask:
        return hdr + payload
    key = key or os.urandom(4)
    body = bytes(payload[i] ^ key[i & 3] for i in range(n)) if n < 4096 else xor_with_key(payload, key)
    return hdr + key + body


def xor_with_key(payload, key):
    # 4 KiB at a time: big-int XOR of a whole large payload would not fit a small heap.
    out = bytearray(len(payload))
    keys = key * 1024
    for i in range(0, len(payload), 4096):
        chunk = payload[i : i + 4096]
        k = len(chunk)
        out[i : i + k] = (int.from_bytes(chunk, "little") ^ int.from_bytes(keys[:k], "little")).to_bytes(k, "little")
    return bytes(out)


def close_payload(code, reason=b""):
    return struct.pack("!H", code) + (reason.encode() if isinstance(reason, str) else reason)


async def read_exact(reader, n):
    buf = b""
    while len(buf) < n:
        chunk = await reader.read(n - len(buf))
        if not chunk:
            raise EOFError("peer closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf


async def read_frame(reader, expect_masked=False):
    """(fin, op, payload, masked) of the next frame; unmasks if masked."""
    h = await read_exact(reader, 2)
    fin, op, masked, n = h[0] & 0x80, h[0] & 0x0F, h[1] & 0x80, h[1] & 0x7F
    assert (h[0] & 0x70) == 0, "RSV bits set by microws"
    if n == 126:
        n = struct.unpack("!H", await read_exact(reader, 2))[0]
    elif n == 127:
        n = struct.unpack("!Q", await read_exact(reader, 8))[0]
    key = await read_exact(reader, 4) if masked else None
    payload = await read_exact(reader, n) if n else b""
    if masked:
        payload = xor_with_key(payload, key)
    assert bool(masked) == expect_masked, "mask bit %s, expected %s" % (bool(masked), expect_masked)
    return fin, op, payload, bool(masked)


async def read_close(reader, expect_masked=False):
    """The code of the next close frame (skipping data frames); None for an empty payload."""
    while True:
        fin, op, payload, _ = await read_frame(reader, expect_masked)
        if op == 8:
            if not payload:
                return None
            return struct.unpack("!H", payload[:2])[0]


async def read_eof(reader):
    """True once the peer has closed TCP (any remaining bytes are discarded)."""
    while True:
        try:
            chunk = await reader.read(4096)
        except OSError:
            return True
        if not chunk:
            return True


def upgrade_request(
    path="/", host="127.0.0.1", extra=(), version="13", key=KEY, upgrade="websocket", connection="Upgrade"
):
    lines = ["GET %s HTTP/1.1" % path]
    if host:
        lines.append("Host: %s" % host)
    if upgrade:
        lines.append("Upgrade: %s" % upgrade)
    if connection:
        lines.append("Connection: %s" % connection)
    if key:
        lines.append("Sec-WebSocket-Key: %s" % key)
    if version:
        lines.append("Sec-WebSocket-Version: %s" % version)
    lines.extend(extra)
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def read_head(reader):
    """(status, {lower name: value}) of an HTTP response head."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = await reader.read(1)
        if not chunk:
            raise EOFError("closed before the end of the head: %r" % buf)
        buf += chunk
    lines = buf.decode().split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    return status, headers


async def open_raw(port, request=None):
    """A raw TCP connection to 127.0.0.1:port; sends ``request`` if given."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    if request:
        writer.write(request)
        await writer.drain()
    return reader, writer


async def ws_raw(port, path="/", extra=()):
    """A raw connection that completed the upgrade: (reader, writer)."""
    reader, writer = await open_raw(port, upgrade_request(path, extra=extra))
    status, headers = await read_head(reader)
    assert status == 101, status
    assert headers["sec-websocket-accept"] == ACCEPT
    return reader, writer


def tls_contexts():
    """(server, client) SSLContexts for the run's self-signed certificate (tests/conftest.py
    makes it); the client's trusts it on CPython and verifies nothing on MicroPython."""
    import ssl

    certs = os.getenv("MICROWS_TEST_CERTS")
    assert certs, "MICROWS_TEST_CERTS not set (tests/conftest.py makes the certificates)"
    mp = sys.implementation.name == "micropython"
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(certs + ("/cert.der" if mp else "/cert.pem"), certs + ("/key.der" if mp else "/key.pem"))
    cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if mp:
        cctx.verify_mode = ssl.CERT_NONE
    else:
        cctx.load_verify_locations(certs + "/ca.pem")
    return sctx, cctx


def seconds():
    """A monotonic clock in seconds on both runtimes."""
    import time

    return time.ticks_ms() / 1000 if hasattr(time, "ticks_ms") else time.monotonic()  # pyright: ignore


def small_send_buffer(writer):
    """Shrink a stream's kernel send buffer (Linux: SOL_SOCKET 1, SO_SNDBUF 7), so that a
    big send to a peer that reads nothing blocks after some KiB, not after megabytes
    (loopback took a whole 1 MiB frame otherwise)."""
    sock = writer.s if hasattr(writer, "s") else writer.get_extra_info("socket")
    sock.setsockopt(1, 7, 4096)


async def send(writer, data):
    writer.write(data)
    await writer.drain()


async def close_raw(writer):
    try:
        writer.close()
        await writer.wait_closed()
    except Exception:
        pass


class RawServer(Server):
    """A listener (port 0 works on both runtimes) handing raw streams to ``callback``.

    Plays a hand-written WebSocket *server* for client-side tests.
    """

    def __init__(self, callback, ssl=None):
        super().__init__(None, {"ssl": ssl, "port": 0, "ping_interval": None, "handshake_timeout": 10})
        self.callback = callback

    async def _client(self, reader, writer):
        try:
            await self.callback(reader, writer)
        finally:
            await close_raw(writer)


async def raw_server(callback, ssl=None):
    srv = RawServer(callback, ssl)
    await srv._start("127.0.0.1", 0, 16)
    return srv


async def accept_upgrade(reader, writer, extra=(), then=b"", status="HTTP/1.1 101 Switching Protocols"):
    """Server side of a handshake done by hand; returns the request head text.

    ``then``: bytes sent in the same write as the 101 (frames that arrive with it)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = await reader.read(1024)
        if not chunk:
            raise EOFError
        buf += chunk
    head = buf.decode()
    key = ""
    for line in head.split("\r\n"):
        if line.lower().startswith("sec-websocket-key:"):
            key = line.split(":", 1)[1].strip()
    import binascii
    import hashlib

    accept = binascii.b2a_base64(hashlib.sha1(key.encode() + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
    lines = [
        status,
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Accept: %s" % accept.decode().strip(),
    ]
    lines.extend(extra)
    await send(writer, ("\r\n".join(lines) + "\r\n\r\n").encode() + then)
    return head


async def answer_close(reader, writer, expect_masked=True):
    """Play a well-behaved server at the end: echo the peer's close, then close TCP."""
    try:
        while True:
            fin, op, payload, _ = await read_frame(reader, expect_masked)
            if op == 8:
                await send(writer, frame(8, payload, mask=not expect_masked))
                return
    except (EOFError, OSError):
        pass


async def read_eof_only(reader, writer):
    """A peer that reads and ignores everything until the other side hangs up."""
    await read_eof(reader)
