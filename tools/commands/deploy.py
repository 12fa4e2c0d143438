"""mqnode deploy: the node's code (compiled to .mpy), its board file and its config, onto a board
over USB; only files whose sha256 differs are copied, with the node held in safe mode meanwhile
(its watchdog would reset the board mid-copy: safe_mode.py). Then a soft reset, and optionally a
wait for the node's `online` on the broker."""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TextColumn

from mqnode_tools import mpy, node_config, safe_mode
from mqnode_tools.board_link import BoardError, BoardLink
from mqnode_tools.boards import Board, BoardError as BoardFileError, load_board
from mqnode_tools.broker_link import BrokerError, BrokerLink
from mqnode_tools.paths import FIRMWARE, LIB
from mqnode_tools.serial_port import AUTO
from mqnode_tools.settings import add_login_arguments, broker_address, login_from, port_for

HELP = "Compile the node with mpy-cross and copy what changed to a board (code, board file, config)."
EXAMPLES = """What lands on the board: /lib/mqtt/*.mpy and /lib/mqnode/**.mpy (compiled by the installed
mpy-cross, whose .mpy version must be the board's), /boot.py and /main.py as source,
/boards/<board>.json, and /config.json and /secrets.json, each only when given (without
--secrets the board keeps the secrets.json it has). Files already there with the
same sha256 are skipped; files under /lib/mqtt and /lib/mqnode that the build does not have
(a stale .py would shadow its .mpy) are removed. Then a soft reset starts the node; with
--broker, deploy waits for the node's `online` on <prefix>/<node_id>/status.

A board that already has a node (a /main.py) is put in safe mode first (/safemode, then a hard
reset: the node's watchdog would otherwise reset the board in the middle of the copy); the flag
is removed once the files are there. If deploy fails after that, the board stays in safe mode
and the next deploy takes it out.

exit status: 0 deployed (and online, with --broker), 1 the board refused or did not answer, or
the node did not come online, 2 bad input (unknown board, a config the node would refuse).

examples:
  mqnode deploy --port /dev/ttyUSB0 --board esp32-devkitc --config node1/config.json --secrets node1/secrets.json
  mqnode deploy --port /dev/ttyACM0                      # code only; board and config as on the board
  mqnode deploy --port /dev/ttyUSB0 --broker 192.168.1.5 --wait-online 60
"""

MANAGED_DIRS = ("/lib/mqtt", "/lib/mqnode")  # deploy owns these folders on the board
# The broker's half of the codec (test code) and CPython's stand-ins: never loaded by a node.
SKIP = {"mqtt/broker_codec.py", "mqtt/cpython.py"}
SIM_ONLY = {"mqnode/hardware_sim.py", "mqnode/sim_parts.py"}  # the simulated hardware layer
FIRMWARE_FILES = ("boot.py", "main.py")  # stay source: the board runs them by file name
WAIT_ONLINE_S = 30.0
WAIT_POLL_S = 0.2
OUTPUT_TAIL_LINES = 12


@dataclass
class Item:
    path: str  # on the board
    data: bytes


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", default=AUTO, help="the board's serial port, e.g. /dev/ttyUSB0 (default: auto, the one "
                   "USB serial port there is)")
    p.add_argument("--board", help="a board in boards/ (default: the config's \"board\")")
    p.add_argument("--config", type=Path, metavar="FILE", help="config.json to write to the board")
    p.add_argument("--secrets", type=Path, metavar="FILE", help="secrets.json to write to the board")
    p.add_argument("--broker", metavar="HOST[:PORT]", type=broker_address,
                   help="wait on this broker for the node's online after the reset")
    add_login_arguments(p)
    p.add_argument("--wait-online", type=float, default=WAIT_ONLINE_S, metavar="S",
                   help="how long to wait for online (default %(default)s s)")
    p.add_argument("--build-dir", type=Path, metavar="DIR", help="keep the compiled .mpy files here (default: a temp dir)")
    p.add_argument("--no-reset", action="store_true", help="do not soft-reset the board afterwards")
    p.add_argument("--dry-run", action="store_true", help="show what would be copied and removed; change nothing")


def fail(message: str, status: int = 1) -> int:
    Console(stderr=True, soft_wrap=True).print("[red]mqnode deploy:[/] " + escape(message), highlight=False)
    return status


