"""Bridge with devices played by `websockets` clients: telemetry, ack, dedupe, commands,
bad input, limits and keepalive."""

import asyncio
import json

import pytest
from bridge_support import (
    TS,
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
from websockets.exceptions import ConnectionClosed

from microws_host.bridge.config import BridgeConfig


def test_device_telemetry_reaches_browser_rest_and_history():
    async def body():
        async with running_bridge() as srv, browser(srv) as b, device(srv) as d:
            await d.send(hello("n1", sensors={"temp": "C", "hum": "%"}))
            info = (await b.expect(dev_event("n1", True)))["dev"]
            assert info["board"] == "unix" and info["sensors"] == {"temp": "C", "hum": "%"}
            for seq in (1, 2, 3):
                await d.send(
                    {"t": "tm", "boot": "boot-1", "seq": seq, "ts": TS + seq, "d": {"temp": 20 + seq, "hum": 40}}
                )
                ack = await d.expect(is_type("ack"))
                assert ack == {"t": "ack", "boot": "boot-1", "seq": seq}
                tm = await b.expect(is_type("tm", seq=seq))
                assert tm["dev"] == "n1" and tm["ts"] == TS + seq and tm["d"] == {"temp": 20 + seq, "hum": 40}

            status, devices = await http_json(srv.url("/api/devices"))
            assert status == 200
            [dev] = devices
            assert dev["id"] == "n1" and dev["online"] is True and dev["last_seen"] > 0
            assert dev["latest"]["temp"] == {"value": 23, "unit": "C", "ts": TS + 3}

            status, hist = await http_json(srv.url("/api/devices/n1/history?sensor=temp"))
            assert status == 200 and hist["sensors"] == {"temp": [[TS + 1, 21], [TS + 2, 22], [TS + 3, 23]]}
            status, hist = await http_json(srv.url(f"/api/devices/n1/history?since={TS + 2}"))
            assert hist["sensors"] == {"temp": [[TS + 3, 23]], "hum": [[TS + 3, 40]]}
            status, _ = await http_json(srv.url("/api/devices/nope/history"))
            assert status == 404

    run(body())


def test_batched_telemetry_is_stored_in_order_and_acked_cumulatively():
    async def body():
        async with running_bridge() as srv, device(srv) as d:
            await d.send(hello("n1"))
            batch = [{"seq": s, "ts": TS + s, "d": {"temp": s}} for s in range(1, 11)]
            await d.send({"t": "tm", "boot": "boot-1", "b": batch})
            assert await d.expect(is_type("ack")) == {"t": "ack", "boot": "boot-1", "seq": 10}
            _, hist = await http_json(srv.url("/api/devices/n1/history"))
            assert [v for _, v in hist["sensors"]["temp"]] == list(range(1, 11))

    run(body())


def test_reconnect_and_outbox_resend_produces_no_duplicates():
    """A device loses its link before some acks arrive and resends its whole outbox."""

    async def body():
        async with running_bridge() as srv:
            readings = [{"seq": s, "ts": TS + s, "d": {"temp": s * 1.5}} for s in range(1, 9)]
            async with device(srv) as d:
                await d.send(hello("n1", boot="b-A"))
                for r in readings[:5]:
                    await d.send({"t": "tm", "boot": "b-A", **r})
                    await d.expect(is_type("ack", seq=r["seq"]))
                # Readings 6..8 are sent but the link drops before the device reads the acks.
                await d.send({"t": "tm", "boot": "b-A", "b": readings[5:]})
            # The bridge holds all 8 now; when the device returns it is told so at hello.
            async with device(srv) as d:
                await d.send(hello("n1", boot="b-A"))
                assert await d.expect(is_type("ack")) == {"t": "ack", "boot": "b-A", "seq": 8}
                # A device that resends anyway (outbox not yet trimmed) changes nothing.
                await d.send({"t": "tm", "boot": "b-A", "b": readings})
                assert await d.expect(is_type("ack")) == {"t": "ack", "boot": "b-A", "seq": 8}
                # A new reading after the resend is stored.
                await d.send({"t": "tm", "boot": "b-A", "seq": 9, "ts": TS + 9, "d": {"temp": 99}})
                await d.expect(is_type("ack", seq=9))
                # Same seq numbers under a new boot id are new readings.
                await d.send(hello("n1", boot="b-B"))
                await d.send({"t": "tm", "boot": "b-B", "seq": 1, "ts": TS + 100, "d": {"temp": -1}})
                assert await d.expect(is_type("ack", boot="b-B")) == {"t": "ack", "boot": "b-B", "seq": 1}
            _, hist = await http_json(srv.url("/api/devices/n1/history?sensor=temp"))
            values = [v for _, v in hist["sensors"]["temp"]]
            assert values == [s * 1.5 for s in range(1, 9)] + [99, -1]
            _, text = await http_get(srv.url("/metrics"))
            assert metric(text, "microws_readings_duplicate_total") == 8
            assert metric(text, "microws_readings_total") == 10

    run(body())


def test_command_from_browser_reaches_device_and_result_returns():
    async def body():
        async with running_bridge() as srv, browser(srv) as b, device(srv) as d:
            await d.send(hello("n1"))
            await b.expect(dev_event("n1", True))
            await b.send({"t": "cmd", "dev": "n1", "name": "led", "args": {"on": True}, "id": "req-1"})
            cmd = await d.expect(is_type("cmd"))
            assert cmd["name"] == "led" and cmd["args"] == {"on": True} and isinstance(cmd["id"], str)
            await d.send({"t": "res", "id": cmd["id"], "ok": True, "v": {"led": True}})
            res = await b.expect(is_type("res"))
            assert res == {"t": "res", "dev": "n1", "id": "req-1", "ok": True, "v": {"led": True}}

            # The REST form, for SSE / long-poll clients; a failing command comes back as such.
            async def answer():
                c = await d.expect(is_type("cmd"))
                await d.send({"t": "res", "id": c["id"], "ok": False, "err": "no such pin"})

            answering = asyncio.ensure_future(answer())
            status, res = await http_json(
                srv.url("/api/devices/n1/cmd"), method="POST", json={"name": "interval", "args": {"ms": 500}}
            )
            await answering
            assert status == 200 and res["ok"] is False and res["err"] == "no such pin"

            # A command to an unknown device is answered at once, not after a timeout.
            await b.send({"t": "cmd", "dev": "ghost", "name": "led", "args": {"on": False}, "id": 2})
            res = await b.expect(is_type("res", id=2))
            assert res["ok"] is False and "ghost" in res["err"]

    run(body())


def test_command_times_out_when_device_never_answers():
    async def body():
        async with running_bridge(BridgeConfig(command_timeout=0.3)) as srv, browser(srv) as b, device(srv) as d:
            await d.send(hello("n1"))
            await b.expect(dev_event("n1", True))
            await b.send({"t": "cmd", "dev": "n1", "name": "ping", "args": {}, "id": 5})
            await d.expect(is_type("cmd"))
            res = await b.expect(is_type("res", id=5))
            assert res["ok"] is False and "no result" in res["err"]

    run(body())


def test_malformed_json_and_unknown_types_get_err_and_are_counted():
    async def body():
        async with running_bridge() as srv, browser(srv) as b, device(srv) as d:
            await d.send("{not json")
            assert (await d.expect(is_type("err")))["msg"] == "malformed JSON"
            await d.send({"t": "tm", "seq": 1, "d": {}})
            assert "hello first" in (await d.expect(is_type("err")))["msg"]
            await d.send(hello("n1"))
            await d.send({"t": "bogus"})
            assert "unknown message type" in (await d.expect(is_type("err")))["msg"]
            await d.send({"t": "tm", "boot": "boot-1", "seq": "one", "d": {"temp": 1}})
            assert "bad tm" in (await d.expect(is_type("err")))["msg"]
            await d.send("[1, 2]")
            await d.expect(is_type("err"))
            await b.send("nope")
            assert (await b.expect(is_type("err")))["msg"] == "malformed JSON"
            await b.send({"t": "launch"})
            await b.expect(is_type("err"))
            # Both connections survive: a good reading still flows end to end.
            await d.send({"t": "tm", "boot": "boot-1", "seq": 1, "ts": TS, "d": {"temp": 1}})
            await d.expect(is_type("ack", seq=1))
            await b.expect(is_type("tm", seq=1))
            _, text = await http_get(srv.url("/metrics"))
            assert metric(text, "microws_bad_messages_total", peer="device", reason="json") == 2
            assert metric(text, "microws_bad_messages_total", peer="device", reason="type") == 1
            assert metric(text, "microws_bad_messages_total", peer="device", reason="order") == 1
            assert metric(text, "microws_bad_messages_total", peer="device", reason="field") == 1
            assert metric(text, "microws_bad_messages_total", peer="browser", reason="json") == 1
            assert metric(text, "microws_bad_messages_total", peer="browser", reason="type") == 1

    run(body())


def test_message_size_rate_and_device_count_limits():
    async def body():
        cfg = BridgeConfig(max_message_bytes=1024, max_devices=2, device_rate=5, device_burst=5)
        async with running_bridge(cfg) as srv:
            async with device(srv) as d:
                await d.send(hello("big"))
                await d.send(json.dumps({"t": "tm", "seq": 1, "d": {"x": "y" * 2000}}))
                with pytest.raises(ConnectionClosed) as e:
                    await d.expect(lambda m: False)
                assert e.value.rcvd.code == 1009
            async with device(srv) as d:
                await d.send(hello("fast"))  # 1 of the burst of 5
                for seq in range(1, 11):
                    await d.send({"t": "tm", "boot": "boot-1", "seq": seq, "ts": TS, "d": {"temp": seq}})
                err = await d.expect(is_type("err"))
                assert "rate limit" in err["msg"]
            async with device(srv) as d:  # a third device does not fit
                await d.send(hello("third"))
                with pytest.raises(ConnectionClosed) as e:
                    await d.expect(lambda m: False)
                assert e.value.rcvd.code == 1013
            _, text = await http_get(srv.url("/metrics"))
            assert metric(text, "microws_bad_messages_total", peer="device", reason="size") == 1
            assert metric(text, "microws_rate_limited_total") >= 5
            assert metric(text, "microws_rejected_total", reason="devices") == 1

    run(body())


def test_silent_device_goes_offline_after_keepalive_while_live_one_stays():
    async def body():
        async with running_bridge(BridgeConfig(keepalive=0.4)) as srv, browser(srv) as b:
            async with (
                device(srv, ping_interval=None, close_timeout=0.5) as alive,
                device(srv, ping_interval=None, close_timeout=0.5) as silent,
            ):
                await alive.send(hello("alive"))
                await silent.send(hello("silent"))
                await b.expect_all(dev_event("alive", True), dev_event("silent", True))
                # `silent` stops reading: it never sees the bridge's ping, so never answers.
                silent.ws.transport.pause_reading()
                # `alive` keeps reading (websockets answers pings by itself).
                reader = asyncio.ensure_future(alive.expect(lambda m: False, timeout=30))
                loop = asyncio.get_running_loop()
                t0 = loop.time()
                await b.expect(dev_event("silent", False), timeout=5)
                assert loop.time() - t0 < 3
                _, devices = await http_json(srv.url("/api/devices"))
                online = {d["id"]: d["online"] for d in devices}
                assert online == {"alive": True, "silent": False}
                assert not any(
                    m.get("t") == "dev" and m["dev"]["id"] == "alive" and not m["dev"]["online"] for m in b.seen
                )
                reader.cancel()

    run(body())


def test_newer_connection_of_same_device_replaces_older():
    async def body():
        async with running_bridge() as srv, browser(srv) as b, device(srv) as old, device(srv) as new:
            await old.send(hello("n1"))
            await b.expect(dev_event("n1", True))
            await new.send(hello("n1"))
            with pytest.raises(ConnectionClosed):
                await old.expect(lambda m: False)
            # The old link closing must not mark the device offline: it is on the new link.
            await new.send({"t": "tm", "boot": "boot-1", "seq": 1, "ts": TS, "d": {"temp": 1}})
            await new.expect(is_type("ack"))
            _, devices = await http_json(srv.url("/api/devices"))
            assert devices[0]["online"] is True

    run(body())
