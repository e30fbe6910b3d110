"""Client-side behaviour against a hand-written server (wirepeer.RawServer)."""

import asyncio

import wirepeer as wp
from devtest import araises

import microws


class Peer:
    """A raw server whose per-connection behaviour is ``script(reader, writer, head)``."""

    def __init__(self, script, extra=(), respond=True):
        self.script = script
        self.extra = extra
        self.respond = respond
        self.heads = []
        self.done = asyncio.Event()

    async def __aenter__(self):
        async def conn(reader, writer):
            try:
                if self.respond:
                    self.heads.append(await wp.accept_upgrade(reader, writer, self.extra))
                await self.script(reader, writer)
            finally:
                self.done.set()

        self.srv = await wp.raw_server(conn)
        self.url = "ws://127.0.0.1:%d/path?q=1" % self.srv.port
        return self

    async def __aexit__(self, *exc):
        self.srv.close()
        await self.srv.wait_closed()


async def idle(reader, writer):
    await wp.answer_close(reader, writer)


async def test_request_carries_the_rfc_headers_and_a_fresh_16_byte_key():
    import binascii

    async with Peer(idle) as p:
        ws = await microws.connect(p.url, subprotocols=["a", "b"], headers={"Authorization": "Bearer t"},
                                   ping_interval=None)
        ws2 = await microws.connect(p.url, ping_interval=None)
        await ws.close()
        await ws2.close()
    lines = p.heads[0].split("\r\n")
    assert lines[0] == "GET /path?q=1 HTTP/1.1"
    h = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            h[k.lower()] = v.strip()
    assert h["host"] == "127.0.0.1:%d" % p.srv.port
    assert h["upgrade"].lower() == "websocket" and h["connection"].lower() == "upgrade"
    assert h["sec-websocket-version"] == "13"
    assert len(binascii.a2b_base64(h["sec-websocket-key"])) == 16
    assert h["sec-websocket-protocol"] == "a, b"
    assert h["authorization"] == "Bearer t"
    assert p.heads[0] != p.heads[1] and "sec-websocket-protocol" not in p.heads[1].lower()


async def test_client_rejects_a_wrong_accept_key():
    async def wrong(reader, writer):
        while b"\r\n\r\n" not in await reader.read(1024):
            pass
        await wp.send(writer, b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                              b"Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n")
        await wp.read_eof(reader)

    async with Peer(wrong, respond=False) as p:
        e = await araises(microws.InvalidHandshake, microws.connect(p.url))
        assert "Accept" in str(e)


