"""Driver scenarios against the simulated hardware, written once for both runtimes.

MicroPython: `micropython tests/sensor_scenarios.py NAME` with MICROPYPATH=.frozen:lib prints
`PASS NAME` (or a traceback and exit status 1). CPython: test_drivers.py imports this module and
awaits SCENARIOS[NAME]() in-process. So no f-strings, typing or pytest here.

Expected values come from the parts' datasheets, not from the code under test: the DS18B20's
power-on scratchpad and Maxim AN27's ROM example for the CRC, the BMP280 datasheet's worked example
(section 3.12) for the BME280's temperature and pressure (the two parts share those formulas),
the BME280 datasheet's floating-point formulas (section 8.1, transcribed below) for humidity, and
the RP2040 datasheet's line (section 4.9.5) for the internal temperature sensor.
Every scenario uses its own pin numbers (100 and up), so one CPython process can run them all.
"""
import asyncio
import sys

from mqnode import drivers
from mqnode import hardware_sim as hw
from mqnode.drivers import bme280, ds18b20
from mqnode.sim_parts import CALIBRATION, dallas_crc
from mqtt.compat import ticks_add, ticks_diff, ticks_ms

SCENARIOS = {}


def scenario(f):
    SCENARIOS[f.__name__] = f
    return f


def check(ok, what):
    if not ok:
        raise AssertionError(what)


async def oserror(coro):
    """The message of the OSError coro raises; fails if it raises none."""
    try:
        value = await coro
    except OSError as e:
        return str(e)
    raise AssertionError("no OSError; got %r" % (value,))


# --- DS18B20 ------------------------------------------------------------------------------------

POWER_ON_SCRATCHPAD = b"\x50\x05\x4b\x46\x7f\xff\x0c\x10\x1c"  # DS18B20 datasheet, 85 degC
AN27_ROM = b"\x02\x1c\xb8\x01\x00\x00\x00\xa2"  # Maxim application note 27's worked CRC example


@scenario
async def ds18b20_crc_matches_the_datasheet_vectors():
    for name, crc in (("driver", ds18b20.crc8), ("simulation", dallas_crc)):
        check(crc(POWER_ON_SCRATCHPAD) == 0, name + ": power-on scratchpad CRC")
        check(crc(AN27_ROM) == 0, name + ": AN27 ROM CRC")
        check(crc(AN27_ROM[:7]) == 0xA2, name + ": AN27 ROM CRC byte")
        check(crc(POWER_ON_SCRATCHPAD[:8]) == 0x1C, name + ": scratchpad CRC byte")


@scenario
async def ds18b20_reads_a_plausible_temperature():
    sensor = drivers.make({"name": "probe", "driver": "ds18b20", "pin": 101}, hw)
    check(sensor.component == "sensor", "component")
    check(sensor.fields == [("probe", "°C", "temperature")], "fields %r" % (sensor.fields,))
    started = ticks_ms()
    values = await sensor.read()
    waited = ticks_diff(ticks_ms(), started)
    part = hw.parts[("onewire", 101)].devices[0]
    check(len(values) == 1 and 18.0 <= values[0] <= 24.0, "plausible: %r" % (values,))
    check(abs(values[0] - part.temperature) <= 1 / 16, "%r vs the part's %r" % (values, part.temperature))
    check(waited >= ds18b20.CONVERT_MS - 1, "waited only %d ms for the conversion" % waited)  # 1: ms rounding


@scenario
async def ds18b20_bad_scratchpad_crc_raises_oserror():
    sensor = drivers.make({"name": "probe", "driver": "ds18b20", "pin": 102}, hw)
    part = hw.parts[("onewire", 102)].devices[0]
    part.corrupt = True
    message = await oserror(sensor.read())
    check("CRC" in message and "probe" in message, message)
    part.corrupt = False
    values = await sensor.read()
    check(18.0 <= values[0] <= 24.0, "recovers: %r" % (values,))


@scenario
async def ds18b20_absent_probe_raises_oserror():
    sensor = drivers.make({"name": "probe", "driver": "ds18b20", "pin": 103}, hw)
    part = hw.parts[("onewire", 103)].devices[0]
    part.present = False
    message = await oserror(sensor.read())
    check("no DS18B20" in message, message)
    part.present = True
    await sensor.read()
    part.present = False
    message = await oserror(sensor.read())
    check("presence" in message, message)


@scenario
async def ds18b20_power_on_value_is_not_a_reading():
    """A conversion that never lands leaves 85 degC, the reset value, in the scratchpad."""
    sensor = drivers.make({"name": "probe", "driver": "ds18b20", "pin": 104}, hw)
    hw.parts[("onewire", 104)].devices[0].CONVERT_MS = 60000
    message = await oserror(sensor.read())
    check("85" in message, message)


