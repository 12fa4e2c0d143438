"""Home Assistant discovery: one retained JSON config per entity under
`homeassistant/<component>/<node>/<object>/config`, carrying what Home Assistant needs to create
the entity, and naming the very topics the node publishes on and listens to. The configs go out
again when Home Assistant announces itself (`homeassistant/status` = `online`), and not at all
with `"discovery": false`.
"""
from __future__ import annotations

import json
import time
from typing import Dict, Iterable, Tuple

from fake_broker import FakeBroker, Serve
from mqtt.packet import PUBLISH  # noqa: E402 (fake_broker put lib/ on the path)
from node_observer import Message, Observer, on
from sim_node import (  # noqa: F401 (fixtures)
    NodeFactory, NodeProcess, ObserverFactory, make_node, observe, wait_announced,
)

TIMEOUT_S = 5.0
ENTITIES = {("sensor", "temperature"), ("binary_sensor", "motion"), ("switch", "relay")}
# Home Assistant's MQTT discovery schema: every entity here needs these to be created, grouped
# under one device, and greyed out when the node's will fires.
REQUIRED = {"name", "unique_id", "state_topic", "availability_topic", "device"}
REQUIRED_BY_COMPONENT = {
    "sensor": {"unit_of_measurement", "device_class"},
    "binary_sensor": {"device_class"},
    "switch": {"command_topic"},
}
REFUSED_SERVE_S = 10.0  # the scripted broker serves this long after refusing; the test ends sooner
NOT_REPUBLISHED_WAIT_S = 0.5  # the node republishes in ~10 ms when it does
# Home Assistant's abbreviations (homeassistant/components/mqtt/abbreviations.py) for the keys a
# node may send: a config is read the way Home Assistant reads it, with these expanded and "~"
# replaced by the base topic at either end of every *_topic value.
ABBREVIATIONS = {
    "avty_t": "availability_topic", "cmd_t": "command_topic", "dev": "device", "dev_cla": "device_class",
    "exp_aft": "expire_after", "pl_avail": "payload_available", "pl_not_avail": "payload_not_available", "pl_off": "payload_off",
    "pl_on": "payload_on", "stat_cla": "state_class", "stat_t": "state_topic", "uniq_id": "unique_id",
    "unit_of_meas": "unit_of_measurement",
}
DEVICE_ABBREVIATIONS = {"ids": "identifiers", "mdl": "model", "mf": "manufacturer", "sw": "sw_version"}


def as_home_assistant_reads(payload: bytes) -> Dict[str, object]:
    config = {ABBREVIATIONS.get(k, k): v for k, v in json.loads(payload).items()}
    if "device" in config:
        config["device"] = {DEVICE_ABBREVIATIONS.get(k, k): v for k, v in config["device"].items()}
    base = config.pop("~", None)
    if base is not None:
        for k, v in config.items():
            if k.endswith("_topic") and isinstance(v, str):
                config[k] = base + v[1:] if v.startswith("~") else v[:-1] + base if v.endswith("~") else v
    return config


def config_filter(node: NodeProcess) -> str:
    return "homeassistant/+/%s/+/config" % node.node_id


def configs_by_entity(messages: Iterable[Message]) -> Dict[Tuple[str, str], Message]:
    out = {}
    for m in messages:
        _, component, _, obj, _ = m.topic.split("/")
        out[(component, obj)] = m
    return out


def start_discovered(make_node: NodeFactory, observe: ObserverFactory) -> Tuple[NodeProcess, Observer]:
    node = make_node(start=False)
    live: Observer = observe([node.topic("#"), config_filter(node)])
    node.start()
    wait_announced(live, node)
    live.wait_count(on(config_filter(node)), len(ENTITIES), TIMEOUT_S)
    return node, live


def test_configs_have_what_home_assistant_requires(make_node: NodeFactory, observe: ObserverFactory) -> None:
    node, live = start_discovered(make_node, observe)
    found = configs_by_entity(live.messages(on(config_filter(node))))
    assert set(found) == ENTITIES

    configs = {entity: as_home_assistant_reads(m.payload) for entity, m in found.items()}
    for (component, obj), c in configs.items():
        missing = (REQUIRED | REQUIRED_BY_COMPONENT[component]) - set(c)
        assert not missing, "%s/%s lacks %s" % (component, obj, sorted(missing))
        assert c["device"]["identifiers"], c["device"]
        assert c["availability_topic"] == node.topic("status")
        assert c.get("payload_available", "online") == "online"
        assert c.get("payload_not_available", "offline") == "offline"
    sensor = configs[("sensor", "temperature")]
    assert (sensor["unit_of_measurement"], sensor["device_class"]) == ("°C", "temperature")
    assert configs[("binary_sensor", "motion")]["device_class"] == "motion"
    assert len({c["unique_id"] for c in configs.values()}) == len(configs)
    assert len({json.dumps(c["device"]["identifiers"]) for c in configs.values()}) == 1  # one device

    late = observe([config_filter(node)])  # retained, for a Home Assistant that starts later
    assert all(m.retain for m in late.wait_count(on(config_filter(node)), len(ENTITIES), TIMEOUT_S))


