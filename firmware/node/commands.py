"""Commands the bridge sends to the node (`cmd` messages); each returns (ok, value).

``run(node, name, args)`` never raises: a bad command or argument becomes an error
result, so nothing a bridge (or a browser behind it) sends can crash the node.
"""

import gc

from node import INTERVAL_MAX_MS, INTERVAL_MIN_MS


def _led(node, args):
    on = args.get("on")
    if not isinstance(on, bool):
        return False, "led needs args {\"on\": true|false}"
    node.set_led(on)
    return True, {"on": on}


def _interval(node, args):
    ms = args.get("ms")
    if not isinstance(ms, int) or isinstance(ms, bool) or not INTERVAL_MIN_MS <= ms <= INTERVAL_MAX_MS:
        return False, "interval needs args {\"ms\": %d..%d}" % (INTERVAL_MIN_MS, INTERVAL_MAX_MS)
    node.set_interval(ms)
    return True, {"ms": ms}


def _ping(node, args):
    return True, "pong"


def _info(node, args):
    return True, node.info()


def _reboot(node, args):
    node.request_reboot()
    return True, "rebooting"


HANDLERS = {"led": _led, "interval": _interval, "ping": _ping, "info": _info, "reboot": _reboot}


def run(node, name, args):
    """Execute command ``name`` with ``args`` (a dict) on ``node``; returns (ok, value or error text)."""
    handler = HANDLERS.get(name)
    if handler is None:
        return False, "unknown command %r" % (name,)
    if args is None:
        args = {}
    if not isinstance(args, dict):
        return False, "args must be an object"
    try:
        return handler(node, args)
    except Exception as e:  # a failing command is reported, never fatal
        gc.collect()
        return False, "%s failed: %r" % (name, e)
