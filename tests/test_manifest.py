"""firmware/manifest.py, the file users include to freeze mqnode into their own MicroPython image.
It is run here as MicroPython's build runs a manifest (tools/manifestfile.py: a Python file calling
package(), module(), include()), with those calls recorded, so a module added to lib/ or firmware/
and left out of the image, or a path that does not exist, fails here rather than on a user's board.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Set

from runtime import REPO

FIRMWARE = REPO / "firmware"


def frozen_files() -> Set[Path]:
    files: Set[Path] = set()
    calls: List[str] = []

    def package(name: str, base_path: str = ".", opt: int = 0) -> None:
        root = (FIRMWARE / base_path / name).resolve()
        assert root.is_dir(), "package(%r, base_path=%r): no folder %s" % (name, base_path, root)
        files.update(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)
        calls.append("package " + name)

    def module(name: str, base_path: str = ".", opt: int = 0) -> None:
        path = (FIRMWARE / base_path / name).resolve()
        assert path.is_file(), "module(%r): no file %s" % (name, path)
        files.add(path)
        calls.append("module " + name)

    exec(compile((FIRMWARE / "manifest.py").read_text(), "manifest.py", "exec"),
         {"package": package, "module": module})
    assert calls, "the manifest froze nothing"
    return files


def test_manifest_freezes_every_board_module_and_the_boot_files() -> None:
    frozen = frozen_files()
    board_code = {p.resolve() for p in (REPO / "lib").rglob("*.py") if "__pycache__" not in p.parts}
    board_code |= {FIRMWARE / "boot.py", FIRMWARE / "main.py"}
    assert sorted(map(str, board_code - frozen)) == []
    assert sorted(map(str, frozen - board_code)) == []
