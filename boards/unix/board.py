"""Board profile `unix`: the unix-port MicroPython as a board with simulated sensors.

Readings depend only on ``seed`` and the simulated time since boot, so two runs with
the same seed produce the same series (on MicroPython and CPython alike: the random
source is our own xorshift, not the port's ``random``). The clock can run ``speedup``
times faster than real time, so ten simulated minutes take seconds. The LED is a
printed line. ``reset()`` ends the process with ``REBOOT_EXIT``; the simulator starts
it again, which is what a board's reset looks like from the outside.
"""

import math
import sys

NAME = "unix"
SENSORS = (("temp", "C"), ("humidity", "%"), ("light", "lx"))
SPEEDUP = 1  # simulated ms per real ms; set from config by setup()
WATCHDOG_MAX_MS = 0  # no hardware watchdog
FEEDER_TIMER_ID = None
REBOOT_EXIT = 75  # exit status meaning "reset me" to the simulator

_DAY_MS = 86400000
_state = 1
_walk = [0.0, 0.0, 0.0]


def setup(cfg):
    """Apply config: the simulated sensors' seed and the clock speed-up."""
    global SPEEDUP, _state
    SPEEDUP = cfg["speedup"]
    _state = (cfg["seed"] * 2654435761 + 1) & 0xFFFFFFFF or 1
    for i in range(len(_walk)):
        _walk[i] = 0.0


def _uniform():
    """Next number in [-1, 1) from a xorshift32 (same sequence on every runtime)."""
    global _state
    x = _state
    x ^= (x << 13) & 0xFFFFFFFF
    x ^= x >> 17
    x ^= (x << 5) & 0xFFFFFFFF
    _state = x
    return x / 2147483648.0 - 1.0


def read(name, elapsed_ms):
    """Simulated value of sensor ``name`` at ``elapsed_ms`` of simulated time since boot."""
    # A day/night cycle plus a bounded random walk per sensor.
    day = math.sin(2 * math.pi * ((elapsed_ms % _DAY_MS) / _DAY_MS - 0.25))
    if name == "temp":
        i, value = 0, 21.0 + 4.0 * day
    elif name == "humidity":
        i, value = 1, 50.0 - 10.0 * day
    elif name == "light":
        i, value = 2, 800.0 * day
    else:
        return None
    w = _walk[i] * 0.95 + _uniform() * 0.5
    _walk[i] = w
    if i == 2:
        return max(0.0, value + w * 40.0)  # no negative light at night
    return value + w


def led(on):
    """The simulated LED: a printed line."""
    print("microws-node: led", "on" if on else "off")


def wlan_setup(wlan):
    """No Wi-Fi on the unix port."""


def reset():
    """Reboot: exit with REBOOT_EXIT so the simulator starts a fresh boot."""
    sys.exit(REBOOT_EXIT)
