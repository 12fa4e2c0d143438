"""Sensor and switch drivers, one module each, loaded by name from the board description.

Only the drivers a board names are imported, so a board pays RAM for its own parts only.
Every driver module has `make(spec, hw)`, spec being the board file's entry (name, driver, pins).
A driver is one of three shapes, told apart by `component` (Home Assistant's word):
- "sensor": `fields` [(object_id, unit, device_class)], `async read()` -> [value per field];
  raises OSError when the part does not answer (the node reports it and retries);
- "binary_sensor": `name`, `device_class`, `value()`, `async changed()` -> the new debounced value;
- "switch": `name`, `state`, `set(on)`.
"""


def make(spec, hw):
    name = spec.get("name")
    if not _object_id(name):
        raise ValueError("board part %r: its name must be 1..64 letters, digits, _ or -" % (name,))
    driver = spec.get("driver")
    try:
        module = __import__("mqnode.drivers." + driver, None, None, ("make",))
    except ImportError:
        raise ValueError("%s: no driver named %r" % (name, driver))
    try:
        return module.make(spec, hw)
    except KeyError as e:  # a pin, a bus or an address the driver needs and the entry lacks
        raise ValueError("%s: no %r, which the %s driver needs" % (name, e.args[0], driver))


def _object_id(name):
    """A part's name is a topic level of its state topic and Home Assistant's object id in its
    discovery topic, which takes only these characters (with others the entity never appears)."""
    if not isinstance(name, str) or not 0 < len(name) <= 64:
        return False
    for c in name:
        if not ("a" <= c <= "z" or "A" <= c <= "Z" or "0" <= c <= "9" or c in "_-"):
            return False
    return True
