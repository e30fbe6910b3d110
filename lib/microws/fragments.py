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
_CLOSE_INTERNAL_ERROR = const(1011)


async def send_fragments(ws, parts):
    """Send the items of ``parts`` (str, or bytes-like; sync or async iterable) as one message."""
    # One fragmented message at a time, and no other data frame between its frames
    # (send() waits while _sending_parts is set). The write turn is taken per frame, not
    # for the whole message: control frames (pongs, keepalive pings, a close) may go out
    # between the frames (RFC 6455 5.4), so a slow source of parts holds up neither the
    # reader's pongs nor the keepalive.
    while ws._sending_parts:
        await ws._wait_turn()
    ws._sending_parts = True
    sent = [0]  # the message's opcode once its first frame is out
    try:
        prev = None
        if hasattr(parts, "__aiter__"):
            async for part in parts:
                await _fragment(ws, sent, prev)
                prev = part
        else:
            for part in parts:
                await _fragment(ws, sent, prev)
                prev = part
        if prev is None:
            raise TypeError(error_text(_E_NO_FRAGMENTS))
        await _fragment(ws, sent, prev, True)
    except BaseException:
        # A part of the wrong type, the parts' source raising, a cancel: with frames of
        # the message out it can never be completed, and no other data frame may follow
        # them, so the connection fails (as websockets does).
        if sent[0] and ws.proto.close_sent is None:
            ws.proto.fail(_CLOSE_INTERNAL_ERROR, "message left unfinished")
        raise
    finally:
        ws._sending_parts = False
        ws._wake_all()


async def _fragment(ws, sent, part, last=False):
    # One frame behind, so the last one can carry FIN.
    if part is None:
        return
    if isinstance(part, str):
        kind, part = _OP_TEXT, part.encode()
    elif isinstance(part, (bytes, bytearray, memoryview)):
        kind = _OP_BINARY
    else:
        raise TypeError(error_text(_E_PART_TYPE))
    op = sent[0]
    if op and op != kind:
        raise TypeError(error_text(_E_PARTS_MIXED))
    await ws._acquire_write()
    try:
        ws._check_sendable()  # (a close may have gone out while this waited its turn)
        ws.proto.send_frame(_OP_CONT if op else kind, part, last)
        sent[0] = kind
        await ws._write_out()
    finally:
        ws._release(False)