async def test_client_rejects_non_101_status():
    async def refuse(reader, writer):
        while b"\r\n\r\n" not in await reader.read(1024):
            pass
        await wp.send(writer, b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n")

    async with Peer(refuse, respond=False) as p:
        e = await araises(microws.InvalidHandshake, microws.connect(p.url))
        assert e.status == 401


async def test_client_rejects_a_101_that_is_not_http_1_1():
    async def old_http(reader, writer):
        await wp.accept_upgrade(reader, writer, status="HTTP/1.0 101 Switching Protocols")
        await wp.read_eof(reader)

    async with Peer(old_http, respond=False) as p:
        await araises(microws.InvalidHandshake, microws.connect(p.url))


async def test_client_rejects_subprotocol_or_extension_it_did_not_offer():
    async with Peer(idle, extra=["Sec-WebSocket-Protocol: chat"]) as p:
        await araises(microws.InvalidHandshake, microws.connect(p.url, subprotocols=["other"]))
        await araises(microws.InvalidHandshake, microws.connect(p.url))
    async with Peer(idle, extra=["Sec-WebSocket-Extensions: permessage-deflate"]) as p:
        await araises(microws.InvalidHandshake, microws.connect(p.url))


async def test_client_masks_frames_and_answers_pings_with_masked_pongs():
    got = []

    async def script(reader, writer):
        got.append(await wp.read_frame(reader, expect_masked=True))
        await wp.send(writer, wp.frame(9, b"ping!", mask=False))
        got.append(await wp.read_frame(reader, expect_masked=True))
        await wp.send(writer, wp.frame(1, "reply", mask=False))
        await wp.answer_close(reader, writer)

    async with Peer(script) as p:
        ws = await microws.connect(p.url, ping_interval=None)
        await ws.send("hello")
        assert await ws.recv() == "reply"
        await ws.close()
    assert got == [(0x80, 1, b"hello", True), (0x80, 10, b"ping!", True)]


async def test_client_fails_masked_server_frames_with_1002():
    async def script(reader, writer):
        await wp.send(writer, wp.frame(1, "masked", mask=True))
        assert await wp.read_close(reader, expect_masked=True) == 1002

    async with Peer(script) as p:
        ws = await microws.connect(p.url, ping_interval=None)
        e = await araises(microws.ConnectionClosedError, ws.recv())
        assert e.code == 1002
        await asyncio.wait_for(p.done.wait(), 5)


async def test_client_answers_a_message_before_a_bad_frame_then_fails_1002():
    # Message and bad frame in one write: the answer goes out, then the close 1002.
    async def script(reader, writer):
        await wp.send(writer, wp.frame(1, "hello", mask=False) + wp.frame(1, "x", mask=False, rsv=1))
        fin, op, payload, masked = await wp.read_frame(reader, expect_masked=True)
        assert (op, payload, masked) == (1, b"hello", True)
        assert await wp.read_close(reader, expect_masked=True) == 1002

    async with Peer(script) as p:
        ws = await microws.connect(p.url, ping_interval=None)
        msg = await ws.recv()
        await ws.send(msg)
        e = await araises(microws.ConnectionClosedError, ws.recv())
        assert e.code == 1002
        await asyncio.wait_for(p.done.wait(), 5)


async def test_client_reassembles_fragments_sent_one_byte_at_a_time():
    async def script(reader, writer):
        wire = wp.frame(1, "κόσ", fin=False, mask=False) + wp.frame(9, b"", mask=False)
        wire += wp.frame(0, "με", fin=True, mask=False) + wp.frame(2, bytes(300), mask=False)
        for i in range(len(wire)):
            await wp.send(writer, wire[i : i + 1])
        await wp.answer_close(reader, writer)

    async with Peer(script) as p:
        ws = await microws.connect(p.url, ping_interval=None)
        assert await ws.recv() == "κόσμε"
        assert await ws.recv() == bytes(300)
        await ws.close()


async def test_server_initiated_close_is_echoed_and_client_waits_for_tcp_close():
    echoed = []

    async def script(reader, writer):
        await wp.send(writer, wp.frame(8, wp.close_payload(4000, "app"), mask=False))
        echoed.append(await wp.read_frame(reader, expect_masked=True))

    async with Peer(script) as p:
        ws = await microws.connect(p.url, ping_interval=None)
        e = await araises(microws.ConnectionClosedError, ws.recv())
        assert (e.code, e.reason) == (4000, "app")
        assert (ws.close_code, ws.close_reason) == (4000, "app")
    assert echoed == [(0x80, 8, wp.close_payload(4000, "app"), True)]


async def test_normal_close_ends_iteration_cleanly():
    async def script(reader, writer):
        await wp.send(writer, wp.frame(1, "a", mask=False) + wp.frame(1, "b", mask=False))
        await wp.send(writer, wp.frame(8, wp.close_payload(1000), mask=False))
        await wp.read_frame(reader, expect_masked=True)

    async with Peer(script) as p:
        ws = await microws.connect(p.url, ping_interval=None)
        got = []
        async for msg in ws:
            got.append(msg)
        assert got == ["a", "b"] and ws.close_code == 1000


async def test_client_close_gives_up_after_close_timeout():
    async def script(reader, writer):
        await wp.read_eof(reader)  # never answers the close (so not `idle`)

    async with Peer(script) as p:
        ws = await microws.connect(p.url, ping_interval=None, close_timeout=0.2)
        await asyncio.wait_for(ws.close(), 5)
        assert ws.close_code == 1006
        await araises(microws.ConnectionClosed, ws.send("late"))


async def test_invalid_utf8_from_server_fails_1007():
    async def script(reader, writer):
        await wp.send(writer, wp.frame(1, b"\xf4\x90\x80\x80", mask=False))
        assert await wp.read_close(reader, expect_masked=True) == 1007

    async with Peer(script) as p:
        ws = await microws.connect(p.url, ping_interval=None)
        e = await araises(microws.ConnectionClosedError, ws.recv())
        assert e.code == 1007


async def test_client_max_size_fails_1009():
    async def script(reader, writer):
        await wp.send(writer, wp.frame(2, bytes(2000), mask=False))
        assert await wp.read_close(reader, expect_masked=True) == 1009

    async with Peer(script) as p:
        ws = await microws.connect(p.url, ping_interval=None, max_size=1000)
        e = await araises(microws.ConnectionClosedError, ws.recv())
        assert e.code == 1009
        await asyncio.wait_for(p.done.wait(), 5)


async def test_a_frame_with_the_101_too_big_for_the_heap_fails_1009_at_once():
    # Its header came in the same read as the 101 (parsed while the connection is made)
    # and no buffer can hold its payload: the client must say 1009 without waiting for
    # more bytes, which this peer never sends.
    import sys

    huge = 0x3FFFFFF0 if sys.implementation.name == "micropython" else 1 << 62
    header = bytes([0x82, 127]) + huge.to_bytes(8, "big")

    async def script(reader, writer):
        await wp.accept_upgrade(reader, writer, then=header)
        assert await wp.read_close(reader, expect_masked=True) == 1009

    async with Peer(script, respond=False) as p:
        ws = await microws.connect(p.url, ping_interval=None, max_size=None, close_timeout=1)
        e = await asyncio.wait_for(araises(microws.ConnectionClosedError, ws.recv()), 10)
        assert e.code == 1009
        await asyncio.wait_for(p.done.wait(), 5)


async def test_client_keepalive_detects_a_dead_server():
    async def script(reader, writer):
        fin, op, payload, _ = await wp.read_frame(reader, expect_masked=True)
        assert op == 9
        await wp.read_eof(reader)

    async with Peer(script) as p:
        ws = await microws.connect(p.url, ping_interval=0.05, ping_timeout=0.2)
        e = await asyncio.wait_for(araises(microws.ConnectionClosedError, ws.recv()), 5)
        assert e.code in (1006, 1011)


async def test_keepalive_ends_a_send_blocked_on_a_full_send_buffer():
    # The peer reads nothing and answers no ping: the app's small sends fill the socket
    # buffer and block in drain; the keepalive's ping then queues behind them, times
    # out, and must wake that send with 1011 (two tasks draining one MicroPython stream
    # left one asleep for ever; CPython's close waited for the buffer to empty).
    release = asyncio.Event()

    async def script(reader, writer):
        await asyncio.wait_for(release.wait(), 30)

    async with Peer(script) as p:
        ws = await microws.connect(p.url, ping_interval=0.1, ping_timeout=0.3)

        async def send_for_ever():
            msg = bytes(1000)
            while True:
                await ws.send(msg)

        e = await asyncio.wait_for(araises(microws.ConnectionClosedError, send_for_ever()), 20)
        release.set()
        assert (e.code, e.reason) == (1011, "keepalive ping timeout")
        await asyncio.wait_for(p.done.wait(), 5)


async def test_ping_returns_an_event_set_by_the_matching_pong():
    async def script(reader, writer):
        fin, op, payload, _ = await wp.read_frame(reader, expect_masked=True)
        await wp.send(writer, wp.frame(10, b"other", mask=False))
        await wp.send(writer, wp.frame(10, payload, mask=False) + wp.frame(1, "after", mask=False))
        await wp.answer_close(reader, writer)

    async with Peer(script) as p:
        ws = await microws.connect(p.url, ping_interval=None)
        ev = await ws.ping(b"tok")
        assert not ev.is_set()
        assert await ws.recv() == "after"
        assert ev.is_set()
        await ws.close()


async def test_a_ping_waiter_reads_for_its_pong_and_a_pong_answers_earlier_pings():
    # No other task reads: waiting for the pong must read. A pong answers the earliest
    # ping with its payload and every ping before it; a connection that closes first
    # ends the wait with ConnectionClosed.
    step = asyncio.Event()

    async def script(reader, writer):
        for _ in range(3):
            assert (await wp.read_frame(reader, expect_masked=True))[1] == 9
        await wp.send(writer, wp.frame(10, b"", mask=False))
        await asyncio.wait_for(step.wait(), 5)
        await wp.send(writer, wp.frame(10, b"", mask=False))
        assert (await wp.read_frame(reader, expect_masked=True))[1:3] == (9, b"4")
        await wp.send(writer, wp.frame(8, wp.close_payload(1000), mask=False))
        await wp.answer_close(reader, writer)

    async with Peer(script) as p:
        ws = await microws.connect(p.url, ping_interval=None)
        first, second, third = await ws.ping(b"1"), await ws.ping(), await ws.ping()
        assert await asyncio.wait_for(second.wait(), 5)
        assert first.is_set() and not third.is_set()
        step.set()
        await asyncio.wait_for(third.wait(), 5)
        last = await ws.ping(b"4")
        await araises(microws.ConnectionClosedOK, asyncio.wait_for(last.wait(), 5))
        assert not last.is_set()


async def test_keepalive_is_not_fooled_by_the_apps_own_pings():
    # The app pings with the default empty payload while a keepalive ping is out: each
    # pong must answer its own ping (a dict by payload once gave the keepalive's pong to
    # the app and then failed a healthy connection with 1011).
    keepalive_ping = asyncio.Event()
    answered = asyncio.Event()

    async def script(reader, writer):
        fin, op, first, _ = await wp.read_frame(reader, expect_masked=True)
        assert op == 9
        keepalive_ping.set()
        fin, op, second, _ = await wp.read_frame(reader, expect_masked=True)
        assert (op, second) == (9, b""), (op, second)
        await wp.send(writer, wp.frame(10, first, mask=False) + wp.frame(10, second, mask=False))
        for _ in range(3):  # the next keepalive pings, answered at once
            fin, op, payload, _ = await wp.read_frame(reader, expect_masked=True)
            assert op == 9, "expected a ping, got opcode %d (1011: the keepalive gave up)" % op
            await wp.send(writer, wp.frame(10, payload, mask=False))
        answered.set()
        await wp.answer_close(reader, writer)

    async with Peer(script) as p:
        ws = await microws.connect(p.url, ping_interval=0.05, ping_timeout=0.5)
        await asyncio.wait_for(keepalive_ping.wait(), 5)
        assert await asyncio.wait_for((await ws.ping()).wait(), 5)
        await asyncio.wait_for(answered.wait(), 10)
        assert ws.open and ws.close_code is None
        await ws.close()


class Parts:
    """An async iterable of message parts (MicroPython has no async generators); the
    part at ``wait_at`` comes only once ``gate`` is set."""

    def __init__(self, parts, gate=None, wait_at=-1):
        self.parts = parts
        self.gate = gate
        self.wait_at = wait_at
        self.i = 0

    def __aiter__(self):
        return self

    async def __anext__(self):
        if self.i == len(self.parts):
            raise StopAsyncIteration
        if self.i == self.wait_at:
            await self.gate.wait()
        self.i += 1
        return self.parts[self.i - 1]


async def test_a_fragmented_send_keeps_other_messages_out_but_lets_pongs_through():
    # While a message goes out in fragments from a slow source, another task's send waits
    # for its last frame (no data frame may come between them, RFC 6455 5.4), but the
    # pong to a ping the peer sends meanwhile goes out at once (control frames may), and
    # the reader gets the peer's message meanwhile.
    gate = asyncio.Event()
    pong_seen = asyncio.Event()
    frames = []

    async def script(reader, writer):
        frames.append((await wp.read_frame(reader, expect_masked=True))[:3])
        await wp.send(writer, wp.frame(9, b"hi", mask=False) + wp.frame(1, "from peer", mask=False))
        assert (await wp.read_frame(reader, expect_masked=True))[1:3] == (10, b"hi")
        pong_seen.set()
        for _ in range(3):
            frames.append((await wp.read_frame(reader, expect_masked=True))[:3])
        await wp.answer_close(reader, writer)

    async with Peer(script) as p:
        ws = await microws.connect(p.url, ping_interval=None)
        sending = asyncio.create_task(ws.send(Parts([b"a", b"b", b"c"], gate, 2)))
        assert await asyncio.wait_for(ws.recv(), 5) == "from peer"
        await asyncio.wait_for(pong_seen.wait(), 5)
        other = asyncio.create_task(ws.send("other"))
        for _ in range(5):
            await asyncio.sleep(0)
        assert not other.done()  # waits for the fragmented message's end
        gate.set()
        await asyncio.wait_for(sending, 5)
        await asyncio.wait_for(other, 5)
        await ws.close()
    assert frames == [(0, 2, b"a"), (0, 0, b"b"), (0x80, 0, b"c"), (0x80, 1, b"other")], frames


async def test_a_fragmented_send_that_fails_midway_fails_the_connection_1011():
    # Frames of the message are out and it can never be completed: no other data frame
    # may follow them, so the connection fails (as websockets does). A bad first part
    # fails before anything is sent, and the connection goes on.
    frames = []

    def parts():
        yield "a"
        yield "b"
        raise ValueError("the source failed")

    async def script(reader, writer):
        while True:
            fin, op, payload, _ = await wp.read_frame(reader, expect_masked=True)
            frames.append((fin, op, payload))
            if op == 8:
                await wp.send(writer, wp.frame(8, payload, mask=False))
                return

    async with Peer(script) as p:
        ws = await microws.connect(p.url, ping_interval=None)
        await araises(TypeError, ws.send([1, b"x"]))
        await ws.send("still open")
        await araises(ValueError, ws.send(parts()))
        e = await araises(microws.ConnectionClosedError, ws.send("after"))
        assert e.code == 1011, e.code
        await asyncio.wait_for(ws.close(), 5)
    assert frames[:2] == [(0x80, 1, b"still open"), (0, 1, b"a")], frames
    assert frames[2][1] == 8 and frames[2][2][:2] == b"\x03\xf3", frames  # 1011


class StuckBigSend:
    """A client whose 1 MiB send has begun but cannot finish: the peer read its first
    1000 bytes and reads nothing more. ``ws``; ``sending``, the send's task."""

    def __init__(self, **connect_options):
        self.options = connect_options

    async def __aenter__(self):
        got_some = asyncio.Event()
        self.release = asyncio.Event()

        async def script(reader, writer):
            await wp.read_exact(reader, 1000)
            got_some.set()
            await asyncio.wait_for(self.release.wait(), 30)

        self.peer = Peer(script)
        p = await self.peer.__aenter__()
        self.ws = await microws.connect(p.url, ping_interval=None, **self.options)
        wp.small_send_buffer(self.ws._writer)
        self.sending = asyncio.create_task(self.ws.send(bytes(1 << 20)))
        await asyncio.wait_for(got_some.wait(), 5)
        return self

    async def __aexit__(self, *exc):
        self.release.set()
        await self.peer.__aexit__(*exc)


async def test_cancelling_a_send_midway_through_a_frame_ends_the_connection():
    # Half a frame is on the wire: nothing can follow it, so the connection is dropped
    # (1006), and the next send says so instead of writing into the middle of that frame.
    async with StuckBigSend() as stuck:
        stuck.sending.cancel()
        await araises(asyncio.CancelledError, stuck.sending)
        e = await araises(microws.ConnectionClosedError, stuck.ws.send("after"))
        assert e.code == 1006, e.code
        assert not stuck.ws.open


async def test_close_is_bounded_by_close_timeout_while_a_send_is_stuck():
    # The peer reads nothing, so a big send blocks with the write turn; close() must not
    # wait behind it for ever: after close_timeout TCP is dropped and the send ends too.
    async with StuckBigSend(close_timeout=0.2) as stuck:
        await asyncio.wait_for(stuck.ws.close(), 5)
        assert stuck.ws.close_code == 1006
        await araises(microws.ConnectionClosedError, asyncio.wait_for(stuck.sending, 5))


async def test_a_wss_connect_that_fails_in_tls_closes_its_socket():
    # A server that answers the TLS hello with plain HTTP: connect() fails with OSError
    # and the socket is closed (MicroPython's TLS socket, closed after a failed
    # handshake, left the TCP socket under it open: one leaked per attempt).
    eof = []

    async def script(reader, writer):
        await reader.read(1024)  # the client's TLS hello
        await wp.send(writer, b"HTTP/1.1 400 Bad Request\r\n\r\n")
        eof.append(await asyncio.wait_for(wp.read_eof(reader), 5))

    async with Peer(script, respond=False) as p:
        _, cctx = wp.tls_contexts()
        url = p.url.replace("ws://", "wss://")
        await araises(OSError, microws.connect(url, ssl=cctx, open_timeout=5, ping_interval=None))
        await asyncio.wait_for(p.done.wait(), 10)
    assert eof == [True]


async def test_wss_connect_gives_up_after_open_timeout_whatever_the_server_does():
    # A server that never answers the TLS hello (MicroPython's client waited for ever: its
    # handshake runs on the first write, which was not under the timeout), and one that
    # completes TLS but never answers the upgrade (CPython then waited up to 30 s for a
    # TLS shutdown before raising).
    sctx, cctx = wp.tls_contexts()
    for tls in (None, sctx):
        srv = await wp.raw_server(wp.read_eof_only, tls)
        try:
            start = wp.seconds()
            url = "wss://localhost:%d/" % srv.port
            await araises(asyncio.TimeoutError, microws.connect(url, ssl=cctx, open_timeout=0.3, ping_interval=None))
            took = wp.seconds() - start
            assert took < 3, (tls, took)
        finally:
            srv.close()
            await srv.wait_closed()


async def test_a_certificate_rejected_by_micropythons_tls_is_an_oserror():
    # MicroPython's TLS raises ValueError for a certificate it rejects (CPython: an
    # OSError subclass). As an OSError it is retried by the reconnecting iterator and
    # caught by apps as the network failure it is.
    from microws.client import _exchange

    class Refusing:
        def write(self, data):
            raise ValueError("The certificate is not correctly signed by the trusted CA")

    e = await araises(OSError, _exchange(None, Refusing(), b"GET / HTTP/1.1\r\n\r\n"))
    assert "not correctly signed" in str(e)


async def test_connect_works_with_wait_for_and_create_task():
    async with Peer(idle) as p:
        ws = await asyncio.wait_for(microws.connect(p.url, ping_interval=None), 5)
        ws2 = await asyncio.create_task(microws.connect(p.url, ping_interval=None))
        await ws.close()
        await ws2.close()


async def test_open_timeout_when_the_server_never_answers():
    async with Peer(wp.read_eof_only, respond=False) as p:
        await araises(asyncio.TimeoutError, microws.connect(p.url, open_timeout=0.2))


async def test_reconnecting_iterator_opens_a_new_connection_after_each_close():
    count = [0]

    async def script(reader, writer):
        count[0] += 1
        await wp.send(writer, wp.frame(1, "n%d" % count[0], mask=False))
        await wp.send(writer, wp.frame(8, wp.close_payload(1001), mask=False))
        await wp.read_frame(reader, expect_masked=True)

    async with Peer(script) as p:
        got = []
        conn = microws.connect(p.url, reconnect=True, backoff_min=0.01, ping_interval=None)
        async for ws in conn:
            try:
                async for msg in ws:
                    got.append(msg)
            except microws.ConnectionClosed:
                pass
            if len(got) == 3:
                await ws.close()
                break
        assert got == ["n1", "n2", "n3"]


async def test_reconnecting_iterator_backs_off_while_the_server_is_down():
    srv = await wp.raw_server(idle)
    port = srv.port
    srv.close()
    await srv.wait_closed()
    conn = microws.connect("ws://127.0.0.1:%d/" % port, reconnect=True, backoff_min=0.01, backoff_max=0.04)
    # Wait for the fifth failed attempt (an event, not a timed window: a loaded
    # machine only makes this take longer).
    tried = asyncio.Event()
    calls = [0]
    open_once = conn._open

    async def counted_open():
        try:
            return await open_once()
        finally:
            calls[0] += 1
            if calls[0] >= 5:
                tried.set()

    conn._open = counted_open
    task = asyncio.create_task(conn.__aiter__().__anext__())
    try:
        await asyncio.wait_for(tried.wait(), 10)
        assert not task.done(), "connected to a closed port"
        assert conn.attempts >= 5  # kept retrying
        assert conn._delay == 0.04  # 0.01 doubling, capped at backoff_max
    finally:
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass


async def test_reconnecting_iterator_backs_off_from_a_server_that_drops_each_connection_at_once():
    # The handshake succeeds, then the server hangs up: each such connection counts as a
    # failure (the wait doubles), or the client would reconnect in a tight loop.
    async def script(reader, writer):
        pass  # accept, then close TCP

    async with Peer(script) as p:
        conn = microws.connect(p.url, reconnect=True, backoff_min=0.2, backoff_max=0.8, ping_interval=None)
        waits = []
        async for ws in conn:
            waits.append(conn._delay)  # the wait this connection came after (jitter aside)
            await araises(microws.ConnectionClosedError, ws.recv())
            if len(waits) == 5:
                break
        assert waits == [0, 0.2, 0.4, 0.8, 0.8], waits


async def test_reconnecting_iterator_retries_after_running_out_of_memory():
    # A board's heap can be too fragmented for one attempt and fine for the next: a
    # MemoryError while connecting is a failed attempt, not the end of the iterator.
    async def script(reader, writer):
        await wp.send(writer, wp.frame(1, "hello", mask=False))
        await wp.read_frame(reader, expect_masked=True)  # the client's close
        await wp.send(writer, wp.frame(8, wp.close_payload(1000), mask=False))

    async with Peer(script) as p:
        conn = microws.connect(p.url, reconnect=True, backoff_min=0.01, ping_interval=None)
        open_once = conn._open
        calls = [0]

        async def short_of_heap_once():
            calls[0] += 1
            if calls[0] == 1:
                raise MemoryError("simulated: heap full")
            return await open_once()

        conn._open = short_of_heap_once
        ws = await asyncio.wait_for(conn.__aiter__().__anext__(), 10)
        assert calls[0] == 2 and conn.attempts == 0
        assert await ws.recv() == "hello"
        await ws.close()


async def test_bad_urls_are_rejected_clearly():
    from devtest import raises

    from microws.client import parse_url

    assert parse_url("ws://h") == (False, "h", 80, "/")
    assert parse_url("wss://h:8443/a/b?c=d") == (True, "h", 8443, "/a/b?c=d")
    assert parse_url("ws://[::1]:9000/x") == (False, "::1", 9000, "/x")
    assert parse_url("ws://h?x=1") == (False, "h", 80, "/?x=1")
    # The host ends at the first "/" or "?", whichever comes first; schemes are
    # case-insensitive (RFC 3986 3.1).
    assert parse_url("ws://h:8080?q=a/b") == (False, "h", 8080, "/?q=a/b")
    assert parse_url("ws://h?x=/y") == (False, "h", 80, "/?x=/y")
    assert parse_url("WSS://H/p") == (True, "H", 443, "/p")
    # No fragment (RFC 6455 3), and nothing that would break the request line.
    for bad in ("http://h/", "ws://", "ws://user@h/", "ws://h/p#f", "ws://h/a b", "ws://h/a\r\nX: y"):
        with raises(ValueError):
            parse_url(bad)


async def echo_peer(reader, writer):
    # Echoes data frames, answers pings, echoes the close.
    while True:
        fin, op, payload, _ = await wp.read_frame(reader, True)
        await wp.send(writer, wp.frame(10 if op == 9 else op, payload, mask=False))
        if op == 8:
            return


async def test_close_with_a_code_no_endpoint_may_send_raises_and_the_connection_goes_on():
    # RFC 6455 7.4: 1004, 1006, 1015, codes under 1000, unassigned ones and 5000 and up
    # must not be sent (the peer fails the connection with 1002). Nothing goes out.
    async with Peer(echo_peer) as p:
        ws = await microws.connect(p.url, ping_interval=None)
        for code in (0, 999, 1004, 1006, 1015, 1016, 2999, 5000, 70000):
            e = await araises(ValueError, ws.close(code))
            assert str(code) in str(e), e
        assert ws.open
        await ws.send("still open")
        assert await ws.recv() == "still open"
        await ws.close(4000, "bye")
        assert ws.close_code == 4000 and ws.close_reason == "bye"


async def test_ping_or_pong_payload_over_125_bytes_raises_before_sending():
    # RFC 6455 5.5: a control frame carries at most 125 bytes; the peer would fail 1002.
    async with Peer(echo_peer) as p:
        ws = await microws.connect(p.url, ping_interval=None)
        for call in (ws.ping(b"x" * 126), ws.pong(b"x" * 126), ws.ping("é" * 63), ws.ping(b"x" * 70000)):
            await araises(ValueError, call)
        waiter = await ws.ping(b"y" * 125)
        await asyncio.wait_for(waiter.wait(), 5)
        await ws.close()
        assert ws.close_code == 1000


async def test_a_cancelled_close_drops_tcp_instead_of_leaking_the_socket():
    # The peer reads our close frame but never answers it: close() waits (close_timeout).
    # Cancelling it (a timeout around it, a reconnecting loop's task) must not leave the
    # socket open: nobody would ever close it.
    got_close = asyncio.Event()
    saw_eof = asyncio.Event()

    async def mute(reader, writer):
        while True:
            fin, op, payload, _ = await wp.read_frame(reader, True)
            if op == 8:
                got_close.set()
                break
        await wp.read_eof(reader)
        saw_eof.set()

    async with Peer(mute) as p:
        ws = await microws.connect(p.url, ping_interval=None, close_timeout=30)
        closing = asyncio.create_task(ws.close())
        await asyncio.wait_for(got_close.wait(), 5)
        closing.cancel()
        await araises(asyncio.CancelledError, closing)
        await asyncio.wait_for(saw_eof.wait(), 5)
        assert ws.close_code == 1006


async def test_a_server_that_hangs_up_without_an_answer_is_status_0_not_400():
    async def hang_up(reader, writer):
        while b"\r\n\r\n" not in await reader.read(1024):
            pass
        writer.close()

    async with Peer(hang_up, respond=False) as p:
        e = await araises(microws.InvalidHandshake, microws.connect(p.url))
        assert e.status == 0, e.status
