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

import microws
from node import FIRMWARE_VERSION, clock, commands, net

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

    def _reading(self, seq, with_seq):
        ob = self.node.outbox
        d = {}
        for i, name in enumerate(self.node.sensors.names):
            v = ob.value(seq, i)
            if v is not None:  # a failed sensor is left out, not sent as NaN
                d[name] = _round(v)
        if with_seq:
            return {"seq": seq, "ts": ob.ts(seq), "d": d}
        return d

    def telemetry(self, first, count):
        """A `tm` message for readings ``first .. first+count-1`` (a batch when count > 1)."""
        ob = self.node.outbox
        boot = self.node.boot
        if count == 1:
            msg = {"t": "tm", "boot": boot, "seq": first, "ts": ob.ts(first), "d": self._reading(first, False)}
        else:
            msg = {"t": "tm", "boot": boot, "b": [self._reading(s, True) for s in range(first, first + count)]}
        if ob.dropped:
            msg["dropped"] = ob.dropped
        return json.dumps(msg)

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
            ok, value = commands.run(node, msg.get("name"), msg.get("args"))
            reply = {"t": "res", "id": msg.get("id"), "ok": ok}
            reply["v" if ok else "err"] = value
            return json.dumps(reply)
        elif kind == "cfg":
            ms = msg.get("interval")
            if ms is not None:
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
        return await clock.wait_for_ms(
            microws.connect(
                cfg["bridge"],
                subprotocols=[SUBPROTOCOL],
                headers=headers,
                ping_interval=cfg["ping_interval"],
                ping_timeout=cfg["ping_timeout"],
            ),
            cfg["connect_timeout"] * 1000,
        )

    async def run(self):
        """Connect, stream, reconnect with backoff + jitter; forever."""
        node = self.node
        cfg = node.cfg
        delay = cfg["backoff_min_ms"]
        while True:
            if not net.connected():
                await net.connect(cfg["wifi_ssid"], cfg["wifi_password"], node.board)
            started = clock.ticks_ms()
            try:
                ws = await self._connect()
                print(node.status("link up"))
                reason = await self._session(ws)
            except Exception as e:
                reason = e
            if clock.ticks_diff(clock.ticks_ms(), started) >= _STABLE_MS:
                delay = cfg["backoff_min_ms"]
            wait = net.jitter(delay)
            print("%s reason=%r retry_ms=%d" % (node.status("link down"), reason, wait))
            await clock.sleep_ms(wait)
            delay = net.next_backoff(delay, cfg["backoff_max_ms"])
