"""A PIR motion sensor on a digital input, as a debounced binary sensor.

The interrupt handler only sets the hardware layer's flag (a ThreadSafeFlag on a board): it
allocates nothing (a hard IRQ on a board may not), and the asyncio task does the debouncing and
the publishing.
"""
import asyncio

DEBOUNCE_MS = 50


class PIR:
    component = "binary_sensor"
    device_class = "motion"

    def __init__(self, spec, hw):
        self.name = spec["name"]
        self._pin = hw.Pin(spec["pin"], hw.Pin.IN)
        self._invert = spec.get("active_low", False)
        self._debounce = spec.get("debounce_ms", DEBOUNCE_MS) / 1000
        self._flag = hw.irq_flag()
        self._last = self.value()
        self._pin.irq(handler=self._irq, trigger=hw.Pin.IRQ_RISING | hw.Pin.IRQ_FALLING)

    def _irq(self, pin):
        self._flag.set()

    def value(self):
        return bool(self._pin.value()) != self._invert

    async def changed(self):
        """Wait for the next settled change of state; returns the new state."""
        while True:
            await self._flag.wait()
            await asyncio.sleep(self._debounce)  # let a bouncing edge settle
            v = self.value()
            if v != self._last:
                self._last = v
                return v


make = PIR  # made straight from its board-file entry: one function less to keep in RAM
