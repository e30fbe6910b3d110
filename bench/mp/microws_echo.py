"""microws under test (MicroPython): an echo server, or an echo-loop client.

    micropython microws_echo.py server PORT MAX_SIZE [for]     (prints "READY <port>")
    micropython microws_echo.py client URL SIZE SECONDS MAX_SIZE   (prints JSON)

The client sends a SIZE-byte binary message and waits for its echo, over and over,
for SECONDS; CPU time comes from /proc/self/stat (unix port).

The server's handler is ``while True: await ws.send(await ws.recv())``; with ``for``
it is ``async for message in ws: await ws.send(message)``, whose loop variable keeps
the previous message alive while the next one is received (two 1 MiB buffers, more
than the default heap holds).
"""

import asyncio
import sys

from benchutil import Timer

import microws


async def echo(ws):
    while True:
        await ws.send(await ws.recv())


async def echo_for(ws):
    async for message in ws:
        await ws.send(message)


async def server(port, max_size, style):
    handler = echo_for if style == "for" else echo
    srv = await microws.serve(handler, "127.0.0.1", port, max_size=max_size)
    print("READY", srv.port)
    while True:
        await asyncio.sleep(3600)


async def client(url, size, seconds, max_size):
    ws = await microws.connect(url, max_size=max_size, ping_interval=None)
    payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
    timer = Timer(seconds)
    while True:
        await ws.send(payload)
        echoed = await ws.recv()
        if timer.n == 0 and echoed != payload:
            raise ValueError("echo mismatch")
        if not timer.tick():
            break
    timer.report()
    await ws.close()


if __name__ == "__main__":
    a = sys.argv
    if a[1] == "server":
        asyncio.run(server(int(a[2]), int(a[3]), a[4] if len(a) > 4 else ""))
    else:
        asyncio.run(client(a[2], int(a[3]), float(a[4]), int(a[5])))
