"""Flashing an ESP32-family board: esptool's own command line, run in this process.

One esptool session does it all: `esptool --chip C --port P --baud N [global extras] write-flash
[--erase-all] [write-flash extras] OFFSET FILE`. esptool checks the chip against --chip when it
connects, before anything is erased; `--erase-all` is esptool's erase-flash inside the same
connection (two esptool runs would reset the chip in between, and a chip entered by hand, or
with `--before no-reset`, would not be in its bootloader for the second); and write-flash ends
by comparing the flash's MD5 with the image's (SPI_FLASH_MD5), which is the verification.

esptool runs as esptool.main(argv) runs it (its click command, in this process) with a logger
of ours (esp_pylib's EspLogBase): its progress becomes a rich progress bar, its errors arrive as
exceptions rather than text to parse.
"""
from __future__ import annotations

import re
import shlex
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import click
import esptool
import serial
from esp_pylib.logger import EspLog, EspLogBase
from esptool.targets import CHIP_DEFS, CHIP_LIST
from esptool.util import FatalError
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn, DownloadColumn, Progress, TaskID, TextColumn, TimeRemainingColumn, TransferSpeedColumn,
)
from rich.text import Text

from mqnode_tools.serial_port import why_not_open

DEFAULT_BAUD = 460800  # what MicroPython's ESP32 install instructions use
# Options mqnode sets itself; given again after `--` they would silently win or clash.
OWNED_OPTIONS = {"--chip", "-c", "--port", "-p", "--baud", "-b"}
VERIFIED_LINE = "Hash of data verified."  # cmds.write_flash's line after a matching MD5
ESP_IMAGE_MAGIC = 0xE9
_HEADER_BYTES = 24  # the common header (8) and the extended one (16)


class EspFlashError(Exception):
    """A one-line reason the flash failed; `usage` marks bad input (exit status 2)."""

    def __init__(self, message: str, usage: bool = False) -> None:
        super().__init__(message)
        self.usage = usage


def esptool_chip(chip: str) -> str:
    """A board file's chip ('esp32', 'ESP32-C3', 'esp32_s3') as esptool's --chip spells it."""
    name = re.sub(r"[-_ ]", "", chip.lower())
    if name not in CHIP_LIST:
        raise EspFlashError("chip %r is not one esptool knows (%s)" % (chip, ", ".join(CHIP_LIST)), usage=True)
    return name


def check_image(path: Path, chip: str) -> None:
    """Refuse, before the board is touched, a file that is no ESP image, or one built for another
    chip. esptool writes anything it is given and only notes a file without the image magic; the
    board then does not boot, and the reason is a firmware download gone wrong (a .uf2, an .elf, a
    saved web page) that a header of 24 bytes shows. esptool itself checks the chip only once
    connected (exit 1); here it is the file that is wrong (exit 2).

    The header [ESP-IDF's esp_image_header_t]: byte 0 the magic 0xE9; after the 8-byte common
    header, an extended header whose bytes 4-5 (12-13 of the file) are the chip id, 0 for ESP32.
    """
    try:
        with path.open("rb") as f:
            head = f.read(_HEADER_BYTES)
    except OSError as e:
        raise EspFlashError("firmware file %s: %s" % (path, e.strerror or e), usage=True) from None
    if not head or head[0] != ESP_IMAGE_MAGIC:
        raise EspFlashError("%s is not an ESP firmware image (it starts with %s, not 0xe9): use the .bin "
                            "from micropython.org/download for a %s board" % (
                                path, "0x%02x" % head[0] if head else "nothing", chip_name(chip)), usage=True)
    if len(head) < _HEADER_BYTES:
        raise EspFlashError("%s is not an ESP firmware image: %d bytes, shorter than its header" % (path, len(head)),
                            usage=True)
    image_chip = head[12] | head[13] << 8
    expected = getattr(CHIP_DEFS[chip], "IMAGE_CHIP_ID", None)  # None: an ESP8266, no extended header
    if expected is not None and image_chip != expected:
        names = [d.CHIP_NAME for d in CHIP_DEFS.values() if getattr(d, "IMAGE_CHIP_ID", None) == image_chip]
        raise EspFlashError("%s is built for %s, not for this board's %s" % (
            path, names[0] if names else "an unknown chip (image chip id %d)" % image_chip, chip_name(chip)),
            usage=True)


