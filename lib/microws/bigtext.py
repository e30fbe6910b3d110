"""Big text messages made into a str without a copy (MicroPython only).

Imported by ``frames`` for a text payload in a bytearray with spare room, which the
protocol makes for text frames too big for the read buffer: ``str(buf, "utf-8")``
would copy it (a 1 MiB text message would need 2 MiB) and check its UTF-8 again
(3.9 ms per MiB on the unix port), after ``speedups.utf8_scan`` has checked it.
Its own module: the few boards that receive big text pay for it, not every board.
"""

import sys

import micropython
import uctypes

_W = 8 if sys.maxsize > 1 << 32 else 4


@micropython.viper
def _word(a: int, v: int) -> int:
    # The machine word at address a, first set to v unless v is -1. (uctypes' 64-bit
    # fields would allocate an int per read.)
    p = ptr32(a)  # type: ignore[name-defined]  # noqa: F821
    wide = int(_W) == 8
    if v != -1:
        p[0] = v
        if wide:
            p[1] = v >> 32
    if wide:
        return p[0] | (p[1] << 32)
    return p[0]


def adopt_text(buf):
    """A str sharing the memory of ``buf``, a bytearray of valid UTF-8, or None.

    The new str points at ``buf``'s data, with the NUL a str keeps after its end in
    ``buf``'s spare byte (the protocol leaves one after a big text; without one,
    MicroPython adds 8, in place when the heap allows). The str keeps all of ``buf``'s
    memory, spare room too (a fragmented message's buffer may be up to twice its
    text: a copy would need the text's size again while ``buf`` is held), and nobody
    may change ``buf`` afterwards.
    The fields after the type pointer are, for a bytearray: typecode | spare bytes
    << 8, len, items; for a str: hash, len, data.
    Both layouts are checked on every call (against ``len``, ``hash`` and the buffer
    address): a MicroPython that lays them out differently gets None, and a copy.
    """
    n = len(buf)
    buf.append(0)  # the NUL, in the spare byte (no reallocation when there is one)
    buf[n:] = b""
    a = id(buf) + _W
    kind = _word(a, -1)
    p = uctypes.addressof(buf)
    if kind & 0xFF != 1 or not kind >> 8 or _word(a + _W, -1) != n or _word(a + 2 * _W, -1) != p:
        return None
    # A new heap str to take over. Not an interned one: a text some loaded code holds
    # as a literal (this one once was, in client.parse_url) is an immediate object,
    # not a pointer, and reading "its" fields crashed the interpreter.
    for c in b"\x7f\x1f":
        s = str(bytes((c,)), "utf-8")
        if not id(s) & 3:  # a pointer (heap objects are word-aligned; immediates are not)
            break
    else:
        return None
    a = id(s) + _W
    if _word(a, -1) != hash(s) or _word(a + _W, -1) != 1 or _word(a + 2 * _W, -1) != uctypes.addressof(s):
        return None
    _word(a + 2 * _W, p)
    _word(a + _W, n)
    _word(a, 0)  # the hash: 0 is "not computed yet", made when first asked for
    return s
