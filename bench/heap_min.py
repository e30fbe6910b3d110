"""Library heap figures on the unix port, with the library as .mpy (what a board loads).

Prints, for the current lib/microws:
- total .mpy size of the library (per file too);
- heap that ``import microws`` takes (gc.mem_alloc delta), and ``microws.server`` /
  ``microws.client``, loaded from files and executed in place from a ROMFS image;
- heap per idle open connection on the server (gc.mem_alloc delta for N idle / N);
- the smallest ``-X heapsize`` (binary search, 1 KiB steps) for an echo server doing
  1 connection x 100 echoes, for one holding 8 connections doing echoes, and for a
  client doing 100 round trips;
- the same two server figures for microdot's WebSocket echo (``bench/ref/microdot_echo.py``,
  microdot compiled to .mpy the same way), the reference measured in the same run.

Usage: .venv/bin/python bench/heap_min.py [--quick]   (peers: CPython websockets)
Targets (issue 2): <= 1.5 KB per idle connection; 1 conn within 24 KB; 8 conns
within 64 KB; library <= 16 KB of .mpy.
"""

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "heap"))
sys.path.insert(0, str(ROOT / "tests" / "interop"))
sys.path.insert(0, str(ROOT / "tests"))

import mpylib  # noqa: E402
from harness import free_port, wait_port  # noqa: E402
from peerproc import Peer, mp_env  # noqa: E402
from websockets.asyncio.client import connect  # noqa: E402
from websockets.asyncio.server import serve  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402

MICROPYTHON = str(ROOT / ".venv" / "bin" / "micropython")
MPREMOTE = ROOT / ".venv" / "bin" / "mpremote"
TRIAL_TIMEOUT = 20
IDLE_N = 16
KIB = 1024


async def _echoes(url, conns, n):
    socks = [await connect(url, compression=None, ping_interval=None, open_timeout=3) for _ in range(conns)]
    try:

        async def trips(ws, tag):
            for i in range(n):
                msg = ("%s-%d " % (tag, i)) * (1 + i % 8)
                await ws.send(msg if i & 1 else msg.encode())
                got = await asyncio.wait_for(ws.recv(), 3)
                if got != (msg if i & 1 else msg.encode()):
                    raise AssertionError("echo differs")

        await asyncio.gather(*(trips(ws, "c%d" % k) for k, ws in enumerate(socks)))
    finally:
        for ws in socks:
            await ws.close()


def _clean(peer):
    return "MemoryError" not in peer.output() and "Traceback" not in peer.output()


async def server_trial(mpy_dir, heap, conns, n=100):
    """True when an echo server under ``-X heapsize=heap`` serves ``conns`` x ``n`` echoes."""
    argv = [MICROPYTHON, "-X", "heapsize=%d" % heap, "-m", "echo_server"]
    try:
        async with await Peer.start(argv, env=mp_env(mpy_dir), cwd=mpy_dir, port_timeout=10) as server:
            url = "ws://127.0.0.1:%d/" % server.port
            await asyncio.wait_for(_echoes(url, conns, n), TRIAL_TIMEOUT)
            await asyncio.wait_for(_echoes(url, 1, 3), TRIAL_TIMEOUT)  # and still serving
            return _clean(server)
    except Exception:  # MemoryError in the peer shows up as a failed handshake or echo
        return False


MICRODOT_FILES = ("__init__", "microdot", "websocket", "helpers")  # what its echo imports


def compile_microdot(out_dir):
    """microdot (from the bench environment) and its echo app as .mpy in ``out_dir``;
    returns the .mpy bytes of the microdot files."""
    import microdot

    src = Path(microdot.__file__).parent
    pkg = Path(out_dir) / "microdot"
    pkg.mkdir(parents=True, exist_ok=True)
    total = 0
    for name in MICRODOT_FILES:
        mpylib.mpy_cross(src / (name + ".py"), pkg / (name + ".mpy"), "microdot/%s.py" % name)
        total += (pkg / (name + ".mpy")).stat().st_size
    app = ROOT / "bench" / "ref" / "microdot_echo.py"
    mpylib.mpy_cross(app, Path(out_dir) / "microdot_echo.mpy", app.name)
    return total


