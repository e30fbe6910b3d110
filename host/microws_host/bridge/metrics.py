"""Counters and gauges of the bridge, rendered as Prometheus text (``/metrics``)."""

from collections import defaultdict

# name -> (type, help). Every metric the bridge exports is declared here, so /metrics
# lists them all (at 0) before anything has happened.
DECLARED = {
    "microws_device_connections": ("gauge", "Devices connected to this bridge (WebSocket and serial)."),
    "microws_browser_connections": ("gauge", "Browsers connected to this bridge, by transport."),
    "microws_devices_known": ("gauge", "Devices in the registry (any bridge, online or not)."),
    "microws_messages_in_total": ("counter", "Messages received, by peer kind."),
    "microws_messages_out_total": ("counter", "Messages sent, by peer kind."),
    "microws_readings_total": ("counter", "Readings stored (after dedupe)."),
    "microws_readings_duplicate_total": ("counter", "Readings dropped as repeats of (device, boot, seq)."),
    "microws_device_dropped_total": ("counter", "Readings the devices reported lost to outbox overflow."),
    "microws_browser_dropped_total": ("counter", "Events dropped (oldest first) from full browser queues."),
    "microws_bad_messages_total": ("counter", "Messages rejected with an err reply, by reason."),
    "microws_rate_limited_total": ("counter", "Device messages dropped by the per-device rate limit."),
    "microws_rejected_total": ("counter", "Connections refused before the upgrade, by reason."),
    "microws_commands_total": ("counter", "Commands sent to devices, by outcome."),
    "microws_browser_queue_max": ("gauge", "Longest browser queue right now (events waiting)."),
    "microws_ingest_lag_seconds": ("gauge", "Bridge receive time minus device timestamp, last reading."),
}


class Metrics:
    """A tiny in-process metrics store: labelled counters and gauges."""

    def __init__(self):
        self._values = defaultdict(float)  # (name, labels tuple) -> value

    def inc(self, name, amount=1, **labels):
        """Add ``amount`` to a counter."""
        self._values[(name, tuple(sorted(labels.items())))] += amount

    def set(self, name, value, **labels):
        """Set a gauge."""
        self._values[(name, tuple(sorted(labels.items())))] = value

    def get(self, name, **labels):
        """Current value of one series (0 when never touched)."""
        return self._values.get((name, tuple(sorted(labels.items()))), 0)

    def total(self, name):
        """Sum of every series of a metric."""
        return sum(v for (n, _), v in self._values.items() if n == name)

    def render(self):
        """The Prometheus text exposition format (version 0.0.4)."""
        by_name = defaultdict(list)
        for (name, labels), value in self._values.items():
            by_name[name].append((labels, value))
        lines = []
        for name, (kind, help_text) in DECLARED.items():
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} {kind}")
            series = by_name.pop(name, None) or [((), 0)]
            for labels, value in sorted(series):
                lines.append(f"{name}{_labels(labels)} {_number(value)}")
        for name, series in sorted(by_name.items()):  # undeclared: still exported, untyped
            for labels, value in sorted(series):
                lines.append(f"{name}{_labels(labels)} {_number(value)}")
        return "\n".join(lines) + "\n"


def _labels(labels):
    if not labels:
        return ""
    body = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
    return "{" + body + "}"


def _number(value):
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _escape(value):
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
