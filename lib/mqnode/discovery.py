"""Home Assistant MQTT discovery: one retained config per entity, built from the node's drivers.

Topic: <discovery prefix>/<component>/<node>/<object>/config. Every config names the node's
status topic as its availability, so Home Assistant greys the entities out when the will fires.
"""
import json

from . import VERSION


def configs(node):
    """(topic, payload) for every sensor field, binary sensor and switch of the node."""
    device = {
        "identifiers": ["mqnode_" + node.node_id],
        "name": node.node_id,
        "manufacturer": "mqnode",
        "model": node.board_name,
        "sw_version": VERSION,
    }
    out = []
    for s in node.sensors:
        for obj, unit, device_class in s.fields:
            c = _base(node, obj, "sensor", device)
            c["unit_of_measurement"] = unit
            c["device_class"] = device_class
            c["state_class"] = "measurement"
            out.append(_item(node, "sensor", obj, c))
    for b in node.binaries:
        c = _base(node, b.name, "binary_sensor", device)
        c["device_class"] = b.device_class
        c["payload_on"] = "ON"
        c["payload_off"] = "OFF"
        out.append(_item(node, "binary_sensor", b.name, c))
    for w in node.switches:
        c = _base(node, w.name, "switch", device)
        c["command_topic"] = node.topic("switch", w.name, "set")
        c["payload_on"] = "ON"
        c["payload_off"] = "OFF"
        out.append(_item(node, "switch", w.name, c))
    return out


def _base(node, obj, component, device):
    return {
        "name": obj,
        "unique_id": "%s_%s_%s" % (node.node_id, component, obj),
        "state_topic": node.topic(component, obj, "state"),
        "availability_topic": node.status_topic,
        "payload_available": "online",
        "payload_not_available": "offline",
        "device": device,
    }


def _item(node, component, obj, config):
    return ("%s/%s/%s/%s/config" % (node.discovery_prefix, component, node.node_id, obj), json.dumps(config))