async def microdot_trial(md_dir, heap, conns, n=100):
    """server_trial for microdot's echo (route /echo, max message 64 KiB like ours)."""
    port = free_port()
    argv = [MICROPYTHON, "-X", "heapsize=%d" % heap, "-m", "microdot_echo", str(port), "65536"]
    try:
        async with await Peer.start(argv, env=mp_env(md_dir), cwd=md_dir, port_timeout=None) as server:
            await server.expect("READY", 10)
            wait_port(port)  # microdot prints READY before it listens
            url = "ws://127.0.0.1:%d/echo" % port
            await asyncio.wait_for(_echoes(url, conns, n), TRIAL_TIMEOUT)
            await asyncio.wait_for(_echoes(url, 1, 3), TRIAL_TIMEOUT)
            return _clean(server)
    except Exception:
        return False


async def client_trial(mpy_dir, heap, n=100):
    """True when the echo client under ``-X heapsize=heap`` completes ``n`` round trips."""

    async def echo(ws):
        try:
            async for msg in ws:
                await ws.send(msg)
        except ConnectionClosed:
            pass  # the client ran out of heap: that is the trial failing

    async with serve(echo, "127.0.0.1", 0, compression=None) as srv:
        port = srv.sockets[0].getsockname()[1]
        argv = [MICROPYTHON, "-X", "heapsize=%d" % heap, "-m", "echo_client", "ws://127.0.0.1:%d/" % port, "n=%d" % n]
        try:
            async with await Peer.start(argv, env=mp_env(mpy_dir), cwd=mpy_dir, port_timeout=None) as client:
                code = await client.finish(TRIAL_TIMEOUT)
                return code == 0 and client.lines[-1].startswith("DONE %d" % n)
        except (AssertionError, OSError, IndexError):
            return False


async def smallest(trial, lo=8 * KIB, hi=512 * KIB):
    """Smallest heap (KiB steps) where ``trial(heap)`` passes; None if not even at ``hi``."""
    if not await trial(hi):
        return None
    lo //= KIB
    hi //= KIB
    while lo < hi:
        mid = (lo + hi) // 2
        if await trial(mid * KIB):
            hi = mid
        else:
            lo = mid + 1
    # Allocation patterns vary a little run to run: confirm the edge twice.
    while not (await trial(hi * KIB) and await trial(hi * KIB)):
        hi += 1
    return hi * KIB


async def _probe(argv, env, cwd):
    async with await Peer.start(argv, env=env, cwd=cwd, port_timeout=None) as peer:
        return int((await peer.expect("IMPORT ", 20)).split()[1])


async def import_cost(mpy_dir):
    code = mpylib.import_probe("microws", setup="import asyncio, socket, hashlib, binascii, os, struct\n")
    return await _probe([MICROPYTHON, "-c", code], mp_env(mpy_dir), mpy_dir)


async def interned(mpy_dir, module):
    """(qstrs, bytes of qstr pools and text) that importing ``module`` adds (asyncio
    loaded first). The unix port's pools hold 20, 40, 80, 160 entries, then 320: an
    app whose qstrs pass 300 gets a 3.7 KB pool at once (bench/README.md)."""
    code = "import micropython, asyncio, socket, select\nmicropython.qstr_info()\nimport %s\n" % module
    code += "micropython.qstr_info()\nprint('IMPORT')"
    async with await Peer.start([MICROPYTHON, "-c", code], env=mp_env(mpy_dir), cwd=mpy_dir, port_timeout=None) as peer:
        await peer.expect("IMPORT", 20)
        rows = [ln for ln in peer.output().splitlines() if ln.startswith("qstr pool:")]
    (q0, b0), (q1, b1) = [(int(r.split("n_qstr=")[1].split(",")[0]), int(r.split("n_total_bytes=")[1])) for r in rows]
    return q1 - q0, b1 - b0, q1


async def import_heaps(mpy_dir, in_place):
    """{module: heap its import takes} for microws.server and microws.client (asyncio
    loaded first). ``in_place``: from a ROMFS image (``mpremote romfs build``) mounted
    with ``vfs.VfsRom``, whose bytecode runs where it lies, as on a board with a ROM
    partition; the image itself sits in this heap but before the measurement."""
    src = mpy_dir
    mount = ""
    if in_place:
        img = Path(mpy_dir) / "lib.romfs"
        tree = Path(mpy_dir) / "romfs"
        tree.mkdir(exist_ok=True)
        shutil.copytree(Path(mpy_dir) / "microws", tree / "microws", dirs_exist_ok=True)
        build = [str(MPREMOTE), "romfs", "--no-mpy", "-o", str(img), "build", str(tree)]
        subprocess.run(build, check=True, capture_output=True)
        mount = "import vfs\nf = open(%r, 'rb'); img = f.read(); f.close()\n" % str(img)
        mount += "vfs.mount(vfs.VfsRom(img), '/rom')\n"
        src = "/rom"
    out = {}
    for mod in ("server", "client"):
        code = mpylib.import_probe("microws." + mod, src, "import asyncio, socket, select\n" + mount)
        argv = [MICROPYTHON, "-X", "heapsize=256k", "-c", code]  # < 512 KiB: a board's buffers
        out[mod] = await _probe(argv, mp_env(), "/")
    return out


