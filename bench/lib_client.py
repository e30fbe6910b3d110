"""Library benchmark: microws as a client (MicroPython) against a fast CPython echo peer.

The client under test runs pinned to core 0; the peer (bench/ref/fast_peer.py:
blocking sockets, C unmasking) to core 1. Figures: 64 KiB and 1 MiB message echo
in MB/s of payload (one direction) and client CPU per message, against a raw-TCP
MicroPython client echoing the same sizes through the same peer without framing.
A 1 MiB echo client holds its message and the echo (2 MiB, more than the default
heap) for either client, so that one runs with ``-X heapsize=4M``. One more reference
for it: the raw client reading each echo into a new buffer ("fresh"), as a recv() that
returns the message must; on MicroPython each such 1 MiB allocation costs a garbage
collection (the payload and the last echo, 2 MiB, are scanned every time).

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
FRESH = "client1m-fresh"  # the raw client, a new buffer per echo (results["raw"] only)


def bench_clients(seconds, rounds):
    """{kind: {name: [rounds] or None}} for the microws and raw clients, rounds interleaved
    between them (a load spike on the shared machine hits both alike)."""
    res = {"microws": {}, "raw": {}}
    runs = [(kind, name, size, heap) for name, size, heap in SIZES for kind in res]
    runs.append(("raw", FRESH, MIB, "4M"))
    with server("peer-ws", core=LOAD_CORE) as (_, ws_port), server("peer-raw", core=LOAD_CORE) as (_, raw_port):
        for _ in range(rounds):
            for kind, name, size, heap in runs:
                r = res[kind]
                if name in r and r[name] is None:
                    continue  # failed before
                try:
                    if kind == "microws":
                        url = "ws://127.0.0.1:%d/" % ws_port
                        out = run_client(kind, SERVER_CORE, url, size, seconds, 2 * MIB, heap=heap)
                    else:
                        fresh = ["fresh"] if name == FRESH else []
                        out = run_client(kind, SERVER_CORE, raw_port, size, seconds, *fresh, heap=heap)
                except (BenchError, OSError) as e:
                    r[name] = None
                    r.setdefault("errors", {})[name] = "%s: %s" % (type(e).__name__, e)
                    continue
                out["cpu"] = out.pop("cpu_ticks") / CLK_TCK
                out["size"] = size
                r.setdefault(name, []).append(out)
    return res


def figures(results):
    client1m = values(results, "client1m", mbps, "high")
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
            client1m,
            "high",
            ("raw", 0.5),
            errors(results, "client1m"),
        ),
        figure(
            "client_1m_vs_fresh_mbps",
            "1 MiB echo as client vs a raw client allocating each echo",
            "MB/s",
            {"microws": client1m.get("microws"), "raw": values(results, FRESH, mbps, "high").get("raw")},
            "high",
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
