"""A DS18B20 temperature probe on a 1-Wire pin.

The protocol is spoken here, over the bus object the hardware layer gives (MicroPython's
onewire.OneWire on a board: reset, writebyte, readbyte, scan), rather than through the board-only
ds18x20 module, so the Unix port runs the same code against the simulated bus.
Spec: {"name", "driver": "ds18b20", "pin", optional "rom": 16 hex digits when the pin has several}.
"""
import asyncio

from mqtt.compat import const

FAMILY = const(0x28)  # the first ROM byte of every DS18B20 (0x10 is the DS18S20, 0x22 the DS1822)
_MATCH_ROM = const(0x55)
_CONVERT_T = const(0x44)
_READ_SCRATCHPAD = const(0xBE)
CONVERT_MS = const(750)  # datasheet: tCONV max at 12-bit resolution, the factory default
_POWER_ON = const(0x0550)  # 85 degC: the scratchpad's reset value, still there if no conversion ran


def crc8(data):
    """Dallas/Maxim CRC-8 (x^8 + x^5 + x^4 + 1, bit-reflected, as the part shifts LSB first).
    Run over a whole scratchpad or ROM including its CRC byte it gives 0."""
    crc = 0
    for byte in data:
        for _ in range(8):
            mix = (crc ^ byte) & 1
            crc >>= 1
            if mix:
                crc ^= 0x8C
            byte >>= 1
    return crc


class DS18B20:
    component = "sensor"

    def __init__(self, name, pin, bus, rom=None):
        self.fields = [(name, "°C", "temperature")]
        self._label = "ds18b20 %s on pin %s" % (name, pin)
        self._bus = bus
        self._fixed = rom is not None
        self._rom = rom
        self._buf = bytearray(9)

    def _find(self):
        """The first DS18B20 on the bus (looked for on first use, so a probe plugged in later is found)."""
        for rom in self._bus.scan():
            if rom[0] == FAMILY and crc8(rom) == 0:
                return bytes(rom)
        raise OSError("%s: no DS18B20 found on the bus" % self._label)

    def _select(self, rom):
        # Match ROM rather than Skip ROM: with a second probe on the pin, Skip ROM + Read Scratchpad
        # would have both answer at once and the wired-AND of their bits fail the CRC.
        if not self._bus.reset():
            raise OSError("%s: no presence pulse (not connected, or no pull-up)" % self._label)
        self._bus.writebyte(_MATCH_ROM)
        for b in rom:
            self._bus.writebyte(b)

    async def read(self):
        if self._rom is None:
            self._rom = self._find()
        try:
            return [await self._convert(self._rom)]
        except OSError:
            if not self._fixed:
                self._rom = None  # a probe swapped for another is found again next time
            raise

    async def _convert(self, rom):
        self._select(rom)
        self._bus.writebyte(_CONVERT_T)
        await asyncio.sleep(CONVERT_MS / 1000)
        self._select(rom)
        self._bus.writebyte(_READ_SCRATCHPAD)
        buf = self._buf
        for i in range(9):
            buf[i] = self._bus.readbyte()
        if crc8(buf) != 0:
            raise OSError("%s: bad scratchpad CRC %s" % (self._label, _hex(buf)))
        if not any(buf):
            # An all-zero scratchpad passes the CRC: it is what a bus held low reads.
            raise OSError("%s: scratchpad all zero (data line shorted?)" % self._label)
        raw = buf[0] | buf[1] << 8
        if raw == _POWER_ON:
            raise OSError("%s: 85 degC power-on value, the conversion did not run (power?)" % self._label)
        if raw & 0x8000:
            raw -= 0x10000
        bits = 9 + (buf[4] >> 5 & 3)  # resolution from the configuration byte
        raw &= ~((1 << (12 - bits)) - 1)  # the datasheet leaves the low bits undefined below 12-bit
        return raw / 16


def _hex(buf):
    return " ".join("%02x" % b for b in buf)


def make(spec, hw):
    rom = spec.get("rom")
    if rom is not None:
        try:
            rom = bytes(int(rom[i : i + 2], 16) for i in range(0, 16, 2)) if len(rom) == 16 else b""
        except ValueError:
            rom = b""
        if not rom or rom[0] != FAMILY or crc8(rom) != 0:
            raise ValueError("%s: rom %r is not a DS18B20 ROM code (16 hex digits, 28...)"
                             % (spec["name"], spec["rom"]))
    return DS18B20(spec["name"], spec["pin"], hw.onewire(spec["pin"]), rom)
