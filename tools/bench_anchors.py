"""The clients mqnode is measured against ("anchors"): where their sources are, how to get them.

Users get umqtt.simple/umqtt.robust from micropython-lib and mqtt_as from Peter Hinch's
repository with `mip`. `mpremote mip install` puts them on a board; on this machine the Unix
port's own mip fetches the same packages into a folder: `micropython -m mip install --target DIR`.
Or the user names a folder that already holds them (`ANCHORS=DIR`). Anchor sources are read and
compiled here, never copied into the repository (the cache lives under build/, which git ignores).
"""
from __future__ import annotations

import hashlib
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

from mqnode_tools.paths import REPO, micropython

DEFAULT_DIR = REPO / "build" / "bench" / "anchors"  # git ignores build/
FETCH_TIMEOUT_S = 120


@dataclass(frozen=True)
class AnchorPackage:
    files: List[str]  # paths inside the anchors folder the client needs
    mip: List[str]  # the mip package names that bring them
    url: str  # where a person can read and download them


PACKAGES: Dict[str, AnchorPackage] = {
    "umqtt": AnchorPackage(
        ["umqtt/simple.py", "umqtt/robust.py"], ["umqtt.simple", "umqtt.robust"],
        "https://github.com/micropython/micropython-lib/tree/master/micropython/umqtt.simple/umqtt",
    ),
    "mqtt_as": AnchorPackage(
        ["mqtt_as/__init__.py"], ["github:peterhinch/micropython-mqtt"],
        "https://github.com/peterhinch/micropython-mqtt/tree/master/mqtt_as",
    ),
}
CLIENT_PACKAGE = {"umqtt.simple": "umqtt", "umqtt.robust": "umqtt", "mqtt_as": "mqtt_as"}
# Only these are compiled: the rest of what mip brings (examples, a demo main.py) never loads.
CLIENT_FILES = {
    "umqtt.simple": ["umqtt/simple.py"],
    "umqtt.robust": ["umqtt/simple.py", "umqtt/robust.py"],
    "mqtt_as": ["mqtt_as/__init__.py"],
}


@dataclass
class Anchor:
    name: str
    folder: Path
    version: str = ""
    problem: str = ""  # why it is missing, and how to get it

    @property
    def ok(self) -> bool:
        return not self.problem


def mip_command(package: AnchorPackage, target: Path) -> List[str]:
    # --no-mpy: the sources, so this machine's mpy-cross compiles every client the same way.
    return [micropython(), "-m", "mip", "install", "--no-mpy", "--target", str(target), *package.mip]


def _display(cmd: List[str]) -> str:
    shown = [str(Path(c).relative_to(REPO)) if Path(c).is_relative_to(REPO) else c for c in cmd]
    return " ".join(shown)


def fetch(package: AnchorPackage, target: Path) -> str:
    """Run mip; returns '' on success, else the last line of what went wrong."""
    target.mkdir(parents=True, exist_ok=True)
    try:
        result = subprocess.run(mip_command(package, target), capture_output=True, text=True, timeout=FETCH_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return "mip took longer than %d s" % FETCH_TIMEOUT_S
    if result.returncode == 0 and all((target / f).exists() for f in package.files):
        return ""
    lines = (result.stderr.strip() or result.stdout.strip()).splitlines()  # the exception, if one was raised
    return lines[-1] if lines else "mip exited with status %d" % result.returncode


def version(name: str, folder: Path) -> str:
    """mqtt_as has VERSION; umqtt has none, so name the file and a hash of it."""
    described = []
    for rel in CLIENT_FILES[name]:
        source = folder / rel
        text = source.read_text(errors="replace")
        found = re.search(r"^VERSION\s*=\s*\(([\d,\s]+)\)", text, re.M)
        digest = hashlib.sha256(source.read_bytes()).hexdigest()[:12]
        if found:
            described.append("%s %s (sha256 %s)" % (rel, ".".join(v.strip() for v in found.group(1).split(",")), digest))
        else:
            described.append("%s sha256 %s" % (rel, digest))
    return "; ".join(described)


def resolve(names: List[str], folder: Optional[Path], allow_fetch: bool) -> Dict[str, Anchor]:
    """Each anchor client, found in `folder` (ANCHORS=DIR) or in the cache, fetched with mip if
    missing there and allowed. A missing anchor carries the exact way to get it."""
    anchors: Dict[str, Anchor] = {}
    fetched: Dict[str, str] = {}
    for name in names:
        package_name = CLIENT_PACKAGE[name]
        package = PACKAGES[package_name]
        where = folder or DEFAULT_DIR
        anchor = Anchor(name, where)
        missing = [f for f in CLIENT_FILES[name] if not (where / f).exists()]
        if missing and folder is None and allow_fetch:
            if package_name not in fetched:
                fetched[package_name] = fetch(package, where)
            missing = [f for f in CLIENT_FILES[name] if not (where / f).exists()]
        if missing:
            why = "no %s in %s" % (", ".join(missing), where)
            if fetched.get(package_name):
                why += "; fetching with mip failed: %s" % fetched[package_name]
            anchor.problem = (
                "%s. Get it (network needed) with:\n    %s\n  or put %s from %s in a folder DIR and run "
                "`make bench ANCHORS=DIR`." % (why, _display(mip_command(package, DEFAULT_DIR)),
                                               " and ".join(package.files), package.url)
            )
        else:
            anchor.version = version(name, where)
        anchors[name] = anchor
    return anchors
