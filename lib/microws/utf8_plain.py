"""Strict UTF-8 check in plain Python, for MicroPython ports without the viper emitter."""


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
