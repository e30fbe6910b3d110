"""Library benchmark: microws as an echo server against raw TCP, microdot and websockets.

Figures (server pinned to core 0, this load generator to core 1, same run):
  - server CPU per 64-byte ping-pong message, and ping-pong messages/s;
  - pipelined 64-byte echoes/s (up to 256 in flight) and server CPU per echo;
  - 64 KiB and 1 MiB message echo, MB/s of payload (one direction) and server CPU;
  - 1 MiB text message echo (ASCII, JSON-like): UTF-8 checked, made a str.
The raw-TCP reference echoes the same payload sizes without framing.

    python bench/lib_echo.py [--seconds S]
"""

import sys
from contextlib import ExitStack

from harness import (
    MIB,
    BenchError,
    bulk_echo,
    cli,
    errors,
    figure,
    masked_frame,
    mbps,
    measure,
    ms_per_msg,
    payload_of,
    pingpong,
    pipelined,
    rate,
    server,
    server_frame_len,
    tcp_open,
    us_per_msg,
    values,
    ws_close,
    ws_open,
)

KINDS = ("microws", "raw", "microdot", "websockets")


def _conn(kind, port):
    return tcp_open(port) if kind == "raw" else ws_open(port)


def _close(kind, s):
    if kind == "raw":
        s.close()
    else:
        ws_close(s)


def _payload(test, size):
    if test.endswith("text"):
        return (b'{"t": 21.5, "rh": 40.25, "lux": 312} ' * (size // 37 + 1))[:size]
    return payload_of(size)


def _message(kind, size, test=""):
    """(bytes to send, bytes expected back) for one message of ``size`` payload bytes."""
    p = _payload(test, size)
    if kind == "raw":
        return p, size
    return masked_frame(p, 1 if test.endswith("text") else 2), server_frame_len(size)


TESTS = (("pingpong", 64), ("pipelined", 64), ("echo64k", 65536), ("echo1m", MIB), ("echo1mtext", MIB))


def _fail(res, test, e):
    res[test] = None
    res.setdefault("errors", {})[test] = "%s: %s" % (type(e).__name__, e)


def _one_round(test, kind, proc, s, seconds, size):
    out, rl = _message(kind, size, test)
    if test == "pingpong":
        return measure(proc, pingpong, s, out, rl, seconds, size=size)
    if test == "pipelined":
        return measure(proc, pipelined, s, out, rl, seconds, size=size)
    return measure(proc, bulk_echo, s, out, rl, seconds, _payload(test, size), 2, size=size)


def bench_servers(configs, tests, seconds, rounds):
    """Run ``tests`` against every server in ``configs`` ({label: (kind, extra args, heap)}),
    all started up front, each round interleaved across them so that a load spike on
    the shared machine hits every implementation alike. Returns {label: {test: [rounds]
    or None, "errors": {test: text}}}."""
    res = {label: {} for label in configs}
    live = {}
    with ExitStack() as stack:
        for label, (kind, extra, heap) in configs.items():
            try:
                live[label] = (kind, *stack.enter_context(server(kind, 2 * MIB, *extra, heap=heap)))
            except BenchError as e:
                for test, _ in tests:
                    _fail(res[label], test, e)
        for test, size in tests:
            conns = {}
            for label, (kind, _, port) in live.items():
                try:
                    s = _conn(kind, port)
                    if size == 64:
                        pingpong(s, *_message(kind, 64), 0.1)  # warm-up
                    conns[label] = s
                except (BenchError, OSError) as e:
                    _fail(res[label], test, e)
            for _ in range(rounds):
                for label, s in list(conns.items()):
                    kind, proc, _ = live[label]
                    try:
                        res[label].setdefault(test, []).extend(_one_round(test, kind, proc, s, seconds, size))
                    except (BenchError, OSError) as e:
                        _fail(res[label], test, e)
                        del conns[label]
                        s.close()
            for label, s in conns.items():
                _close(live[label][0], s)
    for label, (_, proc, _) in live.items():  # why a server failed: its last error line
        errs = res[label].get("errors")
        died = [ln.strip() for ln in proc.output.splitlines() if "Error" in ln]
        if errs and died:
            for test in errs:
                errs[test] += " (server: %s)" % died[-1]
    return res


def figures(results):
    echo1m = values(results, "echo1m", mbps, "high")
    e1m = errors(results, "echo1m")
    return [
        figure(
            "pingpong_cpu_us",
            "64 B ping-pong: server CPU per message",
            "us",
            values(results, "pingpong", us_per_msg, "low"),
            "low",
            ("raw", 1.3),
            errors(results, "pingpong"),
        ),
        figure(
            "pingpong_rate", "64 B ping-pong: round trips/s", "msg/s", values(results, "pingpong", rate, "high"), "high"
        ),
        figure(
            "pipelined_rate",
            "64 B pipelined echoes/s",
            "msg/s",
            values(results, "pipelined", rate, "high"),
            "high",
            ("microdot", 3),
        ),
        figure(
            "pipelined_cpu_us",
            "64 B pipelined: server CPU per message",
            "us",
            values(results, "pipelined", us_per_msg, "low"),
            "low",
        ),
        figure(
            "server_64k_mbps",
            "64 KiB echo as server",
            "MB/s",
            values(results, "echo64k", mbps, "high"),
            "high",
            ("raw", 0.5),
            errors(results, "echo64k"),
        ),
        figure(
            "server_64k_cpu_ms",
            "64 KiB echo: server CPU per message",
            "ms",
            values(results, "echo64k", ms_per_msg, "low"),
            "low",
        ),
        figure(
            "server_1m_mbps",
            "1 MiB echo as server (default heap)",
            "MB/s",
            {k: v for k, v in echo1m.items() if k in KINDS},
            "high",
            ("raw", 0.5),
            {k: v for k, v in e1m.items() if k in KINDS},
        ),
        figure(
            "server_1m_text_mbps",
            "1 MiB text echo as server (default heap)",
            "MB/s",
            values(results, "echo1mtext", mbps, "high"),
            "high",
            ("raw", 0.5),
            errors(results, "echo1mtext"),
        ),
        figure(
            "server_1m_3m_mbps",
            "1 MiB echo as server, 3 MiB heap",
            "MB/s",
            {
                "microws": echo1m.get("microws-3m"),
                "raw": echo1m.get("raw"),
            },
            "high",
            notes={k: v for k, v in e1m.items() if k == "microws-3m"},
        ),
        figure(
            "server_1m_for_mbps",
            "1 MiB echo, `async for` handler (default heap)",
            "MB/s",
            {"microws": echo1m.get("microws-for")},
            "high",
            notes={k: v for k, v in e1m.items() if k == "microws-for"},
        ),
    ]


def run(seconds=0.8, rounds=3, kinds=KINDS):
    """All echo figures; returns (figures, raw results)."""
    configs = {k: (k, ("while",) if k == "microws" else (), None) for k in kinds}
    results = bench_servers(configs, TESTS, seconds, rounds)
    if "microws" in kinds:
        # 1 MiB again: with the `async for` handler, and with room for two 1 MiB
        # buffers (-X heapsize=3M; the default heap is about 1.98 MiB).
        more = {"microws-for": ("microws", ("for",), None), "microws-3m": ("microws", ("while",), "3M")}
        results.update(bench_servers(more, (("echo1m", MIB),), seconds, rounds))
    return figures(results), results


def main(argv=None):
    cli("lib_echo", run, __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
