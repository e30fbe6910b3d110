"""The interop conversation, shared by the MicroPython peer scripts and the CPython tests.

Every peer we did not write (``websockets``, Node ``ws``, Chromium) speaks the same
small command language over an echo connection, so one expected transcript checks
them all:

- any message that is not a command is echoed with its type (text/binary);
- ``cmd:frag:N``  -> a binary message of N bytes in 3 fragments, then the text
  ``FRAG_TEXT`` in 3 fragments;
- ``cmd:big:N``   -> one unfragmented binary message of N bytes;
- ``cmd:ping``    -> the server pings (payload ``server-ping``), sends ``ping-sent``,
  reads the next message (``ping-check``), then sends ``pong-ok`` if the pong came
  back before it (it must: the peer answers the ping before it reads ``ping-sent``);
- ``cmd:close:CODE:REASON`` -> the server closes with that code and reason;
- on the path ``/proto`` the server first sends ``subprotocol <chosen>``.

When a connection ends the server reports ``CLOSE <code> <reason>`` (what it got).
Runs unchanged under MicroPython (no f-strings beyond the subset, no typing).
"""

import asyncio

import microws

SIZES = (0, 125, 126, 65535, 65536, 200000)
MAX_SIZE = 300000  # above the largest size, below the lib default's 1009 trip point
SUBPROTOCOLS = ["microws.v1", "chat.v2"]  # the server's, in preference order
OFFERED = ["nope.v0", "microws.v1"]  # the client's offer: exactly one match
UNICODE = "h\u00e9llo w\u00f6rld \u2713 \U0001f600"
FRAG_TEXT = "fragmented t\u00ebxt"
CLIENT_CLOSE = (4001, "client bye \u2713")
SERVER_CLOSE = (4002, "server bye \u2713")

_ALPHA = "0123456789abcdefghijklmnopqrstuvwxyz"
_BYTES = bytes(range(256))


