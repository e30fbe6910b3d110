"""Time helpers that behave the same on MicroPython and CPython (tests).

Readings carry Unix epoch milliseconds. Some ports count from 2000-01-01, so the
offset is worked out once from ``gmtime(0)`` instead of assumed.
"""

import asyncio
import os
import time

EPOCH_OFFSET_MS = 946684800000 if time.gmtime(0)[0] == 2000 else 0


def _monotonic_ms():  # CPython (tests): monotonic ms, no wrap-around
    return getattr(time, "monotonic_ns")() // 1000000  # noqa: B009  (board stubs lack it)


# MicroPython's own functions where they exist; plain equivalents on CPython.
ticks_ms = getattr(time, "ticks_ms", None) or _monotonic_ms
ticks_diff = getattr(time, "ticks_diff", None) or (lambda a, b: a - b)
ticks_add = getattr(time, "ticks_add", None) or (lambda a, delta: a + delta)
sleep_ms = getattr(asyncio, "sleep_ms", None) or (lambda ms: asyncio.sleep(ms / 1000))
wait_for_ms = getattr(asyncio, "wait_for_ms", None) or (lambda aw, ms: asyncio.wait_for(aw, ms / 1000))


def epoch_ms():
    """Wall-clock time in Unix epoch milliseconds (as good as the RTC; NTP sets it)."""
    return time.time_ns() // 1000000 + EPOCH_OFFSET_MS


def jitter(delay_ms):
    """``delay_ms`` spread by +-25 %, so many nodes do not retry in lockstep."""
    return delay_ms * (384 + os.urandom(1)[0]) // 512  # x 0.75 .. 1.25


def next_backoff(delay_ms, high_ms):
    """The delay after ``delay_ms``: doubled, capped at ``high_ms``."""
    return min(delay_ms * 2, high_ms)
