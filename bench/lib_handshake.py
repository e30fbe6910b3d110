"""Library benchmark: opening handshakes against microws, microdot, websockets (and raw TCP).

Figures (server pinned to core 0, this load generator to core 1, same run):
  - server CPU per connection: connect, upgrade request, 101 response, close frame
    from the client, server closes TCP; one connection at a time (raw TCP: connect,
    the same request bytes echoed, close);
  - connections/s in that loop;
  - 32 clients connecting at once: ms until the last one is open (worst of 5 bursts).

    python bench/lib_handshake.py [--seconds S] [--rounds N]
"""

import select
import socket
import statistics
import sys
import time
from contextlib import ExitStack

from harness import (
    CLOSE_FRAME,
    TIMEOUT,
    UPGRADE,
    BenchError,
    cli,
    errors,
    figure,
    measure,
    rate,
    read_head,
    server,
    tcp_open,
    values,
)

KINDS = ("microws", "raw", "microdot", "websockets")
BURST = 32
BURSTS = 5


def _drain_to_eof(s):
    while s.recv(4096):
        pass


def sequential(kind, port, seconds):
    """Open and close connections one after the other for ``seconds``; returns the count."""
    req = (UPGRADE % port).encode()
    end = time.perf_counter() + seconds
    n = 0
    while True:
        s = tcp_open(port)
        try:
            s.sendall(req)
            if kind == "raw":
                got = 0
                while got < len(req):
                    k = len(s.recv(4096))
                    if not k:
                        raise BenchError("connection closed by the server")
                    got += k
                s.shutdown(socket.SHUT_WR)
            else:
                read_head(s)
                s.sendall(CLOSE_FRAME)
            _drain_to_eof(s)
        finally:
            s.close()
        n += 1
        if time.perf_counter() >= end:
            return n


def burst(kind, port, count=BURST):
    """``count`` clients connect at once; returns ms from the first connect to the last open."""
    req = (UPGRADE % port).encode()
    poll = select.poll()
    socks = {}
    t0 = time.perf_counter()
    for _ in range(count):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        socks[s.fileno()] = [s, b""]
        poll.register(s, select.POLLOUT)
    pending = set(socks)
    connecting = set(socks)
    last = None
    try:
        while pending:
            left = TIMEOUT - (time.perf_counter() - t0)
            events = poll.poll(max(0, left) * 1000)
            if not events:
                raise BenchError("%d of %d clients not open after %gs" % (len(pending), count, TIMEOUT))
            for fd, ev in events:
                s, got = socks[fd]
                if fd in connecting:
                    err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err or ev & (select.POLLERR | select.POLLHUP):
                        raise BenchError("connect failed: errno %d" % err)
                    connecting.discard(fd)
                    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    s.sendall(req)
                    poll.modify(s, select.POLLIN)
                    continue
                chunk = s.recv(4096)
                if not chunk:
                    raise BenchError("closed by the server during the handshake")
                got += chunk
                socks[fd][1] = got
                done = len(got) >= len(req) if kind == "raw" else b"\r\n\r\n" in got
                if done and fd in pending:
                    if kind != "raw" and not got.startswith(b"HTTP/1.1 101"):
                        raise BenchError("handshake refused: %r" % got[:40])
                    pending.discard(fd)
                    poll.unregister(s)
                    last = time.perf_counter()
    finally:
        for s, _ in socks.values():
            try:
                s.setblocking(True)
                s.settimeout(2)
                if kind != "raw":
                    s.sendall(CLOSE_FRAME)
                else:
                    s.shutdown(socket.SHUT_WR)
                _drain_to_eof(s)
            except OSError:
                pass
            s.close()
    return (last - t0) * 1000


def bench_servers(kinds, seconds, rounds):
    """Every server started up front; the sequential rounds interleaved across them (a
    load spike on the shared machine hits all alike), then the bursts, server by server."""
    res = {kind: {} for kind in kinds}
    with ExitStack() as stack:
        live = {}
        for kind in kinds:
            try:
                live[kind] = stack.enter_context(server(kind))
                sequential(kind, live[kind][1], 0.1)  # warm-up
            except (BenchError, OSError) as e:
                res[kind]["handshake"] = res[kind]["burst"] = None
                res[kind]["errors"] = {"handshake": "%s: %s" % (type(e).__name__, e)}
                live.pop(kind, None)
        for _ in range(rounds):
            for kind, (proc, port) in list(live.items()):
                try:
                    res[kind].setdefault("handshake", []).extend(measure(proc, sequential, kind, port, seconds))
                except (BenchError, OSError) as e:
                    res[kind]["handshake"] = None
                    res[kind].setdefault("errors", {})["handshake"] = "%s: %s" % (type(e).__name__, e)
                    del live[kind]
        for kind, (_, port) in live.items():
            times = []
            try:
                for _ in range(BURSTS):
                    times.append(burst(kind, port))
                    time.sleep(0.05)
                res[kind]["burst"] = [{"worst_ms": max(times), "median_ms": statistics.median(times), "all_ms": times}]
            except (BenchError, OSError) as e:
                res[kind]["burst"] = None
                err = "%s: %s (after %d bursts)" % (type(e).__name__, e, len(times))
                res[kind].setdefault("errors", {})["burst"] = err
    return res


def figures(results):
    return [
        figure(
            "handshake_cpu_us",
            "handshake: server CPU per connection",
            "us",
            values(results, "handshake", lambda r: r["cpu"] / r["messages"] * 1e6, "low"),
            "low",
            ("microdot", 0.8),
            errors(results, "handshake"),
        ),
        figure(
            "handshake_rate",
            "handshake: connections/s, one at a time",
            "conn/s",
            values(results, "handshake", rate, "high"),
            "high",
        ),
        figure(
            "burst32_ms",
            "32 clients at once: ms until all open (worst of 5)",
            "ms",
            values(results, "burst", lambda r: r["worst_ms"], "low"),
            "low",
            ("abs", 100),
            errors(results, "burst"),
        ),
    ]


def run(seconds=0.8, rounds=3, kinds=KINDS):
    """All handshake figures; returns (figures, raw results)."""
    results = bench_servers(kinds, seconds, rounds)
    return figures(results), results


def main(argv=None):
    cli("lib_handshake", run, __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
