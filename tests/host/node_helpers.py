"""Shared by the node tests: status-line parsing and running a scenario with a deadline."""

import asyncio

TIMEOUT = 90  # s for a whole scenario


def run(coro, timeout=TIMEOUT):
    """Run an async scenario with a hard deadline."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


# Identifiers stay text even when they happen to be all digits (a hex boot id is,
# about one time in 40).
TEXT_FIELDS = ("id", "boot", "board", "fw", "bridge", "reason")


def fields(line):
    """``key=value`` pairs of a ``microws-node: ...`` status line, counters as ints."""
    out = {}
    for word in line.split():
        if "=" in word:
            key, value = word.split("=", 1)
            out[key] = int(value) if key not in TEXT_FIELDS and value.lstrip("-").isdigit() else value
    return out


def status(event):
    """Predicate: a status line for ``event`` ("up", "link up", "link down", "stop", "reboot")."""
    prefix = "microws-node: %s " % event
    return lambda line: line.startswith(prefix)


def node_config(url, node_id="n1", **extra):
    """A test node's config.json: fast sampling, fast reconnects."""
    cfg = {"id": node_id, "bridge": url, "interval_ms": 100, "backoff_min_ms": 100, "backoff_max_ms": 1000}
    cfg.update(extra)
    return cfg


def assert_exactly_once(seqs_seen, last_acked, dev=""):
    """Every seq 1..last_acked is there; ``seqs_seen`` maps seq -> times stored."""
    missing = [s for s in range(1, last_acked + 1) if s not in seqs_seen]
    doubled = {s: n for s, n in seqs_seen.items() if n != 1}
    assert not missing, "%s: missing seqs %s" % (dev, missing[:20])
    assert not doubled, "%s: stored more than once %s" % (dev, dict(list(doubled.items())[:20]))
    assert sorted(seqs_seen) == list(range(1, max(seqs_seen) + 1)), "%s: gaps" % dev
