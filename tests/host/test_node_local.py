"""Local mode: the node serves its page and a WebSocket itself (no bridge at all)."""

import asyncio
import json
import urllib.request

import websockets
from bridge_support import free_port
from node_helpers import run

from microws_host.simulator import SimBoard

PAGE_BUDGET = 1024  # bytes of HTML + JS a board serves


def get(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.status, r.headers.get("Content-Type"), r.read()


def test_local_page_is_small_and_its_websocket_streams_readings_and_takes_led():
    async def scenario():
        port = free_port()
        board = SimBoard({"id": "loc", "local_port": port, "interval_ms": 100})
        try:
            await board.start()
            await board.wait_line(lambda line: line == "microws-node: local page on port %d" % port, 10, 0)
            status, kind, page = await asyncio.to_thread(get, "http://127.0.0.1:%d/" % port)
            assert status == 200 and kind.startswith("text/html")
            assert b"new WebSocket" in page and len(page) < PAGE_BUDGET, len(page)
            print("\nlocal page: %d bytes (HTML + JS)" % len(page))
            async with websockets.connect("ws://127.0.0.1:%d/ws" % port) as ws:
                hello = json.loads(await asyncio.wait_for(ws.recv(), 5))
                assert hello == {"id": "loc", "sensors": {"temp": "C", "humidity": "%", "light": "lx"}}
                first = json.loads(await asyncio.wait_for(ws.recv(), 5))
                second = json.loads(await asyncio.wait_for(ws.recv(), 5))
                assert second["seq"] == first["seq"] + 1 and set(first["d"]) == {"temp", "humidity", "light"}
                mark = board.line_count
                await ws.send(json.dumps({"led": True}))
                await board.wait_line(lambda line: line == "microws-node: led on", 5, mark)
        finally:
            await board.stop()
        assert "exited with status 0" in board.tail(1), board.tail()

    run(scenario())
