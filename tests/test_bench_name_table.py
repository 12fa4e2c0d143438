"""The bench's heap figures do not move with how full the harness left MicroPython's name table.

The table (qstr pools) grows by doubling, so an import that adds a few dozen names may allocate a
block of hundreds of entries, or none, depending on what was interned before it. The bench
charges each client for the names it adds instead (tools/bench_run.py, charged()); this runs
that arithmetic on the real qstr_info() output of the Unix port, with the blocking client's
import behind padding of 0 to 240 names, and holds it to the string storage's granularity.
Measured raw, that import moved by 5.5 KB with the padding (31.7 to 37.2 KB); charged, by 160 B.
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

from compiled_lib import compile_lib
from mqnode_tools.bench_run import charged, name_tables
from runtime import REPO, micropython_executable

PADDINGS = (0, 40, 80, 160, 240)
# Names' strings are stored in chunks of at least 128 bytes, and the charge leaves them in: the
# unused end of the chunk current at the baseline, and of the one current at the end, moves with
# what came before.
SLACK_B = 2 * 128
RUN_TIMEOUT_S = 30

SCRIPT = """
import gc, json, sys
sys.path.insert(0, %(harness)r)
from measure import names

class Pad:
    pass

for i in range(%(pad)d):
    setattr(Pad, "padding_name_%%d" %% i, i)  # an attribute name is interned
gc.collect()
base = gc.mem_alloc()
names("base")
import mqtt.client
gc.collect()
raw = gc.mem_alloc() - base
names("import")
print("BENCH " + json.dumps({"import": raw, "word": 8 if sys.maxsize > 1 << 32 else 4}))
"""


def _job(tree: Path, pad: int) -> dict:
    script = SCRIPT % {"harness": str(REPO / "bench" / "harness"), "pad": pad}
    out = subprocess.run([micropython_executable(), "-c", script], env={"MICROPYPATH": "%s:.frozen" % tree},
                         capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=True).stdout
    result = json.loads(out.split("BENCH ", 1)[1])
    result["names"] = name_tables(out)
    return result


def test_the_charged_heap_figure_stays_put_whatever_the_harness_interned_before(tmp_path: Path) -> None:
    tree = compile_lib(tmp_path, ("mqtt",))
    jobs = [_job(tree, pad) for pad in PADDINGS]
    figures = [charged(r, "import") for r in jobs]
    raw = [r["import"] for r in jobs]
    print("raw", raw, "charged", figures)
    assert all(r["names"]["import"][0] - r["names"]["base"][0] > 100 for r in jobs)  # the client's names
    assert max(figures) - min(figures) <= SLACK_B, (figures, raw)
