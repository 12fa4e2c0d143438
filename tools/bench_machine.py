"""What the benchmark ran on: CPU, cores, OS, load, and the versions of everything measured."""
from __future__ import annotations

import datetime
import os
import platform
import re
import subprocess
from pathlib import Path
from typing import Dict, List

from mqnode_tools.paths import REPO


def _first_line(cmd: List[str]) -> str:
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    lines = (r.stdout + r.stderr).strip().splitlines()
    return lines[0] if lines else "?"


def machine_info(micropython: str, mpy_cross: str, mosquitto: str) -> Dict[str, str]:
    """Label -> description, in the order results.md lists them ("date" and "cores" are for the
    report's own use)."""
    cpu = "?"
    try:
        found = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
        cpu = found.group(1) if found else platform.processor() or "?"
    except OSError:
        pass
    os_name = platform.system()
    try:
        found = re.search(r'^PRETTY_NAME="?([^"\n]+)', Path("/etc/os-release").read_text(), re.M)
        os_name = found.group(1) if found else os_name
    except OSError:
        pass
    mp = _first_line([micropython, "-c", "import sys; v = sys.implementation.version; "
                      "print('.'.join(str(x) for x in v[:3]) + ('-' + v[3] if len(v) > 3 and v[3] else ''), "
                      "'(' + sys.version.split('; ')[-1] + ')')"])
    git = _first_line(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    dirty = _first_line(["git", "-C", str(REPO), "status", "--porcelain", "lib/mqtt"]) not in ("?", "")
    try:
        from importlib.metadata import version

        paho = version("paho-mqtt")
    except Exception:
        paho = "?"
    load = os.getloadavg()
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "CPU": "%s, %d cores" % (cpu, os.cpu_count() or 0),
        "cores": str(os.cpu_count() or 0),
        "OS": "%s (Linux %s, %s)" % (os_name, platform.release(), platform.machine()),
        "load average at start": "%.2f %.2f %.2f" % load,
        "MicroPython": mp,
        "mpy-cross": _first_line([mpy_cross, "--version"]),
        "mosquitto": _first_line([mosquitto, "-h"]),
        "CPython": platform.python_version(),
        "paho-mqtt": paho,
        "mqnode": "%s%s" % (git, " + uncommitted changes in lib/mqtt" if dirty else ""),
    }
