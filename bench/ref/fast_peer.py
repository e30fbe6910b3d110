"""A fast CPython echo peer for the client benchmarks (never the bottleneck).

    python fast_peer.py raw PORT     plain TCP echo
    python fast_peer.py ws PORT      WebSocket echo (server side of RFC 6455)

Blocking sockets, one thread per connection, reads into one preallocated buffer,
C unmasking (``websockets.speedups``) and one ``sendmsg`` per echoed frame.
"""

import base64
import hashlib
import socket
import struct
import sys
import threading

from websockets.speedups import apply_mask

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def raw_echo(conn):
    buf = bytearray(1 << 20)
    mv = memoryview(buf)
    while True:
        n = conn.recv_into(buf)
        if not n:
            return
        conn.sendall(mv[:n])


class Reader:
    """Buffered reads into one preallocated buffer (grown for bigger frames): a view of
    the next ``n`` bytes costs no copy, only the recv_into() that fills it."""

    def __init__(self, conn):
        self.conn = conn
        self.buf = bytearray(1 << 21)
        self.mv = memoryview(self.buf)
        self.start = self.end = 0

    def take(self, n):
        """A view of the next ``n`` bytes (valid until the next call), or None at EOF."""
        if self.end - self.start < n:
            have = self.end - self.start
            if len(self.buf) - self.start < n:  # move the partial rest to the front
                if len(self.buf) < n:
                    self.buf = bytearray(max(n, 2 * len(self.buf)))
                    old, self.mv = self.mv, memoryview(self.buf)
                    self.mv[:have] = old[self.start : self.end]
                else:
                    self.mv[:have] = bytes(self.mv[self.start : self.end])
                self.start, self.end = 0, have
            while self.end - self.start < n:
                k = self.conn.recv_into(self.mv[self.end :])
                if not k:
                    return None
                self.end += k
        view = self.mv[self.start : self.start + n]
        self.start += n
        return view


def ws_echo(conn):
    f = conn.makefile("rb", buffering=0)
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        c = f.read(1)  # byte by byte: nothing past the head is consumed here
        if not c:
            return
        head += c
    key = b""
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"sec-websocket-key":
            key = value.strip()
    accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
    conn.sendall(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
    )
    r = Reader(conn)
    while True:
        hdr = r.take(2)
        if hdr is None:
            return
        b0, b1 = hdr[0], hdr[1]
        op = b0 & 0x0F
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", r.take(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", r.take(8))[0]
        key = bytes(r.take(4)) if b1 & 0x80 else None
        payload = r.take(n)
        if payload is None:
            return
        payload = apply_mask(payload, key) if key is not None else bytes(payload)
        if op == 9:  # ping -> pong
            op = 10
        if n < 126:
            out = struct.pack("!BB", 0x80 | op, n)
        elif n < 65536:
            out = struct.pack("!BBH", 0x80 | op, 126, n)
        else:
            out = struct.pack("!BBQ", 0x80 | op, 127, n)
        sent = conn.sendmsg([out, payload])  # header and payload in one call, no join
        if sent < len(out) + n:
            conn.sendall(memoryview(out + payload)[sent:])
        if op == 8:  # close echoed: server closes TCP first
            return


def serve(mode, port):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(64)
    print("READY", port, flush=True)
    target = raw_echo if mode == "raw" else ws_echo
    while True:
        conn, _ = ls.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def run(c=conn):
            try:
                target(c)
            except OSError:
                pass
            finally:
                c.close()

        threading.Thread(target=run, daemon=True).start()


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]))
