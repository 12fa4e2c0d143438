"""Flashing an RP2040 board: check the .uf2, find the RPI-RP2 drive, copy the file onto it.

The RP2040's boot ROM shows a USB drive named RPI-RP2 (with an INFO_UF2.TXT) while BOOTSEL is
held at power-up, or after MicroPython's machine.bootloader() (`mpremote bootloader`); a .uf2
copied onto it is written to flash and the board reboots into it. UF2 format:
https://github.com/microsoft/uf2 (512-byte blocks, each with its own magic numbers and address).
"""
from __future__ import annotations

import getpass
import os
import re
import shutil
import struct
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

BLOCK_SIZE = 512
MAGIC_START0 = 0x0A324655  # "UF2\n"
MAGIC_START1 = 0x9E5D5157
MAGIC_END = 0x0AB16F30
FLAG_FAMILY_ID = 0x00002000  # the "file size" word holds a family id
MAX_PAYLOAD = 476  # a block's data area
RP2040_FAMILY = 0xE48BFF56
# Family ids from microsoft/uf2's uf2families.json, to name the board a wrong file is for.
FAMILIES: Dict[int, str] = {
    RP2040_FAMILY: "RP2040",
    0xE48BFF57: "RP2XXX absolute",
    0xE48BFF58: "RP2XXX data",
    0xE48BFF59: "RP2350 (Arm, secure)",
    0xE48BFF5A: "RP2350 (RISC-V)",
    0xE48BFF5B: "RP2350 (Arm, non-secure)",
    0x1C5F21B0: "ESP32",
    0xBFDD4EEE: "ESP32-S2",
    0xD42BA06C: "ESP32-C3",
    0xC47E5767: "ESP32-S3",
    0x68ED2B88: "SAMD21",
    0x55114460: "SAMD51",
    0xADA52840: "nRF52840",
}
DRIVE_LABEL = "RPI-RP2"  # the RP2040 boot ROM's volume label and INFO_UF2.TXT Board-ID
INFO_FILE = "INFO_UF2.TXT"
MOUNTS = Path("/proc/mounts")
BOOTLOADER_TIMEOUT_S = 20.0  # mpremote connecting and running machine.bootloader()
DRIVE_WAIT_S = 15.0  # for the drive to be mounted after that (desktop automounters take seconds)
DRIVE_POLL_S = 0.25
COPY_CHUNK = 64 * 1024


class Uf2Error(Exception):
    """A one-line reason; `usage` marks bad input (exit status 2), else the operation failed."""

    def __init__(self, message: str, usage: bool = False) -> None:
        super().__init__(message)
        self.usage = usage


def family_name(family: int) -> str:
    return "%s (0x%08x)" % (FAMILIES.get(family, "unknown family"), family)


@dataclass(frozen=True)
class Uf2Image:
    path: Path
    size: int
    blocks: int  # the blocks for the RP2040
    start: int  # lowest target address
    end: int


def check_uf2(path: Path, family: int = RP2040_FAMILY) -> Uf2Image:
    """The file as a UF2 image for `family`, or Uf2Error saying what is wrong with it."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise Uf2Error("firmware %s: %s" % (path, e.strerror or e), usage=True)
    if not data or len(data) % BLOCK_SIZE:
        raise Uf2Error("%s is not a UF2 file (%d bytes: not a whole number of 512-byte blocks)" % (path, len(data)), usage=True)
    mine: List[tuple] = []
    others: Dict[int, int] = {}
    for i in range(0, len(data), BLOCK_SIZE):
        m0, m1, flags, addr, size, number, count, fam = struct.unpack_from("<8I", data, i)
        (m_end,) = struct.unpack_from("<I", data, i + BLOCK_SIZE - 4)
        if (m0, m1, m_end) != (MAGIC_START0, MAGIC_START1, MAGIC_END):
            raise Uf2Error("%s is not a UF2 file (block %d has no UF2 magic numbers)" % (path, i // BLOCK_SIZE), usage=True)
        if not flags & FLAG_FAMILY_ID:
            fam = -1
        if fam == family:
            if size > MAX_PAYLOAD or number >= count:
                raise Uf2Error("%s: block %d is damaged (payload %d, block %d of %d)" % (path, i // BLOCK_SIZE, size, number, count), usage=True)
            mine.append((addr, size, number, count))
        else:
            others[fam] = others.get(fam, 0) + 1
    if not mine:
        found = ", ".join("no family id" if f < 0 else family_name(f) for f in others)
        raise Uf2Error("%s is a UF2 file for %s, not the %s" % (path, found, family_name(family)), usage=True)
    counts = {c for _, _, _, c in mine}
    numbers = sorted(n for _, _, n, _ in mine)
    if len(counts) != 1 or numbers != list(range(len(mine))) or counts != {len(mine)}:
        raise Uf2Error("%s is damaged: its %s blocks are not numbered 0..%d" % (path, family_name(family), len(mine) - 1), usage=True)
    return Uf2Image(path, len(data), len(mine), min(a for a, *_ in mine), max(a + s for a, s, *_ in mine))


def drive_board_id(directory: Path) -> Optional[str]:
    """The Board-ID in a UF2 drive's INFO_UF2.TXT ('' if it has none), or None if it is not one."""
    try:
        info = (directory / INFO_FILE).read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    for line in info.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() == "board-id":
            return value.strip()
    return ""


