"""`microws flash`: the esptool calls per board and the UF2 copy.

No chip is attached here, so esptool's public functions (``esptool.cmds``) are replaced
by recorders; what is checked is what flash asks esptool to do, and what the user sees
when something is wrong. The UF2 copy goes to a fake RPI-RP2 folder.
"""

import struct
from argparse import Namespace

import esptool.cmds
import pytest
from esptool.util import FatalError

from microws_host import flash
from microws_host.boards import load_board
from microws_host.cli import UserError


class FakeEsp:
    """Stands in for an ESPLoader: a context manager with a chip name."""

    def __init__(self, chip_name, calls):
        self.CHIP_NAME = chip_name
        self.calls = calls
        self.closed = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.closed = True

    def get_chip_description(self):
        return "%s (revision v3.1)" % self.CHIP_NAME

    def change_baud(self, baud):
        self.calls.append(("change_baud", baud))


class CallLog(list):
    """The esptool calls made, in order; ``state`` steers the fake chip."""

    def __init__(self):
        super().__init__()
        self.state = {"chip": "ESP32", "fail": None}


@pytest.fixture
def esptool_calls(monkeypatch):
    """Record every esptool.cmds call flash makes; the chip answers as an ESP32."""
    calls = CallLog()
    state = calls.state

    def detect_chip(port, *a, **kw):
        calls.append(("detect_chip", port))
        if state["fail"] == "detect":
            raise FatalError("Failed to connect to Espressif device: No serial data received.")
        state["esp"] = FakeEsp(state["chip"], calls)
        return state["esp"]

    def recorder(name):
        def call(esp, *args, **kwargs):
            calls.append((name, *args))
            if state["fail"] == name:
                raise FatalError("MD5 of file does not match data in flash!")
            return esp

        return call

    monkeypatch.setattr(esptool.cmds, "detect_chip", detect_chip)
    for name in ("run_stub", "attach_flash", "erase_flash", "write_flash", "verify_flash", "reset_chip"):
        monkeypatch.setattr(esptool.cmds, name, recorder(name))
    return calls


@pytest.fixture
def esp_image(tmp_path):
    image = tmp_path / "ESP32_GENERIC-v1.24.1.bin"
    image.write_bytes(bytes([0xE9]) + b"\x03\x02\x20" + b"\xff" * 4092)
    return image


@pytest.fixture
def fake_port(tmp_path):
    port = tmp_path / "ttyUSB0"
    port.write_text("")  # flash checks that a local port path exists before esptool opens it
    return str(port)


def flash_args(**kw):
    base = dict(board="esp32", port=None, image=None, baud=None, drive=None)
    base.update(kw)
    return Namespace(**base)


def test_esp32_erases_writes_at_the_profile_offset_verifies_and_resets(esptool_calls, esp_image, fake_port):
    assert flash.run(flash_args(port=fake_port, image=str(esp_image))) == 0
    names = [c[0] for c in esptool_calls]
    assert names == [
        "detect_chip", "run_stub", "change_baud", "attach_flash",
        "erase_flash", "write_flash", "verify_flash", "reset_chip",
    ]  # fmt: skip
    calls = dict((c[0], c[1:]) for c in esptool_calls)
    assert calls["detect_chip"] == (fake_port,)
    assert calls["change_baud"] == (460800,)  # the esp32 profile's baud
    assert calls["write_flash"] == ([(0x1000, str(esp_image))],)
    assert calls["verify_flash"] == ([(0x1000, str(esp_image))],)
    assert calls["reset_chip"] == ("hard-reset",)
    assert esptool_calls.state["esp"].closed


def test_esp32_baud_option_overrides_the_profile(esptool_calls, esp_image, fake_port):
    flash.run(flash_args(port=fake_port, image=str(esp_image), baud=921600))
    assert ("change_baud", 921600) in esptool_calls


def test_wrong_chip_is_refused_before_anything_is_erased(esptool_calls, esp_image, fake_port):
    esptool_calls.state["chip"] = "ESP32-S3"
    with pytest.raises(UserError, match=r"wrong chip on .*: found ESP32-S3, board esp32 needs esp32"):
        flash.run(flash_args(port=fake_port, image=str(esp_image)))
    assert [c[0] for c in esptool_calls] == ["detect_chip"]
    assert esptool_calls.state["esp"].closed


def test_no_chip_answering_is_one_line(esptool_calls, esp_image, fake_port):
    esptool_calls.state["fail"] = "detect"
    with pytest.raises(
        UserError, match=r"^no ESP chip answered on .*: Failed to connect to Espressif device"
    ):
        flash.run(flash_args(port=fake_port, image=str(esp_image)))


def test_verify_failure_is_reported(esptool_calls, esp_image, fake_port):
    esptool_calls.state["fail"] = "verify_flash"
    with pytest.raises(UserError, match=r"^flashing .* failed: MD5 of file does not match"):
        flash.run(flash_args(port=fake_port, image=str(esp_image)))


