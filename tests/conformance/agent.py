"""The echo agent the conformance cases run against, under MicroPython or CPython.

``agent.py server MAX_SIZE``: a microws server on 127.0.0.1 (free port, printed as
``PORT <n>``) echoing every message of every connection until killed.
``agent.py client MAX_SIZE``: for each ``ws://`` URL read from stdin, a microws client
connects, echoes every message until the connection ends, and prints
``DONE <close code>``.
"""

import asyncio
import sys

import microws


async def echo(ws):
    async for msg in ws:
        await ws.send(msg)


async def serve(max_size):
    server = await microws.serve(echo, "127.0.0.1", 0, max_size=max_size)
    print("PORT", server.port)
    await asyncio.Event().wait()  # serve until the test kills the process


async def client_case(url, max_size):
    try:
        ws = await microws.connect(url, max_size=max_size)
    except Exception as e:
        print("DONE refused", repr(e))
        return
    try:
        await echo(ws)
    except microws.ConnectionClosed:
        pass  # a failed case: the close code says why
    print("DONE", ws.close_code)


def main():
    role, max_size = sys.argv[1], int(sys.argv[2])
    if role == "server":
        asyncio.run(serve(max_size))
        return
    while True:
        line = sys.stdin.readline()
        if not line:
            return
        asyncio.run(client_case(line.strip(), max_size))


main()
