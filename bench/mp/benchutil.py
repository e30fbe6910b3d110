"""Helpers shared by the MicroPython sides of the benchmarks (unix port)."""

import time


def cpu_ticks():
    """utime + stime of this process, in clock ticks (from /proc/self/stat)."""
    f = open("/proc/self/stat")
    fields = f.read().rsplit(")", 1)[1].split()
    f.close()
    return int(fields[11]) + int(fields[12])


class Timer:
    """Counts messages for ``seconds`` of wall time and reports them as one JSON line."""

    def __init__(self, seconds):
        self.n = 0
        self.deadline = int(seconds * 1000)
        self.c0 = cpu_ticks()
        self.t0 = time.ticks_ms()

    def tick(self):
        """Count one message; True while there is time left."""
        self.n += 1
        return time.ticks_diff(time.ticks_ms(), self.t0) < self.deadline

    def report(self):
        elapsed = time.ticks_diff(time.ticks_ms(), self.t0) / 1000
        cpu = cpu_ticks() - self.c0
        print('{"messages": %d, "seconds": %f, "cpu_ticks": %d}' % (self.n, elapsed, cpu))
