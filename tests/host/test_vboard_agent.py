"""The virtual board's interpreter agent under Ctrl-C at random moments.

The host sends SIGINT while it believes user code runs; the signal often lands after the
code ended (the agent is writing its report or waiting for the next frame). Every frame
must still get one "start" and one kept "done" with its own number, nothing may leak into
the next frame, and the agent must not lose its place in the command stream.
"""

import os
import random
import select
import time

from microws_host.vboard import _Child

FRAMES = 3000
EVENT_TIMEOUT_S = 10.0


class AgentSession:
    """One agent interpreter, driven the way VirtualBoard drives it."""

    def __init__(self, micropython, root):
        self.child = _Child(micropython, root, None)
        self.output = b""
        assert self.next_event()[0].startswith(b"ready ")

    def next_event(self):
        """(line, traceback) of the next event; (None, output) if the agent exited."""
        child = self.child
        deadline = time.monotonic() + EVENT_TIMEOUT_S
        while True:
            line, sep, rest = child.events.partition(b"\n")
            if sep:
                length = int(line.split()[-1]) if line.startswith(b"done ") else 0
                if len(rest) >= length:
                    child.events = rest[length:]
                    return line, rest[:length]
            left = deadline - time.monotonic()
            assert left > 0, "no event from the agent within %ss" % EVENT_TIMEOUT_S
            readable, _, _ = select.select([child.event_r, child.stdout, child.stderr], [], [], left)
            for fd in readable:
                try:
                    data = _read(fd)
                except OSError:
                    data = b""
                if fd == child.event_r:
                    if not data:
                        self.output += _read_all(child.stdout) + _read_all(child.stderr)
                        return None, self.output
                    child.events += data
                else:
                    self.output += data

    def event_for(self, seq):
        """The next event of frame ``seq``; a repeated report of the frame before is skipped."""
        repeats = 0
        while True:
            line, text = self.next_event()
            if line is None:
                return None, text, repeats
            number = int(line.split()[1])
            if number == seq:
                return line, text, repeats
            assert line.startswith(b"done ") and number == seq - 1, (seq, line)
            repeats += 1

    def close(self):
        self.child.kill()


def _read(fd):
    return os.read(fd, 65536)


def _read_all(fd):
    os.set_blocking(fd, True)
    chunks = []
    while True:
        data = os.read(fd, 65536)
        if not data:
            return b"".join(chunks)
        chunks.append(data)


def test_late_interrupts_never_repeat_lose_or_leak_into_the_next_frame(tmp_path, micropython):
    rng = random.Random()
    session = AgentSession(micropython, tmp_path)
    tally = {"ok": 0, "interrupted": 0, "repeats": 0, "restarts": 0}
    try:
        for i in range(FRAMES):
            payload = b"x = %d" % i
            seq = session.child.send("raw", payload)
            line, _, repeats = session.event_for(seq)
            tally["repeats"] += repeats
            if line is not None:
                assert line == b"start %d" % seq
                signalled = i % 2 == 0
                if signalled:  # somewhere in the next few hundred microseconds
                    until = time.perf_counter() + rng.random() * 0.0003
                    while time.perf_counter() < until:
                        pass
                    session.child.interrupt()
                line, text, repeats = session.event_for(seq)
                tally["repeats"] += repeats
            if line is None:
                # The unix port leaves its heap locked when SIGINT lands during a garbage
                # collection; the agent says so and exits, and the board restarts it.
                assert b"cannot allocate any more" in text, text
                session.close()
                session = AgentSession(micropython, tmp_path)
                tally["restarts"] += 1
                continue
            status = line.split()[2]
            if b"KeyboardInterrupt" in text:
                assert signalled, "frame %d was not interrupted: %r" % (seq, text)
                tally["interrupted"] += 1
            else:
                assert status == b"ok", (seq, line, text)
                tally["ok"] += 1
    finally:
        session.close()
    print("late-interrupt tally:", tally)
    assert tally["restarts"] <= FRAMES // 500, tally
