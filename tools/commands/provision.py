"""mqnode provision: a node's config.json and secrets.json, from flags or prompts, checked by the
node's own rules, written to a board over USB or to a folder."""
from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

from mqnode_tools import node_config, safe_mode
from mqnode_tools.board_link import BoardError, BoardLink
from mqnode_tools.boards import BoardError as BoardFileError, board_names, load_board

HELP = "Write a node's config.json and secrets.json (to a board, or a folder), checked by the node's rules."
EXAMPLES = """Values the flags do not give are asked for when stdin is a terminal (never with --no-input).
Passwords are never flags (they would stay in the shell history and show in ps): they come from
MQNODE_BROKER_PASSWORD / MQNODE_WIFI_PASSWORD, or a prompt that does not echo, and are never
printed. Nothing is written unless the node would accept every value (lib/mqnode/config.py).
On a board, the node is soft-reset afterwards so it starts with the new files (--no-reset: not).
Before the first question on a board that has a node, the node is put in safe mode (a hard reset
with /safemode, removed afterwards): an answer may take longer than the node's watchdog, which
would reset the board under provision.

exit status: 0 written, 1 the board did not answer, 2 a value the node would refuse (or missing).

examples:
  mqnode provision --port /dev/ttyUSB0 --node-id kitchen --board esp32-devkitc --broker 192.168.1.5 --wifi-ssid home
  MQNODE_BROKER_PASSWORD=... mqnode provision --out node1/ --node-id node1 --board pico-w --broker mqtt.lan:8883 --tls --user node1
  mqnode provision --out sim1/ --node-id sim-1 --board sim --broker 127.0.0.1 --telemetry 5 --no-input
"""
BROKER_PASSWORD_ENV = "MQNODE_BROKER_PASSWORD"
WIFI_PASSWORD_ENV = "MQNODE_WIFI_PASSWORD"
LIST_BOARDS = """import os
try:
    print(repr([n[:-5] for n in os.listdir('/boards') if n.endswith('.json')]))
except OSError:
    print('[]')
"""


class Refused(Exception):
    """A value is missing or would be refused; the message says which."""


def _number(text: str) -> Union[int, float]:
    """A number as config.json would hold it: 5 rather than 5.0, and 0.5 too."""
    value = float(text)
    return int(value) if value.is_integer() else value


def add_arguments(p: argparse.ArgumentParser) -> None:
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", help="write to the board on this serial port (auto: the one USB serial port there is)")
    where.add_argument("--out", type=Path, metavar="DIR", help="write the two files into this folder")
    p.add_argument("--node-id", help="topic level and MQTT client id (default on the node: mqnode-<chip id>)")
    p.add_argument("--board", help="a board in boards/ (with --port, default: the one deployed on the board)")
    p.add_argument("--broker", metavar="HOST[:PORT]", help="the broker the node connects to")
    p.add_argument("--user", help="broker user name; its password: $%s or a prompt" % BROKER_PASSWORD_ENV)
    p.add_argument("--tls", action="store_true", help="connect with TLS (port 8883 unless given)")
    p.add_argument("--ca", metavar="BOARD_FILE", help="CA certificate (DER) on the board, to verify the broker")
    p.add_argument("--wifi-ssid", metavar="SSID", help="WiFi network; its password: $%s or a prompt" % WIFI_PASSWORD_ENV)
    p.add_argument("--telemetry", type=_number, metavar="S", help="seconds between readings (0.5 is fine)")
    p.add_argument("--keepalive", type=int, metavar="S", help="MQTT keepalive in seconds")
    p.add_argument("--prefix", default=os.environ.get("MQNODE_PREFIX"), help="first topic level (env MQNODE_PREFIX)")
    p.add_argument("--no-discovery", action="store_true", help="no Home Assistant discovery")
    p.add_argument("--battery", action="store_true", help="battery mode: wake, publish, deep sleep")
    p.add_argument("--sleep", type=int, metavar="S", help="battery mode: seconds asleep between wakes")
    p.add_argument("--store", metavar="BOARD_FILE", help="file for unacknowledged messages, e.g. /mqtt.dat")
    p.add_argument("--no-input", action="store_true",
                   help="never prompt: fail on a missing required value (passwords not given stay out)")
    p.add_argument("--no-reset", action="store_true", help="with --port: do not soft-reset the board afterwards")


def fail(message: str, status: int) -> int:
    print("mqnode provision: " + message, file=sys.stderr)
    return status


