"""The board files (boards/<board>.json), read and checked for the host tools.

A board file says which chip a board has, how its firmware is flashed (esptool at an offset, a
.uf2 copied to the RP2040's drive, or nothing for the simulated board) and which part sits on
which pin. The node reads the same files (lib/mqnode/board.py); the board's id is its file name,
as there (config.json's "board", `--board`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from mqnode_tools.paths import BOARDS

FLASH_METHODS = ("esptool", "uf2", "none")
PART_KINDS = {"sensors": "sensor", "switches": "switch"}  # list key in the file -> Part.kind
# The keys of a part spec that name where it is wired, in the order they are shown.
PIN_KEYS = ("pin", "pins", "adc", "i2c", "spi", "uart", "onewire")


class BoardError(ValueError):
    """A board that does not exist or whose file is broken; the message is one line."""


@dataclass(frozen=True)
class Part:
    kind: str  # "sensor" or "switch"
    name: str
    driver: str
    spec: Dict[str, Any]  # the part as the board file has it

    @property
    def wiring(self) -> str:
        """Where the part is wired, e.g. 'pin 15', 'ADC 4', 'I2C0 SDA 21 SCL 22'."""
        words = [_pin_text(key, self.spec[key]) for key in PIN_KEYS if key in self.spec]
        return ", ".join(words) or "-"


@dataclass(frozen=True)
class Board:
    name: str  # the file name without .json
    chip: str
    firmware: str  # the MicroPython board name its image is built for ("ESP32_GENERIC", "RPI_PICO_W"; "unix" for sim)
    description: str
    flash_method: str
    flash_offset: Optional[int]  # where esptool writes the image; None for uf2 and none
    parts: Tuple[Part, ...]
    path: Path

    @property
    def flash_text(self) -> str:
        if self.flash_offset is None:
            return self.flash_method
        return "%s @ 0x%x" % (self.flash_method, self.flash_offset)

    def to_json(self) -> Dict[str, Any]:
        """The board for scripts: each part as its file has it, plus "wiring" as the table shows it."""
        return {
            "name": self.name,
            "chip": self.chip,
            "firmware": self.firmware,
            "description": self.description,
            "flash": {
                "method": self.flash_method,
                "offset": None if self.flash_offset is None else "0x%x" % self.flash_offset,
            },
            "sensors": [dict(p.spec, wiring=p.wiring) for p in self.parts if p.kind == "sensor"],
            "switches": [dict(p.spec, wiring=p.wiring) for p in self.parts if p.kind == "switch"],
        }


def _pin_text(key: str, value: Any) -> str:
    if key == "pin":
        return "pin %s" % value
    if key == "adc":
        return "ADC %s" % value
    if key == "i2c" and isinstance(value, dict):
        return "I2C%s SDA %s SCL %s" % (value.get("bus", 0), value.get("sda", "?"), value.get("scl", "?"))
    if isinstance(value, dict):
        return "%s %s" % (key, " ".join("%s %s" % (k, v) for k, v in value.items()))
    if isinstance(value, list):
        return "%s %s" % (key, " ".join(str(v) for v in value))
    return "%s %s" % (key, value)


def board_names(directory: Path = BOARDS) -> List[str]:
    return sorted(p.stem for p in directory.glob("*.json"))


def load_board(name: str, directory: Path = BOARDS) -> Board:
    """The board called `name` (a file in `directory`), or a board file given by its path."""
    path = Path(name) if name.endswith(".json") else directory / (name + ".json")
    if not path.is_file():
        known = ", ".join(board_names(directory)) or "none"
        raise BoardError("board %r: no file %s (known boards: %s)" % (name, path, known))
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise BoardError("board %r: %s is not valid JSON (%s)" % (path.stem, path, e))
    return _board_from_json(raw, path)


def all_boards(directory: Path = BOARDS) -> Tuple[List[Board], List[str]]:
    """Every board file in `directory`, and a one-line error for each file that is broken."""
    boards: List[Board] = []
    errors: List[str] = []
    for name in board_names(directory):
        try:
            boards.append(load_board(name, directory))
        except BoardError as e:
            errors.append(str(e))
    return boards, errors


def _board_from_json(raw: Any, path: Path) -> Board:
    name = path.stem

    def fail(what: str) -> BoardError:
        return BoardError("board %r (%s): %s" % (name, path, what))

    if not isinstance(raw, dict):
        raise fail("expected a JSON object")
    if raw.get("name", name) != name:
        raise fail("its name %r differs from its file name (the node and the tools find boards by file name)" % raw["name"])
    for key in ("chip", "firmware"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise fail("%r: expected a non-empty string" % key)
    flash = raw.get("flash", {"method": "none"})
    method = flash.get("method") if isinstance(flash, dict) else None
    if method not in FLASH_METHODS:
        raise fail("flash.method: expected one of %s, got %r" % (", ".join(FLASH_METHODS), method))
    offset: Optional[int] = None
    if method == "esptool":
        offset = _offset(flash.get("offset"))
        if offset is None:
            raise fail("flash.offset: expected an address such as \"0x1000\", got %r" % flash.get("offset"))
    parts: List[Part] = []
    for kind in PART_KINDS:
        specs = raw.get(kind, [])
        if not isinstance(specs, list):
            raise fail("%r: expected a list" % kind)
        for i, spec in enumerate(specs):
            if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) or not isinstance(spec.get("driver"), str):
                raise fail("%s[%d]: expected an object with \"name\" and \"driver\"" % (kind, i))
            parts.append(Part(PART_KINDS[kind], spec["name"], spec["driver"], spec))
    return Board(
        name=name, chip=raw["chip"], firmware=raw["firmware"], description=str(raw.get("description", "")),
        flash_method=method, flash_offset=offset, parts=tuple(parts), path=path,
    )


def _offset(value: Any) -> Optional[int]:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str):
        try:
            n = int(value, 0)
        except ValueError:
            return None
        return n if n >= 0 else None
    return None