def _mount_points(mounts: Path) -> List[Path]:
    try:
        text = mounts.read_text()
    except OSError:
        return []
    points = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) > 1:  # the mount table escapes spaces as \040
            points.append(Path(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[1])))
    return points


def find_drives(roots: Optional[Sequence[Path]] = None, mounts: Path = MOUNTS) -> List[Path]:
    """Mounted RPI-RP2 drives: under the automounters' folders (/media/$USER, /run/media/$USER,
    /Volumes) and in the mount table; only volumes named RPI-RP2* are opened, so a hung network
    mount elsewhere is never touched."""
    if roots is None:
        user = getpass.getuser()
        roots = [Path("/media") / user, Path("/run/media") / user, Path("/media"), Path("/Volumes")]
    candidates: List[Path] = []
    for root in roots:
        try:
            candidates.extend(sorted(root.glob(DRIVE_LABEL + "*")))
        except OSError:
            continue
    candidates.extend(p for p in _mount_points(mounts) if p.name.startswith(DRIVE_LABEL))
    found: List[Path] = []
    for c in candidates:
        if c not in found and c.is_dir() and (drive_board_id(c) or "").startswith(DRIVE_LABEL):
            found.append(c)
    return found


def check_drive(directory: Path) -> None:
    """--drive DIR must be an RP2040's boot drive; Uf2Error otherwise."""
    board_id = drive_board_id(directory)
    if board_id is None:
        raise Uf2Error("%s is not an %s drive (no %s in it)" % (directory, DRIVE_LABEL, INFO_FILE), usage=True)
    if board_id and not board_id.startswith(DRIVE_LABEL):
        raise Uf2Error("%s is the UF2 drive of a %s, not an RP2040 (%s)" % (directory, board_id, DRIVE_LABEL), usage=True)


def mpremote() -> str:
    found = shutil.which("mpremote", path=str(Path(sys.executable).parent)) or shutil.which("mpremote")
    if not found:
        raise Uf2Error("mpremote is missing: pip install mpremote")
    return found


def bootloader_command(port: str) -> List[str]:
    return [mpremote(), "connect", port, "bootloader"]


def enter_bootloader(port: str, finder: Callable[[], List[Path]], wait_s: float = DRIVE_WAIT_S) -> Path:
    """Ask the MicroPython board on `port` to enter its boot ROM, then wait for `finder` to see
    its drive."""
    try:
        done = subprocess.run(bootloader_command(port), capture_output=True, text=True, timeout=BOOTLOADER_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise Uf2Error("mpremote did not get %s into the bootloader within %.0f s" % (port, BOOTLOADER_TIMEOUT_S))
    if done.returncode != 0:
        said = (done.stderr.strip() or done.stdout.strip() or "exit status %d" % done.returncode).splitlines()[-1]
        raise Uf2Error("mpremote could not put %s into the bootloader: %s" % (port, said))
    deadline = time.monotonic() + wait_s
    while True:
        drives = finder()
        if drives:
            return drives[0]
        if time.monotonic() >= deadline:
            raise Uf2Error("no %s drive appeared within %.0f s after `mpremote bootloader` on %s; "
                           "is it mounted? pass --drive DIR" % (DRIVE_LABEL, wait_s, port))
        time.sleep(DRIVE_POLL_S)


def copy_to_drive(image: Uf2Image, drive: Path, console: Console) -> Path:
    """Copy the .uf2 onto the drive with a progress bar. The boot ROM reboots as soon as the last
    block arrives, so the drive may vanish before the copy is closed: that counts as done once
    every byte was written."""
    target = drive / image.path.name
    written = 0
    try:
        with image.path.open("rb") as src, target.open("wb") as dst, Progress(
            TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(), console=console,
        ) as bar:
            task = bar.add_task("Copying %s" % image.path.name, total=image.size)
            while True:
                chunk = src.read(COPY_CHUNK)
                if not chunk:
                    break
                dst.write(chunk)
                written += len(chunk)
                bar.advance(task, len(chunk))
            dst.flush()
            os.fsync(dst.fileno())
    except OSError as e:
        if written == image.size and not drive.exists():
            return target
        raise Uf2Error("copying to %s failed: %s" % (target, e.strerror or e))
    return target
