"""CPython ``websockets`` echo server: a reference for the library benchmarks.

python websockets_echo.py PORT MAX_SIZE
"""

import asyncio
import sys

from websockets.asyncio.server import serve


async def echo(ws):
    async for message in ws:
        await ws.send(message)


async def main(port, max_size):
    async with serve(echo, "127.0.0.1", port, max_size=max_size, compression=None, ping_interval=None):
        print("READY", port, flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
