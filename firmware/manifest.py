# Freeze the microws library and the node into a MicroPython firmware image.
#
# Frozen code runs from flash: no .py to compile at boot and no bytecode in RAM, so
# the heap is left to the outbox and the connection. Steps (ESP32 shown; rp2 alike):
#
#   git clone https://github.com/micropython/micropython && cd micropython
#   make -C mpy-cross
#   cd ports/esp32        # or ports/rp2
#   MICROWS_BOARD=esp32 make BOARD=ESP32_GENERIC \
#       FROZEN_MANIFEST=/path/to/microws/firmware/manifest.py submodules all
#   # rp2: MICROWS_BOARD=rp2040_pico_w make BOARD=RPI_PICO_W FROZEN_MANIFEST=... submodules all
#
# then `microws flash --board esp32 --image build-ESP32_GENERIC/firmware.bin` and put
# only config.json, boot.py and main.py on the board's filesystem (they stay files so
# they can be changed without a rebuild): `microws deploy` copies them, or mpremote.
#
# MICROWS_BOARD picks the board profile frozen as module `board` (esp32 or
# rp2040_pico_w); without it no profile is frozen and board.py must be on the filesystem.
import os

include("$(PORT_DIR)/boards/manifest.py")  # noqa: F821  (the port's own frozen modules: asyncio, ntptime, ...)
include("../lib/manifest.py")  # noqa: F821  (the microws package)
package("node", base_path=".")  # noqa: F821
_board = os.environ.get("MICROWS_BOARD")
if _board:
    module("board.py", base_path="../boards/" + _board)  # noqa: F821
