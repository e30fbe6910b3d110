"""The microws host bridge: devices in over WebSocket or USB serial, browsers out.

Layers, each in its own module and used only downward:

- ``devices``   the device registry: metadata, dedupe watermarks, latest values, history rings
- ``hub``       carries events between devices and browsers (``LocalHub``; ``redis_hub.RedisHub``)
- ``core``      ``Bridge``: device sessions, browser subscribers, command routing, long-poll log
- ``app``       aiohttp routes (``/device``, ``/ws``, ``/events``, ``/api/...``, ``/metrics``, ``/``)
- ``serial_bridge``  boards on USB serial speaking the same JSON, one message a line
- ``cli``       ``microws bridge``
"""
