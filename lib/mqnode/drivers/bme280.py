"""A Bosch BME280 (temperature, humidity, pressure) on I2C, one forced-mode measurement per read.

Register map, calibration layout and compensation follow the BME280 datasheet (BST-BME280-DS002):
section 4.2.2 (trimming parameters), 4.2.3 (the integer compensation code: 32-bit temperature and
humidity, 64-bit pressure; Python's ints hold the 64-bit steps on a board as on the host) and 5.4
(registers). Spec: {"name", "driver": "bme280", "i2c": {"bus", "sda", "scl", optional "freq"},
optional "address": "0x76" (SDO to GND, the default) or "0x77"}.
"""
import asyncio
import struct

from mqtt.compat import const

CHIP_ID = const(0x60)  # a BMP280 answers 0x56..0x58 at the same register, and has no humidity
_REG_CALIB_TP = const(0x88)  # 0x88..0xA1: dig_T1..dig_P9, a reserved byte, dig_H1
_REG_CALIB_H = const(0xE1)  # 0xE1..0xE7: dig_H2..dig_H6, H4 and H5 packed as 12-bit values
_REG_ID = const(0xD0)
_REG_CTRL_HUM = const(0xF2)
_REG_STATUS = const(0xF3)
_REG_CTRL_MEAS = const(0xF4)
_REG_CONFIG = const(0xF5)
_REG_DATA = const(0xF7)  # press[3], temp[3], hum[2], burst-read so the three belong together
_OSRS_X1 = const(1)
_MODE_FORCED = const(1)
_MEASURING = const(0x08)  # status bit 3: a conversion is running
# Datasheet 9.1: t_measure,max = 1.25 + 2.3 * T_os + (2.3 * P_os + 0.575) + (2.3 * H_os + 0.575)
# ms; all three at x1 make 9.3 ms.
_MEASURE_MS = const(10)
_POLLS = const(5)  # then a further 5 x 2 ms of status polls before giving up
_SKIPPED_TP = const(0x80000)  # what a temperature or pressure register holds with no measurement
_SKIPPED_H = const(0x8000)


class BME280:
    component = "sensor"

    def __init__(self, name, i2c, address):
        self.fields = [
            (name + "_temperature", "°C", "temperature"),
            (name + "_humidity", "%", "humidity"),
            (name + "_pressure", "hPa", "pressure"),
        ]
        self._label = "bme280 %s at 0x%02x" % (name, address)
        self._i2c = i2c
        self._addr = address
        self._cal = None  # read on first use, and again after any failure (the part may have reset)

    async def read(self):
        try:
            if self._cal is None:
                self._cal = self._calibration()
            adc_t, adc_p, adc_h = await self._measure()
            t, p, h = compensate(self._cal, adc_t, adc_p, adc_h)
        except OSError as e:
            self._cal = None
            if e.args and isinstance(e.args[0], int):  # errno from the bus: no ACK, a stuck line
                raise OSError("%s: no answer on the I2C bus (errno %d)" % (self._label, e.args[0]))
            raise OSError("%s: %s" % (self._label, e.args[0] if e.args else e))
        return [t / 100, round(h / 1024, 2), round(p / 25600, 2)]

    def _calibration(self):
        chip = self._i2c.readfrom_mem(self._addr, _REG_ID, 1)[0]
        if chip != CHIP_ID:
            raise OSError("chip id 0x%02x, not a BME280's 0x%02x%s"
                          % (chip, CHIP_ID, " (a BMP280?)" if 0x56 <= chip <= 0x58 else ""))
        tp = self._i2c.readfrom_mem(self._addr, _REG_CALIB_TP, 26)
        h = self._i2c.readfrom_mem(self._addr, _REG_CALIB_H, 7)
        cal = list(struct.unpack("<HhhHhhhhhhhh", tp[:24]))
        e4, e5, e6 = _s8(h[3]), h[4], _s8(h[5])
        cal += [tp[25], struct.unpack("<h", h[:2])[0], h[2], e4 * 16 | e5 & 0x0F, e6 * 16 | e5 >> 4, _s8(h[6])]
        if cal[0] == 0 or cal[3] == 0:
            raise OSError("calibration reads zero (NVM not loaded?)")  # dig_T1, dig_P1 are never 0
        return cal

    async def _measure(self):
        i2c, a = self._i2c, self._addr
        # ctrl_hum only takes effect on the next ctrl_meas write (datasheet 5.4.3), so it goes first.
        i2c.writeto_mem(a, _REG_CTRL_HUM, bytes((_OSRS_X1,)))
        i2c.writeto_mem(a, _REG_CONFIG, b"\x00")  # IIR filter off: each forced reading stands alone
        i2c.writeto_mem(a, _REG_CTRL_MEAS, bytes((_OSRS_X1 << 5 | _OSRS_X1 << 2 | _MODE_FORCED,)))
        await asyncio.sleep(_MEASURE_MS / 1000)
        for _ in range(_POLLS):
            if not i2c.readfrom_mem(a, _REG_STATUS, 1)[0] & _MEASURING:
                break
            await asyncio.sleep(0.002)
        else:
            raise OSError("measurement did not finish")
        d = i2c.readfrom_mem(a, _REG_DATA, 8)
        adc_p = d[0] << 12 | d[1] << 4 | d[2] >> 4
        adc_t = d[3] << 12 | d[4] << 4 | d[5] >> 4
        adc_h = d[6] << 8 | d[7]
        if adc_t == _SKIPPED_TP or adc_p == _SKIPPED_TP or adc_h == _SKIPPED_H:
            raise OSError("no measurement in the data registers (reset values)")
        return adc_t, adc_p, adc_h