def test_config_topics_are_the_ones_the_node_uses(make_node: NodeFactory, observe: ObserverFactory) -> None:
    node, live = start_discovered(make_node, observe)
    configs = {e: as_home_assistant_reads(m.payload) for e, m in configs_by_entity(live.messages(on(config_filter(node)))).items()}

    reading = live.wait(on(configs[("sensor", "temperature")]["state_topic"]), TIMEOUT_S)
    float(reading.text)
    assert live.wait(on(configs[("binary_sensor", "motion")]["state_topic"]), TIMEOUT_S).text == "OFF"
    assert live.wait(on(configs[("sensor", "temperature")]["availability_topic"]), TIMEOUT_S).text == "online"

    switch = configs[("switch", "relay")]
    assert (switch.get("payload_on", "ON"), switch.get("payload_off", "OFF")) == ("ON", "OFF")
    # Home Assistant publishes commands at this QoS (default 0, which a broker does not queue for
    # a node that is away): 1, so commands wait for it.
    assert switch.get("qos", 0) == 1
    mark = live.mark()
    live.publish(switch["command_topic"], "ON")
    assert live.wait(on(switch["state_topic"]), TIMEOUT_S, mark).text == "ON"


def test_configs_are_published_again_when_home_assistant_comes_online(
    make_node: NodeFactory, observe: ObserverFactory
) -> None:
    node, live = start_discovered(make_node, observe)

    mark = live.mark()
    live.publish("homeassistant/status", "offline")  # Home Assistant's will: nothing to do
    time.sleep(NOT_REPUBLISHED_WAIT_S)
    assert live.messages(on(config_filter(node)), mark) == []

    live.publish("homeassistant/status", "online")  # not retained, as Home Assistant sends it
    again = live.wait_count(on(config_filter(node)), len(ENTITIES), TIMEOUT_S, mark)
    assert set(configs_by_entity(again)) == ENTITIES
    assert node.running


def test_discovery_false_publishes_no_configs(make_node: NodeFactory, observe: ObserverFactory) -> None:
    node = make_node(start=False, discovery=False)
    live = observe([node.topic("#"), config_filter(node)])
    node.start()
    wait_announced(live, node)
    live.wait(on(node.topic("sensor/temperature/state")), TIMEOUT_S)

    live.publish("homeassistant/status", "online")
    time.sleep(NOT_REPUBLISHED_WAIT_S)
    assert live.messages(on(config_filter(node))) == []
    late = observe([config_filter(node)])  # nor any retained
    time.sleep(NOT_REPUBLISHED_WAIT_S)
    assert late.messages() == []


def test_a_refused_subscription_is_logged_after_discovery_and_states_went(make_node: NodeFactory) -> None:
    """Brokers with access rules (EMQX, HiveMQ) answer a subscription the node may not make with
    0x80. A scripted broker refuses homeassistant/status: the node says so, having published
    discovery and its switch's and motion sensor's states first (a refusal used to end the
    announcement before any of them)."""
    script = [[Serve(seconds=REFUSED_SERVE_S, refuse=(b"homeassistant/status",))]]
    with FakeBroker(script) as fake:
        node = make_node(start=False, port=fake.port)
        node.start()
        refused = "announce failed: SubscribeRefused('homeassistant/status', 128)"
        assert fake.wait_for(lambda f: refused in node.stdout(), TIMEOUT_S), node.stdout()
        topics = [p.publish()[0] for p in fake.connections[0].packets if p.kind == PUBLISH]
        fake.check()
    assert sum(t.startswith(b"homeassistant/") and t.endswith(b"/config") for t in topics) == len(ENTITIES), topics
    assert node.topic("switch/relay/state").encode() in topics
    assert node.topic("binary_sensor/motion/state").encode() in topics