def chip_name(esptool_name: str) -> str:
    """'esp32c3' -> 'ESP32-C3', as esptool prints it."""
    return CHIP_DEFS[esptool_name].CHIP_NAME


def _global_options() -> Dict[str, bool]:
    """esptool's options that go before the command, each with whether it takes a value."""
    return {opt: not param.is_flag for param in esptool.cli.params for opt in param.opts + param.secondary_opts}


def split_extra(extra: Sequence[str]) -> Tuple[List[str], List[str]]:
    """Extra esptool options -> (global options, write-flash options): esptool's CLI takes
    global options (--before, --no-stub, --after, --trace ...) only before the command."""
    known = _global_options()
    before: List[str] = []
    after: List[str] = []
    i = 0
    while i < len(extra):
        word = extra[i]
        name = word.split("=", 1)[0]
        if name in OWNED_OPTIONS:
            raise EspFlashError("%s comes from mqnode's own --board/--port/--baud; leave it out after --" % name, usage=True)
        if name in known:
            takes_value = known[name] and "=" not in word and i + 1 < len(extra)
            before.extend(extra[i : i + 2] if takes_value else [word])
            i += 2 if takes_value else 1
        else:
            after.append(word)
            i += 1
    return before, after


@dataclass
class EspPlan:
    board: str
    chip: str  # esptool's name, e.g. 'esp32'
    port: str
    baud: int
    offset: int
    firmware: str
    erase: bool
    extra: Sequence[str] = ()
    argv: List[str] = field(init=False)

    def __post_init__(self) -> None:
        before, after = split_extra(self.extra)
        if "--no-stub" in before and self.erase:
            raise EspFlashError(
                "--no-stub needs --no-erase: erasing the whole flash takes esptool's flasher stub, "
                "the ROM loader cannot (write-flash still erases the sectors it writes)", usage=True)
        self.argv = (
            ["--chip", self.chip, "--port", self.port, "--baud", str(self.baud), *before, "write-flash"]
            + (["--erase-all"] if self.erase else []) + after + ["0x%x" % self.offset, self.firmware]
        )

    @property
    def command_line(self) -> str:
        return shlex.join(["esptool", *self.argv])


@dataclass
class EspResult:
    chip_description: str  # esptool's "Chip type:" line, e.g. 'ESP32-D0WD-V3 (revision v3.1)'
    mac: str
    verified: bool
    transcript: List[str]


class _Log(EspLogBase):
    """esptool's output: kept as a transcript, echoed when verbose; warnings always shown; the
    write's progress as a rich bar."""

    def __init__(self, console: Console, verbose: bool, label: str) -> None:
        self.console = console
        self.verbose = verbose
        self.label = label
        self.lines: List[str] = []
        self._pending = ""

    def _plain(self, args: Sequence[Any]) -> str:
        text = " ".join(str(a) for a in args)
        try:
            return Text.from_markup(text).plain  # esptool's messages are rich markup
        except Exception:  # noqa: BLE001 - a stray '[' in a message: keep it as it is
            return text

    def print(self, *args: Any, **kwargs: Any) -> None:
        text = self._pending + self._plain(args) + kwargs.get("end", "\n")
        *done, self._pending = text.split("\n")
        for line in done:
            self.lines.append(line)
            if self.verbose:
                self.console.print(escape(line), style="dim", highlight=False, soft_wrap=True)

    def note(self, *args: Any) -> None:
        self.print("Note:", *args)

    def hint(self, *args: Any) -> None:
        self.print("Hint:", *args)

    def debug(self, *args: Any) -> None:
        self.print(*args)

    def warn(self, *args: Any, suggestion: Optional[str] = None) -> None:
        message = self._plain(args)
        self.lines.append("Warning: " + message)
        self.console.print("esptool: warning: " + escape(message), style="yellow", highlight=False, soft_wrap=True)

    def warning(self, message: str, suggestion: Optional[str] = None) -> None:
        self.warn(message)

    def err(self, *args: Any, suggestion: Optional[str] = None) -> None:
        message = self._plain(args)
        self.lines.append("Error: " + message)
        self.console.print("esptool: " + escape(message), style="red", highlight=False, soft_wrap=True)

    def error(self, message: str, suggestion: Optional[str] = None) -> None:
        self.err(message)

    def set_verbosity(self, mode: Any) -> None:
        if str(mode).lower() == "verbose":
            self.verbose = True

    def progress_bar(self, cur_iter: int, total_iters: int, prefix: str = "", suffix: str = "", bar_length: int = 30) -> None:
        pass  # progress() below draws the bar itself

    @contextmanager
    def progress(self, total: int, description: str = "", bar_length: int = 30, *, file: Any = None,
                 disable: bool = False, unit: Optional[str] = None) -> Iterator[Any]:
        with Progress(
            TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
            TimeRemainingColumn(), console=self.console, disable=disable,
        ) as bar:
            yield _BarTask(bar, bar.add_task(self.label, total=total))


