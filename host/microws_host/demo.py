"""``microws demo``: the main job with no hardware — a bridge, 3 simulated boards, the dashboard.

Starts ``microws bridge`` as a child process, waits until it listens, starts the
simulated boards (the real firmware on unix-port MicroPython, see ``simulator``) and
prints the dashboard URL. Ctrl-C stops the boards, then the bridge.
"""

import asyncio
import errno
import signal
import socket
import sys

from microws_host.cli import UserError
from microws_host.simulator import board_configs, micropython_exe, print_line, run_boards, run_until_stopped

# `microws` in a child (not `-m microws_host.cli`: run as __main__, its UserError would
# be another class than the one commands raise, and errors would show as tracebacks)
MICROWS = (sys.executable, "-c", "import sys; from microws_host.cli import main; sys.exit(main())")
DEFAULT_PORT = 8765
BRIDGE_START_TIMEOUT = 20.0
STOP_TIMEOUT = 5.0


def add_arguments(parser):
    """Flags of ``microws demo``."""
    a = parser.add_argument
    a("--host", default="127.0.0.1", help="address the bridge listens on (default 127.0.0.1)")
    a("--port", type=int, default=DEFAULT_PORT, help="bridge port (default 8765; 0 picks a free one)")
    a("--count", type=int, default=3, help="simulated boards (default 3)")
    a("--interval", type=int, default=1000, metavar="MS", help="sampling interval in ms (default 1000)")


def pick_port(host, port):
    """``port`` if it is free (0: any free port); UserError naming the fix when it is busy."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise UserError("port %d is busy (a bridge already running?); use --port N or --port 0" % port)
            raise UserError("cannot listen on %s:%d: %s" % (host, port, e.strerror))
        return s.getsockname()[1]


async def start_bridge(host, port):
    """Spawn ``microws bridge`` and wait until it accepts connections; returns the process."""
    proc = await asyncio.create_subprocess_exec(
        *MICROWS, "bridge", "--host", host, "--port", str(port),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + BRIDGE_START_TIMEOUT
    while True:
        if proc.returncode is not None:
            out = (await proc.stdout.read()).decode(errors="replace").strip()
            raise UserError("the bridge did not start: %s" % (out.splitlines()[-1] if out else proc.returncode))
        try:
            _, writer = await asyncio.open_connection(host, port)
            writer.close()
            return proc
        except OSError:
            if loop.time() > deadline:
                proc.kill()
                raise UserError("the bridge did not listen on %s:%d within %ds" % (host, port, BRIDGE_START_TIMEOUT))
            await asyncio.sleep(0.1)


async def relay_output(proc, prefix):
    """Print a child's output lines behind ``prefix``."""
    async for raw in proc.stdout:
        print("%s %s" % (prefix, raw.decode(errors="replace").rstrip()), flush=True)


async def stop_process(proc, timeout=STOP_TIMEOUT):
    """Ctrl-C a child, kill it if it does not exit in ``timeout`` s; returns its exit code."""
    if proc.returncode is None:
        proc.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(proc.wait(), timeout)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
    return proc.returncode


async def demo(host, port, count, interval):
    """Run the bridge and the boards until Ctrl-C."""
    bridge = await start_bridge(host, port)
    relay = asyncio.create_task(relay_output(bridge, "[bridge]"))
    try:
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
        print("microws demo: dashboard at http://%s:%d/  (%d simulated boards; Ctrl-C stops everything)"
              % (shown, port, count), flush=True)
        url = "ws://%s:%d/device" % (shown, port)
        await run_boards(board_configs(count, url, interval_ms=interval), on_line=print_line)
    finally:
        await stop_process(bridge)
        relay.cancel()


def run(args):
    """``microws demo``."""
    if not 1 <= args.count <= 50:
        raise UserError("--count must be 1..50")
    micropython_exe()  # a clear error before anything starts
    port = pick_port(args.host, args.port)
    return run_until_stopped(demo(args.host, port, args.count, args.interval))
