"""Board profiles as the host tools see them: ``boards/<name>/board.json``.

The JSON holds what deploy and flash need (the .mpy architecture, how to write the
firmware image); the Python side of a profile (``boards/<name>/board.py``: pins,
sensors, LED) is device code and is deployed to the board as ``board.py``.
"""

import json
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
BOARDS_DIR = REPO_ROOT / "boards"


class BoardProfileError(Exception):
    """No such board profile, or its board.json is broken (one-line message)."""


@dataclass(frozen=True)
class FlashSpec:
    """How firmware gets onto the board: esptool (``image`` "bin") or a UF2 drive copy."""

    chip: str
    image: str  # "bin" or "uf2": the kind of file --image must be
    baud: int | None = None
    offset: int | None = None


@dataclass(frozen=True)
class BoardProfile:
    """One board's host-side parameters."""

    name: str
    description: str
    mpy_arch: str | None  # mpy-cross -march value; None: portable bytecode only
    flash: FlashSpec | None  # None: nothing to flash (the unix port)
    folder: Path


def board_names(boards_dir=BOARDS_DIR):
    """Names of the board profiles that have a board.json."""
    return sorted(p.parent.name for p in Path(boards_dir).glob("*/board.json"))


def load_board(name, boards_dir=BOARDS_DIR):
    """Read ``boards/<name>/board.json`` into a BoardProfile."""
    folder = Path(boards_dir) / name
    path = folder / "board.json"
    if not path.is_file():
        known = ", ".join(board_names(boards_dir)) or "none"
        raise BoardProfileError("unknown board %r (known: %s)" % (name, known))
    try:
        raw = json.loads(path.read_text())
        flash = raw.get("flash")
        offset = flash.get("offset") if flash else None
        return BoardProfile(
            name=raw["name"],
            description=raw.get("description", ""),
            mpy_arch=raw.get("mpy_arch"),
            flash=FlashSpec(
                chip=flash["chip"],
                image=flash["image"],
                baud=flash.get("baud"),
                offset=int(offset, 0) if isinstance(offset, str) else offset,
            )
            if flash
            else None,
            folder=folder,
        )
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise BoardProfileError("%s is not a valid board profile: %s" % (path, e)) from None
