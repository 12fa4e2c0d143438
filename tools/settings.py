"""The broker settings of the commands that talk to nodes: where the broker is (monitor, sim, cmd;
deploy's --broker parses the same way), and how to log in to one that wants it (monitor, cmd,
deploy): Home Assistant's Mosquitto add-on, for one, refuses anonymous clients. Flags first, then
the environment; the password only from the environment, so it is in no shell history."""
from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from typing import Optional, Tuple

DEFAULT_BROKER = "127.0.0.1"
PASSWORD_ENV = "MQNODE_BROKER_PASSWORD"
USER_ENV = "MQNODE_BROKER_USER"


@dataclass(frozen=True)
class Login:
    user: Optional[str] = None
    password: Optional[str] = None
    tls: bool = False
    ca: Optional[str] = None  # PEM file; None: the system's CAs


def add_broker_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--broker", default=os.environ.get("MQNODE_BROKER", DEFAULT_BROKER), metavar="HOST[:PORT]",
        type=broker_address,
        help="MQTT broker (env MQNODE_BROKER; default %(default)s, port 1883)",
    )
    parser.add_argument(
        "--prefix", default=os.environ.get("MQNODE_PREFIX", "mqnode"),
        help="topic prefix the nodes use (env MQNODE_PREFIX; default %(default)s)",
    )


def add_login_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--user", default=os.environ.get(USER_ENV),
                        help="broker user name (env %s); the password: $%s" % (USER_ENV, PASSWORD_ENV))
    parser.add_argument("--tls", action="store_true", help="TLS to the broker (port 8883 unless --broker gives one)")
    parser.add_argument("--ca", metavar="FILE",
                        help="CA certificate (PEM) to check the broker with (implies --tls; default: the system's)")


def broker_address(text: str) -> Tuple[str, int]:
    """'host[:port]' -> (host, port), port 0 when not given (see port_for), as an argparse type: a
    bad port is a usage error."""
    host, _, port = text.rpartition(":") if ":" in text else (text, "", "0")
    if not port.isdigit() or not 0 <= int(port) < 65536 or ":" in text and not int(port):
        raise argparse.ArgumentTypeError("broker %r: the port must be 1..65535" % text)
    return host or "127.0.0.1", int(port)


def port_for(address: Tuple[str, int], tls: bool = False) -> Tuple[str, int]:
    """The address with MQTT's default port filled in: 8883 over TLS, else 1883."""
    host, port = address
    return host, port or (8883 if tls else 1883)


def login_from(args: argparse.Namespace) -> Login:
    """--ca means TLS: a CA to check the broker with asks for a checked link, not plain MQTT."""
    return Login(args.user, os.environ.get(PASSWORD_ENV), args.tls or args.ca is not None, args.ca)

