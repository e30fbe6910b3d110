"""`microws flash`: write MicroPython firmware to a board.

ESP32 (image kind "bin"): esptool's public API (``esptool.cmds``) — detect the chip,
check it is the one the board profile names, load the stub, erase the flash, write the
image at the profile's offset, verify it, hard-reset.
RP2040 Pico W (image kind "uf2"): copy the .uf2 to the ``RPI-RP2`` USB drive the board
shows while BOOTSEL is held at power-up; the board reboots into the new firmware.
"""

import glob
import os
import struct
import time
from pathlib import Path

from microws_host.boards import BoardProfileError, board_names, load_board

# Where desktop Linux mounts the Pico's bootloader drive.
RPI_RP2_GLOBS = ("/media/*/RPI-RP2", "/run/media/*/RPI-RP2", "/media/RPI-RP2", "/mnt/RPI-RP2")
UF2_MAGIC_START0 = 0x0A324655  # "UF2\n"
UF2_MAGIC_START1 = 0x9E5D5157
UF2_FLAG_FAMILY_ID = 0x00002000
UF2_FAMILY_IDS = {"rp2040": 0xE48BFF56}
ESP_IMAGE_MAGIC = 0xE9
COPY_CHUNK = 64 * 1024


class FlashError(Exception):
    """Flashing cannot go on; the message is one line for the user."""


def check_image(board, image):
    """Check that ``image`` exists and is the kind of file ``board`` flashes; return its Path."""
    path = Path(image)
    if not path.is_file():
        raise FlashError("image not found: %s" % image)
    kind = board.flash.image
    if path.suffix.lower() != "." + kind:
        raise FlashError(
            "%s takes a .%s image (%s), not %s"
            % (board.name, kind, _how(board), path.suffix or "a file without extension")
        )
    head = path.read_bytes()[:512]
    if kind == "bin" and (not head or head[0] != ESP_IMAGE_MAGIC):
        raise FlashError("%s is not an ESP firmware image (first byte is not 0xE9)" % image)
    if kind == "uf2":
        check_uf2_block(board, image, head)
    return path


def _how(board):
    return "esptool" if board.flash.image == "bin" else "UF2 drive copy"


def check_uf2_block(board, image, block):
    """Validate the first UF2 block: magic numbers and, when present, the chip family."""
    if len(block) < 32:
        raise FlashError("%s is not a UF2 file (too short)" % image)
    magic0, magic1, flags = struct.unpack_from("<III", block, 0)
    if magic0 != UF2_MAGIC_START0 or magic1 != UF2_MAGIC_START1:
        raise FlashError("%s is not a UF2 file (bad magic)" % image)
    family = struct.unpack_from("<I", block, 28)[0]
    wanted = UF2_FAMILY_IDS.get(board.flash.chip)
    if flags & UF2_FLAG_FAMILY_ID and wanted is not None and family != wanted:
        raise FlashError(
            "%s is for UF2 family 0x%08x, not %s (0x%08x)" % (image, family, board.flash.chip, wanted)
        )


# -- ESP32 through esptool ------------------------------------------------------------


def _normal_chip_name(name):
    return name.lower().replace("-", "").replace("_", "")


_installed_logger = None


def _use_esptool_logger(progress):
    """Route esptool's output to ``progress`` (a _FlashProgress) from now on.

    esptool's ``log.set_logger`` works once per process (the installed logger replaces
    the object that has the method), so one logger is installed and retargeted.
    """
    global _installed_logger
    if _installed_logger is None:
        from esptool.logger import log

        _installed_logger = _esptool_logger()
        log.set_logger(_installed_logger)
    _installed_logger.progress = progress


def _esptool_logger():
    """An esptool custom logger (the documented TemplateLogger recipe) feeding a progress bar."""
    from esptool.logger import TemplateLogger

    class RichProgressLogger(TemplateLogger):
        def __init__(self):
            self.progress = None
            self.messages = []  # esptool's chatter, kept for error context, not shown

        def print(self, *args, **kwargs):
            self.messages.append(" ".join(str(a) for a in args))

        def note(self, message):
            self.messages.append(message)

        def warning(self, message, suggestion=None):
            if self.progress:
                self.progress.console.print("[yellow]esptool: %s[/]" % message)

        def error(self, message, suggestion=None):
            self.messages.append(message)

        def stage(self, finish=False):
            pass

        def progress_bar(self, cur_iter, total_iters, prefix="", suffix="", bar_length=30):
            if self.progress:
                self.progress.on_esptool_progress(cur_iter, total_iters, prefix.strip())

        def set_verbosity(self, verbosity):
            pass

        def debug(self, message):
            pass

    return RichProgressLogger()


class _FlashProgress:
    """One rich progress bar whose task follows esptool's current operation."""

    def __init__(self, progress):
        self.progress = progress
        self.console = progress.console
        self.task = None
        self.step = ""

    def begin(self, step):
        self.step = step
        if self.task is not None:
            self.progress.remove_task(self.task)
        self.task = self.progress.add_task(step, total=None)

    def on_esptool_progress(self, current, total, detail):
        self.progress.update(self.task, completed=current, total=total, description=self.step)


