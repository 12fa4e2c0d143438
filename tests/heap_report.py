"""What each lib/ module costs on the MicroPython Unix port's heap, loaded from .mpy as on a board.

    .venv/bin/python tests/heap_report.py                     # the simulated node's modules
    .venv/bin/python tests/heap_report.py mqtt.client         # any modules, imported in order

lib/ is compiled with mpy-cross into a temporary folder, then one Unix-port process imports the
modules in the order given and prints each one's gc.mem_alloc() growth after gc.collect(). The
qstr pool is grown first: it doubles in steps (7 KB at once at the 611th name on the 64-bit port),
and the step would otherwise be charged to whichever module happened to cross it. So the numbers leave out
the pool's ~11 bytes per new name, and the total is a little below a plain import's.

A helper for people tuning RAM, not a test; $MICROPYTHON picks another Unix port (e.g. a 32-bit
build, whose heap is much closer to an ESP32's or an RP2040's than the 64-bit port's).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import List

from runtime import LIB, REPO, micropython_executable

# The simulated node's modules (firmware/main.py with boards/sim.json), in the order it loads them.
NODE = [
    "asyncio", "asyncio.event", "asyncio.funcs", "asyncio.stream", "mqtt", "mqtt.compat",
    "mqtt.packet", "mqtt.topic", "mqtt.outbox", "mqtt.backoff", "mqtt.session", "mqtt.aio",
    "mqnode", "mqnode.node", "mqnode.hardware_sim", "mqnode.drivers.internal_temp",
    "mqnode.drivers.pir", "mqnode.drivers.relay",
]

PROGRAM = """
import gc, sys
class _X: pass
_x = _X()
for _i in range(620):  # the pool doubles at 611 names: 640 more fit before the next step
    hasattr(_x, "Q%04d" % _i)
gc.collect()
base = prev = gc.mem_alloc()
for name in sys.argv[1:]:
    __import__(name)
    gc.collect()
    now = gc.mem_alloc()
    print("%-30s %6d" % (name, now - prev))
    prev = now
print("%-30s %6d" % ("total", prev - base))
"""


def compile_lib(dest: Path) -> None:
    mpy_cross = REPO / ".venv" / "bin" / "mpy-cross"
    for src in sorted(LIB.rglob("*.py")):
        out = dest / src.relative_to(LIB).with_suffix(".mpy")
        out.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([str(mpy_cross), "-o", str(out), str(src)], check=True, capture_output=True)


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help="modules to import, in order (default: the node's)")
    parser.add_argument("--heap", default="256k", help="the Unix port's heap size (default 256k)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        compile_lib(folder / "lib")
        (folder / "report.py").write_text(PROGRAM)
        result = subprocess.run(
            [micropython_executable(), "-X", "heapsize=" + args.heap, str(folder / "report.py"),
             *(args.modules or NODE)],
            env={"MICROPYPATH": "%s:.frozen" % (folder / "lib")}, capture_output=True, text=True, timeout=60,
        )
    sys.stdout.write(result.stdout + result.stderr)
    return result.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
