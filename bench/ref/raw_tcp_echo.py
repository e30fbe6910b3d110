"""Raw-TCP asyncio echo in MicroPython: the ceiling for the library benchmarks (no framing).

    micropython raw_tcp_echo.py server PORT
    micropython raw_tcp_echo.py client PORT SIZE SECONDS [fresh]   (echo SIZE-byte blocks, print JSON)

The server reads into one shared preallocated buffer and writes each chunk straight back
(skipping drain() when the kernel took everything, as microws does); the client
writes a SIZE-byte block and reads SIZE bytes back, over and over. TCP_NODELAY on
both, like microws. CPU time comes from /proc/self/stat (unix port); run with
bench/mp on MICROPYPATH (benchutil).
"""

import asyncio
import sys

from benchutil import Timer


def nodelay(sock):
    try:
        sock.setsockopt(6, 1, 1)  # IPPROTO_TCP, TCP_NODELAY
    except (OSError, AttributeError):
        pass


# One read buffer for every connection (as microws does): each chunk is written (or
# copied into the stream's out_buf) before the next await, so no two tasks overlap.
BUF = bytearray(65536)
MV = memoryview(BUF)


async def echo(reader, writer):
    nodelay(writer.s)
    buf, mv = BUF, MV
    try:
        while True:
            n = await reader.readinto(buf)
            if not n:
                break
            writer.write(mv[:n])
            if writer.out_buf:
                await writer.drain()
    except OSError:
        pass
    writer.close()
    await writer.wait_closed()


async def server(port):
    await asyncio.start_server(echo, "127.0.0.1", port, backlog=64)
    print("READY", port)
    while True:
        await asyncio.sleep(3600)


async def client(port, size, seconds, fresh=False):
    # fresh: read each echo into a new buffer, as a WebSocket recv() that returns the
    # message must; on MicroPython that costs a garbage collection per big message.
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    nodelay(writer.s)
    payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
    buf = bytearray(size)
    mv = memoryview(buf)
    timer = Timer(seconds)
    while True:
        writer.write(payload)
        await writer.drain()
        if fresh:
            buf = bytearray(size)
            mv = memoryview(buf)
        got = 0
        while got < size:
            k = await reader.readinto(mv[got:])
            if not k:
                raise OSError("peer closed")
            got += k
        if timer.n == 0 and buf != payload:
            raise ValueError("echo mismatch")
        if not timer.tick():
            break
    timer.report()
    writer.close()
    await writer.wait_closed()


if __name__ == "__main__":
    if sys.argv[1] == "server":
        asyncio.run(server(int(sys.argv[2])))
    else:
        asyncio.run(client(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), sys.argv[5:] == ["fresh"]))
