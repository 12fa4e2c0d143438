"""The parts on the simulated board's buses, modelled at the bytes a driver exchanges with them.

hardware_sim hands these out where hardware.py hands out MicroPython's OneWire, dht and I2C
objects, so a driver cannot tell them apart: a 1-Wire bus with one DS18B20 (ROM code, scratchpad
with its CRC, a conversion that takes time), a DHT22/DHT11 that refuses to be polled too often,
and an I2C bus with a BME280's register map (chip id, calibration words, forced-mode measurement,
status bit, raw ADC counts). Each part's weather drifts from the node's seed like the ADC does.
Tests reach a part through hardware_sim.parts to break it: `present`, `corrupt`, `fail`, `raw`.
The bus factories (onewire, dht, i2c) are here too; hardware_sim passes them through.
"""
import struct

from mqtt.compat import ticks_add, ticks_diff, ticks_ms

from .hardware_sim import _rand


def _walk(value, rand, step, low, high):
    """value moved by up to +-step, kept within [low, high]: the seeded random walk of every part."""
    value += ((rand() % 201) - 100) / 100 * step
    return min(max(value, low), high)


# --- 1-Wire -----------------------------------------------------------------------------------


def dallas_crc(data):
    """The DS18B20's CRC-8 (x^8 + x^5 + x^4 + 1, LSB first), written apart from the driver's."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8C if crc & 1 else crc >> 1
    return crc


class DS18B20:
    """One probe. Convert T (0x44) starts a conversion that lands in the scratchpad CONVERT_MS
    later; until then Read Scratchpad (0xBE) gives the previous value, 85 degC after power-on."""

    CONVERT_MS = 740  # a part within the datasheet's 750 ms maximum, slow enough to catch a short wait
    POWER_ON = b"\x50\x05\x4b\x46\x7f\xff\x0c\x10\x1c"  # datasheet: 85 degC, TH, TL, 12-bit, CRC

    def __init__(self, serial, rand):
        rom = bytes([0x28]) + serial
        self.rom = rom + bytes([dallas_crc(rom)])
        self.present = True
        self.corrupt = False  # flip a bit of every scratchpad read after its CRC, like line noise
        self.temperature = _walk(21.0, rand, 1.0, 18.0, 24.0)
        self.scratchpad = bytearray(self.POWER_ON)
        self._rand = rand
        self._done_at = None

    def convert(self):
        self._finish()
        self._done_at = ticks_add(ticks_ms(), self.CONVERT_MS)

    def _finish(self):
        if self._done_at is None or ticks_diff(ticks_ms(), self._done_at) < 0:
            return
        self._done_at = None
        self.temperature = _walk(self.temperature, self._rand, 0.05, 18.0, 24.0)
        raw = int(round(self.temperature * 16)) & 0xFFFF
        self.scratchpad[0] = raw & 0xFF
        self.scratchpad[1] = raw >> 8
        self.scratchpad[8] = dallas_crc(self.scratchpad[:8])

    def read_scratchpad(self):
        self._finish()
        data = bytearray(self.scratchpad)
        if self.corrupt:
            data[0] ^= 0x04
        return data


class OneWireBus:
    """MicroPython's onewire.OneWire as seen from above: reset, writebyte, readbyte, select_rom,
    scan. ROM commands Match (0x55) and Skip (0xCC), then Convert T or Read Scratchpad; what
    several selected parts send is the wired-AND of their bits, and an idle bus reads 0xFF."""

    def __init__(self, pin, rand):
        serial = bytes((pin & 0xFF, 0xA5)) + bytes(rand() & 0xFF for _ in range(4))
        self.devices = [DS18B20(serial, rand)]
        self._state = None
        self._selected = []
        self._match = bytearray()
        self._out = bytearray()

    def _present(self):
        return [d for d in self.devices if d.present]

    def reset(self):
        self._state = "rom"
        self._selected = []
        self._out = bytearray()
        return bool(self._present())

    def writebyte(self, b):
        state = self._state
        self._state = None  # anything not modelled below leaves the parts deaf until a reset
        if state == "rom" and b == 0xCC:
            self._selected = self._present()
            self._state = "function"
        elif state == "rom" and b == 0x55:
            self._match = bytearray()
            self._state = "match"
        elif state == "match":
            self._match.append(b)
            self._state = "match"
            if len(self._match) == 8:
                self._selected = [d for d in self._present() if d.rom == bytes(self._match)]
                self._state = "function"
        elif state == "function" and b == 0x44:
            for d in self._selected:
                d.convert()
        elif state == "function" and b == 0xBE:
            out = bytearray(b"\xff" * 9)
            for d in self._selected:
                data = d.read_scratchpad()
                for i in range(9):
                    out[i] &= data[i]
            self._out = out

    def readbyte(self):
        if self._out:
            b = self._out[0]
            self._out = self._out[1:]
            return b
        return 0xFF  # nobody pulls the line low

    def select_rom(self, rom):
        self.reset()
        self.writebyte(0x55)
        for b in rom:
            self.writebyte(b)

    def scan(self):
        return [bytearray(d.rom) for d in self._present()]


# --- DHT --------------------------------------------------------------------------------------


class DHT:
    """MicroPython's dht.DHT22/DHT11: measure(), then temperature() and humidity(). Asked again
    within MIN_INTERVAL_MS a real part answers late or not at all; this one not at all (ETIMEDOUT),
    so a driver that polls too often fails visibly."""

    MIN_INTERVAL_MS = 2000
    ETIMEDOUT = 110

    def __init__(self, model, rand):
        self.model = model
        self.measures = 0  # measure() calls, for tests
        self.fail = None  # an errno or message: measure() raises OSError(fail)
        self._rand = rand
        self._t = _walk(21.0, rand, 1.0, 18.0, 24.0)
        self._h = _walk(45.0, rand, 5.0, 30.0, 60.0)
        self._latched = (0, 0)  # what the firmware's buffer holds before a first measure
        self._at = None

    def measure(self):
        now = ticks_ms()
        too_soon = self._at is not None and ticks_diff(now, self._at) < self.MIN_INTERVAL_MS
        self._at = now
        self.measures += 1
        if self.fail is not None:
            raise OSError(self.fail)
        if too_soon:
            raise OSError(self.ETIMEDOUT)
        self._t = _walk(self._t, self._rand, 0.1, 18.0, 24.0)
        self._h = _walk(self._h, self._rand, 0.5, 30.0, 60.0)
        if self.model == "dht11":
            self._latched = (int(self._t), int(self._h))  # whole degrees and percent
        else:
            self._latched = (round(self._t * 10) / 10, round(self._h * 10) / 10)

    def temperature(self):
        return self._latched[0]

    def humidity(self):
        return self._latched[1]


# --- I2C --------------------------------------------------------------------------------------

# Temperature and pressure words: the BMP280 datasheet's worked example (section 3.12; the BME280
# shares those formulas). Humidity words: typical of real BME280 parts. Order: dig_T1..T3,
# dig_P1..P9, dig_H1..H6.
CALIBRATION = (27504, 26435, -1000, 36477, -10685, 3024, 2855, 140, -7, 15500, -14600, 6000,
               75, 362, 0, 333, 50, 30)
_OVERSAMPLING = (0, 1, 2, 4, 8, 16, 16, 16)  # osrs_x field -> samples; 0 skips the measurement


class BME280:
    """The register map of datasheet section 5: chip id 0xD0, reset 0xE0, calibration 0x88..0xA1
    and 0xE1..0xE7, ctrl_hum 0xF2 (latched by the next ctrl_meas write), status 0xF3 (bit 3 while
    measuring), ctrl_meas 0xF4, data 0xF7..0xFE (0x80000/0x8000 until measured or when skipped).
    A forced measurement takes the datasheet's typical time, then the part sleeps again. The raw
    counts come from the drifting weather run backwards through the datasheet's floating-point
    compensation (section 8.1), unless `raw` holds (adc_T, adc_P, adc_H) to report instead."""

    def __init__(self, rand, calibration=CALIBRATION):
        self.present = True
        self.raw = None
        self.regs = bytearray(256)
        self._rand = rand
        self.temperature = _walk(21.0, rand, 1.0, 18.0, 24.0)
        self.pressure = _walk(1013.25, rand, 5.0, 990.0, 1030.0)  # hPa
        self.humidity = _walk(45.0, rand, 5.0, 30.0, 60.0)
        self.load_calibration(calibration)
        self._reset()

    def load_calibration(self, cal):
        self.cal = tuple(cal)
        r = self.regs
        struct.pack_into("<HhhHhhhhhhhh", r, 0x88, *cal[:12])
        r[0xA1] = cal[12]
        struct.pack_into("<h", r, 0xE1, cal[13])
        r[0xE3] = cal[14]
        h4, h5 = cal[15], cal[16]
        r[0xE4] = (h4 >> 4) & 0xFF
        r[0xE5] = (h4 & 0x0F) | (h5 & 0x0F) << 4
        r[0xE6] = (h5 >> 4) & 0xFF
        r[0xE7] = cal[17] & 0xFF

    def _reset(self):
        r = self.regs
        r[0xD0] = 0x60
        for reg in (0xF2, 0xF3, 0xF4, 0xF5):
            r[reg] = 0
        r[0xF7:0xFF] = b"\x80\x00\x00\x80\x00\x00\x80\x00"
        self._osrs_h = 0
        self._done_at = None

    def write(self, reg, data):
        # An I2C write is one register and its value, then further (register, value) pairs:
        # the BME280 does not auto-increment on writes (datasheet 6.2.1).
        pairs = [(reg, data[0])] + [(data[i], data[i + 1]) for i in range(1, len(data) - 1, 2)]
        for reg, value in pairs:
            if reg == 0xE0 and value == 0xB6:
                self._reset()
            elif reg in (0xF2, 0xF5):
                self.regs[reg] = value
            elif reg == 0xF4:
                self.regs[reg] = value
                self._osrs_h = self.regs[0xF2] & 7
                if value & 3:
                    self._start()

    def read(self, reg, n):
        self._finish()
        self.regs[0xF3] = 0x08 if self._done_at is not None else 0
        return bytes(self.regs[reg : reg + n])

    def _start(self):
        meas = self.regs[0xF4]
        t, p, h = _OVERSAMPLING[meas >> 5], _OVERSAMPLING[meas >> 2 & 7], _OVERSAMPLING[self._osrs_h]
        ms = 1 + 2 * t + (2 * p + 0.5 if p else 0) + (2 * h + 0.5 if h else 0)  # datasheet 9.1, typical
        self._done_at = ticks_add(ticks_ms(), int(ms + 0.999))

    def _finish(self):
        if self._done_at is None or ticks_diff(ticks_ms(), self._done_at) < 0:
            return
        self._done_at = None
        meas = self.regs[0xF4]
        if meas & 3 != 3:
            self.regs[0xF4] = meas & 0xFC  # forced mode ends in sleep mode
        else:
            self._start()  # normal mode: the next conversion follows (standby time not modelled)
        adc_t, adc_p, adc_h = self.raw or self._weather()
        if not meas >> 5:
            adc_t = 0x80000
        if not meas >> 2 & 7:
            adc_p = 0x80000
        if not self._osrs_h:
            adc_h = 0x8000
        r = self.regs
        r[0xF7], r[0xF8], r[0xF9] = adc_p >> 12, adc_p >> 4 & 0xFF, (adc_p & 0x0F) << 4
        r[0xFA], r[0xFB], r[0xFC] = adc_t >> 12, adc_t >> 4 & 0xFF, (adc_t & 0x0F) << 4
        r[0xFD], r[0xFE] = adc_h >> 8, adc_h & 0xFF

    def _weather(self):
        rand = self._rand
        self.temperature = _walk(self.temperature, rand, 0.05, 18.0, 24.0)
        self.pressure = _walk(self.pressure, rand, 0.05, 990.0, 1030.0)
        self.humidity = _walk(self.humidity, rand, 0.2, 30.0, 60.0)
        adc_t = _solve(lambda a: self._t_fine(a) / 5120, self.temperature, 1 << 20)
        t_fine = int(self._t_fine(adc_t))
        adc_p = _solve(lambda a: -self._pressure(a, t_fine), -self.pressure * 100, 1 << 20)
        adc_h = _solve(lambda a: self._humidity(a, t_fine), self.humidity, 1 << 16)
        return adc_t, adc_p, adc_h

    # Datasheet section 8.1, the double-precision compensation (the driver uses the integer one).
    def _t_fine(self, adc_t):
        t1, t2, t3 = self.cal[:3]
        a = adc_t / 16384 - t1 / 1024
        b = adc_t / 131072 - t1 / 8192
        return a * t2 + b * b * t3

    def _pressure(self, adc_p, t_fine):
        p1, p2, p3, p4, p5, p6, p7, p8, p9 = self.cal[3:12]
        v1 = t_fine / 2 - 64000
        v2 = v1 * v1 * p6 / 32768 + v1 * p5 * 2
        v2 = v2 / 4 + p4 * 65536
        v1 = (p3 * v1 * v1 / 524288 + p2 * v1) / 524288
        v1 = (1 + v1 / 32768) * p1
        p = (1048576 - adc_p - v2 / 4096) * 6250 / v1
        return p + (p9 * p * p / 2147483648 + p * p8 / 32768 + p7) / 16

    def _humidity(self, adc_h, t_fine):
        h1, h2, h3, h4, h5, h6 = self.cal[12:]
        x = t_fine - 76800
        x = (adc_h - (h4 * 64 + h5 / 16384 * x)) * (h2 / 65536 * (1 + h6 / 67108864 * x * (1 + h3 / 67108864 * x)))
        return x * (1 - h1 * x / 524288)


def _solve(f, target, end):
    """The count in [0, end) whose f is nearest target from below, for f rising over that range."""
    lo, hi = 0, end
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if f(mid) <= target:
            lo = mid
        else:
            hi = mid
    return lo


class I2CBus:
    """machine.I2C as seen from above: readfrom_mem, writeto_mem, scan. An address nobody
    acknowledges raises OSError(ENODEV), as a board's controller does."""

    ENODEV = 19

    def __init__(self, rand, sda, scl):
        self.pins = (sda, scl)
        self.devices = {0x76: BME280(rand)}

    def _device(self, addr):
        d = self.devices.get(addr)
        if d is None or not d.present:
            raise OSError(self.ENODEV)
        return d

    def readfrom_mem(self, addr, reg, n):
        return self._device(addr).read(reg, n)

    def writeto_mem(self, addr, reg, buf):
        self._device(addr).write(reg, buf)

    def scan(self):
        return sorted(a for a, d in self.devices.items() if d.present)


# The parts on the buses, by ("onewire", pin), ("dht", pin) or ("i2c", bus id): one model per
# wire, shared by every driver on it, and where a test reaches in to break one.
parts = {}


def _part(key, model, *args):
    if key not in parts:
        parts[key] = model(*args)
    return parts[key]


def onewire(pin):
    """A 1-Wire bus with one DS18B20 on it."""
    return _part(("onewire", pin), OneWireBus, pin, _rand)


def dht(pin, model):
    return _part(("dht", pin), DHT, model, _rand)


def i2c(bus, sda, scl, freq=100000):
    """An I2C bus with a BME280 at 0x76; like hardware.i2c, one pin pair per controller."""
    b = _part(("i2c", bus), I2CBus, _rand, sda, scl)
    if b.pins != (sda, scl):
        raise ValueError("i2c bus %d is already on sda %d, scl %d" % (bus, b.pins[0], b.pins[1]))
    return b
