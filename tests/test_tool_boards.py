"""`mqnode boards` and the board-file reader the host tools share (tools/boards.py)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mqnode_tools.boards import BoardError, all_boards, load_board
from mqnode_tools.cli import main
from mqnode_tools.paths import BOARDS, REPO

BOARD_FILES = sorted(p.stem for p in BOARDS.glob("*.json"))
# MicroPython's own board.json files put the image here (shared/README.md).
MICROPYTHON_OFFSETS = {"esp32": 0x1000, "esp32c3": 0x0, "esp32s3": 0x0}


def test_boards_table_lists_every_board_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["boards"]) == 0
    out = capsys.readouterr().out
    for name in BOARD_FILES:
        assert "│ %s " % name in out
    assert "pin 15" in out  # the simulated board's PIR: the pins are in the table


def test_boards_json_parses_and_has_every_board() -> None:
    done = subprocess.run([sys.executable, "-m", "mqnode_tools", "boards", "--json"], cwd=REPO,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    boards = json.loads(done.stdout)
    assert [b["name"] for b in boards] == BOARD_FILES
    for b in boards:
        assert b["chip"] and b["firmware"] and b["flash"]["method"] in ("esptool", "uf2", "none")
        for part in b["sensors"] + b["switches"]:
            assert part["name"] and part["driver"] and part["wiring"]


def test_esptool_boards_flash_where_micropython_puts_the_image() -> None:
    boards, errors = all_boards()
    assert errors == []
    for b in boards:
        if b.flash_method == "esptool":
            assert b.flash_offset == MICROPYTHON_OFFSETS[b.chip.lower().replace("-", "")], b.name


def test_unknown_board_names_the_known_ones(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with pytest.raises(BoardError, match=r"board 'nope': no file .*nope\.json \(known boards: .*sim"):
        load_board("nope")
    fw = tmp_path / "fw.bin"
    fw.write_bytes(b"x")
    assert main(["flash", "--board", "nope", "--firmware", str(fw)]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_a_broken_board_file_is_reported_and_the_others_still_listed(tmp_path: Path) -> None:
    (tmp_path / "good.json").write_text(json.dumps({
        "chip": "esp32", "firmware": "ESP32_GENERIC", "flash": {"method": "esptool", "offset": "0x1000"},
        "sensors": [{"name": "air", "driver": "bme280", "i2c": {"bus": 1, "sda": 21, "scl": 22}}],
    }))
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "no-offset.json").write_text(json.dumps({"chip": "esp32", "firmware": "x", "flash": {"method": "esptool"}}))
    boards, errors = all_boards(tmp_path)
    assert [b.name for b in boards] == ["good"]
    assert boards[0].parts[0].wiring == "I2C1 SDA 21 SCL 22"
    assert boards[0].flash_text == "esptool @ 0x1000"
    assert len(errors) == 2
    assert any("bad.json is not valid JSON" in e for e in errors)
    assert any("flash.offset" in e for e in errors)
