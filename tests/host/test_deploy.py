"""`microws deploy` onto a virtual board: the whole path with no hardware.

The repository's own tree (lib/microws + firmware/ + boards/unix) goes onto a
`VirtualBoard` through real mpremote and real ampy; a small fixture tree checks the
bookkeeping (stale files, shadowing .py, node errors) quickly.
"""

import json
import re
import subprocess
import sys
import urllib.request
from argparse import Namespace

import pytest
from vboard_support import VENV_BIN, run_tool

from microws_host import deploy
from microws_host.boards import REPO_ROOT, load_board
from microws_host.vboard import VirtualBoard

CHANGED = re.compile(r"(\d+) files changed \((\d+) bytes\), (\d+) unchanged, (\d+) stale removed")
UNIX_BOARD_JSON = (REPO_ROOT / "boards" / "unix" / "board.json").read_text()


@pytest.fixture
def board(tmp_path, micropython):
    vb = VirtualBoard(tmp_path / "board", micropython=micropython)
    vb.start()
    yield vb
    vb.stop()
    assert vb.error is None, vb.error


def deploy_cli(port, *extra):
    r = run_tool("microws", "deploy", "--board", "unix", "--port", port, *extra)
    summary = CHANGED.search(r.stdout)
    return r, (tuple(int(g) for g in summary.groups()) if summary else None)


def make_fixture_tree(root, main_py="print('microws-node: up fixture')\n"):
    (root / "lib" / "microws").mkdir(parents=True)
    (root / "lib" / "microws" / "__init__.py").write_text("VERSION = 1\n")
    (root / "lib" / "microws" / "extra.py").write_text("def f():\n    return 2\n")
    (root / "firmware" / "node").mkdir(parents=True)
    (root / "firmware" / "main.py").write_text(main_py)
    (root / "firmware" / "boot.py").write_text("pass\n")
    (root / "firmware" / "manifest.py").write_text("freeze('.')\n")
    (root / "firmware" / "node" / "__init__.py").write_text("")
    (root / "firmware" / "node" / "page.html").write_text("<p>hi</p>\n")
    (root / "boards" / "unix").mkdir(parents=True)
    (root / "boards" / "unix" / "board.json").write_text(UNIX_BOARD_JSON)
    (root / "boards" / "unix" / "board.py").write_text("NAME = 'unix'\n")
    return root


@pytest.mark.parametrize("tool", ["mpremote", "ampy"])
def test_deploy_the_real_tree_starts_the_node_and_a_second_run_copies_nothing(board, tool):
    r, summary = deploy_cli(board.device, "--tool", tool, "--device-id", "vb-" + tool)
    assert r.returncode == 0, r.stdout + r.stderr
    changed, nbytes, unchanged, stale = summary
    assert changed > 10 and nbytes > 10000 and unchanged == 0 and stale == 0
    assert "node up: id=vb-%s board=unix" % tool in r.stdout

    folder = board.folder
    assert (folder / "main.py").read_bytes() == (REPO_ROOT / "firmware" / "main.py").read_bytes()
    assert (folder / "boot.py").is_file() and not (folder / "boot.mpy").exists()
    assert (folder / "board.mpy").is_file()
    assert (folder / "node" / "app.mpy").read_bytes()[:2] == b"M\x06"
    assert (folder / "lib" / "microws" / "frames.mpy").is_file()
    assert not list(folder.rglob("*.py"))[2:], "only boot.py and main.py stay source"
    assert json.loads((folder / "config.json").read_text()) == {"id": "vb-" + tool}

    r, summary = deploy_cli(board.device, "--tool", tool)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "0 files changed" in r.stdout
    assert summary[0] == 0 and summary[2] == changed
    assert "node up: id=vb-%s" % tool in r.stdout  # the id stayed: config.json was merged


def test_deploy_removes_files_that_left_the_tree_and_py_that_shadow_mpy(board, tmp_path):
    tree = make_fixture_tree(tmp_path / "tree")
    r, summary = deploy_cli(board.device, "--source", str(tree))
    assert r.returncode == 0, r.stdout + r.stderr
    assert summary == (summary[0], summary[1], 0, 0) and summary[0] == 8  # 7 files + config.json
    assert "node up: fixture" in r.stdout
    assert (board.folder / "node" / "page.html").read_text() == "<p>hi</p>\n"
    assert not (board.folder / "manifest.py").exists() and not (board.folder / "manifest.mpy").exists()

    (tree / "lib" / "microws" / "extra.py").unlink()
    (board.folder / "lib" / "microws" / "__init__.py").write_text("shadow")  # would win over __init__.mpy
    (board.folder / "user_data.txt").write_text("mine")
    r, summary = deploy_cli(board.device, "--source", str(tree))
    assert r.returncode == 0, r.stdout + r.stderr
    assert summary[0] == 0 and summary[3] == 2
    assert not (board.folder / "lib" / "microws" / "extra.mpy").exists()
    assert not (board.folder / "lib" / "microws" / "__init__.py").exists()
    assert (board.folder / "user_data.txt").read_text() == "mine", "never touches files it did not put there"


