"""A fast CPython echo peer for the client benchmarks (never the bottleneck).

    python fast_peer.py raw PORT     plain TCP echo
    python fast_peer.py ws PORT      WebSocket echo (server side of RFC 6455)

Blocking sockets, one thread per connection, big buffered reads, C unmasking
(``websockets.speedups``) and one ``sendall`` per echoed frame.
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


def ws_echo(conn):
    f = conn.makefile("rb", buffering=1 << 20)
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        line = f.readline()
        if not line:
            return
        head += line
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
    while True:
        hdr = f.read(2)
        if len(hdr) < 2:
            return
        op = hdr[0] & 0x0F
        n = hdr[1] & 0x7F
        if n == 126:
            n = struct.unpack("!H", f.read(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", f.read(8))[0]
        key = f.read(4) if hdr[1] & 0x80 else None
        payload = f.read(n)
        if key is not None:
            payload = apply_mask(payload, key)
        if op == 9:  # ping -> pong
            op = 10
        if n < 126:
            out = struct.pack("!BB", 0x80 | op, n)
        elif n < 65536:
            out = struct.pack("!BBH", 0x80 | op, 126, n)
        else:
            out = struct.pack("!BBQ", 0x80 | op, 127, n)
        conn.sendall(out + payload)
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