@scenario
async def ds18b20_rom_in_the_spec_is_checked():
    part_rom = hw.onewire(105).devices[0].rom
    rom = "".join("%02x" % b for b in part_rom)
    sensor = drivers.make({"name": "probe", "driver": "ds18b20", "pin": 105, "rom": rom}, hw)
    check(18.0 <= (await sensor.read())[0] <= 24.0, "reads by its ROM")
    for bad in (rom[:14], "10" + rom[2:], rom[:14] + "00", "zz" * 8):
        try:
            drivers.make({"name": "probe", "driver": "ds18b20", "pin": 105, "rom": bad}, hw)
        except ValueError:
            continue
        raise AssertionError("rom %r accepted" % bad)


# --- DHT ----------------------------------------------------------------------------------------


@scenario
async def dht22_enforces_its_read_interval():
    sensor = drivers.make({"name": "porch", "driver": "dht", "pin": 111}, hw)
    part = hw.parts[("dht", 111)]
    check([f[0] for f in sensor.fields] == ["porch_temperature", "porch_humidity"], "fields")
    check([f[1:] for f in sensor.fields] == [("°C", "temperature"), ("%", "humidity")], "units")
    first = await sensor.read()
    check(18.0 <= first[0] <= 24.0 and 30.0 <= first[1] <= 60.0, "plausible: %r" % (first,))
    # The simulated part, like a real one, gives nothing when asked again this soon:
    try:
        part.measure()
        raise AssertionError("the simulated DHT22 measured twice within 2 s")
    except OSError:
        pass
    part.measures = 1
    again = await sensor.read()  # within 2 s: the same values, and the part left alone
    check(again == first, "%r then %r" % (first, again))
    check(part.measures == 1, "measured %d times" % part.measures)
    sensor._at = ticks_add(ticks_ms(), -2001)  # as if 2 s had passed
    part._at = sensor._at
    await sensor.read()
    check(part.measures == 2, "after 2 s: measured %d times" % part.measures)


@scenario
async def dht22_failure_names_the_sensor():
    sensor = drivers.make({"name": "porch", "driver": "dht", "pin": 112}, hw)
    part = hw.parts[("dht", 112)]
    part.fail = 110
    started = ticks_ms()
    message = await oserror(sensor.read())
    check("porch" in message and "dht22" in message, message)
    check(ticks_diff(ticks_ms(), started) < 500, "a failing read does not wait")
    part.fail = None
    sensor._at = part._at = ticks_add(ticks_ms(), -2001)
    values = await sensor.read()
    check(18.0 <= values[0] <= 24.0, "recovers: %r" % (values,))


@scenario
async def dht11_reads_whole_numbers_and_unknown_models_are_refused():
    sensor = drivers.make({"name": "shed", "driver": "dht", "pin": 113, "model": "dht11"}, hw)
    t, h = await sensor.read()
    check(t == int(t) and h == int(h), "DHT11 resolution is 1: %r %r" % (t, h))
    try:
        drivers.make({"name": "shed", "driver": "dht", "pin": 114, "model": "dht33"}, hw)
    except ValueError:
        return
    raise AssertionError("model dht33 accepted")


# --- BME280 -------------------------------------------------------------------------------------

EXAMPLE_ADC_T = 519888  # BMP280 datasheet 3.12: 25.08 degC, t_fine 128422
EXAMPLE_ADC_P = 415148  # 100653.27 Pa (double precision)


def float_compensation(cal, adc_t, adc_p, adc_h):
    """BME280 datasheet section 8.1 (double precision), transcribed on its own for the test:
    (degC, Pa, %RH)."""
    t1, t2, t3, p1, p2, p3, p4, p5, p6, p7, p8, p9, h1, h2, h3, h4, h5, h6 = cal
    var1 = (adc_t / 16384.0 - t1 / 1024.0) * t2
    var2 = (adc_t / 131072.0 - t1 / 8192.0) * (adc_t / 131072.0 - t1 / 8192.0) * t3
    t_fine = int(var1 + var2)
    temperature = (var1 + var2) / 5120.0

    var1 = t_fine / 2.0 - 64000.0
    var2 = var1 * var1 * p6 / 32768.0
    var2 = var2 + var1 * p5 * 2.0
    var2 = var2 / 4.0 + p4 * 65536.0
    var1 = (p3 * var1 * var1 / 524288.0 + p2 * var1) / 524288.0
    var1 = (1.0 + var1 / 32768.0) * p1
    p = 1048576.0 - adc_p
    p = (p - var2 / 4096.0) * 6250.0 / var1
    var1 = p9 * p * p / 2147483648.0
    var2 = p * p8 / 32768.0
    pressure = p + (var1 + var2 + p7) / 16.0

    var_h = t_fine - 76800.0
    var_h = (adc_h - (h4 * 64.0 + h5 / 16384.0 * var_h)) * (
        h2 / 65536.0 * (1.0 + h6 / 67108864.0 * var_h * (1.0 + h3 / 67108864.0 * var_h)))
    var_h = var_h * (1.0 - h1 * var_h / 524288.0)
    return temperature, pressure, min(max(var_h, 0.0), 100.0)


