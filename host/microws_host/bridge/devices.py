"""The device registry: what the bridge knows about every device.

It is a view built from hub events (``dev``, ``tm``), so every bridge sharing a hub
holds the same devices, latest values and dedupe watermarks, whichever bridge the
device happens to be connected to.
"""

import time
from collections import deque


def now_ms():
    """Unix epoch milliseconds (the protocol's time unit)."""
    return int(time.time() * 1000)


class DeviceRecord:
    """One device: metadata, per-boot seq watermarks, latest values, history rings."""

    __slots__ = (
        "board",
        "boot",
        "dropped",
        "fw",
        "history",
        "history_len",
        "id",
        "interval",
        "last_seen",
        "latest",
        "online",
        "sensors",
        "watermarks",
    )

    # How many boots' watermarks are remembered: a late resend from the previous boot
    # must not look new, but the set may not grow without bound either.
    BOOTS_REMEMBERED = 4

    def __init__(self, device_id, history_len):
        self.id = device_id
        self.board = ""
        self.fw = ""
        self.sensors = {}  # name -> unit
        self.interval = None
        self.online = False
        self.last_seen = 0
        self.dropped = 0
        self.boot = None
        self.watermarks = {}  # boot -> highest seq stored
        self.latest = {}  # sensor -> (ts, value)
        self.history = {}  # sensor -> deque[(ts, value)]
        self.history_len = history_len

    def info(self):
        """The `dev` object of the wire protocol."""
        return {
            "id": self.id,
            "board": self.board,
            "online": self.online,
            "last_seen": self.last_seen,
            "sensors": self.sensors,
            "fw": self.fw,
            "dropped": self.dropped,
            "interval": self.interval,
        }

    def summary(self):
        """The /api/devices entry: `dev` info plus latest values with units."""
        out = self.info()
        out["latest"] = {
            name: {"value": value, "unit": self.sensors.get(name, ""), "ts": ts}
            for name, (ts, value) in self.latest.items()
        }
        return out

    def watermark(self, boot):
        """Highest seq stored for ``boot`` (0 when none): the cumulative ack."""
        return self.watermarks.get(boot, 0)

    def is_duplicate(self, boot, seq):
        """True when (boot, seq) was stored already.

        Readings of one boot arrive in seq order over one connection (TCP, or one serial
        line) and a reconnect resends the outbox oldest first, so a high-water mark per
        boot is exact and costs no memory per reading.
        """
        return seq <= self.watermarks.get(boot, 0)

    def store(self, boot, seq, ts, values):
        """Record one reading; returns False (and stores nothing) when it is a repeat."""
        if seq <= self.watermarks.get(boot, 0):
            return False
        if boot not in self.watermarks and len(self.watermarks) >= self.BOOTS_REMEMBERED:
            self.watermarks.pop(next(iter(self.watermarks)))
        self.watermarks[boot] = seq
        for name, value in values.items():
            ring = self.history.get(name)
            if ring is None:
                ring = self.history[name] = deque(maxlen=self.history_len)
            ring.append((ts, value))
            self.latest[name] = (ts, value)
        return True

    def readings(self, sensor=None, since=None):
        """History as {sensor: [[ts, value], ...]}, optionally one sensor and ts > since."""
        names = [sensor] if sensor is not None else list(self.history)
        out = {}
        for name in names:
            ring = self.history.get(name, ())
            out[name] = [[ts, v] for ts, v in ring if since is None or ts > since]
        return out


class DeviceRegistry:
    """All devices by id, bounded by ``max_devices``."""

    def __init__(self, history_len=1000, max_devices=1000, max_sensors=32):
        self.history_len = history_len
        self.max_devices = max_devices
        self.max_sensors = max_sensors
        self._devices = {}

    def __len__(self):
        return len(self._devices)

    def __iter__(self):
        return iter(self._devices.values())

    def get(self, device_id):
        """The record of ``device_id`` or None."""
        return self._devices.get(device_id)

    def has_room_for(self, device_id):
        """Whether ``device_id`` is known or one more device fits."""
        return device_id in self._devices or len(self._devices) < self.max_devices

    def get_or_create(self, device_id):
        """The record of ``device_id``, created when new (None when the registry is full)."""
        rec = self._devices.get(device_id)
        if rec is None:
            if len(self._devices) >= self.max_devices:
                return None
            rec = self._devices[device_id] = DeviceRecord(device_id, self.history_len)
        return rec

    def apply(self, event):
        """Update the view from one hub event (`dev` or `tm`); returns False for a repeat."""
        kind = event.get("t")
        if kind == "tm":
            rec = self.get_or_create(event["dev"])
            if rec is None:
                return False
            if not rec.store(event.get("boot"), event["seq"], event["ts"], event["d"]):
                return False
            rec.last_seen = max(rec.last_seen, event.get("rx", event["ts"]))
            return True
        if kind == "dev":
            info = event["dev"]
            rec = self.get_or_create(info["id"])
            if rec is None:
                return False
            rec.board = info.get("board", rec.board)
            rec.fw = info.get("fw", rec.fw)
            rec.sensors = dict(info.get("sensors") or rec.sensors)
            rec.interval = info.get("interval", rec.interval)
            rec.online = bool(info.get("online"))
            rec.last_seen = max(rec.last_seen, info.get("last_seen") or 0)
            rec.dropped = info.get("dropped", rec.dropped)
            if "boot" in info:
                rec.boot = info["boot"]
            return True
        return True
