"""Library benchmark: microws as a client (MicroPython) against a fast CPython echo peer.

The client under test runs pinned to core 0; the peer (bench/ref/fast_peer.py:
blocking sockets, C unmasking) to core 1. Figures: 64 KiB and 1 MiB message echo
in MB/s of payload (one direction) and client CPU per message, against a raw-TCP
MicroPython client echoing the same sizes through the same peer without framing.
A 1 MiB echo client holds its message and the echo (2 MiB, more than the default
heap) for either client, so that one runs with ``-X heapsize=4M``.

    python bench/lib_client.py [--seconds S]
"""

import sys

from harness import (
    CLK_TCK,
    LOAD_CORE,
    MIB,
    SERVER_CORE,
    BenchError,
    cli,
    errors,
    figure,
    mbps,
    ms_per_msg,
    run_client,
    server,
    values,
)

SIZES = (("client64k", 65536, None), ("client1m", MIB, "4M"))


def bench_clients(seconds, rounds):
    """{kind: {name: [rounds] or None}} for the microws and raw clients, rounds interleaved
    between them (a load spike on the shared machine hits both alike)."""
    res = {"microws": {}, "raw": {}}
    with server("peer-ws", core=LOAD_CORE) as (_, ws_port), server("peer-raw", core=LOAD_CORE) as (_, raw_port):
        for name, size, heap in SIZES:
            for _ in range(rounds):
                for kind, r in res.items():
                    if name in r and r[name] is None:
                        continue  # failed before
                    try:
                        if kind == "microws":
                            url = "ws://127.0.0.1:%d/" % ws_port
                            out = run_client(kind, SERVER_CORE, url, size, seconds, 2 * MIB, heap=heap)
                        else:
                            out = run_client(kind, SERVER_CORE, raw_port, size, seconds, heap=heap)
                    except (BenchError, OSError) as e:
                        r[name] = None
                        r.setdefault("errors", {})[name] = "%s: %s" % (type(e).__name__, e)
                        continue
                    out["cpu"] = out.pop("cpu_ticks") / CLK_TCK
                    out["size"] = size
                    r.setdefault(name, []).append(out)
    return res


def figures(results):
    return [
        figure(
            "client_64k_mbps",
            "64 KiB echo as client",
            "MB/s",
            values(results, "client64k", mbps, "high"),
            "high",
            ("raw", 0.5),
            errors(results, "client64k"),
        ),
        figure(
            "client_64k_cpu_ms",
            "64 KiB echo: client CPU per message",
            "ms",
            values(results, "client64k", ms_per_msg, "low"),
            "low",
        ),
        figure(
            "client_1m_mbps",
            "1 MiB echo as client (4 MiB heap)",
            "MB/s",
            values(results, "client1m", mbps, "high"),
            "high",
            ("raw", 0.5),
            errors(results, "client1m"),
        ),
    ]


def run(seconds=0.8, rounds=3):
    """All client figures; returns (figures, raw results)."""
    results = bench_clients(seconds, rounds)
    return figures(results), results


def main(argv=None):
    cli("lib_client", run, __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
