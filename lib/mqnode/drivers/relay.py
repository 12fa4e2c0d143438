"""A relay or LED on a digital output, as a switch; active-low boards invert the level."""


class Relay:
    component = "switch"

    def __init__(self, spec, hw):
        self.name = spec["name"]
        self._invert = spec.get("active_low", False)
        self.state = False
        self._pin = hw.Pin(spec["pin"], hw.Pin.OUT, value=1 if self._invert else 0)

    def set(self, on):
        self.state = bool(on)
        self._pin.value(self.state != self._invert)


make = Relay  # made straight from its board-file entry: one function less to keep in RAM
