"""Scale-out: two `microws bridge --redis` processes and a real redis-server.

A reading from a device on bridge A reaches a browser on bridge B; a command from a
browser on B reaches the device on A and its result comes back to B.
"""

import socket
import subprocess
import time

import pytest
from bridge_support import (
    TS,
    BridgeProcess,
    SSEReader,
    browser,
    dev_event,
    device,
    free_port,
    hello,
    http_json,
    is_type,
    require_tool,
    run,
)


@pytest.fixture
def redis_url(tmp_path):
    """A private redis-server on a free port, stopped after the test."""
    exe = require_tool("redis-server", "redis-server")
    port = free_port()
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:  # wait for its port: connect until it accepts
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("redis-server did not start") from None
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


def test_two_bridges_share_devices_events_and_commands_through_redis(redis_url):
    async def body(a, b):
        async with browser(b.url("/ws", ws=True)) as web_b:
            async with device(a.url("/device", ws=True)) as dev:
                await dev.send(hello("far-node", sensors={"temp": "C"}))
                await web_b.expect(dev_event("far-node", True))
                async with SSEReader(b.url("/events")) as sse_b:
                    for seq in (1, 2, 3):
                        await dev.send(
                            {"t": "tm", "boot": "boot-1", "seq": seq, "ts": TS + seq, "d": {"temp": 20 + seq}}
                        )
                        await dev.expect(is_type("ack", seq=seq))
                        tm = await web_b.expect(is_type("tm", seq=seq))
                        assert tm["dev"] == "far-node" and tm["d"] == {"temp": 20 + seq}
                        assert (await sse_b.expect(is_type("tm", seq=seq)))["dev"] == "far-node"

                # B knows the device, its latest values and its history.
                _, devices = await http_json(b.url("/api/devices"))
                [info] = devices
                assert info["id"] == "far-node" and info["online"] is True and info["latest"]["temp"]["value"] == 23
                _, hist = await http_json(b.url("/api/devices/far-node/history?sensor=temp"))
                assert [v for _, v in hist["sensors"]["temp"]] == [21, 22, 23]

                # A command from B's browser reaches the device on A; the result comes back to B.
                await web_b.send({"t": "cmd", "dev": "far-node", "name": "led", "args": {"on": True}, "id": "b-1"})
                cmd = await dev.expect(is_type("cmd"))
                assert cmd["name"] == "led" and cmd["args"] == {"on": True}
                await dev.send({"t": "res", "id": cmd["id"], "ok": True, "v": {"led": True}})
                res = await web_b.expect(is_type("res"))
                assert res == {"t": "res", "dev": "far-node", "id": "b-1", "ok": True, "v": {"led": True}}

            # The device leaves A: B's browser sees it go offline.
            await web_b.expect(dev_event("far-node", False))

    with BridgeProcess("--redis", redis_url) as a, BridgeProcess("--redis", redis_url) as b:
        run(body(a, b))
        a.stop()
        b.stop()
    assert a.proc.returncode == 0 and b.proc.returncode == 0


def test_late_bridge_learns_devices_already_connected_elsewhere(redis_url):
    async def body(a):
        async with device(a.url("/device", ws=True)) as dev:
            await dev.send(hello("early"))
            await dev.send({"t": "tm", "boot": "boot-1", "seq": 1, "ts": TS, "d": {"temp": 1}})
            await dev.expect(is_type("ack"))
            with BridgeProcess("--redis", redis_url) as late:
                _, devices = await http_json(late.url("/api/devices"))
                assert [d["id"] for d in devices] == ["early"] and devices[0]["online"] is True

    with BridgeProcess("--redis", redis_url) as a:
        run(body(a))
