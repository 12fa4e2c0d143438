"""firmware/boot.py's safe-mode pin, on a virtual board whose pins the test holds low.

On the ESP32 boards the pin is the BOOT button, a strapping pin: held at the reset itself, the chip
starts its ROM bootloader and boot.py never runs. So after a power-on boot.py watches the pin for
a while, and a press after the reset counts; after a deep-sleep wake it reads the pin once, so a
battery wake stays short (the Pico W's jumper is held all along, and one read sees it).
"""
from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

from runtime import REPO
from virtual_board import VirtualBoard

BOARD = "esp32-devkitc"  # safe-mode pin 0, the BOOT button
PRESS_AFTER_S = 0.5  # after the board starts: well inside boot.py's 2 s window, well after the reset
BOOT_TIMEOUT_S = 15.0
WINDOW_LINE = b"boot: hold pin 0 low now for safe mode (2 s)"
CREATED_LINE = b"boot: safe-mode pin 0 is low: /safemode created"
# main.py of the second test: after the power-on boot, deep-sleeps once the test holds the pin (10 s
# at most)
SLEEP_WHEN_HELD = """import machine, time
if machine.reset_cause() == machine.PWRON_RESET:
    pin = machine.Pin(0, machine.Pin.IN, machine.Pin.PULL_UP)
    for _ in range(200):
        if pin.value() == 0:
            break
        time.sleep_ms(50)
    machine.deepsleep(10)
"""


def board_with_boot_py(tmp_path: Path, pins: Path, main: str = "") -> VirtualBoard:
    root = tmp_path / "board"
    (root / "boards").mkdir(parents=True)
    shutil.copy(REPO / "firmware" / "boot.py", root / "boot.py")
    shutil.copy(REPO / "boards" / (BOARD + ".json"), root / "boards")
    (root / "config.json").write_text(json.dumps({"board": BOARD, "broker": {"host": "127.0.0.1"}}))
    (root / "main.py").write_text(main)
    pins.write_text("")  # every pin up
    return VirtualBoard(root, env={"VB_PINS": str(pins)}, max_boots=2)


def hold_low(pins: Path, pin: int) -> None:
    pins.write_text("%d 0\n" % pin)


def test_boot_pressed_after_a_power_on_turns_safe_mode_on(tmp_path: Path) -> None:
    pins = tmp_path / "pins"
    board = board_with_boot_py(tmp_path, pins)
    press = threading.Timer(PRESS_AFTER_S, hold_low, (pins, 0))
    press.start()
    try:
        with board:  # start() returns once boot.py is done
            assert (board.root / "safemode").exists(), board.report()
            log = board.serial_log
    finally:
        press.cancel()
    assert log.count(WINDOW_LINE) == 1 and log.count(CREATED_LINE) == 1, board.report()


def test_no_press_no_safe_mode_and_a_deep_sleep_wake_reads_the_pin_once(tmp_path: Path) -> None:
    pins = tmp_path / "pins"
    board = board_with_boot_py(tmp_path, pins, SLEEP_WHEN_HELD)
    with board:
        assert not (board.root / "safemode").exists(), board.report()  # nobody pressed
        hold_low(pins, 0)  # a jumper from now on; main.py sees it and deep-sleeps
        assert board.wait_boot("deepsleep", 1, BOOT_TIMEOUT_S), board.report()
        assert (board.root / "safemode").exists(), board.report()  # the wake's one read saw it
        log = board.serial_log
    assert log.count(WINDOW_LINE) == 1, board.report()  # the power-on boot only, not the wake
    assert log.count(CREATED_LINE) == 1, board.report()