class _BarTask:
    """What esptool's `with log.progress(...) as task` gets: `task.update(advance=n)` per block."""

    def __init__(self, bar: Progress, task: TaskID) -> None:
        self.bar = bar
        self.task = task

    def update(self, advance: int = 1, description: Optional[str] = None) -> None:
        self.bar.advance(self.task, advance)


def run_esptool(plan: EspPlan, console: Console, verbose: bool, label: str) -> EspResult:
    """Run the plan; EspFlashError with a one-line reason when it fails."""
    log = _Log(console, verbose, label)
    previous, argv0 = EspLog.instance, sys.argv[0]
    EspLog.set_logger(log)
    sys.argv[0] = "esptool"  # click names the program after it in its usage errors
    try:
        # esptool.main() as it is, but with click's exceptions left to us: standalone, click turns
        # Ctrl-C (and SIGTERM, which mqnode makes one) into "Aborted!" and exit status 1.
        esptool.cli(None, args=esptool.expand_file_arguments(list(plan.argv)), standalone_mode=False)
    except FatalError as e:
        raise EspFlashError(_condense(str(e), plan)) from None
    except serial.SerialException as e:
        raise EspFlashError("lost %s: %s" % (plan.port, _one_line(str(e)))) from None
    except click.exceptions.Abort:
        raise KeyboardInterrupt from None  # mqnode's exit status 130
    except click.ClickException as e:  # click refused the arguments
        e.show()
        raise EspFlashError("esptool refused the options (%s): see above" % plan.command_line, usage=True) from None
    finally:
        EspLog.instance, sys.argv[0] = previous, argv0
    field_of: Dict[str, str] = {}
    for line in log.lines:
        key, _, value = line.partition(":")
        field_of.setdefault(key.strip(), value.strip())
    return EspResult(field_of.get("Chip type", "?"), field_of.get("MAC", "?"), VERIFIED_LINE in log.lines, log.lines)


def _one_line(text: str) -> str:
    lines = [l.strip() for l in text.strip().splitlines()]
    kept = [l for l in lines if l and not l.startswith(("For troubleshooting", "Hint:"))]
    return " ".join(kept)


def _condense(message: str, plan: EspPlan) -> str:
    text = _one_line(message)
    mismatch = re.search(r"This chip is (\S+), not (\S+?)\.", text)
    if mismatch:
        return "the chip on %s is an %s, but board %s has an %s" % (
            plan.port, mismatch.group(1), plan.board, mismatch.group(2))
    if text.startswith("Could not open"):
        return "cannot open %s: %s" % (plan.port, why_not_open(plan.port, "esptool: " + text))
    if text.startswith("Failed to connect"):
        return ("no ESP bootloader answered on %s (esptool: %s); hold BOOT while pressing RESET, "
                "then try again" % (plan.port, text))
    return "esptool: %s" % text
