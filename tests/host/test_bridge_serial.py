"""The serial bridge through a pty pair: the test plays a USB-serial board on the master
side; the bridge opens the slave path with pyserial like any /dev/ttyACM0."""

import asyncio
import json
import os
import tty

from bridge_support import TS, WAIT, BridgeProcess, browser, dev_event, is_type, run, running_bridge

from microws_host.bridge.config import BridgeConfig
from microws_host.bridge.serial_bridge import SerialBridge


class PtyBoard:
    """The board end of a pty pair: writes JSON lines, reads the bridge's lines."""

    def __init__(self):
        self.master, slave = os.openpty()
        tty.setraw(slave)  # no echo, no line editing: a plain byte pipe like USB CDC
        self.path = os.ttyname(slave)
        self._slave = slave
        self.lines = asyncio.Queue()
        self._buf = b""
        os.set_blocking(self.master, False)
        asyncio.get_running_loop().add_reader(self.master, self._readable)

    def _readable(self):
        try:
            data = os.read(self.master, 65536)
        except OSError:  # the bridge closed the slave side
            return
        self._buf += data
        while b"\n" in self._buf:
            line, self._buf = self._buf.split(b"\n", 1)
            self.lines.put_nowait(json.loads(line))

    def write(self, obj):
        data = obj if isinstance(obj, str) else json.dumps(obj)
        os.write(self.master, (data + "\n").encode())

    async def expect(self, match, timeout=WAIT):
        async with asyncio.timeout(timeout):
            while True:
                msg = await self.lines.get()
                if match(msg):
                    return msg

    def close(self):
        asyncio.get_running_loop().remove_reader(self.master)
        os.close(self.master)
        os.close(self._slave)


def hello_line(boot="sb-1"):
    return {
        "t": "hello",
        "id": "pico-usb",
        "board": "rp2040_pico",
        "fw": "0.1.0",
        "boot": boot,
        "sensors": {"temp": "C"},
        "interval": 1000,
    }


def test_serial_board_reaches_browser_and_takes_commands():
    async def body():
        board = PtyBoard()
        async with running_bridge() as srv, browser(srv) as b:
            serial_bridge = SerialBridge(srv.bridge, [board.path], reopen_delay=0.1)
            serial_bridge.check_ports()
            await serial_bridge.start()
            await serial_bridge.wait_open()
            try:
                board.write("MicroPython v1.24 on rp2040; boot log, not JSON")  # ignored
                board.write(hello_line())
                info = (await b.expect(dev_event("pico-usb", True)))["dev"]
                assert info["board"] == "rp2040_pico" and info["transport"] == "serial"
                board.write({"t": "tm", "boot": "sb-1", "seq": 1, "ts": TS, "d": {"temp": 25.5}})
                assert await board.expect(is_type("ack")) == {"t": "ack", "boot": "sb-1", "seq": 1}
                tm = await b.expect(is_type("tm"))
                assert tm["dev"] == "pico-usb" and tm["d"] == {"temp": 25.5}
                # A resent line is not stored twice.
                board.write({"t": "tm", "boot": "sb-1", "b": [{"seq": 1, "ts": TS, "d": {"temp": 25.5}}]})
                await board.expect(is_type("ack", seq=1))
                assert srv.bridge.counts["duplicates"] == 1
                board.write("{broken json")
                assert (await board.expect(is_type("err")))["msg"] == "malformed JSON"
                # Commands from the browser come out of the serial port as lines.
                await b.send({"t": "cmd", "dev": "pico-usb", "name": "led", "args": {"on": True}, "id": "x1"})
                cmd = await board.expect(is_type("cmd"))
                assert cmd["name"] == "led" and cmd["args"] == {"on": True}
                board.write({"t": "res", "id": cmd["id"], "ok": True, "v": {"led": True}})
                res = await b.expect(is_type("res"))
                assert res == {"t": "res", "dev": "pico-usb", "id": "x1", "ok": True, "v": {"led": True}}
            finally:
                await serial_bridge.close()
                board.close()
            # The port went away with the bridge's reader: the board is offline.
            await b.expect(dev_event("pico-usb", False))

    run(body())


def test_silent_serial_board_goes_offline():
    async def body():
        board = PtyBoard()
        async with running_bridge(BridgeConfig(keepalive=0.3)) as srv, browser(srv) as b:
            serial_bridge = SerialBridge(srv.bridge, [board.path], reopen_delay=0.1)
            await serial_bridge.start()
            await serial_bridge.wait_open()
            try:
                line = hello_line()
                line["interval"] = 50  # silence limit is max(keepalive, 3 x interval) = 0.3 s
                board.write(line)
                await b.expect(dev_event("pico-usb", True))
                await b.expect(dev_event("pico-usb", False), timeout=3)
                board.write(hello_line())  # back after a fresh hello
                await b.expect(dev_event("pico-usb", True))
            finally:
                await serial_bridge.close()
                board.close()

    run(body())


def test_cli_serial_flag_bridges_a_pty_board():
    async def body():
        board = PtyBoard()
        try:
            with BridgeProcess("--serial", board.path) as proc:
                async with browser(proc.url("/ws", ws=True)) as b:
                    board.write(hello_line())
                    await b.expect(dev_event("pico-usb", True))
                    board.write({"t": "tm", "boot": "sb-1", "seq": 1, "ts": TS, "d": {"temp": 30}})
                    await board.expect(is_type("ack", seq=1))
                    assert (await b.expect(is_type("tm")))["d"] == {"temp": 30}
        finally:
            board.close()

    run(body())
