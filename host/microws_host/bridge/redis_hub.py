"""Scale-out hub: several bridge processes share devices and browsers through Redis.

Channels: ``<prefix>:ev`` carries every event (``tm``, ``dev``, ``res``) to every
bridge; ``<prefix>:cmd`` carries commands to whichever bridge holds the device. The
hash ``<prefix>:devices`` keeps the last ``dev`` info of each device so a bridge that
starts late knows the devices already connected elsewhere.

Each message is a JSON envelope ``{"o": bridge_id, ...}``; a bridge delivers its own
events locally at once and ignores their echo from Redis, so a local browser never
waits for a Redis round trip.
"""

import asyncio
import json
import logging

from .hub import Hub

try:
    from redis.exceptions import RedisError
except ImportError:  # redis is optional; RedisHub.start says so in one line

    class RedisError(Exception):
        pass


log = logging.getLogger("microws.bridge.redis")


class RedisHub(Hub):
    """A hub over Redis pub/sub (``redis.asyncio``)."""

    # Outgoing messages wait here while Redis is slow; beyond this the oldest go
    # (counted) rather than growing memory without bound.
    MAX_PENDING = 100_000

    def __init__(self, url, prefix="microws", metrics=None):
        super().__init__()
        self.url = url
        self.prefix = prefix
        self.metrics = metrics
        self._redis = None
        self._pubsub = None
        self._pending = []
        self._wake = asyncio.Event()
        self._tasks = []

    async def start(self):
        try:
            import redis.asyncio as aioredis
        except ImportError:
            raise OSError("--redis needs the redis package (pip install 'microws-host[redis]')") from None
        self._redis = aioredis.Redis.from_url(self.url)
        try:
            await asyncio.wait_for(self._redis.ping(), 5)
        except (TimeoutError, OSError, RedisError) as e:
            await self._redis.aclose()
            raise OSError(f"cannot reach Redis at {self.url}: {e or type(e).__name__}") from None
        self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        await self._pubsub.subscribe(self.prefix + ":ev", self.prefix + ":cmd")
        self._tasks = [asyncio.create_task(self._read()), asyncio.create_task(self._write())]

    async def close(self):
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._pubsub is not None:
            await self._pubsub.aclose()
        if self._redis is not None:
            await self._redis.aclose()

    def publish(self, event):
        self._on_event(event)
        self._queue(self.prefix + ":ev", {"o": self.bridge_id, "e": event})
        if event.get("t") == "dev":
            info = event["dev"]
            self._queue(None, (info["id"], json.dumps(info)))

    def send_command(self, device_id, message):
        if self._on_command(device_id, message):
            return True
        self._queue(self.prefix + ":cmd", {"o": self.bridge_id, "dev": device_id, "m": message})
        return True  # some other bridge may hold it; the command times out if none does

    async def known_devices(self):
        raw = await self._redis.hgetall(self.prefix + ":devices")
        return [json.loads(v) for v in raw.values()]

    def _queue(self, channel, payload):
        if len(self._pending) >= self.MAX_PENDING:
            del self._pending[0]
            if self.metrics:
                self.metrics.inc("microws_redis_dropped_total")
        self._pending.append((channel, payload))
        self._wake.set()

    async def _write(self):
        # Everything queued since the last round trip goes in one pipeline: at high
        # rates that is one network write per batch instead of one per event.
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._pending = self._pending, []
            pipe = self._redis.pipeline(transaction=False)
            for channel, payload in batch:
                if channel is None:
                    pipe.hset(self.prefix + ":devices", payload[0], payload[1])
                else:
                    pipe.publish(channel, json.dumps(payload))
            try:
                await pipe.execute()
            except (OSError, RedisError) as e:  # keep the bridge up; local delivery still works
                log.warning("redis publish failed: %s", e)
                if self.metrics:
                    self.metrics.inc("microws_redis_errors_total")

    async def _read(self):
        while True:
            try:
                message = await self._pubsub.get_message(timeout=None)
            except asyncio.CancelledError:
                raise
            except (OSError, RedisError) as e:
                log.warning("redis subscription failed: %s; retrying", e)
                await asyncio.sleep(1)
                continue
            if message is None:
                continue
            try:
                envelope = json.loads(message["data"])
            except ValueError:
                continue
            if envelope.get("o") == self.bridge_id:
                continue
            if "e" in envelope:
                self._on_event(envelope["e"])
            elif "dev" in envelope:
                self._on_command(envelope["dev"], envelope["m"])
