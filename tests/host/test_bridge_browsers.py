"""Browsers: subscriptions, SSE, long-poll, and a slow browser that must not stall others."""

import asyncio
import json
import socket

from bridge_support import (
    TS,
    WAIT,
    Peer,
    SSEReader,
    browser,
    dev_event,
    device,
    hello,
    http_get,
    http_json,
    is_type,
    metric,
    run,
    running_bridge,
)
from websockets.asyncio.client import connect as ws_connect

from microws_host.bridge.config import BridgeConfig


def tm(seq, value, boot="boot-1"):
    return {"t": "tm", "boot": boot, "seq": seq, "ts": TS + seq, "d": {"temp": value}}


def test_browser_subscription_filters_devices():
    async def body():
        async with running_bridge() as srv, browser(srv) as b, device(srv) as d1, device(srv) as d2:
            await b.send({"t": "sub", "devices": ["d2"]})
            await d1.send(hello("d1"))
            await d2.send(hello("d2"))
            await b.expect(dev_event("d2", True))
            await d1.send(tm(1, 111))
            await d1.expect(is_type("ack"))
            await d2.send(tm(1, 222))
            got = await b.expect(is_type("tm"))
            assert got["dev"] == "d2"
            assert not any(m.get("dev") == "d1" or m.get("dev", {}) == {"id": "d1"} for m in b.seen if m["t"] == "tm")
            await b.send({"t": "sub", "devices": "*"})  # all again: snapshot of both devices
            await b.expect(dev_event("d1", True))

    run(body())


def test_sse_stream_carries_dev_and_tm_events():
    async def body():
        async with running_bridge() as srv, device(srv) as d:
            await d.send(hello("n1"))
            await d.send(tm(1, 20.5))
            await d.expect(is_type("ack", seq=1))  # the bridge knows n1 now
            async with SSEReader(srv.url("/events")) as sse:
                assert sse.status == 200
                snap = await sse.expect(lambda m: m["t"] == "dev")  # current devices first
                assert snap["dev"]["id"] == "n1" and snap["dev"]["online"] is True
                await d.send(tm(2, 21.5))
                got = await sse.expect(is_type("tm"))
                assert got["dev"] == "n1" and got["seq"] == 2 and got["d"] == {"temp": 21.5}
            async with SSEReader(srv.url("/events?devices=other")) as sse, SSEReader(srv.url("/events")) as everything:
                await d.send(tm(3, 22.5))
                await everything.expect(is_type("tm", seq=3))  # delivered to SSE readers by now
                assert sse.events.empty()

    run(body())


def test_long_poll_returns_new_events_and_reports_missed_ones():
    async def body():
        async with running_bridge(BridgeConfig(poll_log=5)) as srv, device(srv) as d:
            await d.send(hello("n1"))
            status, first = await http_json(srv.url("/api/poll"))
            assert status == 200 and first["events"][0]["dev"]["id"] == "n1"
            cursor = first["cursor"]
            # A poll waits until something happens, then answers at once.
            poll = asyncio.ensure_future(http_json(srv.url(f"/api/poll?since={cursor}&wait=20")))
            while srv.bridge.poll_waiters == 0:  # the poll is parked in the bridge
                await asyncio.sleep(0.01)
            await d.send(tm(1, 1.0))
            _, got = await asyncio.wait_for(poll, WAIT)
            assert [e["seq"] for e in got["events"]] == [1] and got["missed"] == 0
            # More events than the log holds: the client learns how many it missed.
            cursor = got["cursor"]
            await d.send(
                {"t": "tm", "boot": "boot-1", "b": [{"seq": s, "ts": TS, "d": {"temp": s}} for s in range(2, 10)]}
            )
            await d.expect(is_type("ack", seq=9))
            _, got = await http_json(srv.url(f"/api/poll?since={cursor}&wait=0"))
            assert [e["seq"] for e in got["events"]] == [5, 6, 7, 8, 9] and got["missed"] == 3
            # Nothing new: an empty answer after the wait, same cursor.
            _, idle = await http_json(srv.url(f"/api/poll?since={got['cursor']}&wait=0.2"))
            assert idle == {"cursor": got["cursor"], "missed": 0, "events": []}
            status, _ = await http_get(srv.url("/api/poll?since=abc"))
            assert status == 400

    run(body())


def _small_buffer_socket(port):
    # A browser with a tiny receive window, so the bridge's writes to it back up fast.
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    return sock


def test_slow_browser_drops_oldest_and_never_stalls_others():
    readings = 6000
    padding = {f"s{i}": "x" * 60 for i in range(8)}  # ~600 bytes an event: megabytes in total

    async def body():
        # The queue holds well more than the device sends between two writer turns (one
        # TCP read's worth of messages), but far less than the whole run.
        cfg = BridgeConfig(browser_queue=500, device_rate=1e6, device_burst=10**6, max_message_bytes=2**20)
        async with running_bridge(cfg) as srv, browser(srv) as fast, device(srv) as d:
            slow_ws = await ws_connect(
                srv.url("/ws", ws=True), sock=_small_buffer_socket(srv.port), max_queue=1, close_timeout=1
            )
            slow = Peer(slow_ws)
            try:
                await d.send(hello("n1"))
                await fast.expect(dev_event("n1", True))
                await slow.expect(dev_event("n1", True))
                slow_ws.transport.pause_reading()  # the slow browser stops reading altogether
                acked = asyncio.ensure_future(d.expect(is_type("ack", seq=readings), timeout=60))
                for seq in range(1, readings + 1):
                    await d.send(
                        {"t": "tm", "boot": "boot-1", "seq": seq, "ts": TS + seq, "d": {"temp": seq, **padding}}
                    )
                # The fast browser gets every reading, in order, while the slow one is stuck.
                seqs = []
                async with asyncio.timeout(30):
                    while len(seqs) < readings:
                        msg = json.loads(await fast.ws.recv())
                        if msg["t"] == "tm":
                            seqs.append(msg["seq"])
                assert seqs == list(range(1, readings + 1))
                await acked
                _, text = await http_get(srv.url("/metrics"))
                dropped = metric(text, "microws_browser_dropped_total")
                assert dropped > 0
                assert metric(text, "microws_browser_queue_max") <= cfg.browser_queue
                # When it reads again it catches up to the latest values, not to a backlog.
                slow_ws.transport.resume_reading()
                last = await slow.expect(is_type("tm", seq=readings), timeout=20)
                assert last["d"]["temp"] == readings
                got = [m["seq"] for m in slow.seen if m["t"] == "tm"]
                assert len(got) < readings and got == sorted(got)
            finally:
                await slow_ws.close()

    run(body(), timeout=90)
