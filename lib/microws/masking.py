"""Client frame output (RFC 6455 5.3): every frame masked with a fresh ``os.urandom`` key.

Only clients mask, so this is imported on a client's first send: a board that only
serves never carries it in RAM (MicroPython loads .mpy bytecode into the heap).
"""

import os

from .frames import apply_mask, encode_header
from .protocol import WRITE_CHUNK

try:
    from micropython import const  # pyright: ignore[reportAssignmentType]
except ImportError:  # CPython

    def const(x):  # pyright: ignore[reportRedeclaration]
        return x


# A frame up to this size is masked into one new buffer (header + payload): the copy
# is needed anyway (the caller's data must not change), and one write is cheaper.
# Bigger ones are masked chunk by chunk (WRITE_CHUNK bytes, as servers write them)
# into one buffer the connection keeps: a big allocation costs MicroPython's
# allocator ~35 us per 64 KiB (its first-fit search), as much as masking the payload.
MASK_WHOLE = const(16384)


def queue_masked(p, op, data, fin):
    """Queue one masked frame on Protocol ``p`` (``data`` is bytes-like)."""
    n = len(data)
    key = os.urandom(4)
    hdr = encode_header(op, n, fin, key)
    if n <= MASK_WHOLE:  # one buffer, one write
        h = len(hdr)
        frame = bytearray(h + n)
        frame[:h] = hdr
        frame[h:] = data
        apply_mask(memoryview(frame)[h:], key)
        p._emit(frame)
    else:
        p._emit(_masked_chunks(p, hdr, data, key))


def _masked_chunks(p, hdr, data, key):
    # The header goes out with the first chunk. Chunks are consumed one after the
    # other (the writer sends or copies each before asking for the next), so one
    # buffer serves every big frame of this connection.
    buf = p._mask_buf
    if buf is None:
        buf = p._mask_buf = bytearray(WRITE_CHUNK)
    mv = memoryview(buf)
    src = memoryview(data)
    n = len(src)
    h = len(hdr)
    mv[:h] = hdr
    i = 0
    while i < n:
        k = min(WRITE_CHUNK - h, n - i)
        mv[h : h + k] = src[i : i + k]
        r = i & 3  # mask phase at payload offset i
        apply_mask(mv[h : h + k], key[r:] + key[:r] if r else key)
        yield mv[: h + k]
        i += k
        h = 0
