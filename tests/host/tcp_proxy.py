"""A TCP proxy between nodes and a bridge, so tests can break links from the server side.

``cut()`` resets every current connection (RST, as when a bridge host drops it);
``stall()`` stops forwarding on every current connection but keeps the sockets open,
so TCP reports nothing and only a keepalive can notice. New connections work normally.
"""

import asyncio
import socket
import struct


class TcpProxy:
    def __init__(self, target_port, target_host="127.0.0.1"):
        self.target = (target_host, target_port)
        self.pipes = []  # [client_writer, upstream_writer, stalled(list of one bool)]
        self.accepted = 0
        self.server = None
        self.port = None

    async def start(self):
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self):
        self.cut()
        self.server.close()
        await self.server.wait_closed()

    async def _accept(self, client_r, client_w):
        self.accepted += 1
        try:
            up_r, up_w = await asyncio.open_connection(*self.target)
        except OSError:
            _reset(client_w)
            return
        stalled = [False]
        pipe = (client_w, up_w, stalled)
        self.pipes.append(pipe)
        try:
            await asyncio.gather(_pump(client_r, up_w, stalled), _pump(up_r, client_w, stalled))
        finally:
            if pipe in self.pipes:
                self.pipes.remove(pipe)

    def cut(self):
        """Reset every current connection (both sides)."""
        for client_w, up_w, _ in list(self.pipes):
            _reset(client_w)
            _reset(up_w)
        self.pipes.clear()

    def stall(self):
        """Freeze every current connection: nothing flows, nothing is closed."""
        for _, _, stalled in self.pipes:
            stalled[0] = True

    @property
    def live(self):
        """How many connections are currently forwarded (not stalled)."""
        return sum(1 for p in self.pipes if not p[2][0])


async def _pump(reader, writer, stalled):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            if stalled[0]:
                await asyncio.Event().wait()  # hold the data forever (until cancelled)
            writer.write(data)
            await writer.drain()
    except (OSError, asyncio.IncompleteReadError):
        pass
    finally:
        if not stalled[0]:
            try:
                writer.close()
            except OSError:
                pass


def _reset(writer):
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:  # linger 0: close sends RST, not FIN
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.transport.abort()
