"""Test helpers for the bridge: a real server on 127.0.0.1, devices and browsers as peers.

Devices and browsers are played by `websockets` (CPython) clients and an aiohttp SSE
reader: peers we did not write. Every wait has a bound; nothing sleeps to synchronise.
"""

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import ci
from websockets.asyncio.client import connect as ws_connect

from microws_host.bridge.app import start_server, stop_server
from microws_host.bridge.config import BridgeConfig
from microws_host.bridge.core import Bridge

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
WAIT = 10.0  # seconds any single expected event may take
TS = 1_700_000_000_000  # ms since the epoch: the base of the readings' ts the tests send


def run(coro, timeout=60):
    """Run an async test body with an overall bound."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


def require_tool(path_or_name, what):
    """The path of a system tool; a missing one fails under CI=true and skips otherwise."""
    import shutil

    found = path_or_name if os.path.exists(path_or_name) else shutil.which(path_or_name)
    if found:
        return found
    ci.require(False, f"{what} not found ({path_or_name}); install it (apt-get install {what})")


class RunningBridge:
    """An in-process bridge listening on 127.0.0.1 (port chosen by the OS)."""

    def __init__(self, bridge, runner, port, scheme="http"):
        self.bridge = bridge
        self.runner = runner
        self.port = port
        self.scheme = scheme

    def url(self, path, ws=False):
        scheme = {"http": "ws", "https": "wss"}[self.scheme] if ws else self.scheme
        return f"{scheme}://127.0.0.1:{self.port}{path}"


@contextlib.asynccontextmanager
async def running_bridge(config=None, hub=None, ssl_context=None):
    """Start a Bridge and its HTTP server; stop both on exit."""
    bridge = Bridge(config or BridgeConfig(), hub)
    await bridge.start()
    runner, port = await start_server(bridge, "127.0.0.1", 0, ssl_context)
    try:
        yield RunningBridge(bridge, runner, port, "https" if ssl_context else "http")
    finally:
        await stop_server(bridge, runner)


class Peer:
    """A `websockets` client with helpers to wait for a given message."""

    def __init__(self, ws):
        self.ws = ws
        self.seen = []

    async def send(self, obj):
        await self.ws.send(obj if isinstance(obj, str) else json.dumps(obj))

    async def _next(self):
        msg = json.loads(await self.ws.recv())
        self.seen.append(msg)
        return msg

    async def expect(self, match, timeout=WAIT):
        """The next message for which ``match(msg)`` is true (others are kept in ``seen``)."""
        async with asyncio.timeout(timeout):
            while True:
                msg = await self._next()
                if match(msg):
                    return msg

    async def expect_all(self, *matches, timeout=WAIT):
        """One message for each of ``matches``, in whatever order they arrive."""
        found = [None] * len(matches)
        async with asyncio.timeout(timeout):
            while None in found:
                msg = await self._next()
                for i, match in enumerate(matches):
                    if found[i] is None and match(msg):
                        found[i] = msg
                        break
        return found

    async def close(self):
        await self.ws.close()


@contextlib.asynccontextmanager
async def device(server_or_url, token=None, query_token=False, ssl=None, **kw):
    """A device connected to /device (subprotocol microws.v1)."""
    url = server_or_url if isinstance(server_or_url, str) else server_or_url.url("/device", ws=True)
    headers = {}
    if token and query_token:
        url += "?token=" + token
    elif token:
        headers["Authorization"] = "Bearer " + token
    async with ws_connect(
        url, subprotocols=["microws.v1"], additional_headers=headers, ssl=ssl, open_timeout=WAIT, **kw
    ) as ws:
        yield Peer(ws)


@contextlib.asynccontextmanager
async def browser(server_or_url, origin=None, **kw):
    """A browser connected to /ws."""
    url = server_or_url if isinstance(server_or_url, str) else server_or_url.url("/ws", ws=True)
    async with ws_connect(url, origin=origin, open_timeout=WAIT, **kw) as ws:
        yield Peer(ws)


def hello(device_id, boot="boot-1", sensors=None, **extra):
    """A `hello` message."""
    msg = {
        "t": "hello",
        "id": device_id,
        "board": "unix",
        "fw": "0.1.0",
        "boot": boot,
        "sensors": sensors or {"temp": "C"},
        "interval": 1000,
        "dropped": 0,
    }
    msg.update(extra)
    return msg


def is_type(kind, **fields):
    """A matcher: message of type ``kind`` whose fields equal ``fields``."""

    def match(msg):
        return msg.get("t") == kind and all(msg.get(k) == v for k, v in fields.items())

    return match


def dev_event(device_id, online):
    """A matcher for a `dev` event of ``device_id`` with the given online state."""
    return lambda m: m.get("t") == "dev" and m["dev"]["id"] == device_id and m["dev"]["online"] is online


class SSEReader:
    """Reads /events with aiohttp and queues the parsed `data:` events."""

    def __init__(self, url, headers=None):
        self.url = url
        self.headers = headers or {}
        self.events = asyncio.Queue()
        self.status = None
        self._task = None
        self._session = None
        self._opened = asyncio.Event()

    async def __aenter__(self):
        self._session = aiohttp.ClientSession(trust_env=False)
        self._task = asyncio.ensure_future(self._read())
        async with asyncio.timeout(WAIT):
            await self._opened.wait()
        return self

    async def __aexit__(self, *exc):
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        await self._session.close()

    async def _read(self):
        try:
            async with self._session.get(self.url, headers=self.headers) as resp:
                self.status = resp.status
                self._opened.set()
                data = []
                async for raw in resp.content:
                    line = raw.decode().rstrip("\r\n")
                    if line.startswith("data:"):
                        data.append(line[5:].lstrip())
                    elif line == "" and data:
                        await self.events.put(json.loads("\n".join(data)))
                        data = []
        finally:
            self._opened.set()

    async def expect(self, match, timeout=WAIT):
        async with asyncio.timeout(timeout):
            while True:
                msg = await self.events.get()
                if match(msg):
                    return msg


async def http_get(url, **kw):
    """(status, body text) of a GET; no proxies from the environment."""
    async with aiohttp.ClientSession(trust_env=False) as s, s.get(url, **kw) as r:
        return r.status, await r.text()


async def http_json(url, method="GET", **kw):
    """(status, parsed JSON) of a request."""
    async with aiohttp.ClientSession(trust_env=False) as s, s.request(method, url, **kw) as r:
        return r.status, await r.json(content_type=None)


def metric(text, name, **labels):
    """One sample value from Prometheus text (0 when absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    series = f"{name}{{{want}}}" if labels else name
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


class BridgeProcess:
    """`microws bridge` as a subprocess; its port read from its first stdout line."""

    def __init__(self, *args, env=None):
        self.args = ["--port", "0", *args]
        self.env = env
        self.proc = None
        self.port = None

    def start(self, timeout=WAIT):
        env = dict(os.environ, **(self.env or {}))
        self.proc = subprocess.Popen(
            [str(VENV_BIN / "microws"), "bridge", *self.args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        line = _readline_with_timeout(self.proc, timeout)
        m = re.search(r"listening on https?://[^:]+:(\d+)/", line or "")
        if not m:
            self.stop()
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise AssertionError(f"bridge did not start: {line!r} {err}")
        self.port = int(m.group(1))
        return self

    def url(self, path, ws=False):
        return f"{'ws' if ws else 'http'}://127.0.0.1:{self.port}{path}"

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream:
                stream.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def _readline_with_timeout(proc, timeout):
    import selectors

    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    try:
        if not sel.select(timeout):
            return None
        return proc.stdout.readline()
    finally:
        sel.close()


def free_port():
    """A TCP port nobody listens on right now (for servers we cannot ask for port 0)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
