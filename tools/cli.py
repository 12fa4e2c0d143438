"""The `mqnode` command line: one sub-command per module in commands/.

Exit status everywhere: 0 success, 1 the operation failed (a broker, board or node said no or
did not answer), 2 bad usage or input (argparse's own convention), 130 interrupted (Ctrl-C or
SIGTERM) in the middle of a job; the commands that run until Ctrl-C end with 0.
"""
from __future__ import annotations

import argparse
import importlib
import signal
import sys
from typing import List, Optional

COMMANDS = ["monitor", "sim", "demo", "boards", "flash", "deploy", "provision", "cmd", "bench"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mqnode",
        description="Host tools for mqnode sensor nodes.",
        epilog="Run 'mqnode COMMAND --help' for each command's options and examples.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = importlib.import_module("mqnode_tools.commands." + name)
        p = sub.add_parser(
            name, help=module.HELP, description=module.HELP, epilog=module.EXAMPLES,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(p)
        p.set_defaults(run=module.run)
    return parser


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM cleans up as Ctrl-C does: nodes and brokers are stopped


def main(argv: Optional[List[str]] = None) -> int:
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        # Inside: the commands' imports (esptool, rich, paho) take a moment, Ctrl-C may come then.
        args = build_parser().parse_args(argv)
        return args.run(args)
    except KeyboardInterrupt:  # a command that runs until Ctrl-C (monitor, sim, demo) ends on its own
        print("mqnode: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
