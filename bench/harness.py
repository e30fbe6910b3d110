"""Shared harness for the library benchmarks (CPython side): processes, load, figures.

The process under test runs pinned to SERVER_CORE (``taskset``); this process, the
load generator, pins itself to LOAD_CORE. The load generator uses blocking raw
sockets and frames masked once up front, so it costs far less per message than
any server it drives. Server CPU time is utime + stime from /proc/PID/stat.
"""

import json
import os
import select
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from websockets.speedups import apply_mask

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
MICROPYTHON = ROOT / ".venv" / "bin" / "micropython"
PYTHON = ROOT / ".venv" / "bin" / "python"
SERVER_CORE = 0
LOAD_CORE = 1
CLK_TCK = os.sysconf("SC_CLK_TCK")
MASK_KEY = b"\x37\xfa\x21\x3d"
MIB = 1 << 20
TIMEOUT = 20.0  # no single socket operation may hang longer than this
# The library under test; point BENCH_MICROWS_LIB at a patched copy to A/B a change.
MICROWS_LIB = Path(os.environ.get("BENCH_MICROWS_LIB", ROOT / "lib"))

UPGRADE = (
    "GET /echo HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


class BenchError(Exception):
    """A reference or the subject failed a measurement (recorded, not fatal)."""


# ---- processes -----------------------------------------------------------------


def pin_self():
    """Pin the load generator (this process) to LOAD_CORE when there are two cores."""
    if os.cpu_count() and os.cpu_count() >= 2:
        os.sched_setaffinity(0, {LOAD_CORE})


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _microdot_path():
    """A directory holding only the microdot package (not the rest of site-packages)."""
    import microdot

    d = Path(tempfile.mkdtemp(prefix="bench-microdot-"))
    (d / "microdot").symlink_to(Path(microdot.__file__).parent)
    return d


def command(kind, role, *args, heap=None):
    """(argv, env) to run ``kind`` (microws, raw, microdot, websockets, peer-raw, peer-ws);
    ``heap``: a MicroPython ``-X heapsize=`` value (default: the port's default heap)."""
    env = dict(os.environ)
    args = [str(a) for a in args]
    mp = [str(MICROPYTHON)] + (["-X", "heapsize=%s" % heap] if heap else [])
    if kind == "microws":
        env["MICROPYPATH"] = "%s:%s:.frozen" % (MICROWS_LIB, BENCH / "mp")
        return [*mp, str(BENCH / "mp" / "microws_echo.py"), role, *args], env
    if kind == "raw":
        env["MICROPYPATH"] = "%s:.frozen" % (BENCH / "mp")
        return [*mp, str(BENCH / "ref" / "raw_tcp_echo.py"), role, *args], env
    if kind == "microdot":
        env["MICROPYPATH"] = "%s:.frozen" % _microdot_path()
        return [str(MICROPYTHON), str(BENCH / "ref" / "microdot_echo.py"), *args], env
    if kind == "websockets":
        return [str(PYTHON), str(BENCH / "ref" / "websockets_echo.py"), *args], env
    if kind.startswith("peer-"):
        return [str(PYTHON), str(BENCH / "ref" / "fast_peer.py"), kind[5:], *args], env
    raise ValueError(kind)


class Proc:
    """A benchmark process pinned to one core; killed (by its pid) on exit."""

    def __init__(self, argv, env, core):
        self.output = ""  # what it printed, once stopped
        self.p = subprocess.Popen(
            ["taskset", "-c", str(core), *argv],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def cpu(self):
        """CPU time (user + system) of the process so far, in seconds; taskset execs, so
        the pid is the benchmarked program's. Its process CPU clock has ns resolution;
        /proc/PID/stat utime + stime (10 ms ticks) is the fallback."""
        try:
            return time.clock_gettime(((~self.p.pid) << 3) | 2)  # CPUCLOCK_SCHED of pid
        except OSError:
            with open("/proc/%d/stat" % self.p.pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def wait_ready(self, timeout=15.0):
        ready, _, _ = select.select([self.p.stdout], [], [], timeout)
        line = self.p.stdout.readline() if ready else "(no output in %gs)" % timeout
        if not line.startswith("READY"):
            raise BenchError("did not start: %s %s" % (line.strip(), self.stop()))

    def alive(self):
        return self.p.poll() is None

    def stop(self):
        """Kill the process; returns the tail of what it printed (for failure notes)."""
        if self.p.poll() is None:
            self.p.kill()
        try:
            self.p.wait(5)
        except subprocess.TimeoutExpired:
            pass
        tail = ""
        for f in (self.p.stdout, self.p.stderr):
            if f and not f.closed:
                try:
                    tail += f.read()
                except (OSError, ValueError):
                    pass
                f.close()
        return tail.strip()[-300:]


@contextmanager
def server(kind, max_size=2 * MIB, *extra, core=SERVER_CORE, heap=None):
    """Run an echo server of ``kind`` (``extra``: more arguments; ``heap``: MicroPython
    -X heapsize); yields (Proc, port)."""
    port = free_port()
    if kind == "raw" or kind.startswith("peer-"):
        argv, env = command(kind, "server", port, heap=heap)
    else:
        argv, env = command(kind, "server", port, max_size, *extra, heap=heap)
    tmp = env["MICROPYPATH"].split(":")[0] if kind == "microdot" else None
    proc = Proc(argv, env, core)
    try:
        proc.wait_ready()
        wait_port(port)
        yield proc, port
    finally:
        proc.output = proc.stop()
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


def wait_port(port, timeout=10.0):
    end = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            return
        except OSError:
            if time.monotonic() > end:
                raise BenchError("port %d never opened" % port)
            time.sleep(0.02)


def run_client(kind, core, *args, heap=None, timeout=60.0):
    """Run a MicroPython client to completion; returns its JSON result line."""
    argv, env = command(kind, "client", *args, heap=heap)
    proc = Proc(argv, env, core)
    try:
        out, err = proc.p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.stop()
        raise BenchError("%s client timed out" % kind)
    finally:
        proc.stop()
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    if proc.p.returncode != 0 or not lines:
        raise BenchError("%s client failed: %s" % (kind, (err or out).strip()[-300:]))
    return json.loads(lines[-1])


# ---- frames and connections ------------------------------------------------------


def masked_frame(payload, opcode=2, key=MASK_KEY):
    """One client frame (FIN, masked) for ``payload``, built once before timing."""
    n = len(payload)
    if n < 126:
        hdr = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        hdr = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        hdr = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    return hdr + key + apply_mask(payload, key)


def server_frame_len(n):
    """Bytes of an unmasked server frame carrying ``n`` payload bytes."""
    return n + (2 if n < 126 else 4 if n < 65536 else 10)


CLOSE_FRAME = masked_frame(struct.pack("!H", 1000), opcode=8)


def payload_of(size):
    return (bytes(range(256)) * (size // 256 + 1))[:size]


def tcp_open(port):
    s = socket.create_connection(("127.0.0.1", port), TIMEOUT)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.settimeout(TIMEOUT)
    return s


def read_head(s):
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        if not chunk:
            raise BenchError("closed during the handshake")
        head += chunk
    end = head.index(b"\r\n\r\n") + 4
    if not head.startswith(b"HTTP/1.1 101"):
        raise BenchError("handshake refused: %r" % head[:60])
    return head[end:]


def ws_open(port):
    """A raw-socket WebSocket client connection, handshake done."""
    s = tcp_open(port)
    s.sendall((UPGRADE % port).encode())
    if read_head(s):
        raise BenchError("unexpected bytes after the handshake")
    return s


def ws_close(s):
    """Close handshake from the client side, then wait for the server to close TCP."""
    try:
        s.sendall(CLOSE_FRAME)
        s.settimeout(2)
        while s.recv(4096):
            pass
    except OSError:
        pass
    s.close()


def recv_exact(s, mv):
    got = 0
    n = len(mv)
    while got < n:
        k = s.recv_into(mv[got:], n - got)
        if not k:
            raise BenchError("connection closed by the server")
        got += k


# ---- load patterns ----------------------------------------------------------------


def pingpong(s, out, resp_len, seconds):
    """Send ``out``, wait for ``resp_len`` bytes back, repeat for ``seconds``; returns count."""
    buf = bytearray(resp_len)
    mv = memoryview(buf)
    end = time.perf_counter() + seconds
    n = 0
    while True:
        for _ in range(32):
            s.sendall(out)
            recv_exact(s, mv)
        n += 32
        if time.perf_counter() >= end:
            return n


def pipelined(s, out, resp_len, seconds, window=256):
    """Keep up to ``window`` messages in flight, topping up after every read (so each
    of our writes also carries the ACK a Nagle-delayed peer waits for); returns echoes."""
    blob = memoryview(out * window)
    flen = len(out)
    buf = bytearray(65536)
    sent = 0
    got_bytes = 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        k = window - (sent - got_bytes // resp_len)
        if k > 0:
            s.sendall(blob[: k * flen])
            sent += k
        k = s.recv_into(buf)
        if not k:
            raise BenchError("connection closed by the server")
        got_bytes += k
    done = got_bytes // resp_len
    while got_bytes < sent * resp_len:  # drain what is still in flight (not counted)
        k = s.recv_into(buf)
        if not k:
            raise BenchError("connection closed by the server")
        got_bytes += k
    return done


def exchange(s, out, inbuf):
    """Write ``out`` while reading len(inbuf) bytes (no deadlock on big messages)."""
    out = memoryview(out)
    inv = memoryview(inbuf)
    o, i, no, ni = 0, 0, len(out), len(inbuf)
    p = select.poll()
    p.register(s, select.POLLIN | select.POLLOUT)
    while i < ni:
        if o < no:
            try:
                o += s.send(out[o:])
            except BlockingIOError:
                pass
        try:
            k = s.recv_into(inv[i:])
            if not k:
                raise BenchError("connection closed by the server")
            i += k
            continue
        except BlockingIOError:
            pass
        p.modify(s, select.POLLIN | (select.POLLOUT if o < no else 0))
        if not p.poll(TIMEOUT * 1000):
            raise BenchError("echo timed out")


def bulk_echo(s, out, resp_len, seconds, check=None, min_count=1):
    """Big-message echo loop; ``check`` is the payload the response must end with."""
    inbuf = bytearray(resp_len)
    s.setblocking(False)
    end = time.perf_counter() + seconds
    n = 0
    try:
        while n < min_count or time.perf_counter() < end:
            exchange(s, out, inbuf)
            if n == 0 and check is not None and inbuf[resp_len - len(check) :] != check:
                raise BenchError("echo mismatch")
            n += 1
    finally:
        s.settimeout(TIMEOUT)
    return n


def measure(proc, fn, *args, rounds=1, size=0):
    """Run a load pattern ``rounds`` times; returns a list of rounds, each
    {messages, seconds (wall), cpu (server CPU seconds), size}."""
    out = []
    for _ in range(rounds):
        c0 = proc.cpu()
        t0 = time.perf_counter()
        n = fn(*args)
        t1 = time.perf_counter()
        c1 = proc.cpu()
        out.append({"messages": n, "seconds": t1 - t0, "cpu": c1 - c0, "size": size})
    return out


def best(rounds, per_round, better):
    """The best round's value (rounds are noisy on a shared machine: take the least disturbed)."""
    vals = [per_round(r) for r in rounds]
    return min(vals) if better == "low" else max(vals)


# ---- figures, table, results ------------------------------------------------------


def values(results, name, per_round, better):
    """{impl: best value of ``name``'s rounds or None if it failed} over ``results``
    ({impl: {name: [rounds] or None}}), for the impls that ran ``name``."""
    return {k: (best(r[name], per_round, better) if r[name] else None) for k, r in results.items() if name in r}


def errors(results, name):
    """{impl: error text} for the impls whose ``name`` measurement failed."""
    return {k: r["errors"][name] for k, r in results.items() if name in r.get("errors", {})}


def mbps(r):
    """Payload MB/s (one direction) of a round."""
    return r["messages"] * r["size"] / r["seconds"] / 1e6


def rate(r):
    return r["messages"] / r["seconds"]


def us_per_msg(r):
    return r["cpu"] / r["messages"] * 1e6


def ms_per_msg(r):
    return r["cpu"] / r["messages"] * 1e3


REFS = ("raw", "microdot", "websockets")
NAMES = {"microws": "microws", "raw": "raw TCP", "microdot": "microdot", "websockets": "websockets"}


def figure(key, label, unit, values, better, target=None, notes=None):
    """A figure: values per implementation (None = failed), ``better`` 'low' or 'high',
    ``target`` (ref, ratio) meaning microws/ref must be <= ratio (low) or >= ratio (high)."""
    ratios = {}
    mine = values.get("microws")
    for ref in REFS:
        v = values.get(ref)
        ratios[ref] = (mine / v) if (mine is not None and v) else None
    met = None
    if target is not None:
        ref, want = target
        r = ratios.get(ref)
        if ref == "abs":
            met = mine is not None and (mine <= want if better == "low" else mine >= want)
        elif r is not None:
            met = r <= want if better == "low" else r >= want
        elif mine is not None and values.get(ref, 0) is None and better == "high":
            met = True  # the reference failed outright where microws worked
        else:
            met = False
    return {
        "key": key,
        "label": label,
        "unit": unit,
        "values": values,
        "ratios": ratios,
        "better": better,
        "target": list(target) if target else None,
        "met": met,
        "notes": notes or {},
    }


def _fmt(v):
    if v is None:
        return "fail"
    if v >= 1000:
        return "%.0f" % v
    if v >= 100:
        return "%.1f" % v
    if v >= 10:
        return "%.2f" % v
    return "%.3f" % v


def _target_text(f):
    if not f["target"]:
        return ""
    ref, want = f["target"]
    op = "<=" if f["better"] == "low" else ">="
    if ref == "abs":
        return "%s %s %s" % (op, _fmt(want), f["unit"])
    return "%s %gx %s" % (op, want, NAMES[ref])


def table(figures):
    """The figures as a Markdown table (ratios are microws / reference)."""
    head = ["figure", "unit", "microws", "raw TCP", "microdot", "websockets", "/raw", "/microdot", "/websockets"]
    head += ["target", "met"]
    rows = [head, ["---"] * len(head)]
    for f in figures:
        v, r = f["values"], f["ratios"]
        row = [f["label"], f["unit"]] + [_fmt(v[k]) if k in v else "" for k in ("microws",) + REFS]
        row += ["%.2fx" % r[k] if r.get(k) is not None else "" for k in REFS]
        met = {True: "yes", False: "NO", None: ""}[f["met"]]
        row += [_target_text(f), met]
        rows.append(row)
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    return "\n".join("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |" for row in rows)


def environment():
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "cores": os.cpu_count(),
        "cpu": _cpu_model(),
        "loadavg": open("/proc/loadavg").read().split()[:3],
        "micropython": subprocess.run(
            [str(MICROPYTHON), "-c", 'import sys; print(sys.version.split("; ")[-1])'], capture_output=True, text=True
        ).stdout.strip(),
        "python": sys.version.split()[0],
        "lib": _lib_version(),
    }


def _git(*a):
    return subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True).stdout.strip()


def use_head_lib():
    """Measure lib/ as committed at HEAD (a snapshot in a temp dir), not the working tree."""
    global MICROWS_LIB, _LIB_LABEL
    d = Path(tempfile.mkdtemp(prefix="bench-lib-"))
    archive = subprocess.run(["git", "archive", "HEAD", "lib"], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(d)], input=archive, check=True)
    MICROWS_LIB = d / "lib"
    _LIB_LABEL = "lib at commit %s (HEAD snapshot)" % _git("log", "-1", "--format=%h", "--", "lib")
    return d


_LIB_LABEL = None


def _lib_version():
    """Which microws was measured: the commit, and whether lib/ had uncommitted changes."""
    if _LIB_LABEL:
        return _LIB_LABEL
    if MICROWS_LIB != ROOT / "lib":
        return "copy at %s" % MICROWS_LIB
    git = _git

    dirty = git("status", "--porcelain", "--", "lib")
    return "lib at commit %s%s" % (git("rev-parse", "--short", "HEAD"), " + uncommitted changes" if dirty else "")


def _cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


def save(name, figures, extra=None):
    """Write bench/results/<name>.json (and a timestamped copy); returns the path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    doc = {"env": environment(), "figures": figures}
    if extra:
        doc.update(extra)
    text = json.dumps(doc, indent=2)
    path = RESULTS / ("%s.json" % name)
    path.write_text(text)
    (RESULTS / ("%s-%s.json" % (name, time.strftime("%Y%m%d-%H%M%S")))).write_text(text)
    return path


def cli(name, run, doc, argv=None):
    """Command line of a lib_*.py benchmark: run it, print the table, save JSON."""
    import argparse

    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=0.8, help="duration of each round")
    ap.add_argument("--rounds", type=int, default=3, help="rounds per figure (the best counts)")
    args = ap.parse_args(argv)
    pin_self()
    figs, raw = run(args.seconds, args.rounds)
    print(table(figs))
    print("results:", save(name, figs, {"raw": raw}))
