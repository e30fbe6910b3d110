"""Shared pieces of the bridge benchmarks: raw-socket WebSocket peers, the ceiling
server, process control and figures.

The load side speaks WebSocket over plain non-blocking sockets (handshake once, then
frame headers parsed by hand) so that it costs far less per message than the server it
measures. Servers run pinned to core 0, the load to core 1 (``taskset``), when the
machine has two cores or more.
"""

import base64
import os
import re
import resource
import selectors
import shutil
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

from websockets.speedups import apply_mask

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
SERVER_CORE, LOAD_CORE = "0", "1"
MASK = b"\x11\x22\x33\x44"
SENT_RE = re.compile(rb'"sent":([0-9.]+)')


def raise_nofile(want=20000):
    """Raise RLIMIT_NOFILE towards ``want`` (children inherit it); returns the limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(want, hard) if hard != resource.RLIM_INFINITY else want
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def pinned(cmd, core):
    """``cmd`` prefixed with taskset when there is a core to pin to."""
    if shutil.which("taskset") and os.cpu_count() and os.cpu_count() >= 2:
        return ["taskset", "-c", core, *cmd]
    return cmd


def pin_self(core):
    """Pin this process to ``core`` (no-op on a single core)."""
    if os.cpu_count() and os.cpu_count() >= 2:
        os.sched_setaffinity(0, {int(core)})


def start_server(cmd, timeout=20):
    """Start a server that prints ``listening on http://HOST:PORT/``; returns (proc, port)."""
    proc = subprocess.Popen(pinned(cmd, SERVER_CORE), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    if not sel.select(timeout):
        proc.kill()
        raise SystemExit(f"server did not start: {cmd}")
    line = proc.stdout.readline()
    m = re.search(r"listening on https?://[^:]+:(\d+)/", line)
    if not m:
        proc.kill()
        raise SystemExit(f"server did not start: {line!r} {proc.stderr.read()}")
    return proc, int(m.group(1))


def stop_server(proc):
    """SIGTERM, then SIGKILL after 10 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def cpu_seconds(pid):
    """utime + stime of a process, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_bytes(pid):
    """Resident set size of a process."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def ws_open(port, path, timeout=20):
    """A connected, upgraded, non-blocking socket (raw WebSocket client)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: microws.v1\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError(f"closed during handshake on {path}")
        head += chunk
    status = head.split(b"\r\n", 1)[0]
    if b" 101 " not in status:
        raise ConnectionError(f"handshake refused on {path}: {status!r}")
    rest = head.split(b"\r\n\r\n", 1)[1]
    sock.setblocking(False)
    return sock, rest


def text_frame(payload):
    """A masked client text frame."""
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", 0x81, 0x80 | n)
    elif n < 65536:
        header = struct.pack("!BBH", 0x81, 0x80 | 126, n)
    else:
        header = struct.pack("!BBQ", 0x81, 0x80 | 127, n)
    return header + MASK + apply_mask(payload, MASK)


def parse_frames(buf, want_payloads):
    """Split server frames off ``buf``: (count, payloads or None, rest)."""
    pos, end, count = 0, len(buf), 0
    payloads = [] if want_payloads else None
    while end - pos >= 2:
        n = buf[pos + 1] & 0x7F
        head = 2
        if n == 126:
            if end - pos < 4:
                break
            n = (buf[pos + 2] << 8) | buf[pos + 3]
            head = 4
        elif n == 127:
            if end - pos < 10:
                break
            n = struct.unpack_from("!Q", buf, pos + 2)[0]
            head = 10
        if end - pos < head + n:
            break
        if want_payloads:
            payloads.append(buf[pos + head : pos + head + n])
        pos += head + n
        count += 1
    return count, payloads, buf[pos:]


def percentile(sorted_values, q):
    """The q-quantile (0..1) of sorted values (nearest rank)."""
    if not sorted_values:
        return float("nan")
    i = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[i]


CEILING_SERVER = r"""
import asyncio, sys
from aiohttp import web, WSMsgType

browsers = set()

async def device(request):
    ws = web.WebSocketResponse(protocols=("microws.v1",))
    await ws.prepare(request)
    async for msg in ws:
        if msg.type == WSMsgType.TEXT:
            for b in list(browsers):
                await b.send_str(msg.data)
    return ws

async def browser(request):
    ws = web.WebSocketResponse(protocols=("microws.v1",))
    await ws.prepare(request)
    browsers.add(ws)
    try:
        async for _ in ws:
            pass
    finally:
        browsers.discard(ws)
    return ws

async def main():
    app = web.Application()
    app.router.add_get("/device", device)
    app.router.add_get("/ws", browser)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
    await site.start()
    print("listening on http://127.0.0.1:%d/" % site._server.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


def ceiling_command():
    """A plain aiohttp broadcast server: device text to every browser, no protocol."""
    return [sys.executable, "-c", CEILING_SERVER]


def bridge_command(*extra):
    """`microws bridge` on a free port with limits opened up for the load."""
    return [str(VENV_BIN / "microws"), "bridge", "--port", "0", *extra]


def now():
    """Wall clock seconds (the load side stamps and reads in one process)."""
    return time.time()
