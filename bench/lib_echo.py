"""Library benchmark: microws as an echo server against raw TCP, microdot and websockets.

Figures (server pinned to core 0, this load generator to core 1, same run):
  - server CPU per 64-byte ping-pong message, and ping-pong messages/s;
  - pipelined 64-byte echoes/s (up to 256 in flight) and server CPU per echo;
  - 64 KiB and 1 MiB message echo, MB/s of payload (one direction) and server CPU.
The raw-TCP reference echoes the same payload sizes without framing.

    python bench/lib_echo.py [--seconds S]
"""

import sys

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


def _message(kind, size):
    """(bytes to send, bytes expected back) for one message of ``size`` payload bytes."""
    p = payload_of(size)
    if kind == "raw":
        return p, size
    return masked_frame(p), server_frame_len(size)


def _try(res, name, fn):
    try:
        res[name] = fn()
    except (BenchError, OSError) as e:
        res[name] = None
        res.setdefault("errors", {})[name] = "%s: %s" % (type(e).__name__, e)


def bench_server(kind, seconds, rounds, style=None, sizes=(("echo64k", 65536), ("echo1m", MIB))):
    """Every echo measurement against one server ``kind``; returns {name: [rounds] or None}."""
    res = {}
    extra = (style,) if style else ()
    with server(kind, 2 * MIB, *extra) as (proc, port):
        if style is None:
            out, rl = _message(kind, 64)

            def small():
                s = _conn(kind, port)
                try:
                    pingpong(s, out, rl, 0.2)  # warm-up
                    pp = measure(proc, pingpong, s, out, rl, seconds, rounds=rounds, size=64)
                    pl = measure(proc, pipelined, s, out, rl, seconds, rounds=rounds, size=64)
                finally:
                    _close(kind, s)
                return pp, pl

            _try(res, "small", small)
            if res.get("small"):
                res["pingpong"], res["pipelined"] = res.pop("small")

        for name, size in sizes:

            def big(size=size):
                o, n_back = _message(kind, size)
                s = _conn(kind, port)
                try:
                    args = (s, o, n_back, seconds, payload_of(size), 2)
                    return measure(proc, bulk_echo, *args, rounds=rounds, size=size)
                finally:
                    _close(kind, s)

            _try(res, name, big)
    if res.get("errors"):
        res["server_output"] = proc.output
        died = [ln for ln in proc.output.splitlines() if "Error" in ln]
        if died:
            for name in res["errors"]:
                res["errors"][name] += " (server: %s)" % died[-1].strip()
    return res


def figures(results):
    return [
        figure(
            "pingpong_cpu_us",
            "64 B ping-pong: server CPU per message",
            "us",
            values(results, "pingpong", us_per_msg, "low"),
            "low",
            ("raw", 1.3),
            errors(results, "small"),
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
            values(results, "echo1m", mbps, "high"),
            "high",
            ("raw", 0.5),
            errors(results, "echo1m"),
        ),
        figure(
            "server_1m_for_mbps",
            "1 MiB echo, `async for` handler",
            "MB/s",
            {"microws": values(results, "echo1m_for", mbps, "high").get("microws-for")},
            "high",
            notes=errors(results, "echo1m_for"),
        ),
    ]


def run(seconds=0.8, rounds=3, kinds=KINDS):
    """All echo figures; returns (figures, raw results)."""
    results = {kind: bench_server(kind, seconds, rounds) for kind in kinds}
    if "microws" in kinds:
        # The same server with the `async for` handler, 1 MiB only.
        results["microws-for"] = bench_server("microws", seconds, 1, "for", (("echo1m_for", MIB),))
    return figures(results), results


def main(argv=None):
    cli("lib_echo", run, __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
