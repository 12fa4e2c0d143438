"""The real board: the one module between the drivers/node and MicroPython's machine/network.

hardware_sim.py offers the same names for the Unix port. What differs between ESP32 and RP2040
in WiFi (status codes, power saving), RTC memory, deep sleep and reset causes is handled here;
the chip's own temperature sensor is the internal_temp driver's (CHIP tells it which).
The buses and parts the drivers need (onewire, dht, i2c) come from here too, so a driver never
imports machine and runs unchanged on hardware_sim's models of them.
"""
import gc
import sys

import machine
import network

from mqtt.compat import ticks_diff, ticks_ms

Pin = machine.Pin
ADC = machine.ADC
CHIP = "rp2040" if sys.platform == "rp2" else "esp32"
HAS_WDT = hasattr(machine, "WDT")
_wlan = None
_cause = None
SLEPT = "/slept"  # rp2: written by deepsleep(), read and removed by reset_cause() after the wake
FAIL_GRACE_MS = 2000  # rp2: how long a failed join's status must last to end the attempt
_i2c = {}  # bus id -> (sda, scl, machine.I2C): the sensors on one bus share it


def onewire(pin):
    """A 1-Wire bus on pin: MicroPython's OneWire (reset, writebyte, readbyte, scan); the
    drivers speak the device protocols over it themselves."""
    import onewire as ow

    return ow.OneWire(Pin(pin))


def dht(pin, model):
    """A DHT22 or DHT11 on pin (measure, temperature, humidity); the firmware does the timing.
    The line is pulled up here: dht's reads switch the pin to open drain and leave its pulls as
    they were, and an RP2040 pin starts pulled down, so a bare sensor without its own resistor
    never answered."""
    import dht as parts

    return _DHT((parts.DHT11 if model == "dht11" else parts.DHT22)(Pin(pin, Pin.OPEN_DRAIN, Pin.PULL_UP)))


class _DHT:
    """MicroPython's dht raises OSError when the part does not answer but a plain Exception on a
    bad checksum: both become OSError here, the one error a driver expects from a part."""

    def __init__(self, part):
        self._part = part
        self.temperature = part.temperature
        self.humidity = part.humidity

    def measure(self):
        try:
            self._part.measure()
        except OSError:
            raise
        except Exception as e:
            raise OSError(str(e))


def i2c(bus, sda, scl, freq=100000):
    """The hardware I2C controller `bus` on these pins (readfrom_mem, writeto_mem, scan); the
    RP2040 raises ValueError for pins that controller cannot use."""
    if bus not in _i2c:
        _i2c[bus] = (sda, scl, machine.I2C(bus, sda=Pin(sda), scl=Pin(scl), freq=freq))
    if _i2c[bus][:2] != (sda, scl):
        raise ValueError("i2c bus %d is already on sda %d, scl %d" % (bus, _i2c[bus][0], _i2c[bus][1]))
    return _i2c[bus][2]


def unique_id():
    return machine.unique_id()


def reset_cause():
    """Once a boot (rp2's note below is used up by reading it)."""
    global _cause
    if _cause is None:
        cause = machine.reset_cause()
        _cause = {
            getattr(machine, "PWRON_RESET", -1): "power-on",
            getattr(machine, "HARD_RESET", -2): "hard",
            getattr(machine, "WDT_RESET", -3): "watchdog",
            getattr(machine, "DEEPSLEEP_RESET", -4): "deepsleep",
            getattr(machine, "SOFT_RESET", -5): "soft",
        }.get(cause, "unknown")
        if CHIP == "rp2040":
            # rp2's reset() and deepsleep() reboot through the watchdog (watchdog_reboot() in
            # ports/rp2/modmachine.c) and leave the reason a timeout leaves: only deepsleep()'s
            # note tells a wake apart. It goes whatever the cause: left by a sleep that a power
            # cut ended, it would call the next reset a wake.
            import os

            try:
                os.remove(SLEPT)
                slept = True
            except OSError:
                slept = False
            if _cause == "watchdog":
                _cause = "deepsleep" if slept else "watchdog or reset"
    return _cause


def free_mem():
    """After a collection: what the node could still allocate, not what garbage happens to hold."""
    gc.collect()
    return gc.mem_free()


def rtc_memory(data=None):
    """ESP32 keeps RTC memory through deep sleep; the RP2040 has none, so a flash file stands in."""
    if CHIP == "esp32":
        rtc = machine.RTC()
        if data is None:
            return rtc.memory()
        rtc.memory(data)
        return None
    if data is None:
        try:
            with open("/rtc.bin", "rb") as f:
                return f.read()
        except OSError:
            return b""
    with open("/rtc.bin", "wb") as f:
        f.write(data)
    return None