def run(args: argparse.Namespace) -> int:
    ask = Asker(interactive=sys.stdin.isatty() and not args.no_input,
                why="--no-input" if args.no_input else "stdin is not a terminal")
    if args.out is not None:
        try:
            config, secrets = build(args, ask, deployed=[])
        except Refused as e:
            return fail(str(e), 2)
        write_folder(args.out, config, secrets)
        report(config, secrets, "%s/config.json and %s/secrets.json" % (args.out, args.out))
        return 0
    try:
        link = BoardLink(args.port)
    except BoardError as e:
        return fail(str(e), 1)
    with link:
        held = safe_mode.Hold(remove_flag=False)
        try:
            deployed = link.eval_output(LIST_BOARDS)

            def hold() -> None:  # before the first question: the node's watchdog does not wait for answers
                nonlocal held
                held = safe_mode.hold(link, print)

            ask.before_asking = hold
            try:
                config, secrets = build(args, ask, deployed)
            except Refused as e:
                safe_mode.release(link, held, print)
                return fail(str(e), 2)
            if config["board"] not in deployed:
                print("note: the board has no /boards/%s.json yet: `mqnode deploy` puts it there" % config["board"])
            link.write("/config.json", node_config.dump(config).encode())
            link.write("/secrets.json", node_config.dump(secrets).encode())
            report(config, secrets, "%s:/config.json and :/secrets.json" % link.port)
            safe_mode.release(link, held, print)
            held = safe_mode.Hold(remove_flag=False)  # released: nothing left to say if Ctrl-C comes now
            if not args.no_reset:
                link.soft_reset()
                print("soft reset: the node starts with its new configuration")
        except BoardError as e:
            return fail(str(e) + safe_mode.stuck_note(held), 1)
        except KeyboardInterrupt:  # at a question, say, after the node was held
            if held.remove_flag:
                print("mqnode provision: interrupted" + safe_mode.stuck_note(held), file=sys.stderr)
            raise
    return 0


class Asker:
    """Prompts for what is missing, when there is a person to ask."""

    def __init__(self, interactive: bool, why: str = "") -> None:
        self.interactive = interactive
        self.why = why  # why nothing is asked, for the error
        self.before_asking: Optional[Callable[[], None]] = None  # called once, before the first question

    def _first(self) -> None:
        if self.before_asking is not None:
            before, self.before_asking = self.before_asking, None
            before()

    def value(self, current: Optional[str], question: str, flag: str) -> str:
        if current:
            return current
        if not self.interactive:
            raise Refused("%s is required (%s, so it was not asked for)" % (flag, self.why))
        self._first()
        try:
            answer = input(question + ": ").strip()
        except EOFError:  # Ctrl-D: no answer
            answer = ""
        if not answer:
            raise Refused("%s is required" % flag)
        return answer

    def secret(self, env: str, question: str) -> Optional[str]:
        """From the environment, else a prompt that does not echo; None when neither gives one."""
        if os.environ.get(env):
            return os.environ[env]
        if not self.interactive:
            return None
        self._first()
        try:
            return getpass.getpass(question + ": ") or None
        except EOFError:
            return None


def build(args: argparse.Namespace, ask: Asker, deployed: List[str]) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """config.json and secrets.json as objects, accepted by the node's rules, or Refused."""
    board = args.board or (deployed[0] if len(deployed) == 1 else None)
    board = ask.value(board, "board (%s)" % ", ".join(board_names()), "--board")
    try:
        load_board(board)
    except BoardFileError as e:
        raise Refused(str(e))
    broker = ask.value(args.broker, "broker host[:port]", "--broker")
    try:
        host, port = node_config.split_broker(broker)
    except ValueError as e:
        raise Refused(str(e))
    config: Dict[str, Any] = {}
    put(config, "node_id", args.node_id)
    config["board"] = board
    put(config, "prefix", args.prefix)
    config["broker"] = {"host": host}
    put(config["broker"], "port", port)
    put(config["broker"], "user", args.user)
    put(config["broker"], "tls", True if args.tls else None)
    put(config["broker"], "ca", args.ca)
    if args.wifi_ssid:
        config["wifi"] = {"ssid": args.wifi_ssid}
    put(config, "telemetry_s", args.telemetry)
    put(config, "keepalive_s", args.keepalive)
    put(config, "discovery", False if args.no_discovery else None)
    put(config, "battery", True if args.battery else None)
    put(config, "sleep_s", args.sleep)
    put(config, "store", args.store)
    secrets: Dict[str, Any] = {}
    if args.user:
        put(secrets, "broker_password", ask.secret(BROKER_PASSWORD_ENV, "broker password for %s" % args.user))
    if args.wifi_ssid:
        put(secrets, "wifi_password", ask.secret(WIFI_PASSWORD_ENV, "WiFi password for %s (empty: open network)" % args.wifi_ssid))
    try:
        node_config.check(config, secrets)
    except node_config.config_error() as e:
        raise Refused("the node would refuse this: %s" % e)
    return config, secrets


def put(target: Dict[str, Any], key: str, value: Any) -> None:
    """Only what was given goes into the file: the rest keeps the node's defaults."""
    if value is not None:
        target[key] = value


def write_folder(folder: Path, config: Dict[str, Any], secrets: Dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(node_config.dump(config))
    secrets_path = folder / "secrets.json"
    opener: Callable[[str, int], int] = lambda path, flags: os.open(path, flags, 0o600)
    with open(secrets_path, "w", opener=opener) as f:
        f.write(node_config.dump(secrets))
    os.chmod(secrets_path, 0o600)


def report(config: Dict[str, Any], secrets: Dict[str, Any], where: str) -> None:
    print("wrote %s" % where)
    print(json.dumps(config, indent=2))
    print("secrets.json: %s (values not shown)" % (", ".join(sorted(secrets)) or "empty"))
