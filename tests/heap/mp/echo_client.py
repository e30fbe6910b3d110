"""MicroPython peer for heap-capped runs: a microws client doing echo round trips.

Usage: micropython -X heapsize=32k echo_client.py ws://127.0.0.1:PORT [n=100] [size=64]
Alternates text and binary messages of ``size`` bytes, checks every echo, prints
``DONE <n> <lowest gc.mem_free seen>``.
"""

import asyncio
import gc
import sys

import microws


async def main():
    url = sys.argv[1]
    n, size = 100, 64
    for a in sys.argv[2:]:
        k, _, v = a.partition("=")
        if k == "n":
            n = int(v)
        elif k == "size":
            size = int(v)
    text = ("0123456789abcdef" * (size // 16 + 1))[:size]
    data = text.encode()
    low = gc.mem_free()
    ws = await microws.connect(url, ping_interval=None)
    for i in range(n):
        msg = text if i & 1 else data
        await ws.send(msg)
        got = await ws.recv()
        if got != msg:
            raise AssertionError("round trip %d: echo differs" % i)
        free = gc.mem_free()
        if free < low:
            low = free
    await ws.close()
    print("DONE", n, low)


asyncio.run(main())
