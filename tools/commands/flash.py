"""mqnode flash: put a MicroPython firmware image on a board, the way its board file says."""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from rich.console import Console

from mqnode_tools.boards import Board, BoardError, load_board
from mqnode_tools.flash_esp import (
    DEFAULT_BAUD, EspFlashError, EspPlan, check_image, chip_name, esptool_chip, run_esptool,
)
from mqnode_tools.flash_uf2 import (
    DRIVE_LABEL, DRIVE_WAIT_S, Uf2Error, bootloader_command, check_drive, check_uf2, copy_to_drive,
    enter_bootloader, find_drives,
)
from mqnode_tools.serial_port import AUTO, PortError, resolve

HELP = "Flash MicroPython firmware: esptool for ESP32 boards, the RPI-RP2 drive for RP2040 boards."
EXAMPLES = """ESP32 family (esptool, at the board's offset): erase the whole flash, write, verify the MD5.
RP2040 (uf2): copy the .uf2 to the RPI-RP2 drive, found under /media/$USER, /run/media/$USER,
/Volumes or in the mount table, or given with --drive; with none mounted and --port naming a
board that runs MicroPython, `mpremote connect PORT bootloader` is run first.

Options after `--` go to esptool: its global options (--before, --after, --no-stub,
--connect-attempts, --trace ...) before write-flash, the others (--flash-size, --compress ...)
after it. The ROM loader cannot erase the whole flash (that takes esptool's flasher stub), so
`-- --no-stub` needs --no-erase; write-flash still erases the sectors it writes.

exit status: 0 flashed (or --dry-run), 1 the board or drive failed (no answer on the port, the
chip is not the board's, no drive, no single USB serial port for --port auto), 2 bad input
(unknown board, missing or wrong firmware file: for esptool boards, a file without the ESP image
header, or one built for another chip).

examples:
  mqnode flash --board esp32-devkitc --port /dev/ttyUSB0 --firmware ESP32_GENERIC-v1.24.1.bin
  mqnode flash --board esp32-s3-devkitc --port /dev/ttyACM0 --firmware s3.bin --no-erase
  mqnode flash --board esp32-devkitc --port /dev/ttyUSB0 --firmware fw.bin --dry-run
  mqnode flash --board esp32-devkitc --port socket://127.0.0.1:5555 --firmware fw.bin --no-erase -- --before no-reset --no-stub
  mqnode flash --board pico-w --firmware RPI_PICO_W-v1.24.1.uf2                  # BOOTSEL held at plug-in
  mqnode flash --board pico-w --firmware RPI_PICO_W-v1.24.1.uf2 --port /dev/ttyACM0  # running MicroPython
  mqnode flash --board pico-w --firmware fw.uf2 --drive /media/me/RPI-RP2
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--board", required=True, help="a board in boards/ (see `mqnode boards`) or a board .json file")
    p.add_argument("--firmware", required=True, type=Path, metavar="FILE", help=".bin for esptool boards, .uf2 for RP2040")
    p.add_argument("--port", help="serial port (esptool boards: default auto, the one USB serial port there is; "
                   "RP2040: to reach the bootloader through mpremote)")
    p.add_argument("--baud", type=int, default=DEFAULT_BAUD, help="esptool's baud rate (default %(default)s)")
    p.add_argument("--no-erase", action="store_true",
                   help="do not erase the whole flash first (needed with `-- --no-stub`: the ROM loader cannot)")
    p.add_argument("--drive", type=Path, metavar="DIR", help="the mounted RPI-RP2 drive (RP2040), instead of looking for it")
    p.add_argument("--dry-run", action="store_true", help="print what would run or be copied; change nothing")
    p.add_argument("-v", "--verbose", action="store_true", help="show esptool's own output")
    p.add_argument("extra", nargs="*", metavar="-- ESPTOOL_OPTION", help="passed to esptool (after `--`)")


def say(console: Console, text: str) -> None:
    console.print(text, markup=False, highlight=False, soft_wrap=True)


def fail(message: str, status: int = 1) -> int:
    print("mqnode flash: %s" % message, file=sys.stderr)
    return status


def run(args: argparse.Namespace) -> int:
    try:
        board = load_board(args.board)
    except BoardError as e:
        return fail(str(e), 2)
    if not args.firmware.is_file():
        return fail("firmware file %s: no such file" % args.firmware, 2)
    console = Console()
    if board.flash_method == "esptool":
        return _flash_esp(board, args, console)
    if board.flash_method == "uf2":
        return _flash_uf2(board, args, console)
    return fail("board %s has no firmware to flash (flash method %r)" % (board.name, board.flash_method), 2)


def _flash_esp(board: Board, args: argparse.Namespace, console: Console) -> int:
    if args.drive is not None:
        return fail("--drive is for RP2040 boards; %s flashes through esptool" % board.name, 2)
    try:
        chip = esptool_chip(board.chip)
        check_image(args.firmware, chip)  # a wrong file is refused before any port is opened
    except EspFlashError as e:
        return fail(str(e), 2)
    try:
        args.port = resolve(args.port or AUTO)
    except PortError as e:
        return fail("board %s flashes through esptool: %s" % (board.name, e))
    assert board.flash_offset is not None  # boards.py requires an offset for esptool boards
    try:
        plan = EspPlan(board.name, chip, args.port, args.baud, board.flash_offset, str(args.firmware),
                       erase=not args.no_erase, extra=args.extra)
    except EspFlashError as e:
        return fail(str(e), 2 if e.usage else 1)
    if args.dry_run:
        say(console, "would run: %s" % plan.command_line)
        return 0
    say(console, "Flashing %s (%s) on %s: %s at 0x%x%s" % (
        board.name, chip_name(chip), args.port, args.firmware, board.flash_offset,
        ", erasing the whole flash first" if plan.erase else ""))
    try:
        result = run_esptool(plan, console, args.verbose, "Writing %s" % args.firmware.name)
    except EspFlashError as e:
        return fail(str(e), 2 if e.usage else 1)
    say(console, "Chip: %s, MAC %s" % (result.chip_description, result.mac))
    if not result.verified:
        return fail("esptool wrote the image but did not verify it (no MD5 check); run with -v to see why")
    say(console, "Verified: the flash's MD5 matches %s." % args.firmware.name)
    return 0


def _flash_uf2(board: Board, args: argparse.Namespace, console: Console) -> int:
    if args.extra:
        return fail("options after -- go to esptool; %s flashes by copying a .uf2" % board.name, 2)
    try:
        image = check_uf2(args.firmware)
        if args.drive is not None:
            check_drive(args.drive)
            drives = [args.drive]
        else:
            drives = find_drives()
    except Uf2Error as e:
        return fail(str(e), 2 if e.usage else 1)
    if len(drives) > 1:
        return fail("several %s drives are mounted (%s): pick one with --drive" % (DRIVE_LABEL, ", ".join(map(str, drives))), 2)
    if not drives and not args.port:
        return fail("no %s drive is mounted: hold BOOTSEL while plugging the board in, or give --port for a board "
                    "running MicroPython, or --drive DIR" % DRIVE_LABEL)
    if not drives:
        try:
            args.port = resolve(args.port)  # auto: the one USB serial port, not mpremote's first
        except PortError as e:
            return fail(str(e))
    summary = "%s (%d blocks, 0x%08x..0x%08x)" % (image.path, image.blocks, image.start, image.end)
    if args.dry_run:
        if drives:
            say(console, "would copy %s to %s" % (summary, drives[0] / image.path.name))
        else:
            say(console, "would run: %s" % shlex.join(bootloader_command(args.port)))
            say(console, "then wait up to %.0f s for the %s drive and copy %s to it" % (DRIVE_WAIT_S, DRIVE_LABEL, summary))
        return 0
    try:
        if drives:
            drive = drives[0]
        else:
            say(console, "No %s drive: asking MicroPython on %s to enter the bootloader" % (DRIVE_LABEL, args.port))
            drive = enter_bootloader(args.port, find_drives)
        say(console, "Flashing %s (%s): %s" % (board.name, board.chip, summary))
        target = copy_to_drive(image, drive, console)
    except Uf2Error as e:
        return fail(str(e), 2 if e.usage else 1)
    say(console, "Copied to %s; the board writes it to flash and restarts." % target)
    return 0
