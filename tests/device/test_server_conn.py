"""Server-side connection behaviour over real sockets against a hand-written client."""

import asyncio
import gc
import os

import wirepeer as wp
from devtest import IS_MICROPYTHON

import microws


async def echo(ws):
    async for msg in ws:
        await ws.send(msg)


class Running:
    """A microws server for one test; records what handlers saw."""

    def __init__(self, handler=echo, **kw):
        self.handler = handler
        self.kw = kw
        self.closed = []  # (code, reason) each handler saw at the end
        self.ended = asyncio.Event()  # set when a handler has ended

    async def __aenter__(self):
        async def wrapped(ws):
            try:
                await self.handler(ws)
            finally:
                self.closed.append((ws.close_code, ws.close_reason))
                self.ended.set()

        self.srv = await microws.serve(wrapped, "127.0.0.1", 0, **self.kw)
        self.port = self.srv.port
        return self

    async def __aexit__(self, *exc):
        self.srv.close()
        await self.srv.wait_closed()


async def test_echo_text_and_binary_of_many_sizes():
    async with Running(max_size=1 << 20) as s:
        r, w = await wp.ws_raw(s.port)
        for n in (0, 1, 125, 126, 127, 1000, 65535, 65536, 200000):
            # This hand-written client shares the server's heap (one process): its own
            # 200 KB frames failed to allocate once in a fresh-clone run, not the server's.
            gc.collect()
            payload = os.urandom(n)
            await wp.send(w, wp.frame(2, payload))
            assert await wp.read_frame(r) == (0x80, 2, payload, False), n
            await wp.send(w, wp.frame(1, "é" * (n // 2)))
            assert await wp.read_frame(r) == (0x80, 1, ("é" * (n // 2)).encode(), False), n
        await wp.close_raw(w)


async def test_client_initiated_close_is_echoed_and_server_closes_tcp():
    async with Running() as s:
        r, w = await wp.ws_raw(s.port)
        await wp.send(w, wp.frame(8, wp.close_payload(1000, "bye")))
        assert await wp.read_frame(r) == (0x80, 8, wp.close_payload(1000, "bye"), False)
        assert await asyncio.wait_for(wp.read_eof(r), 5)
        await wp.close_raw(w)
    assert s.closed == [(1000, "bye")]


async def test_protocol_error_sends_1002_and_closes_tcp_and_server_keeps_serving():
    async with Running() as s:
        r, w = await wp.ws_raw(s.port)
        await wp.send(w, wp.frame(1, "x", rsv=1))
        assert await wp.read_close(r) == 1002
        assert await asyncio.wait_for(wp.read_eof(r), 5)
        await wp.close_raw(w)
        ws = await microws.connect("ws://127.0.0.1:%d/" % s.port)
        await ws.send("alive")
        assert await ws.recv() == "alive"
        await ws.close()
    assert s.closed[0][0] == 1002


async def test_a_peer_still_sending_after_its_bad_frame_still_gets_the_close_code():
    # Closing TCP with unread bytes makes the kernel answer with a reset, and the peer
    # may then lose the close frame (asyncio does). The failed server drops what the
    # peer still sends until it goes quiet, then closes.
    async with Running() as s:
        r, w = await wp.ws_raw(s.port)
        tail = wp.frame(9, b"p" * 120) * 3  # sent after the bad frame, a byte at a time
        await wp.send(w, wp.frame(1, "x", rsv=2))
        for i in range(len(tail)):
            w.write(tail[i : i + 1])
            await w.drain()
        assert await wp.read_close(r) == 1002
        await wp.send(w, wp.frame(8, wp.close_payload(1002)))
        assert await asyncio.wait_for(wp.read_eof(r), 5)
        await wp.close_raw(w)
    assert s.closed[0][0] == 1002


async def test_a_message_before_a_bad_frame_is_answered_then_the_connection_fails_1002():
    # Both in one write: the handler gets the message and its echo goes out before
    # the close (Autobahn 3.2, strict); the ping after the bad frame is not answered.
    async with Running() as s:
        r, w = await wp.ws_raw(s.port)
        await wp.send(w, wp.frame(1, "hello") + wp.frame(1, "x", rsv=2) + wp.frame(9, "p"))
        assert await wp.read_frame(r) == (0x80, 1, b"hello", False)
        assert await wp.read_close(r) == 1002
        assert await asyncio.wait_for(wp.read_eof(r), 5)
        await wp.close_raw(w)
    assert s.closed[0][0] == 1002


async def test_a_handler_that_closes_with_a_bad_frame_held_closes_with_its_code():
    async def handler(ws):
        assert await ws.recv() == "hello"
        await ws.close(1000)  # the peer's bad frame decides the code: 1002

    async with Running(handler) as s:
        r, w = await wp.ws_raw(s.port)
        await wp.send(w, wp.frame(1, "hello") + wp.frame(1, "x", rsv=2))
        assert await wp.read_close(r) == 1002
        await wp.close_raw(w)
    assert s.closed[0][0] == 1002


async def test_send_to_a_peer_that_vanished_raises_connection_closed_1006_and_server_keeps_serving():
    # The client drops TCP without a close frame while the handler keeps sending:
    # the handler gets ConnectionClosedError 1006 (not a bare OSError from the socket).
    seen = []
    ended = asyncio.Event()

    async def flood(ws):
        if ws.path != "/flood":
            return await echo(ws)
        try:
            while True:
                await ws.send("x" * 1000)
        except Exception as e:
            seen.append((type(e).__name__, getattr(e, "code", None)))
            ended.set()
            raise

    async with Running(flood) as s:
        r, w = await wp.ws_raw(s.port, "/flood")
        await wp.read_frame(r)
        await wp.close_raw(w)
        await asyncio.wait_for(ended.wait(), 10)
        ws = await microws.connect("ws://127.0.0.1:%d/" % s.port)
        await ws.send("alive")
        assert await ws.recv() == "alive"
        await ws.close()
    assert seen == [("ConnectionClosedError", 1006)]
    assert s.closed[0] == (1006, "")


async def test_invalid_utf8_closes_1007():
    async with Running() as s:
        r, w = await wp.ws_raw(s.port)
        await wp.send(w, wp.frame(1, b"\xed\xa0\x80"))
        assert await wp.read_close(r) == 1007
        await wp.close_raw(w)


async def test_oversize_message_gets_1009_without_being_sent_in_full_and_server_keeps_serving():
    async with Running(max_size=16384) as s:
        r, w = await wp.ws_raw(s.port)
        # Only the header of a 1 MiB frame: the server must refuse from the length alone.
        await wp.send(w, b"\x82\xff" + (1 << 20).to_bytes(8, "big") + b"abcd" + b"\x00" * 1000)
        assert await wp.read_close(r) == 1009
        await wp.close_raw(w)
        ws = await microws.connect("ws://127.0.0.1:%d/" % s.port)
        await ws.send(b"x" * 16384)
        assert await ws.recv() == b"x" * 16384
        await ws.close()


async def test_failing_handler_closes_its_connection_with_1011_only():
    async def handler(ws):
        msg = await ws.recv()
        if msg == "boom":
            raise ValueError("handler bug")
        await ws.send("fine")

    async with Running(handler) as s:
        r, w = await wp.ws_raw(s.port)
        await wp.send(w, wp.frame(1, "boom"))
        assert await wp.read_close(r) == 1011
        await wp.close_raw(w)
        ws = await microws.connect("ws://127.0.0.1:%d/" % s.port)
        await ws.send("hi")
        assert await ws.recv() == "fine"
        await ws.close()


async def test_handler_returning_closes_with_1000():
    async def handler(ws):
        await ws.send("done")

    async with Running(handler) as s:
        r, w = await wp.ws_raw(s.port)
        assert await wp.read_frame(r) == (0x80, 1, b"done", False)
        assert await wp.read_close(r) == 1000
        await wp.send(w, wp.frame(8, wp.close_payload(1000)))
        assert await asyncio.wait_for(wp.read_eof(r), 5)
        await wp.close_raw(w)


async def test_server_close_times_out_when_the_peer_never_answers():
    async def handler(ws):
        await ws.close(1000)

    async with Running(handler, close_timeout=0.3) as s:
        r, w = await wp.ws_raw(s.port)
        assert await wp.read_close(r) == 1000
        # We never send our close: the server drops TCP after close_timeout.
        assert await asyncio.wait_for(wp.read_eof(r), 5)
        await wp.close_raw(w)
    assert s.closed == [(1006, "")]


async def test_abrupt_tcp_close_gives_1006():
    async with Running() as s:
        r, w = await wp.ws_raw(s.port)
        await wp.send(w, wp.frame(1, "a"))
        assert (await wp.read_frame(r))[2] == b"a"
        await wp.close_raw(w)
        await asyncio.wait_for(s.ended.wait(), 5)
    assert s.closed == [(1006, "")]


async def test_keepalive_detects_a_dead_peer():
    async def handler(ws):
        try:
            await ws.recv()
        except microws.ConnectionClosedError:
            pass

    async with Running(handler, ping_interval=0.1, ping_timeout=0.2) as s:
        r, w = await wp.ws_raw(s.port)
        fin, op, payload, _ = await wp.read_frame(r)
        assert op == 9  # a keepalive ping, which we never answer
        assert await asyncio.wait_for(wp.read_eof(r), 5)
        await wp.close_raw(w)
    assert s.closed[0][0] in (1006, 1011)


async def test_keepalive_answered_keeps_the_connection_open():
    async def handler(ws):
        await ws.recv()
        await ws.send("still open")

    async with Running(handler, ping_interval=0.05, ping_timeout=0.5) as s:
        r, w = await wp.ws_raw(s.port)
        for _ in range(3):
            fin, op, payload, _ = await wp.read_frame(r)
            assert op == 9
            await wp.send(w, wp.frame(10, payload))
        await wp.send(w, wp.frame(1, "go"))
        while True:
            fin, op, payload, _ = await wp.read_frame(r)
            if op == 1:
                break
        assert payload == b"still open"
        await wp.close_raw(w)


async def test_keepalive_reads_for_a_handler_that_never_reads_and_drops_only_the_dead_peer():
    # The server's one keepalive task pings every connection; each ping's own short
    # task reads the pong (queueing messages for the handler), so a handler that
    # never reads keeps a live peer, and a dead one is dropped with 1011.
    stop = asyncio.Event()
    got = []

    async def handler(ws):
        await stop.wait()
        try:
            got.append(await ws.recv())
        except microws.ConnectionClosedError:
            pass

    async with Running(handler, ping_interval=0.05, ping_timeout=0.3) as s:
        r1, w1 = await wp.ws_raw(s.port)
        r2, w2 = await wp.ws_raw(s.port)
        await wp.send(w1, wp.frame(1, "queued"))
        assert (await wp.read_frame(r2))[1] == 9  # a ping the dead peer never answers
        answered = 0
        eof = asyncio.create_task(wp.read_eof(r2))
        while not eof.done():  # the live peer answers its pings until the dead one is dropped
            fin, op, payload, _ = await asyncio.wait_for(wp.read_frame(r1), 5)
            assert op == 9
            await wp.send(w1, wp.frame(10, payload))
            answered += 1
            assert answered < 200, "the dead peer was never dropped"
        for _ in range(2):  # and still gets pings after that, answered
            fin, op, payload, _ = await asyncio.wait_for(wp.read_frame(r1), 5)
            assert op == 9
            await wp.send(w1, wp.frame(10, payload))
        stop.set()
        await asyncio.wait_for(s.ended.wait(), 5)
        await wp.close_raw(w1)
        await wp.close_raw(w2)
    assert got == ["queued"]
    assert (1011, "keepalive ping timeout") in s.closed, s.closed


async def test_server_close_says_going_away_to_every_client():
    started = []
    all_in = asyncio.Event()

    async def handler(ws):
        started.append(ws)  # the server lists a connection before its handler runs
        if len(started) == 3:
            all_in.set()
        await ws.recv()

    srv = await microws.serve(handler, "127.0.0.1", 0)
    conns = []
    for _ in range(3):
        conns.append(await wp.ws_raw(srv.port))
    await asyncio.wait_for(all_in.wait(), 5)
    assert len(srv.connections) == 3
    srv.close()
    for r, w in conns:
        assert await wp.read_close(r) == 1001
        await wp.send(w, wp.frame(8, wp.close_payload(1001)))
    await asyncio.wait_for(srv.wait_closed(), 5)
    for _, w in conns:
        await wp.close_raw(w)


async def test_server_sends_fragmented_message_with_pings_answered_between():
    async def handler(ws):
        await ws.send(["one ", "two ", "three"])
        await ws.send(iter([b"\x01", b"\x02"]))

    async with Running(handler) as s:
        r, w = await wp.ws_raw(s.port)
        got = []
        for _ in range(5):
            got.append(await wp.read_frame(r))
        assert got == [(0, 1, b"one ", False), (0, 0, b"two ", False), (0x80, 0, b"three", False),
                       (0, 2, b"\x01", False), (0x80, 0, b"\x02", False)]
        await wp.close_raw(w)


async def test_wss_echo_with_a_self_signed_certificate():
    import ssl

    certs = os.getenv("MICROWS_TEST_CERTS")
    assert certs, "MICROWS_TEST_CERTS not set (tests/conftest.py makes the certificates)"
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(certs + "/cert.der" if IS_MICROPYTHON else certs + "/cert.pem",
                         certs + "/key.der" if IS_MICROPYTHON else certs + "/key.pem")
    cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if IS_MICROPYTHON:
        cctx.verify_mode = ssl.CERT_NONE
    else:
        cctx.load_verify_locations(certs + "/ca.pem")
    async with Running(ssl=sctx) as s:
        ws = await microws.connect("wss://localhost:%d/" % s.port, ssl=cctx)
        for msg in ("secure", b"\x00" * 5000, "y" * 30000):
            await ws.send(msg)
            assert await ws.recv() == msg
        await ws.close()
        assert ws.close_code == 1000


async def test_a_tls_server_closes_clients_that_fail_or_never_start_tls():
    # Plain HTTP sent to the wss port (a browser refusing the certificate ends the same
    # way): MicroPython's server closed only its TLS socket, which after a failed
    # handshake leaves the TCP socket under it open, a socket lost per client. And a
    # client that never starts TLS: CPython's server held it 60 s, past handshake_timeout.
    sctx, _ = wp.tls_contexts()
    async with Running(ssl=sctx, handshake_timeout=0.3) as s:
        for hello in (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b""):
            r, w = await wp.open_raw(s.port, hello)
            start = wp.seconds()
            assert await asyncio.wait_for(wp.read_eof(r), 5)
            assert wp.seconds() - start < 3
            await wp.close_raw(w)


async def test_wait_closed_cancels_handlers_stuck_elsewhere():
    entered = asyncio.Event()

    async def stuck(ws):
        entered.set()
        await asyncio.Event().wait()  # never reads, never returns

    srv = await microws.serve(stuck, "127.0.0.1", 0, close_timeout=0.2)
    r, w = await wp.ws_raw(srv.port)
    await asyncio.wait_for(entered.wait(), 5)
    srv.close()
    assert await wp.read_close(r) == 1001
    await wp.send(w, wp.frame(8, wp.close_payload(1001)))
    await asyncio.wait_for(srv.wait_closed(), 5)
    assert not srv.connections
    await wp.close_raw(w)


async def test_wait_closed_ends_a_handler_stuck_sending_to_a_peer_that_reads_nothing():
    # close() sends 1001 behind a send that cannot finish: after close_timeout TCP is
    # dropped, which ends that send, and wait_closed() returns (CPython's server waited
    # for the send buffer for ever, and a second cancel escaped the task's cleanup).
    sending = asyncio.Event()

    async def handler(ws):
        wp.small_send_buffer(ws._writer)
        sending.set()
        await ws.send(bytes(1 << 20))

    srv = await microws.serve(handler, "127.0.0.1", 0, close_timeout=0.2)
    r, w = await wp.ws_raw(srv.port)
    await asyncio.wait_for(sending.wait(), 5)
    await wp.read_exact(r, 1000)  # the frame has begun; nothing more is read
    srv.close()
    await asyncio.wait_for(srv.wait_closed(), 5)
    assert not srv.connections
    await wp.close_raw(w)


async def test_keepalive_drops_a_dead_peer_although_the_handlers_own_ping_is_unanswered():
    # The sweep skipped a connection while any ping was out, the app's too: a handler's
    # one unanswered ping switched the keepalive off for good.
    async def handler(ws):
        await ws.ping(b"app")
        await ws.recv()

    async with Running(handler, ping_interval=0.05, ping_timeout=0.2) as s:
        r, w = await wp.ws_raw(s.port)
        assert await asyncio.wait_for(wp.read_eof(r), 5)  # pings never answered
        await asyncio.wait_for(s.ended.wait(), 5)
        await wp.close_raw(w)
    assert s.closed == [(1011, "keepalive ping timeout")], s.closed


async def test_a_handshake_that_ends_after_server_close_gets_1001_not_the_handler():
    started = []

    async def handler(ws):
        started.append(ws)
        await ws.send("hello from a closed server")

    srv = await microws.serve(handler, "127.0.0.1", 0, close_timeout=0.2)
    request = wp.upgrade_request()
    r, w = await wp.open_raw(srv.port, request[:20])
    for _ in range(500):  # until the server has taken the connection (bounded)
        if srv._tasks:
            break
        await asyncio.sleep(0.01)
    srv.close()
    await wp.send(w, request[20:])
    status, _ = await wp.read_head(r)
    assert status in (101, 503), status
    if status == 101:
        assert await wp.read_close(r) == 1001
        await wp.send(w, wp.frame(8, wp.close_payload(1001)))
    await asyncio.wait_for(srv.wait_closed(), 5)
    assert not started
    await wp.close_raw(w)


async def test_default_max_size_is_64k_on_micropython_and_1mib_on_cpython():
    async with Running() as s:
        r, w = await wp.ws_raw(s.port)
        await wp.send(w, wp.frame(2, bytes(65536)))
        assert (await wp.read_frame(r))[2] == bytes(65536)
        await wp.send(w, wp.frame(2, bytes(65537)))
        if IS_MICROPYTHON:
            assert await wp.read_close(r) == 1009
        else:
            assert (await wp.read_frame(r))[2] == bytes(65537)
        await wp.close_raw(w)


async def test_max_size_none_means_no_limit():
    # As in `websockets`: None lifts the limit (a message past the default gets through).
    from microws.connection import DEFAULT_MAX_SIZE

    big = bytes(DEFAULT_MAX_SIZE + 1)
    async with Running(max_size=None) as s:
        r, w = await wp.ws_raw(s.port)
        await wp.send(w, wp.frame(2, big))
        assert (await wp.read_frame(r))[2] == big
        await wp.close_raw(w)