def flash_esp(board, port, image, baud=None, console=None):
    """Erase, write and verify ``image`` on the ESP chip at ``port``; returns the chip description."""
    from esptool import cmds
    from esptool.util import FatalError
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn
    from serial import SerialException

    console = console or Console()
    if not port:
        raise FlashError("%s is flashed over serial: give --port (e.g. /dev/ttyUSB0)" % board.name)
    if "://" not in port and not os.path.exists(port):
        raise FlashError("no such port: %s (is the board plugged in?)" % port)
    offset = board.flash.offset
    baud = baud or board.flash.baud
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        bar = _FlashProgress(progress)
        _use_esptool_logger(bar)
        bar.begin("connecting to %s" % port)
        try:
            loader = cmds.detect_chip(port)
        except SerialException as e:
            raise FlashError("cannot open %s: %s" % (port, _first_line(e))) from None
        except (FatalError, OSError) as e:
            raise FlashError("no ESP chip answered on %s: %s" % (port, _first_line(e))) from None
        with loader as esp:  # closes the serial port however this ends
            found = esp.CHIP_NAME
            if _normal_chip_name(found) != _normal_chip_name(board.flash.chip):
                raise FlashError(
                    "wrong chip on %s: found %s, board %s needs %s"
                    % (port, found, board.name, board.flash.chip)
                )
            try:
                description = esp.get_chip_description()
                esp = cmds.run_stub(esp)
                if baud:
                    esp.change_baud(baud)
                cmds.attach_flash(esp)
                bar.begin("erasing flash")
                cmds.erase_flash(esp)
                bar.begin("writing %s at 0x%x" % (Path(image).name, offset))
                cmds.write_flash(esp, [(offset, str(image))])
                bar.begin("verifying")
                cmds.verify_flash(esp, [(offset, str(image))])
                cmds.reset_chip(esp, "hard-reset")
            except FatalError as e:
                raise FlashError("flashing %s failed: %s" % (port, _first_line(e))) from None
            except SerialException as e:
                raise FlashError("lost %s while flashing: %s" % (port, _first_line(e))) from None
    return description


def _first_line(exc):
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# -- RP2040 through the UF2 drive -----------------------------------------------------


def find_uf2_drive(patterns=None):
    """The mounted RPI-RP2 drive (the Pico's bootloader), or None."""
    for pattern in patterns or RPI_RP2_GLOBS:
        for candidate in sorted(glob.glob(pattern)):
            if os.path.isdir(candidate):
                return Path(candidate)
    return None


def flash_uf2(board, image, drive=None, console=None):
    """Copy the .uf2 ``image`` to the RPI-RP2 drive (found, or ``drive``); returns the target path."""
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

    console = console or Console()
    if drive:
        target_dir = Path(drive)
        if not target_dir.is_dir():
            raise FlashError("drive not found: %s" % drive)
    else:
        target_dir = find_uf2_drive()
        if target_dir is None:
            raise FlashError(
                "RPI-RP2 drive not found: hold BOOTSEL while plugging the board in, "
                "or give --drive where it is mounted"
            )
    if not (target_dir / "INFO_UF2.TXT").is_file():
        raise FlashError("%s is not a UF2 bootloader drive (no INFO_UF2.TXT)" % target_dir)
    source = Path(image)
    target = target_dir / source.name
    size = source.stat().st_size
    with Progress(
        TextColumn("{task.description}"), BarColumn(), DownloadColumn(), console=console, transient=True
    ) as bar:
        task = bar.add_task("copying %s to %s" % (source.name, target_dir), total=size)
        with source.open("rb") as src, target.open("wb") as dst:
            while chunk := src.read(COPY_CHUNK):
                dst.write(chunk)
                bar.advance(task, len(chunk))
            dst.flush()
            # The board reboots once the last block lands; make sure it did land.
            os.fsync(dst.fileno())
    return target


# -- the command ----------------------------------------------------------------------


def add_arguments(parser):
    """Arguments of `microws flash`."""
    parser.description = (
        "Write MicroPython firmware to a board. esp32: esptool erases the flash, writes the "
        ".bin at the board profile's offset (0x1000), verifies it and resets the chip. "
        "rp2040_pico_w: the .uf2 is copied to the RPI-RP2 drive (hold BOOTSEL while plugging "
        "the board in). Then run `microws deploy`."
    )
    parser.epilog = (
        "examples: microws flash --board esp32 --port /dev/ttyUSB0 --image ESP32_GENERIC-v1.24.1.bin;  "
        "microws flash --board rp2040_pico_w --image RPI_PICO_W-v1.24.1.uf2"
    )
    parser.add_argument("--board", required=True, help="board profile: %s" % ", ".join(board_names()))
    parser.add_argument("--port", help="serial port (esp32), e.g. /dev/ttyUSB0")
    parser.add_argument(
        "--image", required=True, metavar="FILE", help="firmware image: .bin (esp32) or .uf2 (Pico W)"
    )
    parser.add_argument("--baud", type=int, help="baud rate for writing (esp32; default: the profile's)")
    parser.add_argument(
        "--drive", metavar="DIR", help="where the RPI-RP2 drive is mounted (default: searched)"
    )


def run(args):
    """Entry point of `microws flash`."""
    from rich.console import Console

    from microws_host.cli import UserError

    console = Console()
    started = time.monotonic()
    try:
        board = load_board(args.board)
        if board.flash is None:
            raise FlashError("board %s has no firmware to flash (use `microws deploy`)" % board.name)
        image = check_image(board, args.image)
        if board.flash.image == "bin":
            description = flash_esp(board, args.port, image, args.baud, console)
            console.print(
                "flashed %s (%d bytes) to %s on %s at 0x%x, verified, in %.1fs"
                % (
                    image.name,
                    image.stat().st_size,
                    description,
                    args.port,
                    board.flash.offset,
                    time.monotonic() - started,
                )
            )
        else:
            target = flash_uf2(board, image, args.drive, console)
            console.print(
                "copied %s to %s; the board restarts with the new firmware" % (image.name, target.parent)
            )
    except (FlashError, BoardProfileError) as e:
        raise UserError(str(e)) from None
    return 0
