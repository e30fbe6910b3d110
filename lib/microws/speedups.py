"""Native (viper) fast paths for MicroPython ports with a native emitter.

Imported by ``frames`` inside ``try``: on CPython, or a port without viper, the
plain fallbacks in ``frames`` are used instead. Word access only happens on
4-byte-aligned addresses (RP2040's Cortex-M0+ faults on unaligned words).
"""

import micropython


@micropython.viper
def _xor32(a: int, end: int, kw: int):
    # XOR the words from address a to end (a multiple of 32 bytes apart) with kw,
    # 32 bytes per turn through a moving pointer with constant indexes (2.4x faster
    # on x64 than indexing one ptr32 with a counter). Its own function so that a,
    # end and kw are the first three locals, the ones viper keeps in registers: 2x
    # faster than the same loop inside apply_mask.
    # (Viper to viper, the ints pass as machine words: no overflow on 32-bit ports.)
    while a < end:
        w = ptr32(a)  # type: ignore[name-defined]  # noqa: F821
        w[0] = w[0] ^ kw
        w[1] = w[1] ^ kw
        w[2] = w[2] ^ kw
        w[3] = w[3] ^ kw
        w[4] = w[4] ^ kw
        w[5] = w[5] ^ kw
        w[6] = w[6] ^ kw
        w[7] = w[7] ^ kw
        a += 32


@micropython.viper
def apply_mask(buf: ptr8, n: int, key: ptr8):  # type: ignore[name-defined]  # noqa: F821
    """XOR ``n`` bytes of ``buf`` in place with the 4-byte ``key`` (phase 0 at buf[0])."""
    addr = int(buf)
    i = 0
    while i < n and ((addr + i) & 3) != 0:
        buf[i] = buf[i] ^ key[i & 3]
        i += 1
    # The key as one little-endian word, rotated to the first aligned offset.
    kw = key[i & 3] | (key[(i + 1) & 3] << 8) | (key[(i + 2) & 3] << 16) | (key[(i + 3) & 3] << 24)
    a = addr + i
    blocks_end = a + (((n - i) >> 5) << 5)
    _xor32(a, blocks_end, kw)
    a = blocks_end
    end = addr + i + (((n - i) >> 2) << 2)
    while a < end:
        w = ptr32(a)  # type: ignore[name-defined]  # noqa: F821
        w[0] = w[0] ^ kw
        a += 4
    i = a - addr
    while i < n:
        buf[i] = buf[i] ^ key[i & 3]
        i += 1


@micropython.viper
def utf8_scan(buf: ptr8, n: int, state: int) -> int:
    """Strict UTF-8 check of ``n`` bytes continuing from ``state``.

    Returns -1 on an invalid sequence (overlong, surrogate, > U+10FFFF, stray
    continuation), 0 when the bytes end on a character boundary, else a state to
    pass with the next chunk: need | lo << 2 | hi << 10 (continuations still
    expected and the allowed range of the next byte).
    """
    need = state & 3
    lo = (state >> 2) & 0xFF
    hi = (state >> 10) & 0xFF
    addr = int(buf)
    top = 0x80  # the top bit of each byte of a word, built here: as one literal the
    top |= (top << 8) | (top << 16) | (top << 24)  # compiler folds it into an object
    i = 0
    while i < n:
        if need == 0 and ((addr + i) & 3) == 0:
            # ASCII runs a word at a time (8x faster on x64), aligned words only.
            while i + 16 <= n:
                w = ptr32(addr + i)  # type: ignore[name-defined]  # noqa: F821
                if (w[0] | w[1] | w[2] | w[3]) & top:
                    break
                i += 16
            while i + 4 <= n and (ptr32(addr + i)[0] & top) == 0:  # type: ignore[name-defined]  # noqa: F821
                i += 4
            if i >= n:
                break
        b = buf[i]
        i += 1
        if need == 0:
            if b < 0x80:
                continue
            if b < 0xC2:
                return -1
            lo = 0x80
            hi = 0xBF
            if b < 0xE0:
                need = 1
            elif b < 0xF0:
                need = 2
                if b == 0xE0:
                    lo = 0xA0
                elif b == 0xED:
                    hi = 0x9F
            elif b < 0xF5:
                need = 3
                if b == 0xF0:
                    lo = 0x90
                elif b == 0xF4:
                    hi = 0x8F
            else:
                return -1
        else:
            if b < lo or b > hi:
                return -1
            need -= 1
            lo = 0x80
            hi = 0xBF
    if need == 0:
        return 0
    return need | (lo << 2) | (hi << 10)
