"""Sending one message as several frames: imported only when ``send`` gets an iterable.

Kept out of ``connection`` so boards that never fragment do not carry it in RAM.
"""

from .errors import error_text
from .frames import const  # MicroPython's, or a stand-in on CPython

# Error texts, by number into texts.T (see errors.error_text).
_E_NO_FRAGMENTS = const(43)
_E_PART_TYPE = const(44)
_E_PARTS_MIXED = const(45)

# RFC 6455 numbers this module uses, as private const()s: see the note in frames.py.
_OP_CONT = const(0)
_OP_TEXT = const(1)
_OP_BINARY = const(2)


async def send_fragments(ws, parts):
    """Send the items of ``parts`` (str, or bytes-like; sync or async iterable) as one message."""
    # Hold the writer over the whole message: no other data frame may interleave
    # (control frames from the reader queue up behind it).
    await ws._acquire_write()
    try:
        op = 0
        prev = None
        if hasattr(parts, "__aiter__"):
            async for part in parts:
                op = await _fragment(ws, op, prev)
                prev = part
        else:
            for part in parts:
                op = await _fragment(ws, op, prev)
                prev = part
        if prev is None:
            raise TypeError(error_text(_E_NO_FRAGMENTS))
        await _fragment(ws, op, prev, True)
    finally:
        ws._release(False)


async def _fragment(ws, op, part, last=False):
    # One frame behind, so the last one can carry FIN.
    if part is None:
        return op
    if isinstance(part, str):
        kind, part = _OP_TEXT, part.encode()
    elif isinstance(part, (bytes, bytearray, memoryview)):
        kind = _OP_BINARY
    else:
        raise TypeError(error_text(_E_PART_TYPE))
    if op and op != kind:
        raise TypeError(error_text(_E_PARTS_MIXED))
    ws._check_sendable()
    ws.proto.send_frame(_OP_CONT if op else kind, part, last)
    await ws._write_out()
    return kind
