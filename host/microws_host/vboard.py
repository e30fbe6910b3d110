"""`microws vboard`: a virtual MicroPython board on a pseudo-terminal.

The unix-port MicroPython runs behind a pty and behaves like a board on USB serial:
friendly REPL (banner, ``>>> ``), Ctrl-A raw REPL, raw-paste mode with flow control,
Ctrl-B back to friendly, Ctrl-C interrupt, Ctrl-D soft reset that restarts the
interpreter and runs ``boot.py`` / ``main.py`` from the board folder. So
``mpremote connect /dev/pts/N ...`` and ``ampy -p /dev/pts/N ...`` work unchanged.

How it is built: this process owns the pty and implements the REPL framing (what a
board's ``pyexec.c`` does). Code to run is handed to a child interpreter running
``vboard_agent.py`` over a pipe; the child stays alive between executions (mpremote
defines helpers in one exec and calls them in the next) and is replaced on soft reset.
Inside the child, ``/`` is the board folder, so files that mpremote or ampy write land
there. Ctrl-C becomes SIGINT to the child, which raises KeyboardInterrupt as on a board.

Known differences from a real board: the child's stdin is empty (``input()`` sees end
of file, ``mpremote mount`` is not supported); ``\\n`` in output becomes ``\\r\\n`` for
binary writes too; there is no auto-indent or line history in the friendly REPL; a
Ctrl-C that lands while the unix port collects garbage can leave its heap locked, and
then the interpreter exits and the board soft-resets (a MicroPython unix-port bug).
"""

import errno
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import tty
from pathlib import Path

AGENT = Path(__file__).with_name("vboard_agent.py")

RAW_REPL_BANNER = b"raw REPL; CTRL-B to exit\r\n"
SOFT_REBOOT = b"MPY: soft reboot\r\n"
# Raw-paste flow control: the window MicroPython advertises (half its 256-byte buffer).
RAW_PASTE_WINDOW = 128
# Output nobody reads is dropped beyond this, oldest first (a board with no host
# listening loses its output too), so a chatty main.py never stalls the board.
MAX_PENDING_OUTPUT = 256 * 1024
# Two SIGINTs before the first is handled make the unix port exit; within one
# execution, send the next only after this long (ampy sends Ctrl-C twice, 0.1 s apart).
MIN_INTERRUPT_SPACING_S = 1.0
COMPOUND_KEYWORDS = ("if", "while", "for", "try", "with", "def", "class", "async")

CTRL_A, CTRL_B, CTRL_C, CTRL_D, CTRL_E = 1, 2, 3, 4, 5
BACKSPACES = (8, 127)
ESC = 27


def find_micropython():
    """Path of the unix-port `micropython` executable (the .venv's first), or None."""
    beside = Path(sys.executable).parent / "micropython"
    if beside.exists():
        return str(beside)
    return os.environ.get("MICROPYTHON") or shutil.which("micropython")


def needs_more_input(source):
    """Whether friendly-REPL input continues on a `... ` line (MicroPython's rules)."""
    depth, quote, i = 0, None, 0
    while i < len(source):
        c = source[i]
        if quote:
            if c == "\\":
                i += 1
            elif source.startswith(quote, i):
                i += len(quote) - 1
                quote = None
        elif c == "#":
            while i < len(source) and source[i] != "\n":
                i += 1
        elif c in "\"'":
            quote = source[i : i + 3] if source[i : i + 3] in ('"""', "'''") else c
            i += len(quote) - 1
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        i += 1
    if depth > 0 or (quote and len(quote) == 3) or source.endswith("\\"):
        return True
    lines = source.split("\n")
    first = lines[0].lstrip()
    compound = first.startswith("@") or any(
        first.startswith(k) and first[len(k) : len(k) + 1] in (" ", ":", "(", "") for k in COMPOUND_KEYWORDS
    )
    compound = compound or any(ln.rstrip().endswith(":") for ln in lines)
    return compound and lines[-1].strip() != ""


class _CookedOutput:
    """Turns the unix port's ``\\n`` into a board's ``\\r\\n``, across chunk boundaries."""

    def __init__(self):
        self._last_cr = False

    def cook(self, data):
        if not data:
            return data
        out = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        if self._last_cr and data[:1] == b"\n":
            out = out[1:]  # the \r arrived in the previous chunk
        self._last_cr = data[-1:] == b"\r"
        return out


