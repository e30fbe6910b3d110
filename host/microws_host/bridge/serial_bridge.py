"""Boards on USB serial: the same JSON messages, one a line, both ways.

A board with no Wi-Fi (an RP2040 Pico on USB) prints ``hello``/``tm``/``res`` as JSON
lines on its serial port; the bridge writes ``ack``/``cmd``/``cfg``/``err`` lines
back. To the browsers such a board is like any other device. Lines that do not start
with ``{`` are the board's own prints and are ignored (counted), never answered: the
answer would land in the board's REPL.

A port that vanishes (USB unplugged) marks its device offline and is reopened every
second until it is back. A board that stays silent longer than
``max(keepalive, 3 x its interval)`` is marked offline too.
"""

import asyncio
import contextlib
import json
import logging
import os
import threading

log = logging.getLogger("microws.bridge.serial")
MAX_LINE = 16 * 1024


class SerialLink:
    """Writes a device's outgoing messages as lines to its serial port."""

    def __init__(self, port):
        self.port = port
        self._lock = threading.Lock()

    async def send_text(self, text):
        data = (text + "\n").encode()
        await asyncio.get_running_loop().run_in_executor(None, self._write, data)

    def _write(self, data):
        with self._lock:
            self.port.write(data)
            self.port.flush()

    async def close(self, code, reason):
        # A serial line cannot be hung up; say why and ignore the board until it says hello again.
        await self.send_text(json.dumps({"t": "err", "msg": "closed: " + reason}))


def open_port(name, baudrate=115200):
    """Open a serial port (a device path or a pyserial URL) for reading lines."""
    import serial

    return serial.serial_for_url(name, baudrate=baudrate, timeout=0.2, exclusive=False)


class SerialBridge:
    """Reads JSON lines from serial ports and feeds them to the bridge as devices."""

    def __init__(self, bridge, port_names, baudrate=115200, reopen_delay=1.0):
        self.bridge = bridge
        self.port_names = list(port_names)
        self.baudrate = baudrate
        self.reopen_delay = reopen_delay
        self._tasks = []
        self._stop = threading.Event()
        self._open = {}  # port name -> asyncio.Event, set while the port is open

    async def wait_open(self, timeout=5.0):
        """Wait until every port is open (bytes a board sends before that are lost:
        opening a port flushes its input)."""
        async with asyncio.timeout(timeout):
            for name in self.port_names:
                await self._open[name].wait()

    def check_ports(self):
        """Open and close every port once; raise OSError naming the first that fails."""
        for name in self.port_names:
            try:
                open_port(name, self.baudrate).close()
            except (OSError, ValueError) as e:  # pyserial: SerialException (an OSError) or ValueError
                raise OSError(f"cannot open serial port {name}: {_reason(e)}") from None

    async def start(self):
        """Start one reader per port."""
        self._open = {name: asyncio.Event() for name in self.port_names}
        self._tasks = [asyncio.ensure_future(self._serve(name)) for name in self.port_names]

    async def close(self):
        """Stop the readers (their threads notice within the read timeout)."""
        self._stop.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, name):
        from .core import DeviceSession

        loop = asyncio.get_running_loop()
        while not self._stop.is_set():
            try:
                port = await loop.run_in_executor(None, open_port, name, self.baudrate)
            except (OSError, ValueError) as e:
                log.warning("serial %s: %s; retrying", name, _reason(e))
                await asyncio.sleep(self.reopen_delay)
                continue
            self._open[name].set()
            session = DeviceSession(self.bridge, SerialLink(port), "serial")
            lines = asyncio.Queue(maxsize=1000)
            reader = threading.Thread(
                target=self._read_lines, args=(port, lines, loop), daemon=True, name="serial " + name
            )
            reader.start()
            try:
                await self._pump(session, lines)
            finally:
                self._open[name].clear()
                session.closed()
                self._stop_reader(port)
            await asyncio.sleep(self.reopen_delay)

    async def _pump(self, session, lines):
        bridge = self.bridge
        while True:
            rec = bridge.registry.get(session.device_id) if session.device_id else None
            interval = (rec.interval or 0) / 1000.0 if rec else 0
            silence = max(bridge.config.keepalive, 3 * interval)
            try:
                line = await asyncio.wait_for(lines.get(), silence if session.device_id else None)
            except TimeoutError:
                log.info("serial device %s silent for %.1fs: offline", session.device_id, silence)
                session.closed()
                session.device_id = None  # a fresh hello brings it back
                continue
            if line is None:  # the port failed
                return
            if not line.startswith("{"):
                bridge.metrics.inc("microws_serial_noise_lines_total")
                continue
            await session.handle_text(line)

    def _read_lines(self, port, lines, loop):
        # pyserial is blocking; one thread per port reads and hands whole lines over.
        buf = b""
        try:
            while not self._stop.is_set():
                chunk = port.read(port.in_waiting or 1)
                if not chunk:
                    continue
                buf += chunk
                while b"\n" in buf:
                    raw, buf = buf.split(b"\n", 1)
                    text = raw.decode("utf-8", "replace").strip()
                    if text:
                        asyncio.run_coroutine_threadsafe(lines.put(text), loop).result()
                if len(buf) > MAX_LINE:
                    buf = b""  # a line without end: drop it rather than grow
        except (OSError, ValueError, TypeError) as e:  # pyserial raises TypeError on a port closed under it
            if not self._stop.is_set():
                log.warning("serial %s: %s", port.name, _reason(e))
        finally:
            if not loop.is_closed():
                try:
                    asyncio.run_coroutine_threadsafe(lines.put(None), loop)
                except RuntimeError:
                    pass

    @staticmethod
    def _stop_reader(port):
        with contextlib.suppress(OSError, ValueError):
            port.close()


def _reason(e):
    # pyserial wraps the OS error in text that repeats the port name; the errno says it all.
    if isinstance(e, OSError) and isinstance(e.errno, int):
        return os.strerror(e.errno)
    return (str(e) or type(e).__name__).splitlines()[0]
