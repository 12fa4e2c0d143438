"""Home Assistant MQTT discovery: one retained config per entity, built from the node's drivers.

Topic: <discovery prefix>/<component>/<node>/<object>/config. Every config names the node's
status topic as its availability, so Home Assistant greys the entities out when the will fires.

The configs are the largest things a node builds (~450 bytes of JSON each), and it builds them
right after connecting, when its heap is fullest. So they come one at a time, and each is one
string formatted from JSON text: no dict per config to serialise. json.dumps still quotes every
value, since names and units come from the board file. Keys whose value is Home Assistant's
default are left out (payload_available "online", payload_not_available "offline", payload_on
"ON", payload_off "OFF": exactly what the node sends), which takes ~100 bytes off each config.
"""
from json import dumps

from . import VERSION


def configs(node):
    """(topic, payload) for every sensor field, binary sensor and switch of the node."""
    shared = (
        '"availability_topic": %s, '
        '"device": {"identifiers": [%s], "name": %s, "manufacturer": "mqnode", "model": %s, "sw_version": %s}'
    ) % (dumps(node.status_topic), dumps("mqnode_" + node.node_id), dumps(node.node_id), dumps(node.board_name),
         dumps(VERSION))
    for s in node.sensors:
        for obj, unit, device_class in s.fields:
            yield _item(node, "sensor", obj, shared, ', "unit_of_measurement": %s, "device_class": %s, '
                        '"state_class": "measurement"' % (dumps(unit), dumps(device_class)))
    for b in node.binaries:
        yield _item(node, "binary_sensor", b.name, shared, ', "device_class": %s' % dumps(b.device_class))
    for w in node.switches:
        yield _item(node, "switch", w.name, shared, ', "command_topic": %s' % dumps(node.topic("switch", w.name, "set")))


def _item(node, component, obj, shared, extra):
    payload = '{"name": %s, "unique_id": %s, "state_topic": %s, %s%s}' % (
        dumps(obj), dumps("%s_%s_%s" % (node.node_id, component, obj)),
        dumps(node.topic(component, obj, "state")), shared, extra,
    )
    return ("%s/%s/%s/%s/config" % (node.discovery_prefix, component, node.node_id, obj), payload)
