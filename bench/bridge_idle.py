"""Connections held: N idle devices on one bridge, RSS per connection.

Each device opens /device, says hello and then stays silent. The bridge's resident
memory is read before and after; the same is done, in the same run, with the plain
aiohttp server of bridge_fanout (WebSocket connections with no protocol state) as the
reference.

    .venv/bin/python bench/bridge_idle.py [--devices 5000]
"""

import argparse
import json
import time
import urllib.request

from bridge_load import (
    LOAD_CORE,
    ROOT,
    bridge_command,
    ceiling_command,
    pin_self,
    raise_nofile,
    rss_bytes,
    start_server,
    stop_server,
    text_frame,
    ws_open,
)

MIB = 1 << 20


def metric_value(port, name):
    """One unlabelled sample from the bridge's /metrics."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return 0.0


def hold(name, cmd, devices, is_bridge, settle_timeout=60):
    """Open ``devices`` idle connections to a server; returns its figures."""
    proc, port = start_server(cmd)
    socks = []
    try:
        time.sleep(0.5)  # let the fresh process finish importing before the baseline
        before = rss_bytes(proc.pid)
        t0 = time.monotonic()
        for i in range(devices):
            sock, _ = ws_open(port, "/device")
            hello = {
                "t": "hello",
                "id": f"idle-{i:05d}",
                "board": "bench",
                "fw": "0",
                "boot": "b",
                "sensors": {"t": "C"},
            }
            sock.setblocking(True)
            sock.sendall(text_frame(json.dumps(hello).encode()))
            socks.append(sock)
        connect_seconds = time.monotonic() - t0
        if is_bridge:  # every hello processed: the registry holds them all
            deadline = time.monotonic() + settle_timeout
            while metric_value(port, "microws_device_connections") < devices:
                if time.monotonic() > deadline:
                    raise SystemExit("the bridge did not register every device in time")
                time.sleep(0.2)
        else:
            time.sleep(1.0)  # the reference has no state to wait for; let its reads finish
        after = rss_bytes(proc.pid)
    finally:
        for sock in socks:
            sock.close()
        stop_server(proc)
    return {
        "server": name,
        "devices": devices,
        "rss_before_mib": before / MIB,
        "rss_after_mib": after / MIB,
        "kib_per_connection": (after - before) / devices / 1024,
        "connect_seconds": connect_seconds,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=5000)
    args = parser.parse_args()
    limit = raise_nofile(args.devices * 2 + 1000)
    if limit < args.devices + 100:
        raise SystemExit(f"RLIMIT_NOFILE is {limit}; {args.devices} connections need more")
    pin_self(LOAD_CORE)
    flags = ["--max-devices", str(args.devices * 2), "--keepalive", "60"]
    results = [
        hold("reference (plain aiohttp)", ceiling_command(), args.devices, False),
        hold("microws bridge", bridge_command(*flags), args.devices, True),
    ]
    print(f"idle devices held: {args.devices}")
    print(f"{'server':28} {'RSS before':>10} {'RSS after':>10} {'KiB/conn':>9} {'connect s':>9}")
    for r in results:
        print(
            f"{r['server']:28} {r['rss_before_mib']:8.1f}Mi {r['rss_after_mib']:8.1f}Mi "
            f"{r['kib_per_connection']:9.1f} {r['connect_seconds']:9.1f}"
        )
    ref, bridge = results
    print(f"bridge / reference memory per connection: x{bridge['kib_per_connection'] / ref['kib_per_connection']:.2f}")
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "bridge_idle.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
