"""The microws telemetry node: reads the board's sensors and streams them to a bridge.

Modules, each small so a board only pays for what it imports:
``config`` (config.json), ``net`` (Wi-Fi), ``sensors`` (board profile), ``outbox``
(unacked readings), ``link`` (WebSocket to the bridge), ``commands``, ``local``
(page + WebSocket served by the board itself), ``watchdog`` and ``app`` (wires them).
"""

FIRMWARE_VERSION = "0.1.0"
INTERVAL_MIN_MS = 50  # sampling interval bounds (config.json and the `interval` command)
INTERVAL_MAX_MS = 86400000