def climate(pin_bus, address=None):
    spec = {"name": "climate", "driver": "bme280", "i2c": {"bus": pin_bus, "sda": 8, "scl": 9}}
    if address:
        spec["address"] = address
    return drivers.make(spec, hw), hw.parts[("i2c", pin_bus)]


@scenario
async def bme280_matches_the_datasheet_example():
    t, p, h = bme280.compensate(CALIBRATION, EXAMPLE_ADC_T, EXAMPLE_ADC_P, 30000)
    check(t == 2508, "temperature %d, datasheet 2508" % t)
    check(abs(p / 256 - 100653.27) < 0.1, "pressure %r Pa, datasheet 100653.27" % (p / 256))
    sensor, bus = climate(121)
    bus.devices[0x76].raw = (EXAMPLE_ADC_T, EXAMPLE_ADC_P, 30000)
    temperature, humidity, pressure = await sensor.read()
    check(temperature == 25.08, "read %r degC" % temperature)
    check(abs(pressure - 1006.53) < 0.006, "read %r hPa" % pressure)
    expected = float_compensation(CALIBRATION, EXAMPLE_ADC_T, EXAMPLE_ADC_P, 30000)[2]
    check(abs(humidity - expected) < 0.01, "read %r %%RH, float formula %r" % (humidity, expected))
    check([f[1:] for f in sensor.fields] == [("°C", "temperature"), ("%", "humidity"), ("hPa", "pressure")],
          "fields %r" % (sensor.fields,))


@scenario
async def bme280_integer_compensation_agrees_with_the_float_formulas():
    worst = 0
    for adc_t in (430000, 480000, 519888, 560000):
        for adc_p in (300000, 415148, 500000):
            for adc_h in (20000, 26000, 30000, 36000):
                t, p, h = bme280.compensate(CALIBRATION, adc_t, adc_p, adc_h)
                ft, fp, fh = float_compensation(CALIBRATION, adc_t, adc_p, adc_h)
                check(abs(t / 100 - ft) < 0.01, "T %r vs %r at %d" % (t / 100, ft, adc_t))
                check(abs(p / 256 - fp) < 0.2, "P %r vs %r at %d, %d" % (p / 256, fp, adc_t, adc_p))
                check(abs(h / 1024 - fh) < 0.01, "H %r vs %r at %d, %d" % (h / 1024, fh, adc_t, adc_h))
                worst = max(worst, abs(h / 1024 - fh))
    check(worst < 0.01, "humidity off by %r" % worst)


@scenario
async def bme280_reads_the_simulated_weather():
    sensor, bus = climate(122)
    part = bus.devices[0x76]
    temperature, humidity, pressure = await sensor.read()
    check(abs(temperature - part.temperature) < 0.02, "%r vs %r degC" % (temperature, part.temperature))
    check(abs(humidity - part.humidity) < 0.05, "%r vs %r %%" % (humidity, part.humidity))
    check(abs(pressure - part.pressure) < 0.02, "%r vs %r hPa" % (pressure, part.pressure))
    check(part.regs[0xF4] & 3 == 0, "the part is back in sleep mode after a forced measurement")


@scenario
async def bme280_wrong_chip_id_raises_oserror():
    sensor, bus = climate(123)
    bus.devices[0x76].regs[0xD0] = 0x58  # a BMP280
    message = await oserror(sensor.read())
    check("0x58" in message and "BMP280" in message and "climate" in message, message)
    bus.devices[0x76].regs[0xD0] = 0x60
    check(len(await sensor.read()) == 3, "reads once the id is right")


