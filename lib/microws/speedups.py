"""Native (viper) fast paths for MicroPython ports with a native emitter.

Imported by ``frames`` inside ``try``: on CPython, or a port without viper, the
plain fallbacks in ``frames`` are used instead. Word access only happens on
4-byte-aligned addresses (RP2040's Cortex-M0+ faults on unaligned words).
"""

# ptr8 / ptr32 are viper built-ins, unknown to the linters:
# ruff: noqa: F821
# pyright: reportUndefinedVariable=false

import micropython


@micropython.viper
def _xor32(a: int, end: int, kw: int):
    # XOR the words from address a to end (a multiple of 32 bytes apart) with kw, 32
    # bytes per turn at constant offsets from a. Its own function so that a, end and kw
    # are the first three locals, the ones viper keeps in registers (2x faster than the
    # same loop inside apply_mask), and ptr32(a) cast at each use rather than kept in a
    # fourth local, which would live in memory (1.4x faster again on x64).
    # (Viper to viper, the ints are boxed and unboxed: exact on a 32-bit port too, but
    # one beyond the small-int range, as a key word can be, is made a heap int.)
    while a < end:
        ptr32(a)[0] = ptr32(a)[0] ^ kw
        ptr32(a)[1] = ptr32(a)[1] ^ kw
        ptr32(a)[2] = ptr32(a)[2] ^ kw
        ptr32(a)[3] = ptr32(a)[3] ^ kw
        ptr32(a)[4] = ptr32(a)[4] ^ kw
        ptr32(a)[5] = ptr32(a)[5] ^ kw
        ptr32(a)[6] = ptr32(a)[6] ^ kw
        ptr32(a)[7] = ptr32(a)[7] ^ kw
        a += 32


@micropython.viper
def apply_mask(buf: ptr8, n: int, key: ptr8):
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
    if blocks_end > a:  # (a call boxes kw: a heap int on a 32-bit port, for nothing)
        _xor32(a, blocks_end, kw)
    a = blocks_end
    end = addr + i + (((n - i) >> 2) << 2)
    while a < end:
        w = ptr32(a)
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
    # buf, n and state, the first three locals, are the ones viper keeps in registers
    # (the others live in memory), so they do the work: buf moves along the bytes, n
    # becomes the end address, and state, once read, the top bit of each byte of a
    # word. ASCII goes 1.3x (400 B) to 2x (6 KB) faster than with an index and the
    # end and mask in memory, other text 1.1x to 1.3x (cachegrind, x64).
    need = state & 3
    lo = (state >> 2) & 0xFF
    hi = (state >> 10) & 0xFF
    n += int(buf)
    state = 0x80  # built here: as one literal the compiler folds it into an object
    state |= (state << 8) | (state << 16) | (state << 24)
    while int(buf) < n:
        if need == 0 and (int(buf) & 3) == 0:
            # ASCII runs a word at a time, aligned words only (RP2040's Cortex-M0+
            # faults on unaligned ones): 32 bytes a turn, then word by word.
            while int(buf) + 32 <= n:
                if (
                    ptr32(buf)[0] | ptr32(buf)[1] | ptr32(buf)[2] | ptr32(buf)[3]
                    | ptr32(buf)[4] | ptr32(buf)[5] | ptr32(buf)[6] | ptr32(buf)[7]
                ) & state:
                    break
                buf = ptr8(int(buf) + 32)
            while int(buf) + 4 <= n and (ptr32(buf)[0] & state) == 0:
                buf = ptr8(int(buf) + 4)
            if int(buf) >= n:
                break
        b = buf[0]
        buf = ptr8(int(buf) + 1)
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