def run(args: argparse.Namespace) -> int:
    console = Console(soft_wrap=True)
    if args.secrets and not args.config:
        return fail("--secrets needs --config (the two are written together)", 2)
    for flag, path in (("--config", args.config), ("--secrets", args.secrets)):
        if path and not path.is_file():
            return fail("%s %s: no such file" % (flag, path), 2)
    given: Optional[Dict[str, Any]] = None
    if args.config:
        try:
            given = node_config.check_files(args.config, args.secrets)
        except node_config.config_error() as e:
            return fail("the node would refuse this configuration: %s" % e, 2)
    try:
        ours = mpy.emitted()
    except mpy.MpyError as e:
        return fail(str(e))
    try:
        link = BoardLink(args.port)
    except BoardError as e:
        return fail(str(e))
    with link:
        try:
            return deploy(args, console, link, ours, given)
        except BoardError as e:
            return fail(str(e))
        except mpy.MpyError as e:
            return fail(str(e))


def deploy(args: argparse.Namespace, console: Console, link: BoardLink, ours: mpy.MpyVersion,
           given: Optional[Dict[str, Any]]) -> int:
    info = link.info()
    console.print("board on %s: MicroPython %s on %s (%s), .mpy %s; mpy-cross emits .mpy %s" % (
        link.port, info.version, info.machine, info.platform,
        mpy.MpyVersion.from_sys(info.mpy) if info.mpy is not None else "none", ours), markup=False, highlight=False)
    reason = mpy.incompatibility(info.mpy, ours)
    if reason:
        return fail("refusing to deploy: %s" % reason)
    cfg = given if given is not None else board_config(link, console)
    name = args.board or (cfg["board"] if cfg else None)
    if name is None:
        return fail("which board is it? give --board (the board has no config.json, and no --config was given)", 2)
    if cfg and cfg["board"] != name:
        return fail("the config says board %r but --board is %r: the node looks for /boards/%s.json" % (
            cfg["board"], name, cfg["board"]), 2)
    try:
        board = load_board(name)
    except BoardFileError as e:
        return fail(str(e), 2)
    if args.broker and cfg is None:
        return fail("--broker needs the node's config (its node id and prefix): give --config", 2)

    def say(line: str) -> None:
        console.print(line, markup=False, highlight=False)

    items = build(board, args.build_dir, console)
    if args.config:
        items.append(Item("/config.json", args.config.read_bytes()))
    if args.secrets:  # without it the board keeps the secrets.json it has
        items.append(Item("/secrets.json", args.secrets.read_bytes()))
    # Since the interrupt: a few round trips and a compile (a fraction of a second), well inside
    # the node's 8 s watchdog. A dry run adds one more (the hashes) and changes nothing, so only
    # a real deploy holds the node.
    held = safe_mode.Hold(remove_flag=False) if args.dry_run else safe_mode.hold(link, say)
    try:  # from the hold on, an interrupt says where the board is left
        try:
            on_board = link.hashes(MANAGED_DIRS, [i.path for i in items])
        except BoardError as e:
            say("cannot hash on the board (%s): copying everything" % e)
            on_board = {}
        wanted = {i.path for i in items}
        changed = [i for i in items if on_board.get(i.path) != sha256(i.data)]
        stale = sorted(p for p in on_board if p not in wanted and on_board[p] is not None)
        if args.dry_run:
            for i in changed:
                console.print("would copy %s (%d bytes)" % (i.path, len(i.data)), markup=False, highlight=False)
            for p in stale:
                console.print("would remove %s" % p, markup=False, highlight=False)
            console.print("dry run: %d to copy, %d unchanged, %d to remove" % (
                len(changed), len(items) - len(changed), len(stale)), highlight=False)
            return 0
        copy(link, changed, console)
        link.remove(stale)
        say("copied %d files (%d bytes), %d unchanged, %d stale removed" % (
            len(changed), sum(len(i.data) for i in changed), len(items) - len(changed), len(stale)))
        safe_mode.release(link, held, say)
    except BoardError as e:
        raise BoardError(str(e) + safe_mode.stuck_note(held))
    except KeyboardInterrupt:  # the board may be in the middle of a write: say where it is left
        if held.remove_flag:
            print("mqnode deploy: interrupted" + safe_mode.stuck_note(held), file=sys.stderr)
        raise
    if args.no_reset:
        return 0
    return reset_and_wait(args, console, link, board, cfg)


def board_config(link: BoardLink, console: Console) -> Optional[Dict[str, Any]]:
    """The node settings in the board's /config.json, or None (missing, or refused by the rules)."""
    text = link.read("/config.json")
    if text is None:
        return None
    try:
        return node_config.check(json.loads(text), {})
    except (ValueError, node_config.config_error()) as e:
        console.print("[yellow]the board's /config.json would stop the node:[/] %s" % escape(str(e)), highlight=False)
        return None