class _Child:
    """One interpreter session: the unix-port MicroPython running the agent."""

    def __init__(self, exe, root, heapsize):
        cmd_r, self.cmd_w = os.pipe()
        self.event_r, event_w = os.pipe()
        argv = [exe]
        if heapsize:
            argv += ["-X", "heapsize=%s" % heapsize]
        argv += [str(AGENT), str(root), str(cmd_r), str(event_w)]
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=(cmd_r, event_w),
            cwd=str(root),
            # Own process group: Ctrl-C in the terminal running `microws vboard` must
            # not reach the board; only Ctrl-C sent over the serial line does.
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        os.close(cmd_r)
        os.close(event_w)
        self.stdout = self.proc.stdout.fileno()
        self.stderr = self.proc.stderr.fileno()
        for fd in (self.stdout, self.stderr, self.event_r):
            os.set_blocking(fd, False)
        self.events = b""
        self.sent = 0  # frames sent
        self.alive = True

    def send(self, kind, payload):
        """Hand one frame to the agent; returns its SEQ (the agent counts frames too)."""
        self.sent += 1
        frame = b"%s %d\n" % (kind.encode(), len(payload)) + payload
        try:
            _write_all(self.cmd_w, frame)
        except OSError:
            pass  # the child died; its event pipe reports that
        return self.sent

    def interrupt(self):
        try:
            self.proc.send_signal(signal.SIGINT)
        except ProcessLookupError:
            pass

    def kill(self):
        self.alive = False
        try:
            self.proc.kill()
        except ProcessLookupError:
            pass
        self.proc.wait()
        for f in (self.proc.stdout, self.proc.stderr):
            f.close()
        for fd in (self.cmd_w, self.event_r):
            try:
                os.close(fd)
            except OSError:
                pass


def _die_with_parent():
    # Linux: the interpreter gets SIGKILL if this process dies without stop(), so a
    # main.py that runs forever never outlives its board.
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _read_available(fd):
    chunks = []
    while True:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            break
        except OSError:
            break
        if not data:
            chunks.append(None)  # end of file
            break
        chunks.append(data)
    eof = bool(chunks) and chunks[-1] is None
    return b"".join(c for c in chunks if c), eof