def test_deploy_merges_settings_into_the_config_on_the_board(board, tmp_path):
    tree = make_fixture_tree(tmp_path / "tree")
    source = ("--source", str(tree))
    r, _ = deploy_cli(board.device, *source, "--bridge", "ws://10.0.0.2:8765/device", "--wifi", "home:pa:ss")
    assert r.returncode == 0, r.stdout + r.stderr
    r, summary = deploy_cli(
        board.device, *source, "--token", "T1", "--config", "interval_ms=250", "--no-start"
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert summary[0] == 1  # config.json only
    assert json.loads((board.folder / "config.json").read_text()) == {
        "bridge": "ws://10.0.0.2:8765/device",
        "wifi_ssid": "home",
        "wifi_password": "pa:ss",
        "token": "T1",
        "interval_ms": 250,
    }


def test_a_node_that_fails_to_start_is_one_line_of_error(board, tmp_path):
    tree = make_fixture_tree(tmp_path / "tree", main_py="import missing_module\n")
    r, _ = deploy_cli(board.device, "--source", str(tree))
    assert r.returncode == 1
    assert (
        r.stderr.strip()
        == "microws deploy: error: the node did not start: ImportError: no module named 'missing_module'"
    )

    tree2 = make_fixture_tree(
        tmp_path / "tree2", main_py="print('microws-node: error config: bridge must start with ws://')\n"
    )
    r, _ = deploy_cli(board.device, "--source", str(tree2))
    assert r.returncode == 1
    assert "the node did not start: microws-node: error config: bridge must start with ws://" in r.stderr


@pytest.mark.parametrize(
    "argv, message",
    [
        (("--port", "/dev/does-not-exist"), "cannot open /dev/does-not-exist"),
        (
            ("--port", "/dev/null", "--board", "nosuch"),
            "unknown board 'nosuch' (known: esp32, rp2040_pico_w, unix)",
        ),
        (("--port", "/dev/null", "--bridge", "http://x"), "--bridge must be a ws:// or wss:// URL"),
    ],
)
def test_user_errors_are_one_line_without_traceback(argv, message):
    args = ["microws", "deploy", *argv]
    if "--board" not in argv:
        args += ["--board", "unix"]
    r = run_tool(*args)
    assert r.returncode == 1
    assert message in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


@pytest.mark.parametrize("board_name, arch", [("esp32", 10), ("rp2040_pico_w", 4), ("unix", 2)])
def test_native_code_is_compiled_for_the_board_architecture(board_name, arch, tmp_path):
    tree = make_fixture_tree(tmp_path / "tree")
    for name in ("esp32", "rp2040_pico_w"):
        (tree / "boards" / name).mkdir()
        (tree / "boards" / name / "board.json").write_text(
            (REPO_ROOT / "boards" / name / "board.json").read_text()
        )
    (tree / "lib" / "microws" / "fast.py").write_text(
        "import micropython\n@micropython.viper\ndef add(a: int, b: int) -> int:\n    return a + b\n"
    )
    files = {f.remote: f.data for f in deploy.compile_files(load_board(board_name, tree / "boards"), tree)}
    header = files["/lib/microws/fast.mpy"][:3]
    assert header[:2] == b"M\x06" and header[2] >> 2 == arch  # mpy v6, native arch field
    assert "/main.py" in files and "/boot.py" in files


def test_merge_config_validates_wifi_and_keeps_unrelated_keys():
    args = Namespace(wifi="net", bridge=None, token=None, device_id=None, config=None)
    with pytest.raises(deploy.DeployError, match="SSID:PASSWORD"):
        deploy.merge_config({}, args)
    args = Namespace(
        wifi=None, bridge=None, token=None, device_id="d2", config=['sensors=["temp"]', "note=hi"]
    )
    assert deploy.merge_config({"seed": 3, "id": "d1"}, args) == {
        "seed": 3,
        "id": "d2",
        "sensors": ["temp"],
        "note": "hi",
    }


# -- end to end: vboard -> deploy -> node -> bridge -> /api/devices ----------------------


@pytest.fixture
def bridge_process():
    proc = subprocess.Popen(
        [str(VENV_BIN / "microws"), "bridge", "--host", "127.0.0.1", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        line = proc.stdout.readline()  # the bridge prints where it listens first
        match = re.search(r"listening on http://127\.0\.0\.1:(\d+)/", line)
        assert match, "bridge did not start: %r" % line
        yield int(match.group(1))
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("tool", ["mpremote", "ampy"])
def test_deployed_node_streams_readings_into_the_bridge(board, bridge_process, tool):
    port = bridge_process
    device_id = "vboard-e2e-" + tool
    r, summary = deploy_cli(
        board.device,
        "--tool", tool,
        "--bridge", "ws://127.0.0.1:%d/device" % port,
        "--device-id", device_id,
        "--config", "interval_ms=100",
    )  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    assert "bridge=ws://127.0.0.1:%d/device" % port in r.stdout

    # Long-poll the bridge's event stream until this device's readings arrive (bounded).
    cursor, readings = None, []
    for _ in range(40):
        url = "http://127.0.0.1:%d/api/poll?wait=2" % port + (
            "&since=%d" % cursor if cursor is not None else ""
        )
        with urllib.request.urlopen(url, timeout=10) as resp:
            body = json.loads(resp.read())
        cursor = body.get("cursor", cursor)
        events = [json.loads(e) if isinstance(e, str) else e for e in body.get("events", [])]
        readings += [e for e in events if e.get("t") == "tm" and e.get("dev") == device_id]
        if len(readings) >= 3:
            break
    assert len(readings) >= 3, "no readings from %s reached the bridge" % device_id
    assert set(readings[0]["d"]) == {"temp", "humidity", "light"}

    with urllib.request.urlopen("http://127.0.0.1:%d/api/devices" % port, timeout=10) as resp:
        devices = json.loads(resp.read())
    listed = devices if isinstance(devices, list) else devices.get("devices", [])
    mine = [d for d in listed if d.get("id") == device_id]
    assert mine and mine[0].get("online") is True and mine[0].get("board") == "unix"


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-v"]))