def _s8(b):
    return b - 256 if b & 0x80 else b


def _div(n, d):
    # C's integer division truncates toward zero; Python's // floors.
    q = abs(n) // abs(d)
    return q if (n < 0) == (d < 0) else -q


def compensate(cal, adc_t, adc_p, adc_h):
    """Datasheet 4.2.3, in integers: (temperature in 0.01 degC, pressure in Pa/256 (Q24.8),
    humidity in %RH/1024 (Q22.10)). cal is [dig_T1..3, dig_P1..9, dig_H1..6]."""
    t1, t2, t3, p1, p2, p3, p4, p5, p6, p7, p8, p9, h1, h2, h3, h4, h5, h6 = cal
    v1 = (((adc_t >> 3) - (t1 << 1)) * t2) >> 11
    v2 = (((((adc_t >> 4) - t1) * ((adc_t >> 4) - t1)) >> 12) * t3) >> 14
    t_fine = v1 + v2
    temperature = (t_fine * 5 + 128) >> 8

    v1 = t_fine - 128000
    v2 = v1 * v1 * p6 + ((v1 * p5) << 17) + (p4 << 35)
    v1 = ((v1 * v1 * p3) >> 8) + ((v1 * p2) << 12)
    v1 = (((1 << 47) + v1) * p1) >> 33
    if v1 == 0:
        raise OSError("calibration gives a zero pressure divisor")  # the datasheet's guard
    p = 1048576 - adc_p
    p = _div(((p << 31) - v2) * 3125, v1)
    v1 = (p9 * (p >> 13) * (p >> 13)) >> 25
    v2 = (p8 * p) >> 19
    pressure = ((p + v1 + v2) >> 8) + (p7 << 4)

    x = t_fine - 76800
    x = ((((adc_h << 14) - (h4 << 20) - (h5 * x)) + 16384) >> 15) * (
        ((((((x * h6) >> 10) * (((x * h3) >> 11) + 32768)) >> 10) + 2097152) * h2 + 8192) >> 14
    )
    x -= ((((x >> 15) * (x >> 15)) >> 7) * h1) >> 4
    x = min(max(x, 0), 419430400)  # 0..100 %RH in the datasheet's Q22.10 << 12
    return temperature, pressure, x >> 12


def make(spec, hw):
    bus = spec["i2c"]
    address = spec.get("address", 0x76)
    if isinstance(address, str):
        address = int(address, 16)
    if address not in (0x76, 0x77):
        raise ValueError("%s: a BME280 answers at 0x76 or 0x77, not 0x%02x" % (spec["name"], address))
    return BME280(spec["name"], hw.i2c(bus["bus"], bus["sda"], bus["scl"], bus.get("freq", 100000)), address)
