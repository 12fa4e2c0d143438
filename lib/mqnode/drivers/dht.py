"""A DHT22 (AM2302) or DHT11 temperature and humidity sensor on one GPIO.

The bit timing is the firmware's (MicroPython's dht module, reached through hw.dht); what is
left here is the part's pace: a DHT answers a second start signal within ~2 s with stale or no
data, so a read sooner than MIN_INTERVAL_MS after the last one returns the values it gave then.
Spec: {"name", "driver": "dht", "pin", optional "model": "dht22" (default) or "dht11"}.
"""
import asyncio

from mqtt.compat import const, ticks_diff, ticks_ms

MIN_INTERVAL_MS = const(2000)  # DHT22 datasheet: sensing period 2 s (the DHT11's 1 s is covered too)
MODELS = ("dht22", "dht11")
# The parts' ranges (DHT22: -40..80 degC, DHT11: 0..50 degC); outside them a frame that passed
# the 8-bit checksum is still garbage.
_RANGE = {"dht22": (-40, 80), "dht11": (0, 50)}


class DHT:
    component = "sensor"

    def __init__(self, name, model, part):
        self.fields = [(name + "_temperature", "°C", "temperature"), (name + "_humidity", "%", "humidity")]
        self._label = "%s %s" % (model, name)
        self._range = _RANGE[model]
        self._part = part
        self._values = None  # the last good reading
        self._at = None  # ticks_ms of the last measurement started, good or not

    async def read(self):
        if self._at is not None:
            wait = MIN_INTERVAL_MS - ticks_diff(ticks_ms(), self._at)
            if wait > 0:
                if self._values is not None:
                    return list(self._values)
                await asyncio.sleep(wait / 1000)  # the last try failed: nothing to repeat, so wait
        self._at = ticks_ms()
        self._values = None
        try:
            self._part.measure()
        except OSError as e:
            raise OSError("%s: no valid reading (%s)" % (self._label, e))
        t = self._part.temperature()
        h = self._part.humidity()
        if not (self._range[0] <= t <= self._range[1] and 0 <= h <= 100):
            raise OSError("%s: implausible reading %r degC %r %%" % (self._label, t, h))
        self._values = [float(t), float(h)]
        return list(self._values)


def make(spec, hw):
    model = spec.get("model", "dht22")
    if model not in MODELS:
        raise ValueError("%s: model %r is not one of %s" % (spec["name"], model, ", ".join(MODELS)))
    return DHT(spec["name"], model, hw.dht(spec["pin"], model))