@scenario
async def bme280_silent_bus_and_missing_data_raise_oserror():
    sensor, bus = climate(124, "0x77")  # nothing answers there
    message = await oserror(sensor.read())
    check("no answer" in message and "0x77" in message, message)
    sensor, bus = climate(125)
    bus.devices[0x76].raw = (EXAMPLE_ADC_T, EXAMPLE_ADC_P, 0x8000)  # humidity never measured
    message = await oserror(sensor.read())
    check("no measurement" in message, message)


# --- PIR, relay, internal temperature -------------------------------------------------------------


@scenario
async def pir_debounces_a_bouncing_edge_into_one_change():
    # 100 ms rather than the default 50: room for a loaded machine to run the 10 ms dip late
    pir = drivers.make({"name": "motion", "driver": "pir", "pin": 131, "debounce_ms": 100}, hw)
    pin = hw.Pin.pins[131]
    seen = []

    async def watch():
        while True:
            seen.append(await pir.changed())

    task = asyncio.create_task(watch())
    await asyncio.sleep(0)
    settle = 0.3  # three times the debounce
    pin.value(1)
    pin.value(0)
    pin.value(1)  # two more edges within the debounce time
    await asyncio.sleep(settle)
    check(seen == [True], "one change for a bouncing rising edge: %r" % (seen,))
    pin.value(0)
    await asyncio.sleep(0.01)
    pin.value(1)  # a 10 ms dip, shorter than the debounce
    await asyncio.sleep(settle)
    check(seen == [True], "a glitch is no change: %r" % (seen,))
    pin.value(0)
    await asyncio.sleep(settle)
    check(seen == [True, False], "%r" % (seen,))
    task.cancel()
    await asyncio.sleep(0)


class CountingFlag:
    def __init__(self):
        self.sets = 0

    def set(self):
        self.sets += 1


@scenario
async def pir_interrupt_handler_only_sets_the_flag():
    pir = drivers.make({"name": "motion", "driver": "pir", "pin": 132}, hw)
    pin = hw.Pin.pins[132]
    flag = pir._flag = CountingFlag()
    before = sorted(pir.__dict__.items(), key=lambda kv: kv[0])
    level = pin.value()
    pin._handler(pin)  # the handler the driver registered with the pin
    check(flag.sets == 1, "flag set %d times" % flag.sets)
    check(sorted(pir.__dict__.items(), key=lambda kv: kv[0]) == before, "the handler changed the driver's state")
    check(pin.value() == level, "the handler touched the pin")


@scenario
async def relay_active_low_inverts_the_pin_level():
    relay = drivers.make({"name": "pump", "driver": "relay", "pin": 141, "active_low": True}, hw)
    pin = hw.Pin.pins[141]
    check(pin.mode == hw.Pin.OUT and pin.value() == 1, "off (high) from the start")
    relay.set(True)
    check(relay.state is True and pin.value() == 0, "on drives the pin low")
    relay.set(False)
    check(relay.state is False and pin.value() == 1, "off drives it high")
    plain = drivers.make({"name": "lamp", "driver": "relay", "pin": 142}, hw)
    pin = hw.Pin.pins[142]
    check(pin.value() == 0, "active-high starts low")
    plain.set(True)
    check(pin.value() == 1, "active-high on is high")


def rp2040_celsius(counts):
    """RP2040 datasheet 4.9.5: T = 27 - (ADC_voltage - 0.706) / 0.001721, 3.3 V reference."""
    return 27 - (counts * 3.3 / 65535 - 0.706) / 0.001721


class FixedADC:
    counts = 0

    def __init__(self, channel):
        self.channel = channel

    def read_u16(self):
        return FixedADC.counts


class RP2040:
    CHIP = "rp2040"
    ADC = FixedADC


@scenario
async def internal_temp_converts_counts_with_the_rp2040_formula():
    sensor = drivers.make({"name": "chip", "driver": "internal_temp", "adc": 4}, RP2040)
    check(sensor._adc.channel == 4, "channel 4 is the temperature sensor")
    FixedADC.counts = 14020  # 0.706 V: the datasheet's 27 degC point
    check(abs((await sensor.read())[0] - 27.0) < 0.05, "0.706 V is 27 degC")
    for counts in (12800, 13500, 14300, 15000):
        FixedADC.counts = counts
        value = (await sensor.read())[0]
        check(abs(value - rp2040_celsius(counts)) < 0.006, "%d counts: %r" % (counts, value))
    simulated = drivers.make({"name": "chip", "driver": "internal_temp"}, hw)
    value = (await simulated.read())[0]
    check(18.0 <= value <= 24.0, "simulated chip: %r" % value)


def main():
    name = sys.argv[1]
    asyncio.run(SCENARIOS[name]())
    print("PASS", name)


if __name__ == "__main__":
    main()
