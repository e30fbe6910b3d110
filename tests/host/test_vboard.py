"""The virtual board behaves like a USB MicroPython board for mpremote, ampy and a terminal."""

import pytest
from vboard_support import SerialConsole, run_tool

from microws_host.vboard import VirtualBoard, needs_more_input


@pytest.fixture
def board(tmp_path, micropython):
    folder = tmp_path / "board"
    vb = VirtualBoard(folder, micropython=micropython)
    vb.start()
    yield vb
    vb.stop()
    assert vb.error is None, vb.error


@pytest.fixture
def console(board):
    c = SerialConsole(board.device)
    yield c
    c.close()


def test_device_path_is_a_pty_and_the_board_starts_at_the_friendly_prompt(board, console):
    assert board.device.startswith("/dev/pts/")
    console.sync()
    console.write(b"\r")
    assert console.expect(b">>> ") == b"\r\n>>> "


def test_mpremote_exec_prints_the_result(board):
    r = run_tool("mpremote", "connect", board.device, "exec", "print(1+1)")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "2"


def test_mpremote_state_lives_on_between_executions_until_soft_reset(board):
    r = run_tool(
        "mpremote", "connect", board.device,
        "exec", "x = 41", "+", "exec", "print(x + 1)",
        "+", "soft-reset", "+", "exec", "print('x' in globals())",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["42", "False"]


def test_mpremote_fs_cp_ls_lands_files_in_the_board_folder(board, tmp_path):
    local = tmp_path / "hello.py"
    local.write_bytes(b"print('hello')\n" + b"# padding\n" * 400)
    device = board.device
    r = run_tool("mpremote", "connect", device, "fs", "mkdir", ":lib", "+", "fs", "cp", str(local), ":lib/hello.py")
    assert r.returncode == 0, r.stderr
    assert (board.folder / "lib" / "hello.py").read_bytes() == local.read_bytes()

    r = run_tool("mpremote", "connect", board.device, "fs", "ls", ":lib")
    assert r.returncode == 0, r.stderr
    assert "hello.py" in r.stdout

    # mpremote hashes the file on the board (hashlib there) and skips an identical copy
    r = run_tool("mpremote", "connect", board.device, "fs", "cp", str(local), ":lib/hello.py")
    assert "Up to date: lib/hello.py" in r.stdout

    r = run_tool("mpremote", "connect", board.device, "fs", "rm", ":lib/hello.py")
    assert r.returncode == 0, r.stderr
    assert not (board.folder / "lib" / "hello.py").exists()


def test_mpremote_run_of_a_large_script_goes_through_raw_paste_flow_control(board, tmp_path):
    script = tmp_path / "big.py"
    # ~30 kB: hundreds of 128-byte flow-control windows
    body = "".join("v%d = %d\n" % (i, i) for i in range(3000))
    script.write_text(body + "print(sum(v%d for v in [0]) + v2999)\n" % 0)
    r = run_tool("mpremote", "connect", board.device, "run", str(script))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "2999"


def test_mpremote_reports_an_exception_from_the_board(board):
    r = run_tool("mpremote", "connect", board.device, "exec", "1/0")
    assert r.returncode != 0
    assert "ZeroDivisionError" in r.stdout + r.stderr


def test_ampy_put_ls_run_get(board, tmp_path):
    script = tmp_path / "job.py"
    script.write_text("print('ran on the board', 6 * 7)\n")
    r = run_tool("ampy", "-p", board.device, "put", str(script), "job.py")
    assert r.returncode == 0, r.stderr
    assert (board.folder / "job.py").read_text() == script.read_text()

    r = run_tool("ampy", "-p", board.device, "ls")
    assert r.returncode == 0, r.stderr
    assert "/job.py" in r.stdout.split()

    r = run_tool("ampy", "-p", board.device, "run", str(script))
    assert r.returncode == 0, r.stderr
    assert "ran on the board 42" in r.stdout

    r = run_tool("ampy", "-p", board.device, "get", "job.py")
    assert r.stdout.strip() == script.read_text().strip()


def test_friendly_repl_echoes_evaluates_and_continues_compound_statements(board, console):
    console.sync()
    console.write(b"6*7\r")
    assert console.expect(b">>> ") == b"6*7\r\n42\r\n>>> "
    console.write(b"for i in range(3):\r")
    console.expect(b"... ")
    console.write(b" print('i', i)\r")
    console.expect(b"... ")
    console.write(b"\r")
    out = console.expect(b">>> ")
    assert b"i 0\r\ni 1\r\ni 2\r\n" in out
    console.write(b"undefined_name\r")
    assert b"NameError" in console.expect(b">>> ")


def test_raw_repl_protocol_bytes_match_a_board(board, console):
    console.sync()
    console.write(b"\x01")
    console.expect(b"raw REPL; CTRL-B to exit\r\n>")
    console.write(b"print('out')\x04")
    assert console.expect(b"\x04\x04>") == b"OKout\r\n\x04\x04>"
    console.write(b"raise ValueError('bad')\x04")
    out = console.expect(b"\x04>")
    assert out.startswith(b"OK\x04Traceback (most recent call last):\r\n")
    assert b"ValueError: bad\r\n" in out
    console.write(b"\x05A\x01")  # raw-paste: window size 128, one extra window
    console.expect(b"R\x01\x80\x00\x01")
    console.write(b"print(7)\x04")
    assert console.expect(b"\x04\x04>") == b"\x047\r\n\x04\x04>"
    console.write(b"\x02")
    assert console.expect(b">>> ").startswith(b"\r\nMicroPython v")


def test_soft_reset_restarts_the_interpreter_with_boot_py_then_main_py(board, console):
    (board.folder / "boot.py").write_text("print('boot ran')\n")
    (board.folder / "main.py").write_text("print('main ran', 'marker' in globals())\n")
    console.sync()
    console.write(b"marker = 1\r")
    console.expect(b">>> ")
    console.write(b"\x04")  # Ctrl-D at the friendly prompt
    out = console.expect(b">>> ")
    assert b"MPY: soft reboot\r\nboot ran\r\nmain ran False\r\n" in out
    # from the raw REPL a soft reset runs boot.py only, as on a board
    console.write(b"\x01")
    console.expect(b"raw REPL; CTRL-B to exit\r\n>")
    console.write(b"\x04")
    out = console.expect(b"raw REPL; CTRL-B to exit\r\n>")
    assert out == b"OK\r\nMPY: soft reboot\r\nboot ran\r\nraw REPL; CTRL-B to exit\r\n>"


def test_ctrl_c_interrupts_a_main_py_that_runs_forever(tmp_path, micropython):
    folder = tmp_path / "board"
    folder.mkdir()
    (folder / "main.py").write_text(
        "import time\nprint('main started')\nwhile True:\n    time.sleep_ms(5)\n"
    )
    with VirtualBoard(folder, micropython=micropython) as vb:
        console = SerialConsole(vb.device)
        try:
            # The board powered on before we opened the port; reboot it to see main.py start.
            console.sync()
            console.write(b"\x04")
            console.expect(b"main started\r\n")
            console.write(b"\x03")
            out = console.expect(b">>> ")
            assert b"KeyboardInterrupt" in out
            console.write(b"print('alive')\r")
            assert b"alive\r\n" in console.expect(b">>> ")
        finally:
            console.close()
        # mpremote interrupts the running node by itself too
        r = run_tool("mpremote", "connect", vb.device, "exec", "print('after main')")
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == "after main"


def test_sys_exit_soft_resets_like_a_board(board):
    (board.folder / "boot.py").write_text("print('booted')\n")
    r = run_tool("mpremote", "connect", board.device, "exec", "import sys; sys.exit()", "+", "exec", "print('back')")
    assert r.returncode == 0, r.stderr
    assert "back" in r.stdout


def test_board_root_is_the_folder_so_absolute_paths_stay_inside_it(board):
    code = (
        "import os\nf = open('/made.txt', 'w')\nf.write('x')\nf.close()\n"
        "os.mkdir('/d')\nprint(sorted(os.listdir('/')))"
    )
    r = run_tool("mpremote", "connect", board.device, "exec", code)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "['d', 'made.txt']"
    assert (board.folder / "made.txt").read_text() == "x"


@pytest.mark.parametrize(
    "source, more",
    [
        ("1+1", False),
        ("if x:", True),
        ("if x:\n    y()", True),
        ("if x:\n    y()\n", False),
        ("f(1,", True),
        ("s = '''abc", True),
        ("s = 'a:'", False),
        ("@decorator", True),
    ],
)
def test_friendly_repl_continuation_rules(source, more):
    assert needs_more_input(source) is more
