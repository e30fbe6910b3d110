"""Time helpers that behave the same on MicroPython and CPython (tests).

Readings carry Unix epoch milliseconds. Some ports count from 2000-01-01, so the
offset is worked out once from ``gmtime(0)`` instead of assumed.
"""

import asyncio
import os
import time

EPOCH_OFFSET_MS = 946684800000 if time.gmtime(0)[0] == 2000 else 0

try:
    ticks_ms = time.ticks_ms
    ticks_diff = time.ticks_diff
    ticks_add = time.ticks_add
except AttributeError:  # CPython: monotonic ms, no wrap-around

    def ticks_ms():
        return time.monotonic_ns() // 1000000

    def ticks_diff(a, b):
        return a - b

    def ticks_add(a, delta):
        return a + delta


try:
    sleep_ms = asyncio.sleep_ms
except AttributeError:  # CPython

    def sleep_ms(ms):
        return asyncio.sleep(ms / 1000)


def epoch_ms():
    """Wall-clock time in Unix epoch milliseconds (as good as the RTC; NTP sets it)."""
    return time.time_ns() // 1000000 + EPOCH_OFFSET_MS


try:
    wait_for_ms = asyncio.wait_for_ms
except AttributeError:  # CPython

    def wait_for_ms(awaitable, ms):
        return asyncio.wait_for(awaitable, ms / 1000)


def jitter(delay_ms):
    """``delay_ms`` spread by +-25 %, so many nodes do not retry in lockstep."""
    return delay_ms * (384 + os.urandom(1)[0]) // 512  # x 0.75 .. 1.25


def next_backoff(delay_ms, high_ms):
    """The delay after ``delay_ms``: doubled, capped at ``high_ms``."""
    return min(delay_ms * 2, high_ms)
