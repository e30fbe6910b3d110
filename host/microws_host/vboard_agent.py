# The interpreter side of a virtual board. It runs under the unix-port MicroPython,
# never under CPython: `micropython vboard_agent.py ROOT CMD_FD EVENT_FD`.
#
# The host (microws_host.vboard) owns the serial line and the REPL framing; this
# script only executes what the host sends and reports back, so all state (globals,
# open files, imported modules) lives on between executions, as on a board.
#
# Host -> agent on CMD_FD, one frame per execution:
#     b"KIND LENGTH\n" + LENGTH bytes
#     KIND: "raw" (file input, <stdin>), "single" (one friendly-REPL entry, results
#     echoed), "paste" (friendly paste mode), "script" (the payload is a file name).
# Agent -> host on EVENT_FD (SEQ counts frames from 1 in this interpreter):
#     b"ready VERSION|DATE|MACHINE\n"   once, after the board filesystem is mounted
#     b"start SEQ\n"                     the frame was read; user code runs now
#     b"done SEQ STATUS LENGTH\n" + LENGTH bytes of traceback text
#     STATUS: "ok", "exc" (traceback follows), "exit" (SystemExit: soft reset)
# An event may come twice (see main()); the host keeps the first for each SEQ.
# User output goes to stdout untouched; the host forwards it to the serial line.

import io
import os
import select
import sys

import micropython
import vfs

AGENT_FILE = sys.argv[0]
# A pipe write up to this size lands whole or not at all, so a report is never torn.
PIPE_BUF = 4096
HEAP_GONE_NOTE = "vboard: the interpreter cannot allocate any more (heap locked or full)\n"


def mount_board_root(root):
    # The board's filesystem is ROOT: "/" inside the interpreter is ROOT on the host,
    # so absolute paths used by mpremote, ampy and the firmware land in ROOT.
    vfs.umount("/")
    vfs.mount(vfs.VfsPosix(root), "/")
    os.chdir("/")
    sys.path.clear()
    sys.path.extend(["", ".frozen", "/lib"])


def read_frame(cmd):
    header = cmd.readline()
    if not header:
        return None, None
    kind, length = header.split()
    length = int(length)
    payload = cmd.read(length) if length else b""
    while len(payload) < length:
        more = cmd.read(length - len(payload))
        if not more:
            return None, None
        payload += more
    return kind.decode(), payload


def traceback_text(exc):
    buf = io.StringIO()
    sys.print_exception(exc, buf)
    # Drop this agent's own frames: a board's traceback shows only user code.
    marker = '  File "%s"' % AGENT_FILE
    lines = [ln for ln in buf.getvalue().split("\n") if not ln.startswith(marker)]
    return "\n".join(lines)


def done_report(seq, status, text=""):
    head = b"done %d %s " % (seq, status.encode())
    data = text.encode()
    room = PIPE_BUF - len(head) - 8
    if len(data) > room:
        # Keep the end of a huge traceback: the exception itself is on its last line.
        data = b"...\n" + data[-(room - 4) :]
    return head + b"%d\n" % len(data) + data


def execute(seq, kind, payload, board_globals):
    try:
        if kind == "script":
            name = payload.decode()
            with open(name) as f:
                source = f.read()
            code = compile(source, name, "exec")
        else:
            code = compile(payload, "<stdin>", "single" if kind == "single" else "exec")
        exec(code, board_globals)
        report = done_report(seq, "ok")
    except SystemExit:
        report = done_report(seq, "exit")
    except BaseException as e:  # noqa: BLE001 - everything the board would print
        report = done_report(seq, "exc", traceback_text(e))
    # User code may have turned Ctrl-C off (mpremote's mount does); a board turns it
    # back on at the prompt.
    micropython.kbd_intr(3)
    return report


def main():
    root, cmd_fd, event_fd = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    cmd = open(cmd_fd, "rb")
    events = open(event_fd, "wb")
    mount_board_root(root)
    sys.argv.clear()
    impl = sys.implementation
    version = ".".join(str(v) for v in impl.version[:3])
    if len(impl.version) > 3 and impl.version[3]:
        version += "-" + impl.version[3]
    date = sys.version.split(" on ")[-1]
    machine = getattr(impl, "_machine", sys.platform)
    events.write(b"ready %s|%s|%s\n" % (version.encode(), date.encode(), machine.encode()))

    board_globals = {"__name__": "__main__"}
    waiting = select.poll()
    waiting.register(cmd, select.POLLIN)
    seq = 0  # frames read so far
    running = 0  # the frame whose report is not made yet (0: none)
    report = None  # the last frame's report, until written
    while True:
        # Ctrl-C is SIGINT from the host, sent only after it read "start SEQ" and before
        # it read "done SEQ": it may still land after user code ended, anywhere in this
        # loop. So every step here survives a KeyboardInterrupt at any point:
        # - a report is one atomic write, written again if interrupted (the host drops
        #   a repeated SEQ);
        # - the host signals before it writes the next frame, so once the command pipe
        #   is readable any stale interrupt is already pending, and it is raised at the
        #   drain below, before a byte of the frame is consumed.
        try:
            if report is not None:
                events.write(report)
                report = None
            waiting.poll()
            for _ in range(2):  # a loop jump: where a pending interrupt is raised
                pass
            kind, payload = read_frame(cmd)
            if kind is None:
                return  # the host closed the command pipe
            seq += 1
            running = seq
            events.write(b"start %d\n" % seq)
            report = execute(seq, kind, payload, board_globals)
            running = 0
        except KeyboardInterrupt as e:
            if running and report is None:
                report = done_report(running, "exc", traceback_text(e))
            running = 0

try:
    main()
except MemoryError:
    # User code's MemoryError is reported as its traceback; one in this loop means the
    # heap is gone for good: the unix port leaves it locked when Ctrl-C lands during a
    # garbage collection (seen about once per few dozen interrupts of allocating code).
    # Exiting lets the host start a fresh interpreter (a soft reset).
    sys.stderr.write(HEAP_GONE_NOTE)
    sys.exit(70)
