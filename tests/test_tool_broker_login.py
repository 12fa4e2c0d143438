"""The tools that talk to a broker log in to one that wants it, as Home Assistant's Mosquitto
add-on does (no anonymous clients): --user, the password from $MQNODE_BROKER_PASSWORD, --tls
with --ca. A refused login is one clear line and exit 1, never an empty table that looks like a
broker without nodes. Against the session mosquitto's password and TLS listeners."""
from __future__ import annotations

import os
import subprocess
import sys
import uuid
from typing import Dict, List

import paho.mqtt.client as paho
import pytest

from broker import Broker
from mqnode_tools.cli import main

MONITOR_TIMEOUT_S = 30.0


def monitor(broker_address: str, prefix: str, *extra: str, env: Dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mqnode_tools", "monitor", "--json", "--duration", "1", "--broker", broker_address,
         "--prefix", prefix, *extra],
        capture_output=True, text=True, timeout=MONITOR_TIMEOUT_S, env=env)


def without_login() -> Dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("MQNODE_BROKER_PASSWORD", "MQNODE_BROKER_USER")}


def publish_retained(broker: Broker, topic: str, payload: bytes) -> None:
    """Through the password listener, as a node of that broker would."""
    c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="", protocol=paho.MQTTv311)
    c.username_pw_set(broker.user, broker.password)
    c.connect(broker.host, broker.auth_port)
    c.loop_start()
    try:
        c.publish(topic, payload, qos=1, retain=True).wait_for_publish(5)
    finally:
        c.disconnect()
        c.loop_stop()


def test_monitor_says_a_refused_login_is_one_and_exits_1(broker: Broker) -> None:
    result = monitor("%s:%d" % (broker.host, broker.auth_port), "login-" + uuid.uuid4().hex[:8], env=without_login())
    assert result.returncode == 1, result
    assert "not authorised (give --user, and the password in $MQNODE_BROKER_PASSWORD)" in result.stderr
    assert result.stdout == ""


def test_monitor_logs_in_with_user_and_password_from_the_environment(broker: Broker) -> None:
    prefix = "login-" + uuid.uuid4().hex[:8]
    publish_retained(broker, prefix + "/n1/status", b"online")
    env = dict(without_login(), MQNODE_BROKER_PASSWORD=broker.password)
    result = monitor("%s:%d" % (broker.host, broker.auth_port), prefix, "--user", broker.user, env=env)
    assert result.returncode == 0, result.stderr
    assert '"node": "n1", "what": "status", "value": "online"' in result.stdout
    publish_retained(broker, prefix + "/n1/status", b"")  # the broker forgets it


def test_monitor_over_tls_checks_the_broker_with_the_given_ca(broker: Broker) -> None:
    prefix = "login-" + uuid.uuid4().hex[:8]
    address = "%s:%d" % (broker.host, broker.tls_port)
    good = monitor(address, prefix, "--tls", "--ca", str(broker.ca_pem), env=without_login())
    assert good.returncode == 0, good.stderr
    wrong = monitor(address, prefix, "--ca", str(broker.wrong_ca_pem), env=without_login())  # --ca means TLS
    assert wrong.returncode == 1
    assert "CERTIFICATE_VERIFY_FAILED" in wrong.stderr, wrong.stderr


def test_cmd_logs_in_and_reaches_the_point_of_waiting_for_the_node(
    broker: Broker, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    args: List[str] = ["cmd", "--broker", "%s:%d" % (broker.host, broker.auth_port), "--prefix",
                       "login-" + uuid.uuid4().hex[:8], "ghost", "relay", "ON", "--timeout", "1"]
    monkeypatch.delenv("MQNODE_BROKER_PASSWORD", raising=False)
    assert main(args) == 1
    assert "not authorised" in capsys.readouterr().err
    monkeypatch.setenv("MQNODE_BROKER_PASSWORD", broker.password)
    assert main([*args, "--user", broker.user]) == 1  # logged in: now it is the node that is missing
    assert "ghost did not confirm relay ON" in capsys.readouterr().err
