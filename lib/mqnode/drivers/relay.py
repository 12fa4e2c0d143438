"""A relay or LED on a digital output, as a switch; active-low boards invert the level."""


class Relay:
    component = "switch"

    def __init__(self, name, pin, hw, active_low=False):
        self.name = name
        self._invert = active_low
        self.state = False
        self._pin = hw.Pin(pin, hw.Pin.OUT, value=1 if active_low else 0)

    def set(self, on):
        self.state = bool(on)
        self._pin.value(self.state != self._invert)


def make(spec, hw):
    return Relay(spec["name"], spec["pin"], hw, spec.get("active_low", False))
