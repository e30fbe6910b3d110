"""Server-side opening handshake over real sockets: status codes, limits, negotiation."""

import asyncio

import wirepeer as wp
from devtest import IS_MICROPYTHON, araises

import microws


async def echo(ws):
    async for msg in ws:
        await ws.send(msg)


async def status_of(port, request):
    reader, writer = await wp.open_raw(port, request)
    try:
        return await wp.read_head(reader)
    finally:
        await wp.close_raw(writer)


async def with_server(check, **kw):
    srv = await microws.serve(kw.pop("handler", echo), "127.0.0.1", 0, **kw)
    try:
        await check(srv.port)
    finally:
        srv.close()
        await srv.wait_closed()


async def test_valid_upgrade_gets_101_with_accept_key():
    async def check(port):
        status, h = await status_of(port, wp.upgrade_request())
        assert status == 101
        assert h["sec-websocket-accept"] == wp.ACCEPT
        assert h["upgrade"].lower() == "websocket" and "upgrade" in h["connection"].lower()
        assert "sec-websocket-protocol" not in h

    await with_server(check)


async def test_upgrade_and_connection_are_case_insensitive_token_lists():
    async def check(port):
        req = wp.upgrade_request(upgrade="WebSocket", connection="keep-alive, UPGRADE")
        assert (await status_of(port, req))[0] == 101

    await with_server(check)


async def test_wrong_version_gets_426_naming_version_13():
    async def check(port):
        for version in ("8", "12", None):
            status, h = await status_of(port, wp.upgrade_request(version=version))
            assert status == 426, version
            assert h["sec-websocket-version"] == "13"

    await with_server(check)


async def test_bad_requests_get_4xx():
    async def check(port):
        assert (await status_of(port, wp.upgrade_request(key=None)))[0] == 400
        assert (await status_of(port, wp.upgrade_request(key="c2hvcnQ=")))[0] == 400  # 5 bytes, not 16
        assert (await status_of(port, wp.upgrade_request(connection=None)))[0] == 400
        assert (await status_of(port, wp.upgrade_request(host=None)))[0] == 400
        post = wp.upgrade_request().replace(b"GET ", b"POST ", 1)
        status, h = await status_of(port, post)
        assert status == 405 and h["allow"] == "GET", h
        http10 = wp.upgrade_request().replace(b"HTTP/1.1", b"HTTP/1.0", 1)
        assert (await status_of(port, http10))[0] == 400
        assert (await status_of(port, b"garbage\r\n\r\n"))[0] == 400

    await with_server(check)


