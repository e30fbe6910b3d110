"""End to end: the real firmware (`microws sim`: the node on unix-port MicroPython)
streams into the bridge and obeys a command sent by a browser."""

import asyncio

from bridge_support import VENV_BIN, WAIT, browser, dev_event, is_type, run, running_bridge


def test_simulated_firmware_boards_stream_and_obey_commands(micropython):
    async def body():
        async with running_bridge() as srv, browser(srv) as b:
            sim = await asyncio.create_subprocess_exec(
                str(VENV_BIN / "microws"),
                "sim",
                "--count",
                "2",
                "--interval",
                "200",
                "--bridge",
                srv.url("/device", ws=True),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
            try:
                # The two boards come up in either order.
                events = await b.expect_all(dev_event("sim-1", True), dev_event("sim-2", True), timeout=30)
                infos = {e["dev"]["id"]: e["dev"] for e in events}
                for dev in infos.values():
                    assert dev["sensors"] and dev["board"] == "unix"
                first = await b.expect(is_type("tm", dev="sim-1"), timeout=WAIT)
                later = await b.expect(lambda m: m.get("t") == "tm" and m["dev"] == "sim-1" and m["seq"] > first["seq"])
                assert later["d"] and set(later["d"]) <= set(infos["sim-1"]["sensors"])
                await b.send({"t": "cmd", "dev": "sim-1", "name": "led", "args": {"on": True}, "id": "fw-1"})
                res = await b.expect(is_type("res", id="fw-1"))
                assert res["ok"] is True and res["dev"] == "sim-1"
                assert srv.bridge.metrics.total("microws_bad_messages_total") == 0
            finally:
                sim.terminate()
                try:
                    await asyncio.wait_for(sim.wait(), 10)
                except TimeoutError:
                    sim.kill()
                    await sim.wait()

    run(body(), timeout=90)
