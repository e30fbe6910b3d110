"""Peer processes for interop and heap tests: start, wait for output lines, always stop.

A peer prints ``PORT <n>`` as its first line once it listens; we wait on that line
(never a sleep), bound every wait with a timeout, and kill the process on the way out.
"""

import asyncio
import os
import shutil
import ssl
from pathlib import Path

import ci

ROOT = Path(__file__).resolve().parents[2]
LIB = ROOT / "lib"
MP_DIR = Path(__file__).resolve().parent / "mp"
NODE_DIR = ROOT / "tests" / "node"


def require(ok, what):
    """Skip when a peer tool is missing -- but fail under CI, where nothing may skip."""
    ci.require(ok, "%s is missing" % what)


def node_exe():
    """The ``node`` executable with the pinned ``ws`` package installed, or skip/fail."""
    exe = shutil.which("node")
    require(exe is not None, "node")
    require((NODE_DIR / "node_modules" / "ws" / "package.json").exists(), "npm package ws (make setup)")
    return exe


def mp_env(*path):
    """Environment for a MicroPython peer: ``path`` first, then lib/ (or not), then frozen."""
    env = dict(os.environ)
    env["MICROPYPATH"] = ":".join([*map(str, path), ".frozen"])
    return env


def run(coro, timeout=60):
    """Run one async test body with an overall bound."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


def client_ssl(certdir):
    """A CPython client context trusting the test CA."""
    return ssl.create_default_context(cafile=str(Path(certdir) / "ca.pem"))


def server_ssl(certdir):
    """A CPython server context with the test certificate."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(Path(certdir) / "cert.pem"), str(Path(certdir) / "key.pem"))
    return ctx


def ca_der(certdir):
    """The test CA as DER (what MicroPython's ``load_verify_locations(cadata=)`` takes)."""
    d = Path(certdir)
    out = d / "ca.der"
    if not out.exists():
        out.write_bytes(ssl.PEM_cert_to_DER_cert((d / "ca.pem").read_text()))
    return out


class Peer:
    """A peer process; ``lines`` is everything it printed (stdout and stderr merged)."""

    def __init__(self, proc, argv):
        self.proc = proc
        self.argv = argv
        self.lines = []
        self.port = None

    @classmethod
    async def start(cls, argv, env=None, cwd=None, port_timeout=20):
        proc = await asyncio.create_subprocess_exec(
            *map(str, argv),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
            cwd=cwd and str(cwd),
        )
        peer = cls(proc, argv)
        if port_timeout:
            try:
                line = await peer.expect("PORT ", port_timeout)
            except BaseException:
                await peer.stop()
                raise
            peer.port = int(line.split()[1])
        return peer

    async def _readline(self):
        raw = await self.proc.stdout.readline()
        if not raw:
            return None
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        self.lines.append(line)
        return line

    async def expect(self, prefix, timeout=20):
        """The next line starting with ``prefix``; fails with the output on EOF or timeout."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    line = await self._readline()
                    if line is None:
                        await self.proc.wait()
                        raise AssertionError(
                            "%s exited (%s) before printing %r:\n%s"
                            % (self.argv[1:3], self.proc.returncode, prefix, self.output())
                        )
                    if line.startswith(prefix):
                        return line
        except TimeoutError:
            raise AssertionError("no %r from %s within %ss:\n%s" % (prefix, self.argv[1:3], timeout, self.output()))

    async def expect_count(self, prefix, n, timeout=20):
        """Wait until ``n`` lines starting with ``prefix`` were printed in all; returns them."""
        while sum(1 for ln in self.lines if ln.startswith(prefix)) < n:
            await self.expect(prefix, timeout)
        return [ln for ln in self.lines if ln.startswith(prefix)]

    async def finish(self, timeout=60):
        """Wait for the process to exit by itself; returns its exit code."""
        try:
            async with asyncio.timeout(timeout):
                while await self._readline() is not None:
                    pass
                return await self.proc.wait()
        except TimeoutError:
            raise AssertionError("%s still running after %ss:\n%s" % (self.argv[1:3], timeout, self.output()))

    def output(self):
        return "\n".join(self.lines)

    async def stop(self):
        """Kill the process (if still running) and reap it."""
        if self.proc.returncode is None:
            try:
                self.proc.kill()
            except ProcessLookupError:
                pass
        try:
            async with asyncio.timeout(10):
                rest = await self.proc.stdout.read()
                self.lines.extend(rest.decode("utf-8", "replace").splitlines())
                await self.proc.wait()
        except (TimeoutError, ValueError):
            pass

    async def __aenter__(self):
        return self

    async def __aexit__(self, exc_type, exc, tb):
        await self.stop()
        if exc is not None and hasattr(exc, "add_note"):
            exc.add_note("--- output of %s ---\n%s" % (" ".join(map(str, self.argv[1:4])), self.output()))
