"""Run the benchmarks (``make bench``): library figures first, then the other bench scripts.

    python bench/run.py [--seconds S] [--rounds N] [--only echo,client,handshake]
                        [--readme] [--lib-only] [--head]

Library benchmarks (bench/lib_*.py) run in this process, which is the load
generator pinned to core 1; every server or client under test runs pinned to
core 0. Every figure is measured in this run against references measured in this
run; the table shows the ratios (microws / reference) and whether the issue's
targets are met. JSON goes to bench/results/lib.json; ``--readme`` also rewrites
the "## Library speed" section of bench/README.md (other sections are kept).
The other scripts (bench/bridge_*.py, bench/heap_*.py) run afterwards as they are.
"""

import argparse
import os
import shutil
import subprocess
import sys
import time

import harness
import lib_client
import lib_echo
import lib_handshake

SUITES = {"echo": lib_echo, "client": lib_client, "handshake": lib_handshake}
SECTION = "## Library speed"
OTHER_TIMEOUT = 600


def run_lib(names, seconds, rounds):
    figures, raw, took = [], {}, {}
    for name in names:
        t0 = time.monotonic()
        figs, res = SUITES[name].run(seconds, rounds)
        took[name] = round(time.monotonic() - t0, 1)
        print("%s: %.1f s" % (name, took[name]), file=sys.stderr)
        figures += figs
        raw[name] = res
    return figures, raw, took


def summary(figures):
    """One line per figure with a target: met or missed, and by how much."""
    lines = []
    for f in figures:
        if f["met"] is None:
            continue
        ref, want = f["target"]
        mine = f["values"].get("microws")
        if ref == "abs":
            got = "%s %s" % (harness._fmt(mine), f["unit"]) if mine is not None else "fail"
        else:
            r = f["ratios"].get(ref)
            got = "%.2fx %s" % (r, harness.NAMES[ref]) if r is not None else "fail"
        lines.append("- %s: %s (target %s) — %s" % (f["label"], got, harness._target_text(f), _verdict(f)))
    return lines


def _verdict(f):
    if f["met"]:
        return "met"
    ref, want = f["target"]
    mine = f["values"].get("microws")
    if mine is None:
        return "**missed**: microws failed"
    r = mine if ref == "abs" else f["ratios"].get(ref)
    if r is None:
        return "**missed**"
    if f["better"] == "low":
        return "**missed**: %.0f%% over" % ((r / want - 1) * 100)
    return "**missed**: %.0f%% short" % ((1 - r / want) * 100)


def failures(figures):
    out = []
    for f in figures:
        for impl, err in sorted(f["notes"].items()):
            out.append("- %s, %s: %s" % (f["label"], impl, err.splitlines()[-1] if err else "?"))
    return out


def section(figures, env, took):
    lines = [
        SECTION,
        "",
        "Measured by `bench/run.py --head --readme` (`make bench` runs it on the working tree, without "
        "`--readme`) on %s; "
        "machine: %d cores (%s), load average at start %s; %s (unix port); CPython %s; microws: %s."
        % (
            env["date"],
            env["cores"],
            env["cpu"],
            " ".join(env["loadavg"]),
            env["micropython"],
            env["python"],
            env["lib"],
        ),
        "",
        "Server (or client) under test pinned to core 0, load generator to core 1 (`taskset`), loopback. "
        "Each figure is the best of %s rounds of %s s, the rounds interleaved across implementations (the "
        "machine is shared with other work; the least disturbed round counts). "
        "Ratios are microws / reference, all measured in the same run. Server CPU is the process's user + "
        "system time over the round. MB/s counts message payload one way. References: `bench/ref/` "
        "(raw-TCP asyncio echo on MicroPython, microdot's WebSocket echo on MicroPython, CPython `websockets`); "
        "the client figures use `bench/ref/fast_peer.py` (CPython) as the echo peer. Load generator: CPython, "
        "raw sockets, frames masked once up front. To measure a patched library: "
        "`BENCH_MICROWS_LIB=/path/to/lib .venv/bin/python bench/run.py --lib-only`." % (env["rounds"], env["seconds"]),
        "",
        harness.table(figures),
        "",
        "Targets (issue 2):",
        "",
        *summary(figures),
    ]
    fails = failures(figures)
    if fails:
        lines += ["", "Failures (last line of the error):", "", *fails]
    lines += ["", "Suite times: %s." % ", ".join("%s %.0f s" % kv for kv in took.items()), ""]
    return "\n".join(lines)


def write_readme(text):
    """Replace (or add) the Library speed section of bench/README.md, keeping the rest."""
    path = harness.BENCH / "README.md"
    old = path.read_text() if path.exists() else "# Benchmarks\n"
    start = old.find(SECTION + "\n")
    if start < 0:
        new = old.rstrip("\n") + "\n\n" + text
    else:
        end = old.find("\n## ", start + len(SECTION))
        new = old[:start] + text + (old[end + 1 :] if end >= 0 else "")
    path.write_text(new)
    return path


def run_others():
    """The other engineers' bench scripts, each in its own process on every core."""
    scripts = sorted(harness.BENCH.glob("bridge_*.py")) + sorted(harness.BENCH.glob("heap_*.py"))
    every_core = set(range(os.cpu_count() or 1))
    failed = 0
    for script in scripts:
        print("\n== %s" % script.name, flush=True)
        try:
            rc = subprocess.run(
                [sys.executable, str(script)],
                cwd=harness.ROOT,
                timeout=OTHER_TIMEOUT,
                preexec_fn=lambda: os.sched_setaffinity(0, every_core),
            ).returncode
        except subprocess.TimeoutExpired:
            rc = "timeout"
        if rc != 0:
            failed += 1
            print("%s: exit %s" % (script.name, rc), flush=True)
    return failed


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=0.8, help="duration of each round")
    ap.add_argument("--rounds", type=int, default=3, help="rounds per figure (the best counts)")
    ap.add_argument("--only", default=",".join(SUITES), help="library suites to run: echo,client,handshake")
    ap.add_argument("--readme", action="store_true", help="write the figures into bench/README.md")
    ap.add_argument("--lib-only", action="store_true", help="skip bench/bridge_*.py and bench/heap_*.py")
    ap.add_argument("--head", action="store_true", help="measure lib/ as committed at HEAD, not the working tree")
    args = ap.parse_args(argv)
    names = [n for n in args.only.split(",") if n]
    unknown = set(names) - set(SUITES)
    if unknown:
        ap.error("unknown suite(s): %s" % ", ".join(sorted(unknown)))

    harness.pin_self()
    snapshot = harness.use_head_lib() if args.head else None
    env = harness.environment()
    env.update(seconds=args.seconds, rounds=args.rounds)
    figures, raw, took = run_lib(names, args.seconds, args.rounds)
    print(harness.table(figures))
    print()
    print("\n".join(summary(figures)))
    fails = failures(figures)
    if fails:
        print("\n".join(["", "failures:", *fails]))
    print("results:", harness.save("lib", figures, {"raw": raw, "suite_seconds": took, "run": env}))
    if args.readme:
        print("README:", write_readme(section(figures, env, took)))
    if snapshot:
        shutil.rmtree(snapshot, ignore_errors=True)
    if not args.lib_only and run_others():
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
