"""Instructions per 64-byte ping-pong message on the server: microws against raw TCP.

CPU time on a shared machine moves 10-30% from run to run (see "Library speed"); the
number of instructions the server executes per message does not (within 0.5% here), so
this is the figure to compare two versions of the library with. Each server runs
under valgrind's cachegrind (user-space instructions only: the system calls, the
same for both servers, are not counted) twice, for N1 and N2 round trips; the
difference divided by N2 - N1 is the cost per message without start-up and imports.

    python bench/lib_instructions.py [--lib DIR ...]    (needs valgrind: apt-get install valgrind)

``--lib`` measures other copies of lib/ (e.g. a checkout of an older commit) beside it.
"""

import argparse
import re
import shutil
import signal
import subprocess
import sys

from harness import MICROWS_LIB, command, free_port, masked_frame, payload_of, recv_exact, tcp_open, ws_open

N1, N2 = 500, 2500
TIMEOUT = 120


def _instructions(kind, lib, n):
    """Total user-space instructions of an echo server of ``kind`` that answered ``n`` messages."""
    port = free_port()
    if kind == "microws":
        argv, env = command("microws", "server", port, 65536, "while")
        env["MICROPYPATH"] = env["MICROPYPATH"].replace(str(MICROWS_LIB), str(lib))
        out, reply = masked_frame(payload_of(64)), 66
    else:
        argv, env = command("raw", "server", port)
        out, reply = payload_of(64), 64
    argv = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null", *argv]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()  # pyright: ignore[reportOptionalMemberAccess]
        if "READY" not in line:
            raise RuntimeError("%s server did not start: %r" % (kind, line))
        s = tcp_open(port) if kind == "raw" else ws_open(port)
        buf = memoryview(bytearray(reply))
        for _ in range(n):
            s.sendall(out)
            recv_exact(s, buf)
        s.close()
        # SIGTERM: valgrind prints its totals for a killed process too (SIGINT, a
        # KeyboardInterrupt inside MicroPython, sometimes left the server running).
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    m = re.search(r"I\s+refs:\s+([\d,]+)", err)
    if not m:
        raise RuntimeError("no instruction count from cachegrind: %s" % err[-500:])
    return int(m.group(1).replace(",", ""))


def per_message(kind, lib=MICROWS_LIB):
    return (_instructions(kind, lib, N2) - _instructions(kind, lib, N1)) / (N2 - N1)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lib", action="append", default=[], help="another copy of lib/ to measure too")
    args = ap.parse_args(argv)
    if shutil.which("valgrind") is None:
        print("valgrind is needed (apt-get install valgrind)", file=sys.stderr)
        return 2
    raw = per_message("raw")
    print("raw TCP echo (reference): %.0f instructions per message" % raw)
    for lib in [MICROWS_LIB, *args.lib]:
        v = per_message("microws", lib)
        print("microws %s: %.0f instructions per message, %.2fx raw" % (lib, v, v / raw))
    return 0


if __name__ == "__main__":
    sys.exit(main())
