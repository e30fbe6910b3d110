"""The bridge: device sessions in, browser subscribers out, commands back.

Transport-free: the aiohttp routes (``app``) and the serial reader
(``serial_bridge``) hand text to a ``DeviceSession`` and register ``Subscriber``s;
everything between them goes through the hub, so one bridge or many behave alike.
"""

import asyncio
import itertools
import json
import struct
import time
from collections import deque

from .devices import DeviceRegistry, now_ms
from .hub import LocalHub
from .metrics import Metrics

MAX_ID_LENGTH = 64
# A device clock this far off is not believed: boards without NTP count from 2000
# (MicroPython's epoch) or from power-on; the bridge's receive time stands in.
PLAUSIBLE_TS_MIN = 1_000_000_000_000  # 2001-09
PLAUSIBLE_TS_AHEAD_MS = 24 * 3600 * 1000
POLL_MAX_EVENTS = 1000


def dumps(obj):
    """Compact JSON, the form every message goes out in."""
    return json.dumps(obj, separators=(",", ":"))


class Outgoing:
    """One event on its way to many browsers, encoded once per transport, not per browser."""

    __slots__ = ("_sse", "_ws", "text")

    def __init__(self, text):
        self.text = text
        self._ws = self._sse = None

    def ws_frame(self):
        """The event as an unmasked WebSocket text frame (server to client)."""
        if self._ws is None:
            payload = self.text.encode()
            n = len(payload)
            if n < 126:
                header = bytes((0x81, n))
            elif n < 65536:
                header = struct.pack("!BBH", 0x81, 126, n)
            else:
                header = struct.pack("!BBQ", 0x81, 127, n)
            self._ws = header + payload
        return self._ws

    def sse_bytes(self):
        """The event as a Server-Sent Events record (comments, starting ':', as they are)."""
        if self._sse is None:
            line = self.text if self.text.startswith(":") else "data: " + self.text
            self._sse = (line + "\n\n").encode()
        return self._sse


class Subscriber:
    """One browser connection: a bounded queue of event texts and its writer.

    A browser that reads slowly loses the oldest events (counted) and so always gets
    the latest values; the bridge and the other browsers never wait for it.
    """

    def __init__(self, kind, send_batch, maxlen, devices=None):
        self.kind = kind  # "ws" or "sse"
        self.devices = devices  # None: every device; else a set of ids
        self.queue = deque()
        self.maxlen = maxlen
        self.dropped = 0
        self.sent = 0
        self._send_batch = send_batch  # async (list of texts) -> None, one write for them all
        self._wake = asyncio.Event()
        self.stopped = False
        self._idle = True

    def stop(self):
        """End ``run`` after the current write (the bridge is shutting down)."""
        self.stopped = True
        self._idle = False
        self._wake.set()

    def wants(self, device_id):
        """Whether events of ``device_id`` go to this browser."""
        return self.devices is None or device_id in self.devices

    def push(self, item):
        """Queue one event (text or ``Outgoing``); never blocks, drops the oldest when full."""
        if type(item) is str:
            item = Outgoing(item)
        queue = self.queue
        if len(queue) >= self.maxlen:
            queue.popleft()
            self.dropped += 1
        queue.append(item)
        if self._idle:  # only the first event after a pause needs to wake the writer
            self._idle = False
            self._wake.set()

    async def run(self, idle_text=None, idle_seconds=15.0):
        """Write queued texts until the connection fails; ``idle_text`` keeps it warm.

        Everything queued when the writer wakes goes out in one write: under load that
        is one system call for many events instead of one each (the main cost of fan-out).
        """
        queue, send_batch, wake = self.queue, self._send_batch, self._wake
        while not self.stopped:
            if not queue:
                wake.clear()
                self._idle = True
                try:
                    await asyncio.wait_for(wake.wait(), idle_seconds if idle_text else None)
                except TimeoutError:
                    self._idle = False
                    await send_batch([Outgoing(idle_text)])
                    continue
            batch = list(queue)
            queue.clear()
            await send_batch(batch)
            self.sent += len(batch)


