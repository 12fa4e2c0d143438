"""How to start the client driver on each runtime: the command line, the module path and
which CA file format that runtime's ssl accepts."""
from __future__ import annotations

import functools
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence

REPO = Path(__file__).resolve().parent.parent
LIB = REPO / "lib"
DRIVER = Path(__file__).resolve().parent / "driver" / "mqtt_driver.py"
AIO_DRIVER = DRIVER.parent / "aio_driver.py"
RUNTIMES = ("cpython", "micropython")


def micropython_executable() -> str:
    """$MICROPYTHON (the Makefile passes it through), else the venv's PyPI Unix port."""
    path = os.environ.get("MICROPYTHON") or str(REPO / ".venv" / "bin" / "micropython")
    if not os.access(path, os.X_OK):
        raise FileNotFoundError("no MicroPython at %s: run 'make venv' or set MICROPYTHON" % path)
    return path


@functools.lru_cache(maxsize=None)
def micropython_build() -> Dict[str, int]:
    """What the MicroPython under test was built with: `bits`, its word size (a board's is 32; the
    PyPI Unix port's 64, whose objects are up to twice as large), and `ssl`, 1 if it has the
    module (a build without mbedtls has not). Asked once per run."""
    probe = "import sys\ntry:\n import ssl\n s = 1\nexcept ImportError:\n s = 0\nprint(32 if sys.maxsize < 1 << 32 else 64, s)"
    out = subprocess.run([micropython_executable(), "-c", probe], capture_output=True, text=True, timeout=30, check=True)
    bits, ssl = out.stdout.split()
    return {"bits": int(bits), "ssl": int(ssl)}


def driver_command(runtime: str, heapsize: Optional[str] = None) -> List[str]:
    """`heapsize` (e.g. "64k") fixes MicroPython's GC heap like a small board; CPython ignores it."""
    if runtime == "cpython":
        return [sys.executable, str(DRIVER)]
    if runtime == "micropython":
        heap = ["-X", "heapsize=" + heapsize] if heapsize else []
        return [micropython_executable(), *heap, str(DRIVER)]
    raise ValueError("unknown runtime %r" % runtime)


def aio_driver_command(runtime: str, heapsize: Optional[str] = None, module: Optional[str] = None) -> List[str]:
    """The asyncio client's scenario driver (tests/driver/aio_driver.py), started like
    driver_command's. `module` runs `-m module` from the module path instead of the .py file: a
    small MicroPython heap cannot compile the driver's source, so it loads an .mpy of it."""
    script = ["-m", module] if module else [str(AIO_DRIVER)]
    if runtime == "cpython":
        return [sys.executable, *script]
    if runtime == "micropython":
        heap = ["-X", "heapsize=" + heapsize] if heapsize else []
        return [micropython_executable(), *heap, *script]
    raise ValueError("unknown runtime %r" % runtime)


def driver_environment(runtime: str, extra_path: Sequence[Path] = ()) -> Dict[str, str]:
    """lib/ (after `extra_path`) on the module path, the driver's own folder being implicit."""
    path = os.pathsep.join(str(p) for p in [*extra_path, LIB])
    env = dict(os.environ)
    if runtime == "micropython":
        # MICROPYPATH replaces the default path; keep ".frozen", home of asyncio and ssl.
        env["MICROPYPATH"] = ".frozen" + os.pathsep + path
    else:
        env["PYTHONPATH"] = path
    return env


def ca_file_for(runtime: str, pem: Path, der: Path) -> Path:
    """The Unix port's ssl refuses PEM ("invalid cert"); CPython's cafile= wants PEM."""
    return der if runtime == "micropython" else pem