class VirtualBoard:
    """A MicroPython board on a pty, backed by the unix port.

    ``VirtualBoard(folder).start()`` returns the device path (``/dev/pts/N``);
    ``stop()`` ends the interpreter and closes the pty. ``folder`` is the board's
    filesystem (a temporary folder when None). Usable as a context manager.
    """

    def __init__(self, folder=None, heapsize=None, micropython=None):
        self._own_folder = folder is None
        self.folder = Path(folder or tempfile.mkdtemp(prefix="microws-vboard-")).resolve()
        self.heapsize = heapsize
        self.micropython = micropython or find_micropython()
        self.device = None
        self._thread = None
        self._wake_r = self._wake_w = None
        self._stopping = False
        self.error = None  # set if the board loop died

    # -- lifecycle ---------------------------------------------------------------

    def start(self):
        """Open the pty, power the board on (boot.py, main.py) and return the device path."""
        if not self.micropython:
            raise FileNotFoundError("the unix-port `micropython` executable was not found (run `make setup`)")
        self.folder.mkdir(parents=True, exist_ok=True)
        self._master, self._slave = os.openpty()
        # Raw line discipline until a client configures it: no echo of our own output
        # back into the master, no CR/LF translation, Ctrl-C is a byte, not a signal.
        tty.setraw(self._slave)
        os.set_blocking(self._master, False)
        self.device = os.ttyname(self._slave)
        self._wake_r, self._wake_w = os.pipe()
        self._out = bytearray()
        self._cooker = _CookedOutput()
        self.dropped_output = 0
        self._mode = "friendly"
        self._child = None
        self._input = bytearray()  # bytes received while the board is busy
        self._line = bytearray()  # the REPL's current input line
        self._source = ""  # friendly REPL: lines entered so far (continuation)
        self._sub = None  # None, "esc", "paste" (friendly Ctrl-E), "rawpaste"
        self._busy = None  # kind of the frame being executed, or "boot"
        self._frame = 0  # SEQ of that frame in the current interpreter
        self._started = False
        self._interrupt_pending = False
        self._last_interrupt = 0.0
        self._scripts = []
        self._paste_count = 0
        self._boot(first=True)
        self._thread = threading.Thread(target=self._run, name="vboard", daemon=True)
        self._thread.start()
        return self.device

    def stop(self):
        """Stop the interpreter, close the pty and remove a temporary folder."""
        if self._thread is None:
            return
        self._stopping = True
        os.write(self._wake_w, b"x")
        self._thread.join(10)
        self._thread = None
        if self._child:
            self._child.kill()
        for fd in (self._master, self._slave, self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass
        if self._own_folder:
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    # -- the loop -----------------------------------------------------------------

    def _run(self):
        import select

        try:
            while not self._stopping:
                child = self._child
                readers = [self._master, self._wake_r]
                if child and child.alive:
                    readers += [child.stdout, child.stderr, child.event_r]
                writers = [self._master] if self._out else []
                readable, writable, _ = select.select(readers, writers, [])
                if self._stopping:
                    break
                if child and child.alive:
                    if child.stdout in readable or child.stderr in readable:
                        self._pump_child_output(child)
                    if child.event_r in readable:
                        self._pump_events(child)
                if self._master in readable:
                    self._read_serial()
                self._flush()
        except Exception as e:  # noqa: BLE001 - kept for stop()/tests to report
            self.error = e
            raise

    def _read_serial(self):
        try:
            data = os.read(self._master, 4096)
        except OSError as e:
            if e.errno in (errno.EAGAIN, errno.EIO):
                return
            raise
        for b in data:
            if self._busy and b == CTRL_C:
                self._request_interrupt()
            else:
                self._input.append(b)
        self._process_input()

    def _emit(self, data, cook=False):
        if cook:
            data = self._cooker.cook(data)
        self._out += data
        excess = len(self._out) - MAX_PENDING_OUTPUT
        if excess > 0:
            del self._out[:excess]
            self.dropped_output += excess

    def _flush(self):
        while self._out:
            try:
                n = os.write(self._master, self._out)
            except BlockingIOError:
                return
            except OSError as e:
                if e.errno == errno.EIO:
                    return
                raise
            del self._out[:n]

    def _pump_child_output(self, child):
        for fd in (child.stdout, child.stderr):
            data, _ = _read_available(fd)
            if data:
                self._emit(data, cook=True)

    def _pump_events(self, child):
        data, eof = _read_available(child.event_r)
        child.events += data
        while child.alive:
            line, sep, rest = child.events.partition(b"\n")
            if not sep:
                break
            word, _, arg = line.partition(b" ")
            if word == b"done":
                seq, status, length = arg.split()
                length = int(length)
                if len(rest) < length:
                    break
                child.events = rest[length:]
                self._pump_child_output(child)  # everything printed before "done"
                if self._is_current(seq):  # else a repeat (the agent was interrupted)
                    self._on_done(status.decode(), rest[:length])
            else:
                child.events = rest
                if word == b"ready":
                    self._banner_info = arg.decode().split("|")
                    self._run_next_script()
                elif word == b"start" and self._is_current(arg):
                    self._started = True
                    if self._interrupt_pending:
                        self._interrupt_pending = False
                        self._send_interrupt()
        if eof and child is self._child and child.alive:
            self._on_child_died(child)

    # -- executing ----------------------------------------------------------------

    def _execute(self, kind, payload):
        self._busy = kind
        self._started = False
        self._last_interrupt = 0.0  # the spacing rule is per execution
        self._frame = self._child.send("script" if kind.startswith("script") else kind, payload)

    def _is_current(self, seq):
        """Whether an event's SEQ is the frame now executing."""
        return self._busy not in (None, "boot") and int(seq) == self._frame

    def _request_interrupt(self):
        if self._busy and self._started:
            self._send_interrupt()
        else:
            self._interrupt_pending = True

    def _send_interrupt(self):
        now = time.monotonic()
        if now - self._last_interrupt >= MIN_INTERRUPT_SPACING_S:
            self._last_interrupt = now
            self._child.interrupt()

    def _on_done(self, status, traceback):
        kind = self._busy
        self._busy = None
        self._started = False
        if kind in ("raw", "rawpaste"):
            self._emit(b"\x04")
            self._emit(traceback, cook=True)
            self._emit(b"\x04")
            if status == "exit":
                self._soft_reset()
                return
            self._emit(b">")
        else:
            self._emit(traceback, cook=True)
            if status == "exit":
                self._soft_reset()
                return
            if kind == "script:boot.py" and status == "exc":
                self._scripts = []  # a failing boot.py skips main.py, as on a board
            if kind.startswith("script"):
                self._run_next_script()
                return
            self._prompt()
        self._process_input()

    def _on_child_died(self, child):
        _, _ = _read_available(child.stdout)
        code = child.proc.poll()
        child.kill()
        note = b"vboard: the interpreter exited (code %s); restarting\r\n" % str(code).encode()
        if self._busy in ("raw", "rawpaste"):
            self._emit(b"\x04" + note + b"\x04")
        else:
            self._emit(note)
        self._busy = None
        self._soft_reset(announce=False)

    # -- boot -----------------------------------------------------------------------

    def _boot(self, first=False):
        if self._child:
            self._child.kill()
        self._busy = "boot"
        self._started = False
        self._scripts = ["boot.py"] + (["main.py"] if self._mode == "friendly" else [])
        self._child = _Child(self.micropython, self.folder, self.heapsize)

    def _soft_reset(self, announce=True):
        if announce:
            self._emit(SOFT_REBOOT)
        self._line.clear()
        self._source = ""
        self._sub = None
        self._boot()

    def _run_next_script(self):
        while self._scripts:
            name = self._scripts.pop(0)
            if (self.folder / name).is_file():
                self._execute("script:" + name, name.encode())
                return
        self._busy = None
        self._interrupt_pending = False  # nothing left to interrupt
        if self._mode == "friendly":
            self._emit_banner()
            self._prompt()
        else:
            self._emit(RAW_REPL_BANNER + b">")
        self._process_input()

    def _emit_banner(self):
        version, date, machine = getattr(self, "_banner_info", ("?", "?", "?"))
        self._emit(
            b"MicroPython v%s on %s; microws virtual board (unix port) with %s\r\n"
            b'Type "help()" for more information.\r\n' % (version.encode(), date.encode(), machine.encode())
        )

    def _prompt(self):
        self._emit(b"... " if self._source else b">>> ")

    # -- input state machine ----------------------------------------------------------

    def _process_input(self):
        while self._input and not self._busy:
            b = self._input.pop(0)
            if self._mode == "raw":
                self._raw_byte(b)
            else:
                self._friendly_byte(b)

    def _raw_byte(self, b):
        if self._sub == "rawpaste":
            self._raw_paste_byte(b)
        elif b == CTRL_A:
            if len(self._line) == 2 and self._line[0] == CTRL_E:
                self._start_raw_paste(self._line[1])
            else:
                self._line.clear()
                self._emit(RAW_REPL_BANNER + b">")
        elif b == CTRL_B:
            self._line.clear()
            self._mode = "friendly"
            self._emit(b"\r\n")
            self._emit_banner()
            self._prompt()
        elif b == CTRL_C:
            self._line.clear()
        elif b == CTRL_D:
            self._emit(b"OK")
            if not self._line:
                self._emit(b"\r\n")
                self._soft_reset()
                return
            source = bytes(self._line)
            self._line.clear()
            self._execute("raw", source)
        else:
            self._line.append(b)

    def _start_raw_paste(self, command):
        self._line.clear()
        if command != ord("A"):
            self._emit(b"R\x00>")
            return
        # Window size, then one more free window: the host may send 2 windows at once.
        self._emit(b"R\x01" + struct.pack("<H", RAW_PASTE_WINDOW) + b"\x01")
        self._sub = "rawpaste"
        self._paste_count = 0

    def _raw_paste_byte(self, b):
        if b in (CTRL_C, CTRL_D):
            self._sub = None
            self._emit(b"\x04")  # acknowledge the end of data
            source = bytes(self._line)
            self._line.clear()
            if b == CTRL_C:
                self._emit(b"\x04Traceback (most recent call last):\r\nKeyboardInterrupt: \r\n\x04>")
            else:
                self._execute("rawpaste", source)
            return
        self._line.append(b)
        self._paste_count += 1
        if self._paste_count == RAW_PASTE_WINDOW:
            self._paste_count = 0
            self._emit(b"\x01")  # this window was consumed; another may be sent

    def _friendly_byte(self, b):
        if self._sub == "paste":
            if b == CTRL_C:
                self._sub = None
                self._line.clear()
                self._emit(b"\r\n")
                self._prompt()
            elif b == CTRL_D:
                self._sub = None
                self._emit(b"\r\n")
                source = bytes(self._line).replace(b"\r", b"\n")
                self._line.clear()
                self._execute("paste", source)
            else:
                self._line.append(b)
                self._emit(b"\r\n=== " if b == 13 else bytes([b]))
            return
        if self._sub == "esc":
            # Swallow cursor-key sequences (ESC [ ... final byte): no line editing here.
            if b != ord("[") and not (48 <= b <= 57 or b == ord(";")):
                self._sub = None
            return
        if b == ESC:
            self._sub = "esc"
        elif CTRL_A <= b <= CTRL_E and not self._line and not self._source:
            self._friendly_control(b)
        elif b == CTRL_C:
            self._line.clear()
            self._source = ""
            self._emit(b"\r\n")
            self._prompt()
        elif b == CTRL_D and not self._line and self._source:
            self._emit(b"\r\n")
            self._run_friendly_source()
        elif b == 13:
            self._emit(b"\r\n")
            self._enter_line()
        elif b in BACKSPACES:
            if self._line:
                self._line.pop()
                self._emit(b"\x08 \x08")
        elif b >= 32 or b == 9:
            self._line.append(b)
            self._emit(bytes([b]))

    def _friendly_control(self, b):
        if b == CTRL_A:
            self._mode = "raw"
            self._emit(b"\r\n" + RAW_REPL_BANNER + b">")
        elif b == CTRL_B:
            self._emit(b"\r\n")
            self._emit_banner()
            self._prompt()
        elif b == CTRL_C:
            self._emit(b"\r\n")
            self._prompt()
        elif b == CTRL_D:
            self._emit(b"\r\n")
            self._soft_reset()
        elif b == CTRL_E:
            self._sub = "paste"
            self._emit(b"\r\npaste mode; Ctrl-C to cancel, Ctrl-D to finish\r\n=== ")

    def _enter_line(self):
        line = self._line.decode("utf-8", "replace")
        self._line.clear()
        if not self._source and not line.strip():
            self._prompt()
            return
        self._source = line if not self._source else self._source + "\n" + line
        if needs_more_input(self._source):
            self._prompt()
        else:
            self._run_friendly_source()

    def _run_friendly_source(self):
        source = self._source.encode() + b"\n"
        self._source = ""
        self._execute("single", source)


# -- the command ----------------------------------------------------------------------


def add_arguments(parser):
    """Arguments of `microws vboard`."""
    parser.description = (
        "Run a virtual MicroPython board: the unix-port MicroPython behind a pseudo-terminal "
        "that behaves like a board on USB serial (friendly REPL, raw REPL, raw-paste, Ctrl-C, "
        "Ctrl-D soft reset running boot.py and main.py). Prints the device path; use it with "
        "`mpremote connect PATH ...`, `ampy -p PATH ...` or `microws deploy --port PATH`. "
        "Runs until Ctrl-C or SIGTERM."
    )
    parser.add_argument(
        "--dir",
        metavar="DIR",
        help="the board's filesystem folder (created if missing; default: a temporary folder, removed on exit)",
    )
    parser.add_argument(
        "--heapsize",
        metavar="SIZE",
        help="cap the interpreter heap like a board's, e.g. 96k or 256k (default: the unix port's)",
    )


def run(args):
    """Start a virtual board and keep it running until Ctrl-C or SIGTERM."""
    from microws_host.cli import UserError

    board = VirtualBoard(args.dir, heapsize=args.heapsize)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        device = board.start()
    except (FileNotFoundError, OSError) as e:
        raise UserError(str(e)) from None
    try:
        print("virtual board on %s (filesystem: %s)" % (device, board.folder), flush=True)
        print("  try: mpremote connect %s exec \"print('hello')\"" % device, flush=True)
        while not stop.wait(0.5):
            if board.error:
                raise UserError("the virtual board stopped: %s" % board.error)
    except KeyboardInterrupt:
        pass
    finally:
        board.stop()
    return 0
