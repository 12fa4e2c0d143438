"""Render the reliability log of a test run (MQNODE_RELIABILITY_LOG, one JSON line per case) as
Markdown tables, and optionally put them into README.md between its reliability markers.

    python tests/reliability_report.py build/reliability.jsonl            # print
    python tests/reliability_report.py build/reliability.jsonl --readme   # update README.md

The README's table therefore comes from a run, not from a keyboard (`make reliability`).
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import OrderedDict
from pathlib import Path
from typing import Dict, List

README = Path(__file__).resolve().parent.parent / "README.md"
START = "<!-- reliability:start -->"
END = "<!-- reliability:end -->"


def load(path: Path) -> List[Dict[str, object]]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return sorted(rows, key=lambda r: (str(r["case"]), str(r["runtime"])))


def render(rows: List[Dict[str, object]]) -> str:
    """One table per family of cases (the part of the case name before '/'); each row names what
    that case counted, since the cases of a family count different things."""
    families: "OrderedDict[str, List[Dict[str, object]]]" = OrderedDict()
    for r in rows:
        family = str(r["case"]).split("/")[0] if "/" in str(r["case"]) else "delivery"
        families.setdefault(family, []).append(r)
    out = []
    for family, items in families.items():
        out.append("**%s** (%d runs)\n" % (family, len(items)))
        out.append("| case | runtime | what it counted |")
        out.append("|---|---|---|")
        for r in items:
            case = str(r["case"]).split("/", 1)[-1]
            counts = ", ".join("%s %s" % (k, _cell(v)) for k, v in r.items() if k not in ("case", "runtime"))
            out.append("| %s | %s | %s |" % (case, r["runtime"], counts))
        out.append("")
    return "\n".join(out)


def _cell(v: object) -> str:
    if v is None:
        return "–"
    if isinstance(v, list):
        return ", ".join(str(x) for x in v[:8]) + (" …" if len(v) > 8 else "")
    return str(v).replace("|", "\\|")


def update_readme(table: str) -> None:
    text = README.read_text()
    if START not in text or END not in text:
        raise SystemExit("README.md has no %s ... %s markers" % (START, END))
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    README.write_text(head + START + "\n" + table + "\n" + END + tail)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("log", type=Path)
    p.add_argument("--readme", action="store_true", help="write the tables into README.md")
    args = p.parse_args()
    if not args.log.exists():
        print("no reliability log at %s (run the tests with MQNODE_RELIABILITY_LOG set)" % args.log)
        return 1
    table = render(load(args.log))
    if args.readme:
        update_readme(table)
    else:
        sys.stdout.write(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
