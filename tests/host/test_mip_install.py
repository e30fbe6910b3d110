"""The library installs on a board the documented way: `mpremote mip install lib/package.json`.

Run against a virtual board (unix-port MicroPython behind a pty), then the
installed copy is imported and used on the board.
"""

import json
from pathlib import Path

import pytest
from vboard_support import run_tool

from microws_host.vboard import VirtualBoard

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def board(tmp_path, micropython):
    vb = VirtualBoard(tmp_path / "fs", micropython=micropython)
    path = vb.start()
    try:
        yield path, tmp_path / "fs"
    finally:
        vb.stop()


def test_package_json_lists_every_library_module():
    pkg = json.loads((ROOT / "lib" / "package.json").read_text())
    listed = sorted(dest for dest, _ in pkg["urls"])
    on_disk = sorted("microws/" + p.name for p in (ROOT / "lib" / "microws").glob("*.py"))
    assert listed == on_disk


def test_mpremote_mip_install_from_package_json_then_import_on_the_board(board):
    device, fs = board
    package = str(ROOT / "lib" / "package.json")
    r = run_tool("mpremote", "connect", device, "mip", "install", "--target", "/lib", package)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (fs / "lib" / "microws" / "protocol.py").exists()
    code = (
        "import microws.frames as f, microws.handshake as h;"
        "print(h.accept_key('dGhlIHNhbXBsZSBub25jZQ=='), f.encode_header(1, 3))"
    )
    r = run_tool("mpremote", "connect", device, "exec", code)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "s3pPLMBiTxaQ9kYGzzhZRbK+xOo= b'\\x81\\x03'" in r.stdout