async def idle_cost(mpy_dir, n=IDLE_N):
    """gc.mem_alloc() delta on the server for ``n`` idle open connections, divided by n."""
    argv = [MICROPYTHON, "-X", "heapsize=1m", "-m", "echo_server"]
    async with await Peer.start(argv, env=mp_env(mpy_dir), cwd=mpy_dir) as server:
        url = "ws://127.0.0.1:%d/" % server.port
        async with connect(url, compression=None, ping_interval=None) as probe:

            async def mem():
                await probe.send("!mem")
                return int(await probe.recv())

            await _echoes(url, 1, 3)  # warm up: first-use allocations are not per-connection
            before = await mem()
            idle = [await connect(url, compression=None, ping_interval=None) for _ in range(n)]
            for ws in idle:  # make sure every server handler is running (handshake done, in recv)
                await ws.send("x")
                await ws.recv()
            after = await mem()
            for ws in idle:
                await ws.close()
    return (after - before) / n


async def main(quick):
    with tempfile.TemporaryDirectory() as tmp:
        sizes = mpylib.compile_to(tmp, mpylib.HEAP_MP / "echo_server.py", mpylib.HEAP_MP / "echo_client.py")
        total = sum(sizes.values())
        print("library .mpy (-march=%s): %d bytes total (target <= 16384)" % (mpylib.ARCH, total))
        for name, size in sorted(sizes.items()):
            print("  %-28s %6d" % (name, size))
        print("heap taken by `import microws`: %d bytes" % await import_cost(tmp))
        files, rom = await import_heaps(tmp, False), await import_heaps(tmp, True)
        for mod in files:
            print(
                "heap taken by `import microws.%s`: %d bytes; executed in place from ROMFS: %d bytes"
                % (mod, files[mod], rom[mod])
            )
        for mod in ("server", "client"):
            n, size, total = await interned(tmp, "microws." + mod)
            print(
                "qstrs interned by `import microws.%s`: %d (%d bytes of pools and text; %d in all, pools full at 300)"
                % (mod, n, size, total)
            )
        per = await idle_cost(tmp)
        print("heap per idle server connection: %.0f bytes (N=%d, target <= 1536)" % (per, IDLE_N))
        if quick:
            return
        one = await smallest(lambda h: server_trial(tmp, h, 1))
        print("smallest heap, server 1 conn x 100 echoes: %s (target <= 24 KiB)" % _k(one))
        eight = await smallest(lambda h: server_trial(tmp, h, 8))
        print("smallest heap, server 8 conns x 100 echoes each: %s (target <= 64 KiB)" % _k(eight))
        client = await smallest(lambda h: client_trial(tmp, h))
        print("smallest heap, client 100 round trips: %s (target <= 32 KiB)" % _k(client))
        md_dir = Path(tmp) / "microdot-ref"
        md_size = compile_microdot(md_dir)
        md_one = await smallest(lambda h: microdot_trial(md_dir, h, 1))
        md_eight = await smallest(lambda h: microdot_trial(md_dir, h, 8))
        print(
            "reference, microdot's WebSocket echo (%d bytes of .mpy): smallest heap 1 conn x 100 echoes %s, "
            "8 conns %s" % (md_size, _k(md_one), _k(md_eight))
        )
        if one and eight and md_one and md_eight:
            print("  microws / microdot: 1 conn %.2fx, 8 conns %.2fx" % (one / md_one, eight / md_eight))
            # Each connection beyond the first, from the two searches (microdot cannot
            # be asked for gc.mem_alloc() the way our echo_server answers "!mem").
            print(
                "  heap per extra connection, (8 conns - 1 conn) / 7: microws %.1f KiB, microdot %.1f KiB"
                % ((eight - one) / 7 / KIB, (md_eight - md_one) / 7 / KIB)
            )


def _k(n):
    return "none up to 512 KiB" if n is None else "%d KiB" % (n // KIB)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="sizes and per-connection heap only")
    asyncio.run(main(ap.parse_args().quick))
