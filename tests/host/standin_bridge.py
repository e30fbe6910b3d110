"""A bridge stand-in for node tests, built on the `websockets` library (not our code).

It speaks the node side of docs/protocol.md: takes ``hello`` and ``tm`` (single and
batch), acks cumulatively with the last seq of each ``tm``, sends ``cmd`` and collects
``res``. It counts every reading it receives (repeats included) so tests can tell
"stored exactly once" (unique) from "sent more than once" (resends after a reconnect).
"""

import asyncio
import json
from collections import defaultdict

import websockets


class StandinBridge:
    """Accepts nodes at any path; ``readings[(dev, boot)][seq]`` = times received."""

    def __init__(self, ack=True):
        self.ack = ack
        self.hellos = []  # every hello message, in order
        self.readings = defaultdict(lambda: defaultdict(int))
        self.batch_sizes = []  # readings per tm message
        self.dropped = {}  # (dev, boot) -> latest dropped count the node reported
        self.results = {}  # cmd id -> res message
        self.errors = []  # protocol violations seen
        self.connections = {}  # dev -> websocket (latest)
        self.subprotocols = []
        self.server = None
        self.port = None
        self._changed = asyncio.Event()
        self._cmd_count = 0

    async def start(self, port=0):
        """Listen on 127.0.0.1 (port 0: a free one); returns the port."""
        self.server = await websockets.serve(
            self._handle, "127.0.0.1", port, subprotocols=["microws.v1"], ping_interval=None
        )
        self.port = self.server.sockets[0].getsockname()[1]
        return self.port

    @property
    def url(self):
        """The URL nodes connect to."""
        return "ws://127.0.0.1:%d/device" % self.port

    async def stop(self):
        """Stop listening and close every connection."""
        self.server.close()
        await self.server.wait_closed()

    async def kill(self):
        """Die like a killed process: connections reset, nothing said; records kept."""
        for conn in list(self.server.connections):
            conn.transport.abort()
        self.server.close()
        await self.server.wait_closed()
        self.server = None

    async def _handle(self, ws):
        self.subprotocols.append(ws.subprotocol)
        dev = None
        try:
            async for text in ws:
                msg = json.loads(text)
                kind = msg.get("t")
                if kind == "hello":
                    dev = msg["id"]
                    self.hellos.append(msg)
                    self.connections[dev] = ws
                    self.dropped[(dev, msg["boot"])] = msg["dropped"]
                elif dev is None:
                    self.errors.append("%s before hello" % kind)
                elif kind == "tm":
                    await self._telemetry(ws, dev, msg)
                elif kind == "res":
                    self.results[msg["id"]] = msg
                else:
                    self.errors.append("unknown t %r" % kind)
                self._changed.set()
        except websockets.ConnectionClosed:
            pass
        finally:
            if dev is not None and self.connections.get(dev) is ws:
                del self.connections[dev]
            self._changed.set()

    async def _telemetry(self, ws, dev, msg):
        boot = msg["boot"]
        batch = msg["b"] if "b" in msg else [msg]
        seqs = self.readings[(dev, boot)]
        self.batch_sizes.append(len(batch))
        for reading in batch:
            if not isinstance(reading["ts"], int) or not isinstance(reading["d"], dict):
                self.errors.append("bad reading %r" % (reading,))
            seqs[reading["seq"]] += 1
        if "dropped" in msg:
            self.dropped[(dev, boot)] = msg["dropped"]
        if self.ack:
            await ws.send(json.dumps({"t": "ack", "boot": boot, "seq": batch[-1]["seq"]}))

    async def wait_until(self, predicate, timeout, what="condition"):
        """Wait (on messages, not sleeps) until ``predicate()`` holds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            left = deadline - loop.time()
            if left <= 0:
                raise TimeoutError("stand-in bridge: %s not reached in %ss" % (what, timeout))
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), min(left, 0.5))
            except asyncio.TimeoutError:
                pass

    def unique(self, dev, boot):
        """Seqs received at least once for (dev, boot)."""
        return set(self.readings[(dev, boot)])

    def boots(self, dev):
        """Boot ids of ``dev``, in the order their hellos came."""
        seen = []
        for h in self.hellos:
            if h["id"] == dev and h["boot"] not in seen:
                seen.append(h["boot"])
        return seen

    async def command(self, dev, name, args=None, timeout=10):
        """Send a cmd to ``dev`` and wait for its res."""
        self._cmd_count += 1
        cmd_id = "c%d" % self._cmd_count
        await self.wait_until(lambda: dev in self.connections, timeout, "%s connected" % dev)
        await self.connections[dev].send(json.dumps({"t": "cmd", "id": cmd_id, "name": name, "args": args or {}}))
        await self.wait_until(lambda: cmd_id in self.results, timeout, "res to %s" % name)
        return self.results[cmd_id]
