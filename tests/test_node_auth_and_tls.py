"""The node against the session broker's password and TLS listeners, configured as users do:
broker.user in config.json, broker_password in secrets.json, broker.tls with broker.ca (the CA in
DER, as MicroPython's ssl takes it). A wrong password is refused with a line that says so, and the
node keeps trying rather than dying or rebooting at once."""
from __future__ import annotations

import json

import pytest

from broker import Broker
from node_observer import Observer, on
from sim_node import (  # noqa: F401 (fixtures)
    NodeFactory, NodeProcess, ObserverFactory, make_node, observe, wait_stdout,
)

ONLINE_TIMEOUT_S = 15.0  # a TLS handshake in the Unix port takes a moment
RETRIES_TIMEOUT_S = 8.0  # start, a refused attempt, the 1 s backoff, a second refusal


def password_node(make_node: NodeFactory, broker: Broker, password: str) -> NodeProcess:
    """A node for the broker's password listener: broker.user in config.json, the password in
    secrets.json."""
    node = make_node(start=False, port=broker.auth_port)
    config = json.loads(node.config_path.read_text())
    config["broker"]["user"] = broker.user
    node.write_config(config)
    (node.folder / "secrets.json").write_text(json.dumps({"broker_password": password}))
    return node


def tls_node(make_node: NodeFactory, broker: Broker, ca_der: bytes) -> NodeProcess:
    """A node for the broker's TLS listener, trusting the CA in ca.der beside its config."""
    node = make_node(start=False, port=broker.tls_port)
    config = json.loads(node.config_path.read_text())
    config["broker"].update(tls=True, ca="ca.der")
    node.write_config(config)
    (node.folder / "ca.der").write_bytes(ca_der)
    return node


def assert_retrying_quietly(node: NodeProcess, live: Observer) -> str:
    """Two failed attempts (the second 1 s after the first), no traceback, nothing published."""
    assert wait_stdout(node, "retrying in 2 s", RETRIES_TIMEOUT_S), node.stdout()
    out = node.stdout()
    assert node.running and "Traceback" not in out + node.errors()
    assert live.messages() == []
    return out


def test_node_logs_in_with_the_password_from_secrets_json(
    broker: Broker, make_node: NodeFactory, observe: ObserverFactory
) -> None:
    node = password_node(make_node, broker, broker.password)
    live = observe([node.topic("status"), node.topic("sensor/+/state")])
    node.start()

    live.wait(on(node.topic("status"), "online"), ONLINE_TIMEOUT_S)
    live.wait(on(node.topic("sensor/temperature/state")), ONLINE_TIMEOUT_S)


def test_wrong_password_is_refused_with_a_clear_line_and_the_node_keeps_trying(
    broker: Broker, make_node: NodeFactory, observe: ObserverFactory
) -> None:
    node = password_node(make_node, broker, "not-the-password")
    live = observe([node.topic("#")])
    node.start()

    out = assert_retrying_quietly(node, live)
    assert out.count("ConnectionRefused(5, 'not authorized')") + out.count(
        "ConnectionRefused(4, 'bad user name or password')") >= 2, out


@pytest.mark.tls
def test_node_connects_over_tls_checking_the_broker_against_its_ca(
    broker: Broker, make_node: NodeFactory, observe: ObserverFactory
) -> None:
    node = tls_node(make_node, broker, broker.ca_der.read_bytes())
    live = observe([node.topic("status")])
    node.start()

    live.wait(on(node.topic("status"), "online"), ONLINE_TIMEOUT_S)


@pytest.mark.tls
def test_tls_with_the_wrong_ca_never_comes_online(
    broker: Broker, make_node: NodeFactory, observe: ObserverFactory
) -> None:
    node = tls_node(make_node, broker, broker.wrong_ca_der.read_bytes())
    live = observe([node.topic("status")])
    node.start()

    assert_retrying_quietly(node, live)  # the handshake fails, and is tried again
