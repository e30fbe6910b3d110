"""Helpers for tests that talk to a virtual board: a serial reader that waits on output,
and a runner for the real command-line tools (mpremote, ampy, microws) with a bound."""

import subprocess
import sys
import time
from pathlib import Path

import serial

VENV_BIN = Path(sys.executable).parent
TOOL_TIMEOUT = 90  # seconds any one command-line tool run may take


def run_tool(*argv, timeout=TOOL_TIMEOUT):
    """Run a tool from the .venv (``mpremote``, ``ampy``, ``microws``) and return the CompletedProcess."""
    exe = str(VENV_BIN / argv[0])
    return subprocess.run([exe, *argv[1:]], capture_output=True, text=True, timeout=timeout)


class SerialConsole:
    """The board's serial line as a test sees it: write bytes, wait for expected output."""

    def __init__(self, device):
        self.port = serial.Serial(device, 115200, timeout=0.1)
        self.seen = b""

    def write(self, data):
        self.port.write(data)

    def expect(self, marker, timeout=10.0):
        """Read until ``marker`` appears (returning everything up to and including it)."""
        deadline = time.monotonic() + timeout
        while marker not in self.seen:
            if time.monotonic() > deadline:
                raise AssertionError("no %r within %ss; board said %r" % (marker, timeout, self.seen[-600:]))
            self.seen += self.port.read(4096)
        before, _, after = self.seen.partition(marker)
        self.seen = after
        return before + marker

    def sync(self):
        """Get to a fresh friendly prompt, past whatever the board printed before we looked."""
        self.write(b"\x03\x02print('sync', 6 * 7)\r")
        self.expect(b"sync 42\r\n>>> ")

    def close(self):
        self.port.close()
