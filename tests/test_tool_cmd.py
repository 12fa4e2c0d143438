"""`mqnode cmd` against a simulated node (tools/simnodes.SimNode on the sim board) through the
session's mosquitto: ON, OFF and TOGGLE are confirmed by the node; a node that is not there
times out with exit status 1."""
from __future__ import annotations

import uuid
from pathlib import Path
from typing import Iterator, Tuple

import pytest

from broker import Broker
from mqnode_tools.broker_link import BrokerLink
from mqnode_tools.cli import main
from mqnode_tools.simnodes import SimNode, node_config

ONLINE_TIMEOUT_S = 15.0
CMD_TIMEOUT_S = "10"


@pytest.fixture
def sim_node(broker: Broker, tmp_path: Path) -> Iterator[Tuple[SimNode, str]]:
    """A running sim node with a prefix of this test's own, online; yields (node, prefix)."""
    prefix = "cmd-" + uuid.uuid4().hex[:8]
    node = SimNode("sim-1", tmp_path / "sim-1", node_config("sim-1", broker.host, broker.port, prefix, 60))
    link = BrokerLink(broker.host, broker.port, [prefix + "/sim-1/switch/relay/state"])
    node.start()
    try:
        # the node announces its switch states after every connect: then it takes commands
        assert link.wait_for(lambda m: m.topic.endswith("/state"), 0, ONLINE_TIMEOUT_S), \
            (node.folder / "node.log").read_text()
        yield node, prefix
    finally:
        link.close()
        node.stop()


def cmd(broker: Broker, prefix: str, *args: str) -> int:
    return main(["cmd", "--broker", "%s:%d" % (broker.host, broker.port), "--prefix", prefix, *args])


def test_on_off_toggle_are_confirmed(sim_node: Tuple[SimNode, str], broker: Broker,
                                     capsys: pytest.CaptureFixture) -> None:
    _, prefix = sim_node
    assert cmd(broker, prefix, "sim-1", "relay", "ON", "--timeout", CMD_TIMEOUT_S) == 0
    assert "sim-1 relay: ON (confirmed" in capsys.readouterr().out
    assert cmd(broker, prefix, "sim-1", "relay", "off", "--timeout", CMD_TIMEOUT_S) == 0
    assert "sim-1 relay: OFF (confirmed" in capsys.readouterr().out
    assert cmd(broker, prefix, "sim-1", "relay", "TOGGLE", "--timeout", CMD_TIMEOUT_S) == 0
    assert "sim-1 relay: ON (confirmed" in capsys.readouterr().out  # the opposite of OFF
    assert cmd(broker, prefix, "sim-1", "relay", "TOGGLE", "--timeout", CMD_TIMEOUT_S) == 0
    assert "sim-1 relay: OFF (confirmed" in capsys.readouterr().out


def test_a_node_that_is_not_there_times_out(broker: Broker, capsys: pytest.CaptureFixture) -> None:
    prefix = "cmd-" + uuid.uuid4().hex[:8]
    assert cmd(broker, prefix, "ghost", "relay", "ON", "--timeout", "1") == 1
    err = capsys.readouterr().err
    assert "timeout: ghost did not confirm relay ON within 1.0 s" in err, err
    assert "node status: never seen" in err


def test_bad_usage_is_status_2(broker: Broker) -> None:
    assert cmd(broker, "mqnode", "a/b", "relay", "ON") == 2
    with pytest.raises(SystemExit) as e:
        cmd(broker, "mqnode", "sim-1", "relay", "MAYBE")
    assert e.value.code == 2
