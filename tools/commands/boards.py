"""mqnode boards: the boards in boards/*.json, their chips, how they flash, and what is on which pin."""
from __future__ import annotations

import argparse
import json
import sys

from rich.console import Console
from rich.table import Table

from mqnode_tools.boards import all_boards

HELP = "List the boards (boards/*.json): chip, firmware, flash method and offset, parts and pins."
PIPE_WIDTH = 132

EXAMPLES = """examples:
  mqnode boards
  mqnode boards --json | jq -r '.[] | select(.flash.method == "esptool") | .name'
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="a JSON list of the boards instead of the table")


def run(args: argparse.Namespace) -> int:
    boards, errors = all_boards()
    if args.json:
        print(json.dumps([b.to_json() for b in boards], indent=2, ensure_ascii=False))
    else:
        table = Table(title="boards/", title_justify="left")
        for column in ("board", "chip", "firmware", "flash", "part", "driver", "pins"):
            table.add_column(column, no_wrap=column not in ("part", "pins"))
        for b in boards:
            rows = [("%s %s" % (p.kind, p.name), p.driver, p.wiring) for p in b.parts] or [("-", "", "")]
            for i, row in enumerate(rows):
                head = (b.name, b.chip, b.firmware, b.flash_text) if i == 0 else ("", "", "", "")
                table.add_row(*head, *row, end_section=i == len(rows) - 1)
        console = Console()
        if not console.is_terminal:
            console.width = max(console.width, PIPE_WIDTH)  # a pipe or file: one line per part
        console.print(table)
    for line in errors:
        print("mqnode boards: %s" % line, file=sys.stderr)
    return 1 if errors else 0
