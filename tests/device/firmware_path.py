"""Import side effect: makes firmware/ (the `node` package) and the unix board profile
importable from device tests, under MicroPython and CPython alike."""

import sys

_ROOT = __file__.rsplit("/", 3)[0]  # .../tests/device/firmware_path.py -> repo root
for _p in (_ROOT + "/firmware", _ROOT + "/boards/unix"):
    if _p not in sys.path:
        sys.path.append(_p)
