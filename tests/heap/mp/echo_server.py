"""MicroPython peer for heap-capped runs: a microws echo server on 127.0.0.1.

Usage: micropython -X heapsize=64k echo_server.py [max_size=N] [oom_http=1] [drop=1]
Prints ``PORT <n>``. The text ``!mem`` is not echoed: the answer is the heap in use
after a collection (``gc.mem_alloc()``), for the per-connection figures in bench/.
A MemoryError anywhere is printed (the tests look for it) and never silent.
``oom_http=1``: plain HTTP requests run out of memory (a MemoryError raised where a
real page would allocate), to check the server survives and drops that connection.
``ping=S``: ``ping_interval`` (0: None, no keepalive; default: the library's).
``drop=1``: the handler is ``while True: await ws.send(await ws.recv())``, which holds
no message while it waits for the next (``async for msg`` keeps the last one).
"""

import asyncio
import gc
import sys

import microws


async def echo(ws):
    async for msg in ws:
        if msg == "!mem":
            gc.collect()
            await ws.send(str(gc.mem_alloc()))
        else:
            await ws.send(msg)


async def echo_dropping(ws):
    while True:
        await ws.send(await ws.recv())


def oom_http(request):
    raise MemoryError("simulated: no heap left to build the page")


async def main():
    max_size = 65536
    http = None
    handler = echo
    kw = {}
    for a in sys.argv[1:]:
        if a.startswith("max_size="):
            max_size = int(a[9:])
        elif a.startswith("ping="):
            kw["ping_interval"] = int(a[5:]) or None
        elif a == "oom_http=1":
            http = oom_http
        elif a == "drop=1":
            handler = echo_dropping
    server = await microws.serve(handler, "127.0.0.1", 0, max_size=max_size, http_handler=http, **kw)
    print("PORT", server.port)
    await asyncio.Event().wait()


asyncio.run(main())