async def test_plain_http_without_handler_gets_426():
    async def check(port):
        status, h = await status_of(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status == 426

    await with_server(check)


async def test_header_abuse_gets_431_and_long_request_line_414():
    async def check(port):
        many = wp.upgrade_request(extra=["X-H%d: v" % i for i in range(100)])
        assert (await status_of(port, many))[0] == 431
        big = wp.upgrade_request(extra=["X-Big: " + "v" * 9000])
        assert (await status_of(port, big))[0] == 431
        longline = b"GET /" + b"a" * 9000
        assert (await status_of(port, longline))[0] == 414
        # Ends just past the head limit: still the start line that is too long.
        ended = b"GET /" + b"a" * 8300 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
        assert (await status_of(port, ended))[0] == 414
        # ...and the server still serves a good client afterwards.
        assert (await status_of(port, wp.upgrade_request()))[0] == 101

    await with_server(check)


async def test_origin_allow_list_answers_403_to_others():
    async def check(port):
        ok = wp.upgrade_request(extra=["Origin: http://good.example"])
        bad = wp.upgrade_request(extra=["Origin: http://evil.example"])
        assert (await status_of(port, ok))[0] == 101
        assert (await status_of(port, bad))[0] == 403
        assert (await status_of(port, wp.upgrade_request()))[0] == 403  # no Origin, None not listed

    await with_server(check, origins=["http://good.example"])


async def test_subprotocol_negotiation_picks_the_first_client_preference_we_support():
    async def check(port):
        req = wp.upgrade_request(extra=["Sec-WebSocket-Protocol: chat, microws.v1"])
        status, h = await status_of(port, req)
        assert status == 101 and h["sec-websocket-protocol"] == "chat"
        req = wp.upgrade_request(extra=["Sec-WebSocket-Protocol: other"])
        status, h = await status_of(port, req)
        assert status == 101 and "sec-websocket-protocol" not in h

    await with_server(check, subprotocols=["microws.v1", "chat"])


async def test_handler_sees_path_headers_and_subprotocol():
    seen = {}

    async def handler(ws):
        seen["path"] = ws.path
        seen["agent"] = ws.headers.get("x-agent")
        seen["proto"] = ws.subprotocol
        await ws.send("ok")

    async def check(port):
        ws = await microws.connect(
            "ws://127.0.0.1:%d/dev/1?x=2" % port, subprotocols=["p2", "p1"], headers={"X-Agent": "t"}
        )
        assert await ws.recv() == "ok"
        assert ws.subprotocol == "p1"
        await ws.close()

    await with_server(check, handler=handler, subprotocols=["p1"])
    assert seen == {"path": "/dev/1?x=2", "agent": "t", "proto": "p1"}


async def test_routing_by_path_answers_404_for_unknown_paths():
    async def a(ws):
        await ws.send("a")

    async def check(port):
        ws = await microws.connect("ws://127.0.0.1:%d/a" % port)
        assert await ws.recv() == "a"
        await ws.close()
        assert (await status_of(port, wp.upgrade_request("/nope")))[0] == 404

    await with_server(check, handler={"/a": a})


async def test_plain_http_hook_serves_a_page_beside_the_websocket():
    def page(request):
        if request.path == "/":
            return 200, {"Content-Type": "text/html"}, "<h1>board</h1>"
        return None

    async def check(port):
        reader, writer = await wp.open_raw(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        status, h = await wp.read_head(reader)
        body = await wp.read_exact(reader, int(h["content-length"]))
        await wp.close_raw(writer)
        assert status == 200 and h["content-type"] == "text/html" and body == b"<h1>board</h1>"
        assert (await status_of(port, b"GET /missing HTTP/1.1\r\nHost: x\r\n\r\n"))[0] == 404
        ws = await microws.connect("ws://127.0.0.1:%d/" % port)
        await ws.send("still ws")
        assert await ws.recv() == "still ws"
        await ws.close()

    await with_server(check, http_handler=page)


async def test_a_failing_page_handler_gets_500_and_the_server_keeps_serving():
    def page(request):
        if request.path == "/boom":
            raise ValueError("page handler bug")
        return 200, {"Content-Type": "text/plain"}, "ok"

    async def check(port):
        assert (await status_of(port, b"GET /boom HTTP/1.1\r\nHost: x\r\n\r\n"))[0] == 500
        assert (await status_of(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"))[0] == 200

    await with_server(check, http_handler=page)


async def test_handshake_timeout_drops_silent_clients():
    async def check(port):
        reader, writer = await wp.open_raw(port, b"GET / HTTP/1.1\r\n")  # never finishes
        assert await asyncio.wait_for(wp.read_eof(reader), 5)
        await wp.close_raw(writer)

    await with_server(check, handshake_timeout=0.2)


async def test_request_sent_one_byte_at_a_time_works():
    async def check(port):
        reader, writer = await wp.open_raw(port)
        req = wp.upgrade_request()
        for i in range(len(req)):
            await wp.send(writer, req[i : i + 1])
        status, _ = await wp.read_head(reader)
        assert status == 101
        data = wp.frame(1, "slow")
        for i in range(len(data)):
            await wp.send(writer, data[i : i + 1])
        assert await wp.read_frame(reader) == (0x80, 1, b"slow", False)
        await wp.close_raw(writer)

    await with_server(check)


async def test_max_connections_answers_503_beyond_the_limit():
    release = asyncio.Event()

    async def hold(ws):
        await release.wait()

    async def check(port):
        a = await microws.connect("ws://127.0.0.1:%d/" % port)
        b = await microws.connect("ws://127.0.0.1:%d/" % port)
        assert (await status_of(port, wp.upgrade_request()))[0] == 503
        release.set()
        await a.wait_closed()
        await b.wait_closed()

    await with_server(check, handler=hold, max_connections=2)


async def test_no_heap_for_the_handshake_gets_503_and_the_server_keeps_serving():
    # A MemoryError while the connection is set up (here from parsing the request)
    # answers a plain 503 instead of dropping the client without a word.
    import microws.server as server_module

    real = server_module.parse_request
    calls = []

    def short_of_heap(head):
        calls.append(1)
        if len(calls) == 1:
            raise MemoryError("simulated: heap full")
        return real(head)

    server_module.parse_request = short_of_heap
    try:

        async def check(port):
            status, h = await status_of(port, wp.upgrade_request())
            assert status == 503 and h["retry-after"] == "1", (status, h)
            ws = await microws.connect("ws://127.0.0.1:%d/" % port)
            await ws.send("still serving")
            assert await ws.recv() == "still serving"
            await ws.close()

        await with_server(check)
    finally:
        server_module.parse_request = real
    assert len(calls) == 2


async def _answer_then_clean_close(reader, writer):
    # Read the answer, send more, then wait for the server to close. A server that
    # closed with unread bytes (the request's rest, or more after the answer) makes TCP
    # reset the connection: the read then fails, and a peer that had not read the
    # answer yet may lose it.
    status = (await wp.read_head(reader))[0]
    writer.write(b"x" * 100)
    await writer.drain()
    while await asyncio.wait_for(reader.read(4096), 5):
        pass  # the answer's body
    return status


async def test_a_refused_request_is_read_to_its_end_before_the_socket_closes():
    async def check(port):
        reader, writer = await wp.open_raw(port, wp.upgrade_request(extra=["X-Big: " + "v" * 20000]))
        assert await _answer_then_clean_close(reader, writer) == 431
        await wp.close_raw(writer)

    await with_server(check)


async def test_a_503_for_max_connections_reads_the_request_before_the_socket_closes():
    release = asyncio.Event()

    async def hold(ws):
        await release.wait()

    async def check(port):
        r1, w1 = await wp.ws_raw(port)
        reader, writer = await wp.open_raw(port, wp.upgrade_request())
        assert await _answer_then_clean_close(reader, writer) == 503
        await wp.close_raw(writer)
        release.set()
        await wp.close_raw(w1)

    await with_server(check, handler=hold, max_connections=1)


# Plain-HTTP answers (RFC 9110/9112): each checked byte for byte, then a normal request.


async def whole_answer(port, request):
    """Every byte the server sends for ``request``, up to its close."""
    reader, writer = await wp.open_raw(port, request)
    out = b""
    try:
        while True:
            chunk = await asyncio.wait_for(reader.read(4096), 5)
            if not chunk:
                return out
            out += chunk
    finally:
        await wp.close_raw(writer)


def _answer(status, headers, body=b""):
    return ("HTTP/1.1 %s\r\n%s\r\n" % (status, "".join("%s\r\n" % h for h in headers))).encode() + body


PAGE = _answer("200 OK", ["Content-Type: text/html", "Content-Length: 14", "Connection: close"], b"<h1>board</h1>")
GET = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


def _page(request):
    return 200, [("Content-Type", "text/html")], "<h1>board</h1>"


async def test_head_to_the_page_hook_gets_the_head_without_its_body():
    async def check(port):
        head = PAGE[: PAGE.index(b"\r\n\r\n") + 4]  # Content-Length still the body's
        assert await whole_answer(port, b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n") == head
        assert await whole_answer(port, b"HEAD /none HTTP/1.1\r\nHost: x\r\n\r\n") == _answer(
            "404 Not Found", ["Content-Type: text/plain", "Content-Length: 10", "Connection: close"]
        )
        assert await whole_answer(port, GET) == PAGE

    def page(request):
        return None if request.path == "/none" else _page(request)

    await with_server(check, http_handler=page)


async def test_the_page_hooks_own_framing_headers_give_way_to_one_length_and_close():
    def page(request):
        if request.path == "/own":
            own = [("Content-Length", "99"), ("connection", "keep-alive"), ("TRANSFER-ENCODING", "chunked")]
            return 200, [("X-A", "1")] + own, "ok"
        return _page(request)

    async def check(port):
        got = await whole_answer(port, b"GET /own HTTP/1.1\r\nHost: x\r\n\r\n")
        assert got == _answer("200 OK", ["X-A: 1", "Content-Length: 2", "Connection: close"], b"ok"), got
        assert await whole_answer(port, GET) == PAGE

    await with_server(check, http_handler=page)


async def test_204_and_304_from_the_page_hook_carry_no_length_and_no_body():
    def page(request):
        if request.path == "/204":
            return 204, [], b""
        if request.path == "/304":
            return 304, {"ETag": '"v1"'}, "dropped: a 304 has no body"
        return _page(request)

    async def check(port):
        got = await whole_answer(port, b"GET /204 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert got == _answer("204 No Content", ["Connection: close"]), got
        got = await whole_answer(port, b"GET /304 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert got == _answer("304 Not Modified", ['ETag: "v1"', "Connection: close"]), got
        assert await whole_answer(port, GET) == PAGE

    await with_server(check, http_handler=page)


async def test_no_host_or_two_hosts_get_400_for_pages_and_upgrades():
    called = []

    def page(request):
        called.append(request.path)
        return _page(request)

    bad = _answer(
        "400 Bad Request",
        ["Content-Type: text/plain", "Content-Length: 25", "Connection: close"],
        b"missing or repeated Host\n",
    )

    async def check(port):
        assert await whole_answer(port, b"GET / HTTP/1.1\r\n\r\n") == bad
        assert await whole_answer(port, b"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n") == bad
        assert await whole_answer(port, b"GET / HTTP/1.1\r\nHost: x\r\nhost: x\r\n\r\n") == bad
        assert await whole_answer(port, wp.upgrade_request(host=None)) == bad
        assert await whole_answer(port, wp.upgrade_request(extra=["Host: evil.example"])) == bad
        assert called == []
        assert await whole_answer(port, GET) == PAGE
        assert (await status_of(port, wp.upgrade_request()))[0] == 101

    await with_server(check, http_handler=page)


async def test_cr_or_lf_in_a_page_hook_header_gets_500_not_a_split_response():
    import microws.server as server_module

    def page(request):
        if request.path == "/value":
            return 200, [("X-A", "1\r\nSet-Cookie: secret=1")], "ok"
        if request.path == "/lf":
            return 200, {"X-A": "1\nX-B: 2"}, "ok"
        if request.path == "/name":
            return 200, [("X-A\r\nSet-Cookie", "secret=1")], "ok"
        return _page(request)

    printed = []
    real = server_module._print_exc
    server_module._print_exc = lambda e: printed.append(str(e))
    error = _answer(
        "500 Internal Server Error",
        ["Content-Type: text/plain", "Content-Length: 15", "Connection: close"],
        b"internal error\n",
    )

    async def check(port):
        for path in ("/value", "/lf", "/name"):
            got = await whole_answer(port, ("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path).encode())
            assert got == error, (path, got)
        assert await whole_answer(port, GET) == PAGE

    try:
        await with_server(check, http_handler=page)
    finally:
        server_module._print_exc = real
    assert printed == ["CR or LF in a header"] * 3, printed


async def test_max_connections_holds_for_clients_that_arrive_together():
    # Six requests already sent before the server reads any: each is checked before
    # any of the others is counted, so the limit must be taken when the 101 is decided.
    release = asyncio.Event()

    async def hold(ws):
        await release.wait()

    async def check(port):
        conns, statuses = [], []
        for _ in range(6):  # (no await in a comprehension on MicroPython)
            conns.append(await wp.open_raw(port, wp.upgrade_request()))
        for r, _ in conns:
            statuses.append((await wp.read_head(r))[0])
        assert sorted(statuses) == [101, 101, 503, 503, 503, 503], statuses
        release.set()
        for _, w in conns:
            await wp.close_raw(w)

    await with_server(check, handler=hold, max_connections=2)


async def test_wait_closed_waits_for_close_even_with_no_connection_left():
    srv = await microws.serve(echo, "127.0.0.1", 0)
    waiting = asyncio.create_task(srv.wait_closed())
    ws = await microws.connect("ws://127.0.0.1:%d/" % srv.port, ping_interval=None)
    await ws.send("a")
    assert await ws.recv() == "a"
    await ws.close()  # the last connection ends: the server still listens
    for _ in range(20):
        await asyncio.sleep(0)
    assert not waiting.done()
    ws = await microws.connect("ws://127.0.0.1:%d/" % srv.port, ping_interval=None)
    await ws.close()
    srv.close()
    await asyncio.wait_for(waiting, 5)


async def test_serve_with_close_timeout_none_closes_and_waits_without_a_bound():
    srv = await microws.serve(echo, "127.0.0.1", 0, close_timeout=None)
    ws = await microws.connect("ws://127.0.0.1:%d/" % srv.port, ping_interval=None)
    reading = asyncio.create_task(ws.recv())  # so the server's 1001 gets its answer
    srv.close()
    await asyncio.wait_for(srv.wait_closed(), 5)
    await araises(microws.ConnectionClosedOK, reading)
    assert ws.close_code == 1001


async def test_serve_on_a_port_in_use_raises_and_leaves_no_socket_or_task_behind():
    import os

    def open_fds():
        return len(os.listdir("/proc/self/fd"))

    def tasks():
        return 0 if IS_MICROPYTHON else len(asyncio.all_tasks())

    srv = await microws.serve(echo, "127.0.0.1", 0)
    try:
        fds, n = open_fds(), tasks()
        for _ in range(5):
            await araises(OSError, microws.serve(echo, "127.0.0.1", srv.port, ping_interval=5))
        assert (open_fds(), tasks()) == (fds, n)
    finally:
        srv.close()
        await srv.wait_closed()
