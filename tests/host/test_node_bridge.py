"""The node against the real bridge (`microws bridge`, spawned) and the `sim`/`demo` commands.

History (`/api/devices/{id}/history`) keeps every reading's ts; readings have distinct
ts (100 ms apart), so counting history entries counts stored readings: each reading
the node produced and the bridge acked must be there exactly once.
"""

import asyncio
import json
import socket
import urllib.request

from bridge_support import free_port
from node_helpers import fields, node_config, run, status
from tcp_proxy import TcpProxy

from microws_host.demo import MICROWS, stop_process
from microws_host.simulator import SimBoard


def get_json(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


async def wait_for(predicate, timeout, what):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await asyncio.to_thread(predicate)
        if value:
            return value
        if loop.time() > deadline:
            raise TimeoutError("%s not reached in %ss" % (what, timeout))
        await asyncio.sleep(0.2)  # polling REST: the bridge offers no push to this test


async def spawn(*args):
    return await asyncio.create_subprocess_exec(
        *MICROWS, *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )


async def read_until(proc, needle, timeout):
    async def scan():
        seen = []
        async for raw in proc.stdout:
            line = raw.decode(errors="replace").rstrip()
            seen.append(line)
            if needle in line:
                return line
        raise AssertionError("process ended before %r:\n%s" % (needle, "\n".join(seen[-20:])))

    return await asyncio.wait_for(scan(), timeout)


async def stop(proc):
    return await stop_process(proc, 10)  # demo's own stop, with room for a slow CI machine


def history_ts(base, dev):
    """Timestamps stored for ``dev`` (one per reading; `temp` is in every reading)."""
    return [ts for ts, _ in get_json("%s/api/devices/%s/history?sensor=temp" % (base, dev))["sensors"]["temp"]]


def test_cut_stalled_and_rebooted_boards_on_the_real_bridge_store_every_reading_once():
    async def scenario():
        port = free_port()
        bridge = await spawn("bridge", "--port", str(port))
        base = "http://127.0.0.1:%d" % port
        proxy = TcpProxy(port)
        boards = []
        try:
            await read_until(bridge, "listening", 20)
            await proxy.start()
            url = "ws://127.0.0.1:%d/device" % proxy.port
            boards = [SimBoard(node_config(url, "r%d" % i, seed=i, ping_interval=1, ping_timeout=1)) for i in (1, 2, 3)]
            for b in boards:
                await b.start()
            await wait_for(lambda: all(len(history_ts(base, b.name)) >= 10 for b in boards)
                           if len(get_json(base + "/api/devices")) == 3 else False, 30, "3 boards streaming")
            reboot = boards[2]
            # 1. stall every connection: TCP stays open and silent, only keepalive can tell
            marks = [b.line_count for b in boards]
            proxy.stall()
            for b, mark in zip(boards, marks, strict=True):
                down = await b.wait_line(status("link down"), 15, mark)
                assert "keepalive" in down or "1011" in down, down
                await b.wait_line(status("link up"), 15, mark)
            # 2. reset every connection from the server side
            marks = [b.line_count for b in boards]
            proxy.cut()
            for b, mark in zip(boards, marks, strict=True):
                await b.wait_line(status("link down"), 15, mark)
                await b.wait_line(status("link up"), 15, mark)
            # 3. reboot r3 through the bridge's REST command
            mark = reboot.line_count
            req = urllib.request.Request(base + "/api/devices/r3/cmd", data=b'{"name": "reboot", "args": {}}',
                                         headers={"Content-Type": "application/json"})
            res = await asyncio.to_thread(lambda: json.loads(urllib.request.urlopen(req, timeout=10).read()))
            assert res["ok"], res
            rebooted = fields(await reboot.wait_line(status("reboot"), 15, mark))
            await reboot.wait_line(status("link up"), 15, mark)
            before = {b.name: len(history_ts(base, b.name)) for b in boards}
            await wait_for(lambda: all(len(history_ts(base, b.name)) >= before[b.name] + 10 for b in boards),
                           30, "streaming after recovery")
        finally:
            for b in boards:
                await b.stop()
            await proxy.stop()
        try:
            for b in boards:
                ts = history_ts(base, b.name)
                assert len(ts) == len(set(ts)), "%s: a reading stored twice" % b.name
                stops = [fields(line) for line in b.lines if status("stop")(line)]
                acked = stops[-1]["acked"]
                produced = acked + (rebooted["seq"] if b is reboot else 0)
                # everything acked (of both boots for r3) is stored; at most the unacked tail beyond
                assert produced <= len(ts) <= produced + (stops[-1]["seq"] - acked), (b.name, len(ts), stops[-1])
                assert stops[-1]["dropped"] == 0
            assert rebooted["acked"] == rebooted["seq"]  # the reboot flushed its outbox first
        finally:
            assert await stop(bridge) is not None

    run(scenario(), timeout=150)


def test_sim_command_streams_and_stops_on_ctrl_c():
    async def scenario():
        port = free_port()
        bridge = await spawn("bridge", "--port", str(port))
        sim = None
        try:
            await read_until(bridge, "listening", 20)
            sim = await spawn("sim", "--count", "2", "--interval", "200", "--bridge",
                              "ws://127.0.0.1:%d/device" % port)
            await read_until(sim, "[sim-2] microws-node: link up", 20)
            base = "http://127.0.0.1:%d" % port
            online = {"sim-1", "sim-2"}
            await wait_for(lambda: {d["id"] for d in get_json(base + "/api/devices") if d["online"]} == online,
                           20, "2 online")
            assert await stop(sim) == 130
            rest = (await sim.stdout.read()).decode()
            assert "[sim-1] microws-node: stop" in rest or "[sim-2] microws-node: stop" in rest
        finally:
            if sim is not None:
                await stop(sim)
            await stop(bridge)

    run(scenario())


def test_demo_runs_bridge_and_three_boards_with_data_in_the_api():
    async def scenario():
        demo = await spawn("demo", "--port", "0", "--interval", "200")
        try:
            line = await read_until(demo, "dashboard at http://", 30)
            base = line.split("dashboard at ")[1].split()[0].rstrip("/")
            def with_data():
                return [d for d in get_json(base + "/api/devices") if d["online"] and d["latest"]]

            await wait_for(lambda: len(with_data()) == 3, 30, "3 boards with data")
            devices = get_json(base + "/api/devices")
            assert {d["id"] for d in devices} == {"sim-1", "sim-2", "sim-3"}
            assert all(set(d["latest"]) == {"temp", "humidity", "light"} for d in devices)
        finally:
            code = await stop(demo)
        assert code == 130
        with socket.socket() as s:  # the bridge is gone too
            assert s.connect_ex(("127.0.0.1", int(base.rsplit(":", 1)[1]))) != 0

    run(scenario())


def test_demo_on_a_busy_port_says_so_in_one_line():
    async def scenario():
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen()
            port = s.getsockname()[1]
            demo = await spawn("demo", "--port", str(port))
            out = (await demo.stdout.read()).decode()
            assert await demo.wait() == 1
        assert out.strip().count("\n") == 0 and "busy" in out, out

    run(scenario())
