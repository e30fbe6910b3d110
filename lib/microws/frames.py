"""Sans-I/O framing (RFC 6455 section 5): opcodes, close codes, headers, masking, UTF-8.

Pure functions over bytes; no sockets. Hot paths use the viper versions in
``speedups`` when the port has a native emitter, else the plain ones in
``fallbacks`` (big-integer XOR for masking; never a per-byte loop on CPython).
"""

import struct

from .errors import ProtocolError, error_text

try:
    from micropython import const  # pyright: ignore[reportAssignmentType]
except ImportError:  # CPython

    def const(x):  # pyright: ignore[reportRedeclaration]
        return x


# The RFC 6455 numbers (opcodes 5.2, close codes 7.4.1, states of protocol.Protocol):
#   opcodes: 0 continuation, 1 text, 2 binary, 8 close, 9 ping, 10 pong;
#   close codes: 1000 normal, 1001 going away, 1002 protocol error, 1003 unsupported
#   data, 1005 no status (never sent), 1006 abnormal (never sent), 1007 invalid data,
#   1008 policy, 1009 too big, 1011 internal error; states: 1 open, 2 closing, 3 closed.
# Each module declares the ones it uses as private const()s (`_OP_TEXT = const(1)`):
# MicroPython inlines a const() only in its own module and keeps no name for a
# private one, while a public or imported name is a dictionary entry, an interned
# string and a lookup at every use (as public names here they cost ~1 KB of heap
# and 23 of the qstrs a board interns: bench/README.md). tests/device/test_frames.py
# checks that every copy has its RFC value.
_CLOSE_NO_STATUS = const(1005)
_CLOSE_INVALID_DATA = const(1007)
# Error texts, by number into texts.T (see errors.error_text).
_E_UTF8 = const(0)
_E_CLOSE_ONE_BYTE = const(1)
_E_CLOSE_CODE = const(2)

try:
    from .speedups import apply_mask as _mask_native
    from .speedups import utf8_scan as _scan_native
except (ImportError, SyntaxError):  # CPython, or a port without viper
    _mask_native = _scan_native = None


def encode_header(opcode, length, fin=True, mask_key=None):
    """Frame header bytes for a payload of ``length`` bytes (plus the mask key if given)."""
    b0 = opcode | 0x80 if fin else opcode
    mbit = 0x80 if mask_key else 0
    if length < 126:
        hdr = bytes((b0, length | mbit))
    elif length < 65536:
        hdr = struct.pack("!BBH", b0, 126 | mbit, length)
    else:
        hdr = struct.pack("!BBQ", b0, 127 | mbit, length)
    return hdr + mask_key if mask_key else hdr


if _mask_native is not None:
    # apply_mask(buf, n, key): XOR the first n bytes of a writable buffer in place
    # with the 4-byte mask key (no wrapper: one call less per frame).
    apply_mask = _mask_native
else:  # CPython, or a port without viper
    from .fallbacks import apply_mask  # noqa: F401 (the name protocol imports)


class Utf8Stream:
    """Incremental strict UTF-8 validator for text split across fragments (fails fast)."""

    def __init__(self):
        self.state = 0
        self._dec = None
        if _scan is None:
            import codecs

            self._dec = codecs.getincrementaldecoder("utf-8")()

    def feed(self, data, final=False):
        """True while ``data`` (continuing the previous chunks) can still be valid UTF-8."""
        if self._dec is not None:
            try:
                self._dec.decode(data, final)
            except UnicodeError:
                return False
            return True
        self.state = _scan(data, len(data), self.state)
        if self.state < 0:
            return False
        return not final or self.state == 0


if _scan_native is not None:
    _scan = _scan_native
elif hasattr(str, "isascii"):  # CPython: the codec is strict and fast
    _scan = None
else:  # a port without viper: the same check in plain Python (slow, but correct)
    from .fallbacks import utf8_scan as _scan


_adopt = None  # bigtext.adopt_text, once a big text has come


def decode_text(payload, checked=False):
    """The text of a complete message; strict UTF-8 or ProtocolError 1007 (``checked``:
    already validated, e.g. fragment by fragment).

    A big bytearray becomes the str itself on MicroPython (bigtext.adopt_text): no
    copy, so a text message needs its size once, not twice.
    """
    if not checked and _scan is not None and _scan(payload, len(payload), 0) != 0:
        raise ProtocolError(_E_UTF8, _CLOSE_INVALID_DATA)
    if _scan_native is not None and type(payload) is bytearray and len(payload) > 1024:
        global _adopt
        if _adopt is None:
            # Loaded after a collection (see connection.settle_heap): this code stays for
            # good, and the heap is likely full of garbage when the first big text comes.
            import gc

            gc.collect()
            from .bigtext import adopt_text

            _adopt = adopt_text
        s = _adopt(payload)
        if s is not None:
            return s
    try:
        return str(payload, "utf-8")
    except UnicodeError:
        raise ProtocolError(_E_UTF8, _CLOSE_INVALID_DATA)


def close_code_is_valid(code):
    """Codes a peer may send in a close frame (RFC 6455 7.4, IANA registry)."""
    if 1000 <= code <= 1014:
        return code not in (1004, 1005, 1006)
    return 3000 <= code <= 4999


def parse_close(payload):
    """(code, reason) of a close frame payload; 1005 when empty. Raises ProtocolError."""
    n = len(payload)
    if n == 0:
        return _CLOSE_NO_STATUS, ""
    if n == 1:
        raise ProtocolError(_E_CLOSE_ONE_BYTE)
    code = (payload[0] << 8) | payload[1]
    if not close_code_is_valid(code):
        raise ProtocolError(_E_CLOSE_CODE, 1002, code)
    return code, decode_text(payload[2:])


def build_close(code, reason=""):
    """Close frame payload; empty for 1005 (no status), else code + UTF-8 reason (<= 123 bytes).

    A code no endpoint may send (RFC 6455 7.4: 1004, 1006, 1015, under 1000, unassigned
    ones, 5000 and up) raises ValueError: the peer would fail the connection with 1002."""
    if code == _CLOSE_NO_STATUS:
        return b""
    if not close_code_is_valid(code):
        raise ValueError(error_text(_E_CLOSE_CODE, code))
    r = reason.encode() if isinstance(reason, str) else reason
    if len(r) > 123:  # cut on a character boundary so the reason stays valid UTF-8
        cut = 123
        while cut and (r[cut] & 0xC0) == 0x80:
            cut -= 1
        r = r[:cut]
    return struct.pack("!H", code) + r
