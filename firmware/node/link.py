"""The WebSocket link to the bridge (docs/protocol.md, subprotocol ``microws.v1``).

One connection at a time: ``hello``, then everything unacked in the outbox (oldest
first, batched up to ``batch`` readings per ``tm``), then each new reading as it comes.
The bridge's cumulative ``ack`` releases readings; after a reconnect the outbox is
rewound, so whatever was sent but not acked is sent again (the bridge drops repeats by
(device, boot, seq)). Reconnects back off exponentially with jitter. A dead link that
TCP does not notice (a stalled peer) is found by the library's keepalive pings.
"""

import asyncio
import json

from microws.client import connect
from node import FIRMWARE_VERSION, clock

SUBPROTOCOL = "microws.v1"
_CLOSE_TIMEOUT_MS = 2000
_STABLE_MS = 5000  # a session this long counts as established: reset the backoff


def _round(v):
    # Values live as float32 in the outbox; 2 decimals keep JSON short and honest.
    return v if isinstance(v, int) else round(v, 2)


class Link:
    """Keeps a connection to ``node.cfg["bridge"]`` and streams the outbox over it."""

    def __init__(self, node):
        self.node = node
        self.connected = False
        self.sessions = 0  # connections that got as far as sending hello
        self._wake = asyncio.Event()
        # '"name":' per sensor, made once (names come from the board profile: plain words)
        self._keys = tuple(json.dumps(name) + ":" for name in node.sensors.names)

    def wake(self):
        """A new reading is in the outbox."""
        self._wake.set()

    # -- messages -------------------------------------------------------------

    def hello(self):
        """The first message of every connection."""
        node = self.node
        return json.dumps({
            "t": "hello",
            "id": node.id,
            "board": node.board.NAME,
            "fw": FIRMWARE_VERSION,
            "boot": node.boot,
            "sensors": node.sensors.units,
            "interval": node.interval_ms,
            "dropped": node.outbox.dropped,
        })

    def _reading(self, seq, parts):
        # '"seq":S,"ts":T,"d":{...}' appended to parts: no dict per reading.
        ob = self.node.outbox
        parts.append('"seq":%d,"ts":%d,"d":{' % (seq, ob.ts(seq)))
        sep = ""
        for i, key in enumerate(self._keys):
            v = ob.value(seq, i)
            if v is not None and v - v == 0:  # failed sensor (NaN) or inf: left out, JSON has neither
                parts.append(sep + key + str(_round(v)))
                sep = ","
        parts.append("}")

    def telemetry(self, first, count):
        """A `tm` message for readings ``first .. first+count-1`` (a batch when count > 1).

        Built as text directly (short pieces, one join): a batch of dicts for
        json.dumps would hold several times the message in heap at once.
        """
        ob = self.node.outbox
        parts = ['{"t":"tm","boot":"%s",' % self.node.boot]
        if ob.dropped:
            parts.append('"dropped":%d,' % ob.dropped)
        if count == 1:
            self._reading(first, parts)
        else:
            parts.append('"b":[')
            for seq in range(first, first + count):
                parts.append("{" if seq == first else ",{")
                self._reading(seq, parts)
                parts.append("}")
            parts.append("]")
        parts.append("}")
        return "".join(parts)

    def handle(self, text):
        """Act on one message from the bridge; returns a reply to send, or None."""
        node = self.node
        try:
            msg = json.loads(text)
            kind = msg.get("t")
        except (ValueError, AttributeError):
            print("microws-node: bad message from bridge %r" % (text[:60],))
            return None
        if kind == "ack":
            if msg.get("boot") == node.boot and isinstance(msg.get("seq"), int):
                node.outbox.ack(msg["seq"])
        elif kind == "cmd":
            from node import commands  # loaded on the first command only (heap)

            ok, value = commands.run(node, msg.get("name"), msg.get("args"))
            reply = {"t": "res", "id": msg.get("id"), "ok": ok}
            reply["v" if ok else "err"] = value
            return json.dumps(reply)
        elif kind == "cfg":
            ms = msg.get("interval")
            if ms is not None:
                from node import commands

                ok, value = commands.run(node, "interval", {"ms": ms})
                if not ok:
                    print("microws-node: cfg rejected: %s" % value)
        elif kind == "err":
            print("microws-node: bridge error: %s" % msg.get("msg"))
        # other types: newer bridge, ignored (forward compatible)
        return None

    # -- connection -----------------------------------------------------------

    async def _send_loop(self, ws):
        ob = self.node.outbox
        batch = self.node.cfg["batch"]
        while True:
            pending = ob.unsent()
            if pending <= 0:
                self._wake.clear()
                if ob.unsent() <= 0:
                    await self._wake.wait()
                continue
            first = ob.sent + 1
            count = min(pending, batch)
            text = self.telemetry(first, count)
            await ws.send(text)
            ob.mark_sent(first + count - 1)

    async def _recv_loop(self, ws):
        while True:
            reply = self.handle(await ws.recv())
            if reply is not None:
                await ws.send(reply)

    async def _session(self, ws):
        """Run one connection until it fails; returns its reason."""
        self.node.outbox.rewind()
        done = asyncio.Event()
        reason = []

        async def guarded(coro):
            try:
                await coro
            except Exception as e:
                reason.append(e)
            finally:
                done.set()

        tasks = ()
        try:
            await ws.send(self.hello())
            self.sessions += 1
            self.connected = True
            tasks = (
                asyncio.create_task(guarded(self._send_loop(ws))),
                asyncio.create_task(guarded(self._recv_loop(ws))),
            )
            await done.wait()
        finally:
            self.connected = False
            for task in tasks:
                task.cancel()
            try:
                await clock.wait_for_ms(ws.close(), _CLOSE_TIMEOUT_MS)
            except Exception:  # the link is already gone; nothing more to say to it
                pass
        return reason[0] if reason else None

    async def _connect(self):
        cfg = self.node.cfg
        headers = {"Authorization": "Bearer " + cfg["token"]} if cfg["token"] else None
        return await connect(
            cfg["bridge"],
            subprotocols=[SUBPROTOCOL],
            headers=headers,
            ping_interval=cfg["ping_interval"],
            ping_timeout=cfg["ping_timeout"],
            open_timeout=cfg["connect_timeout"],
            close_timeout=_CLOSE_TIMEOUT_MS // 1000,
        )

    async def run(self):
        """Connect, stream, reconnect with backoff + jitter; forever."""
        node = self.node
        cfg = node.cfg
        delay = cfg["backoff_min_ms"]
        while True:
            if node.net is not None and not node.net.connected():
                await node.net.connect(cfg["wifi_ssid"], cfg["wifi_password"], node.board)
            started = clock.ticks_ms()
            try:
                ws = await self._connect()
                print(node.status("link up"))
                reason = await self._session(ws)
            except Exception as e:
                reason = e
            if clock.ticks_diff(clock.ticks_ms(), started) >= _STABLE_MS:
                delay = cfg["backoff_min_ms"]
            wait = clock.jitter(delay)
            print("%s reason=%r retry_ms=%d" % (node.status("link down"), reason, wait))
            await clock.sleep_ms(wait)
            delay = clock.next_backoff(delay, cfg["backoff_max_ms"])
