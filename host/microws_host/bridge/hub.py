"""The hub: how events and commands travel between bridges.

One idea, two implementations. ``LocalHub`` is the single-process case: an event
published is an event delivered. ``redis_hub.RedisHub`` does the same across bridge
processes with Redis pub/sub. The bridge talks only to this interface.

- ``publish(event)``: every bridge on the hub (this one included, at once) gets
  ``on_event(event)``. Events are protocol messages: ``tm``, ``dev``, ``res``.
- ``send_command(device_id, message)``: the bridge that holds the device gets
  ``on_command(device_id, message)``; returns False when nobody can take it.
- ``known_devices()``: device infos other bridges announced (for a bridge that starts late).
"""

import uuid


class Hub:
    """Interface of a hub; see the module docstring."""

    def __init__(self):
        self.bridge_id = uuid.uuid4().hex[:8]
        self._on_event = None
        self._on_command = None

    def attach(self, on_event, on_command):
        """Connect the bridge's two entry points (called once, before ``start``)."""
        self._on_event = on_event
        self._on_command = on_command

    async def start(self):
        """Open connections; raise OSError when the hub cannot be reached."""

    async def close(self):
        """Release connections and tasks."""

    def publish(self, event):
        """Deliver ``event`` to every bridge on the hub."""
        raise NotImplementedError

    def send_command(self, device_id, message):
        """Route ``message`` to the bridge that holds ``device_id``; False if none may."""
        raise NotImplementedError

    async def known_devices(self):
        """Device infos known to the hub (``dev`` objects)."""
        return []


class LocalHub(Hub):
    """All devices and browsers live in this process: delivery is a function call."""

    def publish(self, event):
        self._on_event(event)

    def send_command(self, device_id, message):
        return self._on_command(device_id, message)
