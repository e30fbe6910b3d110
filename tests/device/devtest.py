"""Tiny helpers for device tests: the same file runs under MicroPython and CPython.

pytest is not available on the board, so these replace ``pytest.raises`` and friends.
"""

import sys

IS_MICROPYTHON = sys.implementation.name == "micropython"


class raises:
    """Context manager: the block must raise ``exc_type``; the exception is kept in ``.value``."""

    def __init__(self, exc_type):
        self.exc_type = exc_type
        self.value = None

    def __enter__(self):
        return self

    def __exit__(self, et, ev, tb):
        if et is None:
            raise AssertionError("did not raise %s" % self.exc_type.__name__)
        if not issubclass(et, self.exc_type):
            return False
        self.value = ev
        return True


async def araises(exc_type, awaitable):
    """Await ``awaitable``; it must raise ``exc_type``. Returns the exception."""
    try:
        await awaitable
    except exc_type as e:
        return e
    raise AssertionError("did not raise %s" % exc_type.__name__)
