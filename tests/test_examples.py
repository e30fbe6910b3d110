"""The README's examples work as printed, under MicroPython and CPython.

The README embeds examples/echo_server.py and examples/client.py verbatim; only
the port number is swapped for a free one here.
"""

import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import micropython_env

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port, proc, timeout=10):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.02)  # polling a port, bounded by the deadline
    raise AssertionError("server did not listen on %d" % port)


def test_readme_embeds_the_examples_verbatim():
    readme = (ROOT / "README.md").read_text()
    for name in ("echo_server.py", "client.py"):
        assert (EXAMPLES / name).read_text().strip() in readme, name


@pytest.mark.parametrize("server_rt", ["micropython", "cpython"])
@pytest.mark.parametrize("client_rt", ["micropython", "cpython"])
def test_readme_client_talks_to_readme_server(tmp_path, micropython, server_rt, client_rt):
    port = free_port()
    exe = {"micropython": micropython, "cpython": sys.executable}
    env = micropython_env()
    env["PYTHONPATH"] = str(ROOT / "lib")
    srv_file = tmp_path / "server.py"
    srv_file.write_text((EXAMPLES / "echo_server.py").read_text().replace("8080", str(port)))
    cli_file = tmp_path / "client.py"
    cli_file.write_text((EXAMPLES / "client.py").read_text().replace("8080", str(port)))
    server = subprocess.Popen(
        [exe[server_rt], str(srv_file)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        wait_listening(port, server)
        out = subprocess.run([exe[client_rt], str(cli_file)], env=env, capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stdout + out.stderr
        assert out.stdout.strip() == "hello"
    finally:
        server.kill()
        server.wait(10)
