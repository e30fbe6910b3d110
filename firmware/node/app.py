"""The node: samples sensors into the outbox and runs the link (and the local page).

``main(board)`` is what main.py calls. ``Node`` holds the state every part shares; it
can be built without any network (tests drive it directly).
"""

import asyncio
import gc
import os
import sys

from node import FIRMWARE_VERSION, clock
from node.outbox import Outbox
from node.sensors import Sensors

_REBOOT_FLUSH_MS = 5000  # how long a commanded reboot waits for acks of pending readings


def _unique_id():
    try:
        import machine

        return "".join("%02x" % b for b in machine.unique_id())
    except (ImportError, AttributeError):  # the unix port has no unique id
        return None


class Node:
    """Everything the node knows: config, board, sensors, outbox, boot id, LED, interval."""

    def __init__(self, cfg, board):
        self.cfg = cfg
        self.board = board
        board.setup(cfg)
        self.sensors = Sensors(board, cfg["sensors"])
        self.outbox = Outbox(cfg["outbox"], len(self.sensors.names))
        self.boot = "".join("%02x" % b for b in os.urandom(4))
        self.id = cfg["id"] or "%s-%s" % (board.NAME, _unique_id() or cfg["seed"])
        self.interval_ms = cfg["interval_ms"]
        self.led_on = False
        self.start_ticks = clock.ticks_ms()
        self.last_sample_ticks = self.start_ticks
        self.elapsed_ms = 0  # simulated time since boot, advanced one interval per reading
        self.sampling = True
        self.net = None  # the node.net module once Wi-Fi is configured (not loaded otherwise)
        self.watchdog = None  # the node.watchdog module when a hardware watchdog runs
        self.link = None  # node.link.Link when a bridge is configured
        self.local = None  # node.local.LocalServer when local_port is set
        self._interval_changed = asyncio.Event()

    # -- sampling -------------------------------------------------------------

    def sample(self):
        """Take one reading into the outbox and tell whoever streams it. Returns its seq."""
        values = self.sensors.read(self.elapsed_ms)
        speedup = self.board.SPEEDUP
        ts = clock.epoch_ms() + clock.ticks_diff(clock.ticks_ms(), self.start_ticks) * (speedup - 1)
        seq = self.outbox.add(ts, values)
        self.elapsed_ms += self.interval_ms
        self.last_sample_ticks = clock.ticks_ms()
        if self.link is not None:
            self.link.wake()
        if self.local is not None:
            self.local.publish(seq, ts, values)
        heap_log = self.cfg["heap_log"]
        if heap_log and seq % heap_log == 0:
            gc.collect()
            print("microws-node: heap seq=%d alloc=%d free=%d outbox=%d dropped=%d" % (
                seq, gc.mem_alloc(), gc.mem_free(), len(self.outbox), self.outbox.dropped))
        return seq

    def real_interval_ms(self):
        """The sampling interval in real time (shorter when the simulated clock is sped up)."""
        return max(1, self.interval_ms // self.board.SPEEDUP)

    async def sampler(self):
        """Sample every interval on a fixed schedule (no drift from the time a sample takes)."""
        due = clock.ticks_ms()
        while True:
            wait = clock.ticks_diff(due, clock.ticks_ms())
            if wait > 0:
                self._interval_changed.clear()
                try:
                    await clock.wait_for_ms(self._interval_changed.wait(), wait)
                    due = clock.ticks_ms()  # new interval: start its schedule now
                    continue
                except asyncio.TimeoutError:
                    pass
            elif wait < -self.real_interval_ms():
                due = clock.ticks_ms()  # fell far behind (paused): do not burst
            if self.sampling:
                self.sample()
            due = clock.ticks_add(due, self.real_interval_ms())

    # -- state the commands change ------------------------------------------

    def set_led(self, on):
        """Switch the board's LED."""
        self.led_on = on
        self.board.led(on)

    def set_interval(self, ms):
        """Change the sampling interval (ms of simulated time); takes effect at once."""
        self.interval_ms = ms
        self._interval_changed.set()

    def uptime_ms(self):
        """Simulated ms since boot (real ms on real boards)."""
        return clock.ticks_diff(clock.ticks_ms(), self.start_ticks) * self.board.SPEEDUP

    def info(self):
        """What the `info` command reports."""
        ob = self.outbox
        mem_free = getattr(gc, "mem_free", None)  # MicroPython only
        mem_alloc = getattr(gc, "mem_alloc", None)
        return {
            "id": self.id,
            "board": self.board.NAME,
            "fw": FIRMWARE_VERSION,
            "boot": self.boot,
            "uptime_s": self.uptime_ms() // 1000,
            "heap_free": mem_free() if mem_free else None,
            "heap_alloc": mem_alloc() if mem_alloc else None,
            "rssi": self.net.rssi() if self.net else None,
            "outbox": len(ob),
            "outbox_capacity": ob.capacity,
            "dropped": ob.dropped,
            "seq": ob.next_seq - 1,
            "interval_ms": self.interval_ms,
            "led": self.led_on,
        }

    def status(self, event):
        """One status line: what happened and where the readings stand."""
        ob = self.outbox
        return "microws-node: %s id=%s boot=%s seq=%d acked=%d dropped=%d" % (
            event, self.id, self.boot, ob.next_seq - 1, ob.first - 1, ob.dropped)

    # -- reboot ---------------------------------------------------------------

    def request_reboot(self):
        """Reboot soon (after the `res` went out and pending readings are acked)."""
        asyncio.create_task(self._reboot())

    async def _reboot(self):
        self.sampling = False  # nothing new, so the outbox can drain
        waited = 0
        while len(self.outbox) and waited < _REBOOT_FLUSH_MS:
            await clock.sleep_ms(50)
            waited += 50
        await clock.sleep_ms(100)  # let the `res` leave even with an empty outbox
        print(self.status("reboot"))
        self.board.reset()

    # -- running --------------------------------------------------------------

    async def _feed_watchdog(self, watchdog):
        # Feed only while sampling makes progress: a stuck node gets reset.
        watchdog.take_over()
        while True:
            late = clock.ticks_diff(clock.ticks_ms(), self.last_sample_ticks)
            if late < 2 * self.real_interval_ms() + watchdog.timeout_ms or not self.sampling:
                watchdog.feed()
            await clock.sleep_ms(watchdog.timeout_ms // 4)

    async def run(self):
        """Run until cancelled: Wi-Fi, sampler, link, local server, watchdog."""
        cfg = self.cfg
        # Optional parts are imported only when used: every module costs heap.
        if cfg["watchdog_s"] and self.board.WATCHDOG_MAX_MS:
            from node import watchdog

            if watchdog.start(self.board, cfg["watchdog_s"]):
                self.watchdog = watchdog
                asyncio.create_task(self._feed_watchdog(watchdog))
        if cfg["wifi_ssid"]:
            from node import net

            self.net = net
            await net.connect(cfg["wifi_ssid"], cfg["wifi_password"], self.board)
            net.sync_time()
        if cfg["local_port"]:
            from node.local import LocalServer

            self.local = LocalServer(self, cfg["local_port"])
            await self.local.start()
        tasks = [asyncio.create_task(self.sampler())]
        if cfg["bridge"]:
            from node.link import Link

            self.link = Link(self)
            tasks.append(asyncio.create_task(self.link.run()))
        await asyncio.gather(*tasks)


def _load_config(path, warnings):
    # config's schema and validator are needed once: drop the module afterwards (heap).
    from node import config

    try:
        return config.load(path, warn=warnings.append), None
    except config.ConfigError as e:
        return None, e
    finally:
        import node as package

        del config
        sys.modules.pop("node.config", None)
        if hasattr(package, "config"):
            delattr(package, "config")
        gc.collect()


def main(board, path="config.json"):
    """Entry point for main.py: load config, print the status line, run forever."""
    warnings = []
    cfg, error = _load_config(path, warnings)
    if cfg and cfg["bridge"]:
        # Load the link (and the WebSocket library, the biggest code) before any
        # buffer is allocated: long-lived blocks first keeps the heap unfragmented.
        from node import link  # noqa: F401

        gc.collect()
    try:
        if error is not None:
            raise error
        node = Node(cfg, board)
    except ValueError as e:  # ConfigError, or a sensor the board does not have
        print("microws-node: error config: %s" % e)
        return
    # The first `microws-node:` line is what host tools wait for: keep it first.
    print("microws-node: up id=%s board=%s fw=%s boot=%s bridge=%s local_port=%d" % (
        node.id, board.NAME, FIRMWARE_VERSION, node.boot, cfg["bridge"] or "-", cfg["local_port"]))
    for line in warnings:
        print(line)
    try:
        asyncio.run(node.run())
    except KeyboardInterrupt:
        print(node.status("stop"))
        if node.watchdog is not None:  # the REPL must not be reset under the user
            node.watchdog.keep_fed(board, cfg["watchdog_s"])
    finally:
        if sys.implementation.name == "micropython":
            asyncio.new_event_loop()  # a clean loop for whatever runs next at the REPL
