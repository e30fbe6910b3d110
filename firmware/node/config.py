"""Load and validate ``config.json`` (the node's only settings file).

Every key has a default, so ``{}`` is a valid config for the unix port. Unknown keys
are reported (a typo should not silently fall back to a default) but do not stop the
node, so a newer host tool can write keys an older firmware does not know yet.
"""

import json

from node import INTERVAL_MAX_MS, INTERVAL_MIN_MS

# key: (default, type, minimum, maximum). None as minimum/maximum: unbounded or n/a.
SCHEMA = {
    "id": ("", str, None, 64),  # device id; "" -> derived from the board's unique id
    "token": ("", str, None, 256),  # per-device bearer token for the bridge
    "bridge": ("", str, None, 256),  # ws[s]://host:port/device; "" -> no bridge (local only)
    "wifi_ssid": ("", str, None, 32),
    "wifi_password": ("", str, None, 64),
    "interval_ms": (5000, int, INTERVAL_MIN_MS, INTERVAL_MAX_MS),  # sampling interval (simulated ms on unix)
    "sensors": (None, list, None, 16),  # subset of the board's sensors; None -> all
    "outbox": (256, int, 4, 8192),  # readings kept until the bridge acks them
    "batch": (10, int, 1, 200),  # most readings in one tm message
    "ping_interval": (20, int, 1, 3600),  # s between keepalive pings
    "ping_timeout": (20, int, 1, 3600),  # s without a pong before the link is dead
    "connect_timeout": (10, int, 1, 300),  # s for TCP + TLS + upgrade
    "backoff_min_ms": (500, int, 10, 600000),  # first reconnect delay
    "backoff_max_ms": (30000, int, 10, 3600000),  # reconnect delay cap
    "local_port": (0, int, 0, 65535),  # serve the local page + WebSocket; 0 -> off
    "watchdog_s": (30, int, 0, 3600),  # hardware watchdog on real boards; 0 -> off
    "seed": (1, int, None, None),  # unix profile: simulated sensors' seed
    "speedup": (1, int, 1, 10000),  # unix profile: simulated clock runs this much faster
    "heap_log": (0, int, 0, 1000000),  # print a heap line every N readings; 0 -> off
}


class ConfigError(ValueError):
    """config.json is missing a required value or has a wrong one (one-line message)."""


def defaults():
    """A config dict holding every default."""
    return {key: spec[0] for key, spec in SCHEMA.items()}


def validate(raw, warn=print):
    """Return a complete config from ``raw`` (a dict), raising ConfigError on bad values."""
    if not isinstance(raw, dict):
        raise ConfigError("config must be a JSON object")
    cfg = defaults()
    for key, value in raw.items():
        spec = SCHEMA.get(key)
        if spec is None:
            warn("microws-node: config: unknown key %r ignored" % key)
            continue
        default, kind, low, high = spec
        if value is None:
            if default is None:  # null where null means "the default" (sensors)
                continue
            raise ConfigError("%s must be %s" % (key, kind.__name__))
        # bool is an int subclass; true/false in an int field is almost surely a mistake
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ConfigError("%s must be %s" % (key, kind.__name__))
        size = len(value) if kind in (str, list) else value
        if low is not None and size < low:
            raise ConfigError("%s must be >= %d" % (key, low))
        if high is not None and size > high:
            raise ConfigError("%s must be <= %d%s" % (key, high, " long" if kind in (str, list) else ""))
        cfg[key] = value
    url = cfg["bridge"]
    if url and not (url.startswith("ws://") or url.startswith("wss://")):
        raise ConfigError("bridge must start with ws:// or wss://")
    if cfg["sensors"] is not None:
        for name in cfg["sensors"]:
            if not isinstance(name, str):
                raise ConfigError("sensors must be a list of names")
    if cfg["backoff_max_ms"] < cfg["backoff_min_ms"]:
        raise ConfigError("backoff_max_ms must be >= backoff_min_ms")
    return cfg


def load(path="config.json", warn=print):
    """Read and validate ``path``; a missing file means all defaults."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        warn("microws-node: config: %s not found, using defaults" % path)
        return defaults()
    try:
        raw = json.loads(text)
    except ValueError:
        raise ConfigError("%s is not valid JSON" % path)
    return validate(raw, warn)