@pytest.mark.parametrize(
    "kw, message",
    [
        (dict(port=None), r"esp32 is flashed over serial: give --port"),
        (dict(port="/dev/ttyUSB-none"), r"no such port: /dev/ttyUSB-none"),
        (dict(image="missing.bin"), r"image not found: missing.bin"),
        (dict(image="WRONG.uf2"), r"esp32 takes a \.bin image \(esptool\), not \.uf2"),
        (dict(image="ZEROS.bin"), r"is not an ESP firmware image"),
        (dict(board="unix"), r"board unix has no firmware to flash"),
        (dict(board="nosuch"), r"unknown board 'nosuch'"),
    ],
)
def test_user_errors_never_reach_esptool(esptool_calls, esp_image, fake_port, tmp_path, kw, message):
    (tmp_path / "WRONG.uf2").write_bytes(b"x" * 512)
    (tmp_path / "ZEROS.bin").write_bytes(b"\x00" * 512)
    args = flash_args(port=fake_port, image=str(esp_image))
    for key, value in kw.items():
        if key == "image" and value != "missing.bin":
            value = str(tmp_path / value)
        setattr(args, key, value)
    with pytest.raises(UserError, match=message):
        flash.run(args)
    assert esptool_calls == []


def test_cli_shows_one_line_and_exit_code_1(esptool_calls, capsys, fake_port):
    from microws_host.cli import main

    assert main(["flash", "--board", "esp32", "--port", fake_port, "--image", "/nonexistent.bin"]) == 1
    err = capsys.readouterr().err
    assert err == "microws flash: error: image not found: /nonexistent.bin\n"


# -- RP2040: UF2 to the RPI-RP2 drive ----------------------------------------------------


def uf2_image(path, family=0xE48BFF56, blocks=300):
    """A UF2 file of ``blocks`` 512-byte blocks (flags: family id present)."""
    data = bytearray()
    for i in range(blocks):
        block = struct.pack(
            "<IIIIIIII", 0x0A324655, 0x9E5D5157, 0x2000, 0x10000000 + 256 * i, 256, i, blocks, family
        )
        block += bytes([i & 0xFF]) * 256 + b"\x00" * (476 - 256) + struct.pack("<I", 0x0AB16F30)
        data += block
    path.write_bytes(bytes(data))
    return path


@pytest.fixture
def rpi_rp2(tmp_path):
    drive = tmp_path / "media" / "user" / "RPI-RP2"
    drive.mkdir(parents=True)
    (drive / "INFO_UF2.TXT").write_text("UF2 Bootloader v3.0\nModel: Raspberry Pi RP2\nBoard-ID: RPI-RP2\n")
    return drive


def test_uf2_is_copied_whole_to_the_drive_given(rpi_rp2, tmp_path):
    image = uf2_image(tmp_path / "RPI_PICO_W-v1.24.1.uf2")
    assert flash.run(flash_args(board="rp2040_pico_w", image=str(image), drive=str(rpi_rp2))) == 0
    assert (rpi_rp2 / image.name).read_bytes() == image.read_bytes()


def test_uf2_drive_is_found_under_media(rpi_rp2, tmp_path, monkeypatch):
    monkeypatch.setattr(
        flash,
        "RPI_RP2_GLOBS",
        (str(tmp_path / "run" / "*" / "RPI-RP2"), str(tmp_path / "media" / "*" / "RPI-RP2")),
    )
    assert flash.find_uf2_drive(flash.RPI_RP2_GLOBS) == rpi_rp2
    image = uf2_image(tmp_path / "fw.uf2", blocks=3)
    target = flash.flash_uf2(load_board("rp2040_pico_w"), image, None)
    assert target == rpi_rp2 / "fw.uf2" and target.read_bytes() == image.read_bytes()


def test_uf2_errors(rpi_rp2, tmp_path, monkeypatch):
    monkeypatch.setattr(flash, "RPI_RP2_GLOBS", (str(tmp_path / "nowhere" / "RPI-RP2"),))
    image = uf2_image(tmp_path / "fw.uf2", blocks=2)
    args = flash_args(board="rp2040_pico_w", image=str(image))
    with pytest.raises(UserError, match="RPI-RP2 drive not found: hold BOOTSEL"):
        flash.run(args)
    args.drive = str(tmp_path / "absent")
    with pytest.raises(UserError, match="drive not found: .*absent"):
        flash.run(args)
    args.drive = str(tmp_path)  # a folder, but not a UF2 bootloader drive
    with pytest.raises(UserError, match="is not a UF2 bootloader drive"):
        flash.run(args)
    args.drive = str(rpi_rp2)
    args.image = str(uf2_image(tmp_path / "esp.uf2", family=0x1C5F21B0, blocks=1))
    with pytest.raises(UserError, match=r"is for UF2 family 0x1c5f21b0, not rp2040"):
        flash.run(args)
    (tmp_path / "junk.uf2").write_bytes(b"\x00" * 512)
    args.image = str(tmp_path / "junk.uf2")
    with pytest.raises(UserError, match="is not a UF2 file"):
        flash.run(args)
    args.image = str(tmp_path / "fw.bin")
    (tmp_path / "fw.bin").write_bytes(b"\xe9" * 16)
    with pytest.raises(UserError, match=r"rp2040_pico_w takes a \.uf2 image"):
        flash.run(args)
    assert [p.name for p in rpi_rp2.iterdir()] == ["INFO_UF2.TXT"], "nothing was copied"
