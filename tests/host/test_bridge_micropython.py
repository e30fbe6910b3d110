"""A device played by the `microws` client running in the unix-port MicroPython."""

import asyncio
import os

from bridge_support import ROOT, WAIT, browser, dev_event, is_type, run, running_bridge

from microws_host.bridge.config import BridgeConfig

# The board: hello, three readings (waiting for each ack), then obey one command.
DEVICE_SCRIPT = """
import asyncio, json, sys
import microws

async def main(url):
    ws = await microws.connect(url, subprotocols=["microws.v1"], headers={"Authorization": "Bearer T-mp"})
    await ws.send(json.dumps({"t": "hello", "id": "mp-node", "board": "unix", "fw": "mp-test",
                              "boot": "mpb", "sensors": {"temp": "C"}, "interval": 100}))
    for seq in (1, 2, 3):
        await ws.send(json.dumps({"t": "tm", "boot": "mpb", "seq": seq, "ts": 1700000000000 + seq,
                                  "d": {"temp": 20 + seq}}))
        while True:
            msg = json.loads(await ws.recv())
            if msg["t"] == "ack" and msg["seq"] == seq:
                break
    print("ACKED", seq)
    while True:
        msg = json.loads(await ws.recv())
        if msg["t"] == "cmd":
            break
    await ws.send(json.dumps({"t": "res", "id": msg["id"], "ok": True, "v": {"led": msg["args"]["on"]}}))
    print("CMD", msg["name"])
    await ws.close()

asyncio.run(main(sys.argv[1]))
"""


def test_micropython_microws_client_as_device(micropython, tmp_path):
    script = tmp_path / "mp_device.py"
    script.write_text(DEVICE_SCRIPT)

    async def body():
        async with running_bridge(BridgeConfig(tokens={"T-mp": "mp-node"})) as srv, browser(srv) as b:
            proc = await asyncio.create_subprocess_exec(
                micropython,
                str(script),
                srv.url("/device", ws=True),
                env=dict(os.environ, MICROPYPATH=str(ROOT / "lib") + ":.frozen"),  # .frozen: asyncio & co
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            try:
                await b.expect(dev_event("mp-node", True))
                for seq in (1, 2, 3):
                    assert (await b.expect(is_type("tm", seq=seq)))["d"] == {"temp": 20 + seq}
                await b.send({"t": "cmd", "dev": "mp-node", "name": "led", "args": {"on": True}, "id": 1})
                res = await b.expect(is_type("res"))
                assert res == {"t": "res", "dev": "mp-node", "id": 1, "ok": True, "v": {"led": True}}
                await b.expect(dev_event("mp-node", False))  # it closed cleanly: offline
                out, _ = await asyncio.wait_for(proc.communicate(), WAIT)
                assert proc.returncode == 0, out.decode()
                assert b"ACKED 3" in out and b"CMD led" in out
            finally:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()

    run(body())
