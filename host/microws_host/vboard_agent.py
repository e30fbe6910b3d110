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
# Agent -> host on EVENT_FD:
#     b"ready VERSION|DATE|MACHINE\n"   once, after the board filesystem is mounted
#     b"start\n"                         the frame was read; user code runs now
#     b"done STATUS LENGTH\n" + LENGTH bytes of traceback text
#     STATUS: "ok", "exc" (traceback follows), "exit" (SystemExit: soft reset)
# User output goes to stdout untouched; the host forwards it to the serial line.

import io
import os
import sys

import micropython
import vfs

AGENT_FILE = sys.argv[0]


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


def done_report(status, text=""):
    data = text.encode()
    return b"done %s %d\n" % (status.encode(), len(data)) + data


def execute(kind, payload, board_globals):
    try:
        if kind == "script":
            name = payload.decode()
            with open(name) as f:
                source = f.read()
            code = compile(source, name, "exec")
        else:
            code = compile(payload, "<stdin>", "single" if kind == "single" else "exec")
        exec(code, board_globals)
        report = done_report("ok")
    except SystemExit:
        report = done_report("exit")
    except BaseException as e:  # noqa: BLE001 - everything the board would print
        report = done_report("exc", traceback_text(e))
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
    report = None
    in_frame = False
    while True:
        # The host sends SIGINT (KeyboardInterrupt) only between "start" and reading
        # "done", so an interrupt that lands in this loop rather than in user code
        # still produces exactly one report for the frame.
        try:
            if report is not None:
                events.write(report)
                report = None
                in_frame = False
            kind, payload = read_frame(cmd)
            if kind is None:
                return  # the host closed the command pipe
            in_frame = True
            events.write(b"start\n")
            report = execute(kind, payload, board_globals)
        except KeyboardInterrupt as e:
            if in_frame and report is None:
                report = done_report("exc", traceback_text(e))


main()
