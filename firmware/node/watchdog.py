"""Hardware watchdog on real boards; a no-op where the board profile has none (unix).

A started watchdog can never be stopped (ESP32, RP2040), and it keeps running through
a soft reset. That would reset a board while ``mpremote`` copies files. So whenever
the node is not the one feeding it (after ``boot.py``, after Ctrl-C into the REPL) a
periodic timer feeds it; the node takes over with ``take_over()`` and from then on
only a node that keeps making progress feeds it.
"""

_wdt = None
_timer = None
timeout_ms = 0


def start(board, timeout_s):
    """Start (or re-arm) the watchdog; returns False when off or not supported."""
    global _wdt, timeout_ms
    if not timeout_s or not board.WATCHDOG_MAX_MS:
        return False
    from machine import WDT

    timeout_ms = min(timeout_s * 1000, board.WATCHDOG_MAX_MS)
    try:
        _wdt = WDT(timeout=timeout_ms)
    except (OSError, ValueError) as e:
        print("microws-node: watchdog unavailable %r" % (e,))
        _wdt = None
        return False
    return True


def feed():
    """Tell the watchdog the node is alive."""
    if _wdt is not None:
        _wdt.feed()


def keep_fed(board, timeout_s):
    """Feed from a timer interrupt: for boot.py, the REPL and file copies."""
    global _timer
    if not start(board, timeout_s):
        return
    from machine import Timer

    take_over()
    _timer = Timer(board.FEEDER_TIMER_ID, mode=Timer.PERIODIC, period=timeout_ms // 4, callback=_feed_from_timer)


def _feed_from_timer(timer):
    feed()


def take_over():
    """Stop the timer feeder: from now on the node's own loop must feed."""
    global _timer
    if _timer is not None:
        _timer.deinit()
        _timer = None
