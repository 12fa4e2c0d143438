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
    """The part's driver, made; its name was checked with the board file (board.py)."""
    name = spec.get("name")
    driver = spec.get("driver")
    try:
        module = __import__("mqnode.drivers." + driver, None, None, ("make",))
    except ImportError:
        raise ValueError("%s: no driver named %r" % (name, driver))
    try:
        return module.make(spec, hw)
    except KeyError as e:  # a pin, a bus or an address the driver needs and the entry lacks
        raise ValueError("%s: no %r, which the %s driver needs" % (name, e.args[0], driver))