def text_of(n):
    """An ASCII text of ``n`` characters (a rolling pattern, so shifts are caught)."""
    return (_ALPHA * (n // len(_ALPHA) + 1))[:n]


def bytes_of(n):
    """``n`` bytes cycling through 0..255 (every byte value, zeros included)."""
    return (_BYTES * (n // 256 + 1))[:n]


def thirds(data):
    """``data`` cut into three non-empty-ish fragments."""
    a = len(data) // 3
    return [data[:a], data[a : 2 * a], data[2 * a :]]


def expected_client_transcript():
    """The lines ``client_session`` prints against a conforming server."""
    lines = ["subprotocol microws.v1"]
    for n in SIZES:
        lines.append("text %d ok" % n)
        lines.append("binary %d ok" % n)
    lines += [
        "unicode ok",
        "send fragmented text ok",
        "send fragmented binary ok",
        "recv fragmented binary ok",
        "recv fragmented text ok",
        "client ping ok",
        "server ping pong-ok",
        "client close %d %s" % CLIENT_CLOSE,
        "no subprotocol None",
        "server close %d %s" % SERVER_CLOSE,
        "server close 1000 done OK",
        "too big 1009",
        "DONE",
    ]
    return lines


def expected_server_closes():
    """``CLOSE`` reports the server makes for one ``client_session`` (sorted, normalized)."""
    return sorted(["CLOSE %d %s" % CLIENT_CLOSE, "CLOSE %d %s" % SERVER_CLOSE, "CLOSE 1000 done", "CLOSE 1009"])


def normalize_closes(lines):
    """The ``CLOSE`` lines among ``lines``, sorted; a 1009's free-form reason dropped."""
    found = [ln.rstrip() for ln in lines if ln.startswith("CLOSE ")]
    return sorted("CLOSE 1009" if ln.startswith("CLOSE 1009") else ln for ln in found)


def _verdict(ok, got):
    return "ok" if ok else "BAD %r" % (got if len(repr(got)) < 80 else type(got),)


class MicrowsApi:
    """How the session talks to a WebSocket library; websockets_peer has the other one."""

    binary = (bytes, bytearray)
    Closed = microws.ConnectionClosed
    ClosedOK = microws.ConnectionClosedOK
    ClosedError = microws.ConnectionClosedError

    @staticmethod
    def connect(url, subprotocols=None, max_size=65536, ssl=None):
        return microws.connect(url, subprotocols=subprotocols, max_size=max_size, ssl=ssl, ping_interval=None)

    @staticmethod
    def path(ws):
        return ws.path

    @staticmethod
    def pong_done(pong):
        return pong.is_set()

    @staticmethod
    def received(exc):
        return exc.code, exc.reason

    @staticmethod
    def sent_code(exc):
        return exc.code


async def _echo(ws, msg):
    await ws.send(msg)
    return await ws.recv()


async def _expect_close(ws, exc_type, out, fmt):
    try:
        r = await ws.recv()
        out("BAD no close, got %r" % (r if len(r) < 80 else len(r),))
    except exc_type as e:
        out(fmt(e))


async def client_session(base_url, out, ssl=None, api=MicrowsApi):
    """Drive a server speaking the command language above; ``out(line)`` reports."""
    ws = await api.connect(base_url + "/proto", subprotocols=OFFERED, max_size=MAX_SIZE, ssl=ssl)
    out("subprotocol %s" % ws.subprotocol)
    greeting = await ws.recv()
    if greeting != "subprotocol microws.v1":
        out("BAD greeting %r" % greeting)
    for n in SIZES:
        t = text_of(n)
        r = await _echo(ws, t)
        out("text %d %s" % (n, _verdict(isinstance(r, str) and r == t, r)))
        b = bytes_of(n)
        r = await _echo(ws, b)
        out("binary %d %s" % (n, _verdict(isinstance(r, api.binary) and r == b, r)))
    r = await _echo(ws, UNICODE)
    out("unicode %s" % _verdict(r == UNICODE, r))
    await ws.send(thirds(FRAG_TEXT))
    r = await ws.recv()
    out("send fragmented text %s" % _verdict(r == FRAG_TEXT, r))
    big = bytes_of(70000)
    await ws.send([big[:1000], big[1000:1001], big[1001:]])
    r = await ws.recv()
    out("send fragmented binary %s" % _verdict(isinstance(r, api.binary) and r == big, r))
    await ws.send("cmd:frag:70000")
    r = await ws.recv()
    out("recv fragmented binary %s" % _verdict(isinstance(r, api.binary) and r == big, r))
    r = await ws.recv()
    out("recv fragmented text %s" % _verdict(r == FRAG_TEXT, r))
    pong = await ws.ping(b"client-ping")
    r = await _echo(ws, "after ping")
    out("client ping %s" % _verdict(api.pong_done(pong) and r == "after ping", (api.pong_done(pong), r)))
    await ws.send("cmd:ping")
    r = await ws.recv()
    if r == "ping-sent":
        await ws.send("ping-check")
        r = await ws.recv()
    out("server ping %s" % r)
    await ws.close(*CLIENT_CLOSE)
    out("client close %s %s" % (ws.close_code, ws.close_reason))

    ws = await api.connect(base_url + "/", ssl=ssl)
    out("no subprotocol %s" % ws.subprotocol)
    await ws.send("cmd:close:%d:%s" % SERVER_CLOSE)
    await _expect_close(ws, api.ClosedError, out, lambda e: "server close %d %s" % api.received(e))
    await ws.close()

    ws = await api.connect(base_url + "/", ssl=ssl)
    await ws.send("cmd:close:1000:done")
    await _expect_close(ws, api.ClosedOK, out, lambda e: "server close %d %s OK" % api.received(e))

    ws = await api.connect(base_url + "/", ssl=ssl)  # max_size 64 KiB
    await ws.send("cmd:big:100000")
    await _expect_close(ws, api.ClosedError, out, lambda e: "too big %d" % api.sent_code(e))
    out("DONE")


# ---- the server side (microws serving the same language) -------------------------


async def _command(ws, cmd, api):
    name, _, arg = cmd.partition(":")
    if name == "frag":
        await ws.send(thirds(bytes_of(int(arg))))
        await ws.send(thirds(FRAG_TEXT))
    elif name == "big":
        await ws.send(bytes_of(int(arg)))
    elif name == "ping":
        pong = await ws.ping(b"server-ping")
        await ws.send("ping-sent")
        r = await ws.recv()
        await ws.send("pong-ok" if api.pong_done(pong) and r == "ping-check" else "pong-missing")
    elif name == "close":
        code, _, reason = arg.partition(":")
        await ws.close(int(code), reason)
    else:
        await ws.send("unknown command %s" % cmd)


def make_handler(out, api=MicrowsApi):
    """A connection handler speaking the language; ``out(line)`` gets the CLOSE reports."""

    async def handler(ws):
        try:
            if api.path(ws) == "/proto":
                await ws.send("subprotocol %s" % ws.subprotocol)
            async for msg in ws:
                if isinstance(msg, str) and msg.startswith("cmd:"):
                    await _command(ws, msg[4:], api)
                else:
                    await ws.send(msg)
        except api.Closed:
            pass
        await ws.wait_closed()
        out("CLOSE %s %s" % (ws.close_code, ws.close_reason))

    return handler


async def serve(out, port=0, ssl=None, http_handler=None):
    """Start the language server on 127.0.0.1; returns the microws Server."""
    return await microws.serve(
        make_handler(out),
        "127.0.0.1",
        port,
        ssl=ssl,
        subprotocols=SUBPROTOCOLS,
        max_size=MAX_SIZE,
        http_handler=http_handler,
    )


def run_forever():
    """Keep the loop alive until the process is killed."""
    return asyncio.Event().wait()
