"""Fan-out: 100 devices at 10 readings/s each, to 100 browsers, through the bridge.

Compared in the same run with the ceiling: a plain aiohttp server that forwards each
device text frame to every browser with no protocol at all (no JSON, no dedupe, no
registry, no queues). Reports delivered messages/s, board-to-browser latency p50/p99
(stamped by the load process at send, read at receive: one clock), and server CPU per
1,000 delivered messages; then the bridge/ceiling ratios.

    .venv/bin/python bench/bridge_fanout.py [--devices 100] [--browsers 100] [--rate 10] [--seconds 15]
"""

import argparse
import json
import resource
import selectors
import time

from bridge_load import (
    LOAD_CORE,
    ROOT,
    SENT_RE,
    bridge_command,
    ceiling_command,
    cpu_seconds,
    parse_frames,
    percentile,
    pin_self,
    raise_nofile,
    start_server,
    stop_server,
    text_frame,
    ws_open,
)

SAMPLED_BROWSERS = 10  # browsers whose every message is timed (the rest are counted)


def run_load(server_pid, port, devices, browsers, rate, warmup, seconds):
    """Drive one server; returns its figures."""
    sel = selectors.DefaultSelector()
    for i in range(browsers):
        sock, rest = ws_open(port, "/ws")
        sel.register(sock, selectors.EVENT_READ, ("browser", {"buf": bytearray(rest), "sampled": i < SAMPLED_BROWSERS}))
    device_socks = []
    for i in range(devices):
        sock, _ = ws_open(port, "/device")
        hello = {"t": "hello", "id": f"bench-{i}", "board": "bench", "fw": "0", "boot": "b", "sensors": {"v": ""}}
        sock.sendall(text_frame(json.dumps(hello).encode()))
        sel.register(sock, selectors.EVENT_READ, ("device", None))
        device_socks.append(sock)

    period = 1.0 / (devices * rate)  # one device sends every `period`, round robin
    seqs = [0] * devices
    start = time.time()
    measure_from, measure_to = start + warmup, start + warmup + seconds
    next_send, turn = start, 0
    delivered, latencies, send_stalls = 0, [], 0
    cpu_at_start = load_cpu_at_start = None
    while True:
        now = time.time()
        if now >= measure_to:
            break
        counting = now >= measure_from
        if counting and cpu_at_start is None:
            cpu_at_start = cpu_seconds(server_pid)
            load_cpu_at_start = resource.getrusage(resource.RUSAGE_SELF)
        while next_send <= now:
            i = turn % devices
            seqs[i] += 1
            payload = b'{"t":"tm","boot":"b","seq":%d,"ts":%d,"d":{"v":%d,"sent":%.6f}}' % (
                seqs[i],
                int(now * 1000),
                seqs[i],
                time.time(),
            )
            try:
                device_socks[i].send(text_frame(payload))
            except BlockingIOError:
                send_stalls += 1  # the server is not reading: overload
            turn += 1
            next_send += period
        for key, _ in sel.select(max(0.0, next_send - time.time())):
            kind, state = key.data
            try:
                data = key.fileobj.recv(1 << 18)
            except BlockingIOError:
                continue
            if kind == "device":  # acks: read and dropped so the bridge never blocks on them
                continue
            received_at = time.time()
            buf = state["buf"]
            buf += data
            timed = counting and state["sampled"]
            count, payloads, rest = parse_frames(buf, timed)
            state["buf"] = bytearray(rest)
            if counting:
                delivered += count
                if timed:
                    for p in payloads:
                        m = SENT_RE.search(p)
                        if m:
                            latencies.append(received_at - float(m.group(1)))
    cpu = cpu_seconds(server_pid) - cpu_at_start
    load = resource.getrusage(resource.RUSAGE_SELF)
    load_cpu = (load.ru_utime + load.ru_stime) - (load_cpu_at_start.ru_utime + load_cpu_at_start.ru_stime)
    for key in list(sel.get_map().values()):
        key.fileobj.close()
    latencies.sort()
    return {
        "delivered_per_s": delivered / seconds,
        "offered_per_s": devices * rate * browsers,
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "server_cpu_ms_per_1000": cpu * 1000 / max(1, delivered / 1000),
        "server_cpu_util": cpu / seconds,
        "load_cpu_util": load_cpu / seconds,
        "send_stalls": send_stalls,
    }


def measure(name, cmd, args):
    proc, port = start_server(cmd)
    try:
        figures = run_load(proc.pid, port, args.devices, args.browsers, args.rate, args.warmup, args.seconds)
    finally:
        stop_server(proc)
    figures["server"] = name
    return figures


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=100)
    parser.add_argument("--browsers", type=int, default=100)
    parser.add_argument("--rate", type=float, default=10.0, help="readings/s per device")
    parser.add_argument("--seconds", type=float, default=15.0, help="measured time per server")
    parser.add_argument("--warmup", type=float, default=3.0)
    args = parser.parse_args()
    raise_nofile()
    pin_self(LOAD_CORE)
    bridge_flags = ["--max-browsers", "10000", "--max-devices", "10000", "--device-rate", "1000", "--keepalive", "60"]
    results = [
        measure("ceiling (plain aiohttp broadcast)", ceiling_command(), args),
        measure("microws bridge", bridge_command(*bridge_flags), args),
    ]
    print(
        f"fan-out: {args.devices} devices x {args.rate:g}/s -> {args.browsers} browsers "
        f"(offered {args.devices * args.rate * args.browsers:,.0f} msgs/s), {args.seconds:g} s measured each"
    )
    print(f"{'server':36} {'msgs/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'cpu ms/1k':>9} {'srv cpu':>7} {'load cpu':>8}")
    for r in results:
        print(
            f"{r['server']:36} {r['delivered_per_s']:9,.0f} {r['p50_ms']:7.1f} {r['p99_ms']:7.1f} "
            f"{r['server_cpu_ms_per_1000']:9.1f} {r['server_cpu_util']:7.0%} {r['load_cpu_util']:8.0%}"
        )
    ceiling, bridge = results
    throughput_ratio = bridge["delivered_per_s"] / ceiling["delivered_per_s"]
    cpu_ratio = bridge["server_cpu_ms_per_1000"] / ceiling["server_cpu_ms_per_1000"]
    print(f"bridge / ceiling: throughput {throughput_ratio:.0%} (target >= 70%), CPU per message x{cpu_ratio:.2f}")
    print(f"bridge p99 {bridge['p99_ms']:.1f} ms (target < 50 ms)")
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "bridge_fanout.json").write_text(json.dumps({"args": vars(args), "results": results}, indent=2))


if __name__ == "__main__":
    main()