class DeviceSession:
    """The protocol with one connected device, whatever carries its text.

    ``link`` has ``async send_text(text)`` and ``async close(code, reason)``.
    ``token_device`` is the id the device's token names (None: any id).
    """

    def __init__(self, bridge, link, transport, token_device=None):
        self.bridge = bridge
        self.link = link
        self.transport = transport  # "ws" or "serial"
        self.token_device = token_device
        self.device_id = None
        self.boot = None
        self.closing = False
        cfg = bridge.config
        self._tokens = float(cfg.device_burst)
        self._last_refill = time.monotonic()
        self._last_rate_err = 0.0

    async def send(self, obj):
        """Send one protocol message to the device."""
        await self.link.send_text(dumps(obj))
        self.bridge.counts["device_out"] += 1

    async def reject(self, msg, reason):
        """Tell the device its last message was refused, and count why."""
        self.bridge.metrics.inc("microws_bad_messages_total", peer="device", reason=reason)
        await self.send({"t": "err", "msg": msg})

    def _rate_ok(self):
        cfg = self.bridge.config
        now = time.monotonic()
        self._tokens = min(cfg.device_burst, self._tokens + (now - self._last_refill) * cfg.device_rate)
        self._last_refill = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False

    async def handle_text(self, text):
        """Handle one message from the device."""
        bridge = self.bridge
        bridge.counts["device_in"] += 1
        if not self._rate_ok():
            bridge.metrics.inc("microws_rate_limited_total")
            now = time.monotonic()
            if now - self._last_rate_err >= 1.0:  # one err a second, not one per message
                self._last_rate_err = now
                await self.send({"t": "err", "msg": "rate limit: message dropped"})
            return
        try:
            msg = json.loads(text)
        except ValueError:
            return await self.reject("malformed JSON", "json")
        if not isinstance(msg, dict):
            return await self.reject("a message must be a JSON object", "json")
        kind = msg.get("t")
        if kind == "hello":
            return await self._hello(msg)
        if self.device_id is None:
            return await self.reject("send hello first", "order")
        if kind == "tm":
            return await self._telemetry(msg)
        if kind == "res":
            return await self._result(msg)
        return await self.reject(f"unknown message type {kind!r}", "type")

    async def _hello(self, msg):
        bridge = self.bridge
        device_id = msg.get("id")
        if not isinstance(device_id, str) or not 0 < len(device_id) <= MAX_ID_LENGTH:
            return await self.reject(f"hello needs an id (text, 1-{MAX_ID_LENGTH} chars)", "field")
        if self.device_id is not None and device_id != self.device_id:
            return await self.reject("hello with another id on the same connection", "field")
        if self.token_device is not None and device_id != self.token_device:
            bridge.metrics.inc("microws_rejected_total", reason="id")
            self.closing = True
            return await self.link.close(1008, "id does not match token")
        if not bridge.registry.has_room_for(device_id):
            bridge.metrics.inc("microws_rejected_total", reason="devices")
            self.closing = True
            return await self.link.close(1013, "too many devices")
        sensors = msg.get("sensors")
        if not isinstance(sensors, dict):
            sensors = {}
        sensors = {str(k): str(v) for k, v in list(sensors.items())[: bridge.config.max_sensors]}
        self.device_id = device_id
        self.boot = msg.get("boot")
        await bridge.device_arrived(self)
        info = {
            "id": device_id,
            "board": str(msg.get("board", "")),
            "fw": str(msg.get("fw", "")),
            "sensors": sensors,
            "interval": msg.get("interval"),
            "boot": self.boot,
            "dropped": _count(msg.get("dropped")),
            "online": True,
            "last_seen": now_ms(),
            "transport": self.transport,
        }
        bridge.publish({"t": "dev", "dev": info})
        rec = bridge.registry.get(device_id)
        if rec is not None and rec.watermark(self.boot) > 0:
            # The device may still hold readings we stored: let it drop them now.
            await self.send({"t": "ack", "boot": self.boot, "seq": rec.watermark(self.boot)})
        if bridge.config.device_interval_ms:
            await self.send({"t": "cfg", "interval": bridge.config.device_interval_ms})

    async def _telemetry(self, msg):
        bridge = self.bridge
        rec = bridge.registry.get(self.device_id)
        if rec is None:  # registry full; hello already refused
            return
        boot = msg.get("boot", self.boot)
        batch = msg.get("b")
        readings = batch if isinstance(batch, list) else [msg]
        rx = now_ms()
        stored = 0
        for reading in readings:
            if not isinstance(reading, dict):
                return await self.reject("bad tm: a reading must be an object", "field")
            seq, values, ts = reading.get("seq"), reading.get("d"), reading.get("ts")
            if type(seq) is not int or seq < 1 or not isinstance(values, dict):
                return await self.reject("bad tm: needs seq (int >= 1) and d {sensor: value}", "field")
            if rec.is_duplicate(boot, seq):
                bridge.counts["duplicates"] += 1
                continue
            if not isinstance(ts, (int, float)) or not PLAUSIBLE_TS_MIN <= ts <= rx + PLAUSIBLE_TS_AHEAD_MS:
                ts = rx
            values = _clean_values(values, rec.sensors, bridge.config.max_sensors)
            bridge.publish(
                {"t": "tm", "dev": self.device_id, "boot": boot, "seq": seq, "ts": int(ts), "d": values, "rx": rx}
            )
            stored += 1
        if stored:
            bridge.last_lag = (rx - ts) / 1000.0
        dropped = msg.get("dropped")
        if isinstance(dropped, int) and dropped != rec.dropped:
            bridge.metrics.inc("microws_device_dropped_total", max(0, dropped - rec.dropped))
            info = rec.info()
            info["dropped"] = dropped
            info["last_seen"] = rx
            bridge.publish({"t": "dev", "dev": info})
        await self.send({"t": "ack", "boot": boot, "seq": rec.watermark(boot)})

    async def _result(self, msg):
        cmd_id = msg.get("id")
        if not isinstance(cmd_id, str):
            return await self.reject("res needs the id of its cmd", "field")
        event = {"t": "res", "dev": self.device_id, "id": cmd_id, "ok": bool(msg.get("ok"))}
        event["v" if event["ok"] else "err"] = msg.get("v") if event["ok"] else str(msg.get("err", "failed"))
        self.bridge.publish(event)

    def closed(self):
        """The connection is gone: the device goes offline (unless replaced)."""
        if self.device_id is not None:
            self.bridge.device_left(self)


