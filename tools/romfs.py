"""A ROMFS image of a compiled tree: MicroPython's read-only filesystem whose .mpy files run in place.

On a board whose firmware has ROMFS, `mpremote romfs deploy` writes such an image to flash and
MicroPython imports from it without copying the bytecode or the strings into RAM, as it runs
frozen modules. The Unix port has no flash: the bench and the tests mount the image from a buffer
(bench/harness/romfs.py) to measure what the code costs a board then.
The image is built with mpremote's own writer, from .mpy files we compiled (`-s` names, as a
board holds them), so nothing is compiled a second time.
"""
from __future__ import annotations

from pathlib import Path

from mpremote.romfs import VfsRomWriter


def build_image(tree: Path, under: str = "") -> bytes:
    """Every file below `tree`, in a folder `under` (e.g. "lib", which a board's firmware puts on
    sys.path as /rom/lib) or at the image's root."""
    writer = VfsRomWriter()
    if under:
        writer.opendir(under)
    _add(writer, tree)
    if under:
        writer.closedir()
    return writer.finalise()


def _add(writer: VfsRomWriter, folder: Path) -> None:
    for entry in sorted(folder.iterdir()):
        if entry.is_dir():
            writer.opendir(entry.name)
            _add(writer, entry)
            writer.closedir()
        else:
            writer.mkfile(entry.name, entry.read_bytes())