def build(board: Board, build_dir: Optional[Path], console: Console) -> List[Item]:
    """Every file the board gets, compiled where it should be, in the order they are copied."""
    sources = []
    for package in ("mqtt", "mqnode"):
        for source in sorted((LIB / package).rglob("*.py")):
            rel = source.relative_to(LIB).as_posix()
            if rel in SKIP or (board.chip != "sim" and rel in SIM_ONLY):
                continue
            sources.append((source, rel))
    items: List[Item] = []
    with tempfile.TemporaryDirectory(prefix="mqnode-build-") as tmp:
        out = build_dir or Path(tmp)
        with progress(console) as bar:
            task = bar.add_task("compiling", total=len(sources))
            for source, rel in sources:
                target = out / "lib" / (rel[:-3] + ".mpy")
                mpy.compile_file(source, target, rel)
                items.append(Item("/lib/" + rel[:-3] + ".mpy", target.read_bytes()))
                bar.advance(task)
    for name in FIRMWARE_FILES:
        items.append(Item("/" + name, (FIRMWARE / name).read_bytes()))
    items.append(Item("/boards/%s.json" % board.name, board.path.read_bytes()))
    return items


def copy(link: BoardLink, items: List[Item], console: Console) -> None:
    folders = sorted({p for i in items for p in parents(i.path)}, key=lambda p: (p.count("/"), p))
    link.makedirs(folders)
    with progress(console, bytes_=True) as bar:
        task = bar.add_task("copying", total=sum(len(i.data) for i in items) or 1)
        for i in items:
            done = bar.tasks[0].completed
            bar.update(task, description="copying %s" % i.path)
            link.write(i.path, i.data, lambda n, total, base=done: bar.update(task, completed=base + n))
            bar.update(task, completed=done + len(i.data))


def reset_and_wait(args: argparse.Namespace, console: Console, link: BoardLink, board: Board,
                   cfg: Optional[Dict[str, Any]]) -> int:
    watch = None
    if args.broker:
        node = cfg["node_id"] if cfg and cfg["node_id"] else node_id_from_board(link, board)
        topic = "%s/%s/status" % (cfg["prefix"] if cfg else "mqnode", node)
        login = login_from(args)
        host, port = port_for(args.broker, login.tls)
        try:
            watch = BrokerLink(host, port, [topic], login=login)
        except BrokerError as e:
            link.soft_reset()  # the files are on the board: start the node all the same
            console.print("soft reset: the node is starting", highlight=False)
            return fail("%s: the node's online cannot be watched" % e)
    try:
        since = watch.mark() if watch else 0
        started = time.monotonic()
        link.soft_reset()
        console.print("soft reset: the node is starting", highlight=False)
        if watch is None:
            return 0
        output = bytearray()
        deadline = started + args.wait_online
        seen = None
        while seen is None and time.monotonic() < deadline:
            seen = watch.wait_for(lambda m: m.text == "online" and not m.retain, since, WAIT_POLL_S)
            output += link.drain()
        if seen is None:
            tail = "\n".join(output.decode("utf-8", "replace").splitlines()[-OUTPUT_TAIL_LINES:])
            return fail("no online from %s on %s within %.0f s; the board's last output:\n%s" % (
                topic, watch.address, args.wait_online, tail or "(nothing)"))
        console.print("[green]online:[/] %s (%.2f s after the soft reset)" % (escape(seen.topic), seen.at - started), highlight=False)
        return 0
    finally:
        if watch is not None:
            watch.close()


def node_id_from_board(link: BoardLink, board: Board) -> str:
    """The id a node without "node_id" takes: mqnode-<machine.unique_id() in hex>. The simulated
    board derives its id differently, so there any node's status will do."""
    if board.chip == "sim":
        return "+"
    return "mqnode-" + link.eval_output("import machine, binascii\nprint(repr(binascii.hexlify(machine.unique_id()).decode()))")


def parents(path: str) -> List[str]:
    parts = path.split("/")[1:-1]
    return ["/" + "/".join(parts[: n + 1]) for n in range(len(parts))]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def progress(console: Console, bytes_: bool = False) -> Progress:
    columns = [TextColumn("{task.description}"), BarColumn(), DownloadColumn() if bytes_ else MofNCompleteColumn()]
    return Progress(*columns, console=console, transient=True, disable=not console.is_terminal)
