"""Home Assistant MQTT discovery: one retained config per entity, built from the node's drivers.

Topic: <discovery prefix>/<component>/<node>/<object>/config. Every config names the node's
status topic as its availability, so Home Assistant greys the entities out when the will fires.

The configs are the largest things a node builds, and it builds them right after connecting,
when its heap is fullest: one contiguous block per config must be free. So they come one at a
time, each is one string formatted from JSON text (no dict per config to serialise), and each is
as short as Home Assistant allows, as ESPHome's and Tasmota's are: its abbreviated keys ("stat_t"
for state_topic, "dev" for device, "ids" for identifiers...), "~" for the node's base topic, and
no key whose value is Home Assistant's default (payload_available "online", payload_not_available
"offline", payload_on "ON", payload_off "OFF": exactly what the node sends), and no spaces: a
config is about 270-390 bytes, with the board's names and the node id. json.dumps still quotes every value, since names
and units come from the board file.
"""
from json import dumps

from mqtt.compat import tidy_heap

from . import VERSION


def configs(node):
    """(topic, payload) for every sensor field, binary sensor and switch of the node."""
    shared = '"~":%s,"avty_t":"~/status","dev":{"ids":[%s],"name":%s,"mf":"mqnode","mdl":%s,"sw":%s}' % (
        dumps(node.base), dumps("mqnode_" + node.node_id), dumps(node.node_id), dumps(node.board_name), dumps(VERSION))
    # A battery node leaves cleanly, so its will never fires and its status stays "online" while it
    # sleeps, or after it died. Its readings expire instead (as ESPHome advises for deep sleep),
    # once a wake has been missed: a wake (awake_s at most), the sleep, a failed wake, the doubled
    # sleep after it, and the next wake. (A battery wake reads no motion: no binary sensor here.)
    cfg = node.cfg
    expire = ',"exp_aft":%d' % (3 * (cfg["sleep_s"] + cfg["awake_s"])) if cfg["battery"] else ""
    for s in node.sensors:
        for obj, unit, device_class in s.fields:
            yield _item(node, "sensor", obj, shared, ',"unit_of_meas":%s,"dev_cla":%s,"stat_cla":"measurement"%s'
                        % (dumps(unit), dumps(device_class), expire))
    if not cfg["battery"]:
        for b in node.binaries:
            yield _item(node, "binary_sensor", b.name, shared, ',"dev_cla":%s' % dumps(b.device_class))
    # QoS 1 for the commands Home Assistant publishes (its default is 0): a QoS 0 command sent
    # while the node is away or asleep is not queued for it (mosquitto's queue_qos0_messages is
    # off by default), so the persistent session would keep nothing.
    for w in node.switches:
        yield _item(node, "switch", w.name, shared, ',"cmd_t":%s,"qos":1' % dumps("~/switch/%s/set" % w.name))


def _item(node, component, obj, shared, extra):
    # Joined, not %-formatted: join measures the pieces first and allocates the payload once,
    # where % grows it piece by piece, each time into a new block while the last still stands
    # (at 84k, test_node_small_heap failed 3 of 3 runs here with %, and passes with join).
    payload = "".join(('{"name":', dumps(obj), ',"uniq_id":', dumps("%s_%s_%s" % (node.node_id, component, obj)),
                       ',"stat_t":', dumps("~/%s/%s/state" % (component, obj)), ",", shared, extra, "}"))
    return ("%s/%s/%s/%s/config" % (node.discovery_prefix, component, node.node_id, obj), payload)


tidy_heap()  # loaded at the announcement, when the heap is fullest: its garbage goes at once
