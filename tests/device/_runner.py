"""Runs one device test under MicroPython (or CPython): `_runner.py MODULE FUNCTION`.

Prints ``DEVTEST-PASS`` as its last line on success; exceptions print a traceback
and exit non-zero.  Async tests run under ``asyncio.run``.
"""

import asyncio
import sys


def main():
    module_name, func_name = sys.argv[1], sys.argv[2]
    module = __import__(module_name)
    func = getattr(module, func_name)
    result = func()
    if result is not None and hasattr(result, "send"):  # a coroutine
        asyncio.run(result)
    print("DEVTEST-PASS")


main()