def deepsleep(ms):
    if CHIP == "rp2040":
        # rp2's deepsleep() is lightsleep() then a reset (ports/rp2/modmachine.c). lightsleep
        # returns at once while the WiFi chip has an event pending (cyw43_poll_is_pending), so
        # the chip is powered down first (cyw43_deinit; a no-op if it never started), and it
        # refuses 2**32 us or more ("sleep too long"), so a longer sleep is cut to that.
        network.WLAN(network.STA_IF).deinit()
        open(SLEPT, "w").close()
        ms = min(ms, 4294966)
    machine.deepsleep(ms)


def reset():
    machine.reset()


def watchdog(ms):
    return machine.WDT(timeout=ms) if HAS_WDT else None


def wifi_up():
    return _wlan is not None and _wlan.isconnected()


async def wifi_connect(ssid, password, timeout_ms, power_save=True):
    """Join the network; returns the IP address, or raises OSError naming the status.

    The Pico W's CYW43 ends a join that failed (status -3 wrong password, -2 no AP, -1 failed),
    mostly for good, so a failure that lasts FAIL_GRACE_MS ends the attempt, without waiting for
    the timeout. Not at once: the driver goes from "wrong password" back to joining when a good
    handshake follows a bad one (cyw43-driver, cyw43_ctrl.c), and "no AP" follows a single scan
    that missed the network, which the pico-sdk's connect loop answers by joining again (as this
    does, once). The ESP32 firmware does not end a failed join: on every disconnect it tries
    again by itself (ports/esp32/network_wlan.c, "try to reconnect"), a 202 or 201 often comes
    before a good connection, and status() keeps reporting the last failure after a new
    connect() until an IP arrives. There only the timeout ends an attempt. Names come from
    network.STAT_*, which each port defines with its own numbers.

    power_save=False (the always-on node) turns the Pico W's WiFi power saving off. active(True)
    puts the CYW43 in PM2 (cyw43_wifi_set_up sets CYW43_DEFAULT_PM), where the chip sleeps when
    idle and a packet to it can wait ~200 ms (cyw43-driver 6a05a0d), so the mode is set after
    it. WLAN.PM_NONE came in 1.21 (extmod/network_cyw43.c); 1.20 takes mqtt_as's 0xA11140, the
    same mode 0. Idle, it draws ~36 mA instead of ~2: a battery wake keeps the default. The
    ESP32 stays in ESP-IDF's default, WIFI_PS_MIN_MODEM (WLAN.PM_PERFORMANCE).
    """
    import asyncio

    global _wlan
    if _wlan is None:
        _wlan = network.WLAN(network.STA_IF)
    _wlan.active(True)
    if not power_save and CHIP == "rp2040":
        _wlan.config(pm=getattr(_wlan, "PM_NONE", 0xA11140))
    if not _wlan.isconnected():
        try:
            _wlan.connect(ssid, password)
        except OSError:
            # ESP32: "Wifi Internal Error" while its own reconnect runs (micropython#7139, #17661),
            # or while the disconnect() of a failed attempt winds down. In that case the join was
            # not asked for at all (ports/esp32/network_wlan.c notes the request only once
            # esp_wifi_connect succeeded) and the attempt would idle to its timeout: ask once more.
            if CHIP != "esp32":
                raise
            await asyncio.sleep_ms(500)
            try:
                _wlan.connect(ssid, password)
            except OSError:
                pass  # its own reconnect, then: it goes on by itself
    names = {}
    for name in ("STAT_WRONG_PASSWORD", "STAT_NO_AP_FOUND", "STAT_CONNECT_FAIL"):
        if hasattr(network, name):
            names[getattr(network, name)] = name[5:].lower().replace("_", " ")
    start = ticks_ms()
    failed = None  # rp2: since when the status has said the join failed
    asked = False  # rp2: joined again after "no AP"
    while not _wlan.isconnected():
        status = _wlan.status()
        now = ticks_ms()
        waited = ticks_diff(now, start)
        over = waited > timeout_ms
        if CHIP == "rp2040" and status in names:
            if status == getattr(network, "STAT_NO_AP_FOUND", None) and not asked:
                asked = True
                _wlan.connect(ssid, password)
            elif failed is None:
                failed = now
            elif ticks_diff(now, failed) >= FAIL_GRACE_MS:
                over = True
        else:
            failed = None
        if over:
            _wlan.disconnect()
            raise OSError("wifi %r: %s (status %d, after %d ms)"
                          % (ssid, names.get(status, "no connection"), status, waited))
        await asyncio.sleep_ms(100)
    return _wlan.ifconfig()[0]


def irq_flag():
    """What a pin's interrupt handler sets to wake an asyncio task: a ThreadSafeFlag, whose set()
    allocates nothing, as a hard interrupt on a board requires."""
    import asyncio

    return asyncio.ThreadSafeFlag()


async def control():
    return  # a real board takes no stdin commands


def configure(seed, directory):
    pass  # nothing to set up: the hardware is real