def _count(value):
    return value if type(value) is int and value >= 0 else 0


def _clean_values(values, sensors, max_sensors):
    # Numbers, booleans, short text and null pass; anything else (nested objects,
    # huge strings) is left out rather than stored and fanned out to every browser.
    out = {}
    for name, value in values.items():
        if len(out) >= max_sensors:
            break
        if isinstance(value, (int, float, bool)) or value is None or (isinstance(value, str) and len(value) <= 64):
            out[str(name)[:MAX_ID_LENGTH]] = value
    return out


class Bridge:
    """One bridge process's state: registry, local devices, browsers, pending commands."""

    def __init__(self, config, hub=None, metrics=None):
        self.config = config
        self.metrics = metrics or Metrics()
        self.hub = hub or LocalHub()
        self.registry = DeviceRegistry(config.history, config.max_devices, config.max_sensors)
        self.local_devices = {}  # id -> DeviceSession connected to this process
        self.subscribers = set()
        self.poll_log = deque(maxlen=config.poll_log)  # (cursor, device id, text)
        self.cursor = 0
        self.poll_waiters = 0
        self._poll_wake = None
        self._pending = {}  # command id -> (reply, timer)
        self._command_ids = itertools.count(1)
        self._tasks = set()
        self.last_lag = 0.0
        # Hot-path counts are plain ints; /metrics copies them over when scraped.
        self.counts = {
            "device_in": 0,
            "device_out": 0,
            "browser_in": 0,
            "browser_out": 0,
            "browser_dropped": 0,
            "readings": 0,
            "duplicates": 0,
        }
        self.hub.attach(self.on_event, self.on_command)

    async def start(self):
        """Open the hub and learn the devices other bridges already hold."""
        await self.hub.start()
        for info in await self.hub.known_devices():
            self.registry.apply({"t": "dev", "dev": info})

    async def close(self):
        """Stop background work and the hub."""
        for task in list(self._tasks):
            task.cancel()
        for _, timer in self._pending.values():
            timer.cancel()
        await self.hub.close()

    def spawn(self, coro):
        """Run ``coro`` in the background, keeping a reference until it ends."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- devices ---------------------------------------------------------------

    def publish(self, event):
        """Hand an event to the hub (which hands it to ``on_event`` on every bridge)."""
        self.hub.publish(event)

    async def device_arrived(self, session):
        """A device said hello here; a previous connection of the same id is closed."""
        old = self.local_devices.get(session.device_id)
        self.local_devices[session.device_id] = session
        if old is not None and old is not session:
            old.closing = True
            self.spawn(old.link.close(1000, "replaced by a newer connection"))

    def device_left(self, session):
        """A device connection ended; mark the device offline unless it reconnected."""
        if self.local_devices.get(session.device_id) is not session:
            return
        del self.local_devices[session.device_id]
        rec = self.registry.get(session.device_id)
        if rec is None:
            return
        info = rec.info()
        info.update(online=False, last_seen=max(rec.last_seen, now_ms()))
        self.publish({"t": "dev", "dev": info})

    def on_command(self, device_id, message):
        """Hub entry: deliver a command to a device connected here (False if it is not)."""
        session = self.local_devices.get(device_id)
        if session is None or session.closing:
            return False
        self.spawn(session.send(message))
        return True

    # -- events ----------------------------------------------------------------

    def on_event(self, event):
        """Hub entry: store an event in the registry and fan it out to browsers."""
        kind = event.get("t")
        if kind == "res":
            pending = self._pending.pop(event.get("id"), None)
            if pending is not None:
                reply, timer = pending
                timer.cancel()
                self.metrics.inc("microws_commands_total", outcome="ok" if event.get("ok") else "error")
                reply({k: v for k, v in event.items() if k in ("ok", "v", "err")})
            return
        if not self.registry.apply(event):
            if kind == "tm":
                self.counts["duplicates"] += 1
            return
        if kind == "tm":
            self.counts["readings"] += 1
            device_id = event["dev"]
        else:
            device_id = event["dev"]["id"]
        text = dumps(event)
        out = Outgoing(text)
        self.cursor += 1
        self.poll_log.append((self.cursor, device_id, text))
        if self._poll_wake is not None:
            self._poll_wake.set()
            self._poll_wake = None
        for sub in self.subscribers:
            if sub.devices is None or device_id in sub.devices:
                sub.push(out)

    # -- browsers --------------------------------------------------------------

    def browsers_full(self):
        """Whether the browser limit is reached."""
        return len(self.subscribers) + self.poll_waiters >= self.config.max_browsers

    def snapshot_texts(self, devices=None):
        """`dev` events for every known device (or those in ``devices``)."""
        return [dumps({"t": "dev", "dev": rec.info()}) for rec in self.registry if devices is None or rec.id in devices]

    def add_subscriber(self, sub):
        """Start fanning events out to ``sub``; it first gets the current devices."""
        for text in self.snapshot_texts(sub.devices):
            sub.push(text)
        self.subscribers.add(sub)

    def remove_subscriber(self, sub):
        """Stop fanning events out to ``sub``."""
        self.subscribers.discard(sub)
        self.counts["browser_out"] += sub.sent
        self.counts["browser_dropped"] += sub.dropped
        sub.dropped = sub.sent = 0

    async def poll(self, since, wait, devices=None):
        """Long-poll: (cursor, event texts after ``since``, how many were missed)."""
        if since is None or since > self.cursor:  # first call, or the bridge restarted
            return self.cursor, self.snapshot_texts(devices), 0
        if since == self.cursor and wait > 0:
            self.poll_waiters += 1
            try:
                if self._poll_wake is None:
                    self._poll_wake = asyncio.Event()
                await asyncio.wait_for(self._poll_wake.wait(), wait)
            except TimeoutError:
                pass
            finally:
                self.poll_waiters -= 1
        log = self.poll_log
        missed = log[0][0] - since - 1 if log and since + 1 < log[0][0] else 0
        # Cursors in the log are consecutive, so the entries after ``since`` are its tail.
        start = max(0, len(log) - (self.cursor - since))
        texts = []
        cursor = since
        for entry_cursor, device_id, text in itertools.islice(log, start, None):
            cursor = entry_cursor
            if devices is None or device_id in devices:
                texts.append(text)
                if len(texts) >= POLL_MAX_EVENTS:
                    break
        return cursor, texts, missed

    # -- commands --------------------------------------------------------------

    def request_command(self, device_id, name, args, reply):
        """Send command ``name`` to a device; ``reply({"ok", "v"|"err"})`` is called once."""
        rec = self.registry.get(device_id)
        if rec is None or not rec.online:
            self.metrics.inc("microws_commands_total", outcome="offline")
            return reply(
                {"ok": False, "err": f"device {device_id} is offline" if rec else f"unknown device {device_id}"}
            )
        cmd_id = f"{self.hub.bridge_id}-{next(self._command_ids)}"
        timer = asyncio.get_running_loop().call_later(self.config.command_timeout, self._command_timed_out, cmd_id)
        self._pending[cmd_id] = (reply, timer)
        message = {"t": "cmd", "id": cmd_id, "name": name, "args": args}
        if not self.hub.send_command(device_id, message):
            timer.cancel()
            del self._pending[cmd_id]
            self.metrics.inc("microws_commands_total", outcome="offline")
            reply({"ok": False, "err": f"device {device_id} is not connected"})

    def _command_timed_out(self, cmd_id):
        pending = self._pending.pop(cmd_id, None)
        if pending is not None:
            self.metrics.inc("microws_commands_total", outcome="timeout")
            pending[0]({"ok": False, "err": f"no result within {self.config.command_timeout:g}s"})

    # -- metrics ---------------------------------------------------------------

    def render_metrics(self):
        """Prometheus text for /metrics, with the hot-path counts copied in."""
        m, c = self.metrics, self.counts
        m.set("microws_messages_in_total", c["device_in"], peer="device")
        m.set("microws_messages_in_total", c["browser_in"], peer="browser")
        m.set("microws_messages_out_total", c["device_out"], peer="device")
        # Closed subscribers' counts were folded into c; live ones are added here.
        m.set("microws_messages_out_total", c["browser_out"] + sum(s.sent for s in self.subscribers), peer="browser")
        m.set("microws_browser_dropped_total", c["browser_dropped"] + sum(s.dropped for s in self.subscribers))
        m.set("microws_readings_total", c["readings"])
        m.set("microws_readings_duplicate_total", c["duplicates"])
        m.set("microws_device_connections", len(self.local_devices))
        m.set("microws_devices_known", len(self.registry))
        for kind in ("ws", "sse"):
            m.set("microws_browser_connections", sum(1 for s in self.subscribers if s.kind == kind), kind=kind)
        m.set("microws_browser_connections", self.poll_waiters, kind="poll")
        m.set("microws_browser_queue_max", max((len(s.queue) for s in self.subscribers), default=0))
        m.set("microws_ingest_lag_seconds", self.last_lag)
        return m.render()
