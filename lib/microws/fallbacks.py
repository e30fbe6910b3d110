"""Plain-Python versions of the ``speedups`` (masking, strict UTF-8): used on CPython
and on MicroPython ports without the viper emitter, and only imported there."""

_MASK_PIECE = 16384


def apply_mask(buf, n, key):
    """XOR the first ``n`` bytes of a writable buffer in place with the 4-byte mask ``key``."""
    # As big integers, 16 KiB at a time: CPython's big-int XOR is linear but its
    # conversions are not (1 MiB in one piece: 4.6 ms; in 16 KiB pieces: 1.1 ms).
    mv = memoryview(buf)[:n]
    keys = key * (_MASK_PIECE >> 2) if n >= _MASK_PIECE else (key * ((n >> 2) + 1))[:n]
    k = int.from_bytes(keys, "little")
    for i in range(0, n, _MASK_PIECE):
        piece = mv[i : i + _MASK_PIECE]
        m = len(piece)
        x = int.from_bytes(piece, "little") ^ (k if m == len(keys) else int.from_bytes(keys[:m], "little"))
        piece[:] = x.to_bytes(m, "little")


def utf8_scan(buf, n, state):
    """Same contract as ``speedups.utf8_scan``, for ports without viper."""
    need, lo, hi = state & 3, (state >> 2) & 0xFF, (state >> 10) & 0xFF
    for i in range(n):
        b = buf[i]
        if need == 0:
            if b < 0x80:
                continue
            lo, hi = 0x80, 0xBF
            if 0xC2 <= b < 0xE0:
                need = 1
            elif 0xE0 <= b < 0xF0:
                need = 2
                lo = 0xA0 if b == 0xE0 else lo
                hi = 0x9F if b == 0xED else hi
            elif 0xF0 <= b < 0xF5:
                need = 3
                lo = 0x90 if b == 0xF0 else lo
                hi = 0x8F if b == 0xF4 else hi
            else:
                return -1
        elif lo <= b <= hi:
            need, lo, hi = need - 1, 0x80, 0xBF
        else:
            return -1
    return 0 if need == 0 else need | (lo << 2) | (hi << 10)
