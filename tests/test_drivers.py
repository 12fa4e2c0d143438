"""The sensor and switch drivers against the simulated hardware, on both runtimes.

The scenarios live in sensor_scenarios.py, written once in the subset both runtimes share: CPython
awaits each in this process, MicroPython's Unix port runs each in a process of its own. Below them,
what only CPython can check: the PIR's interrupt handler by its source, the ESP32 internal
temperature path, and hardware.py's glue over stand-ins for machine, dht and onewire. Last, the
PIR on hardware.py in the Unix port: its interrupt handled with the heap locked, as on a board.
"""
from __future__ import annotations

import ast
import asyncio
import importlib
import json
import os
import re
import subprocess
import sys
import types
from pathlib import Path
from typing import Any, Dict, List

import pytest

from runtime import LIB, micropython_executable

TESTS = Path(__file__).resolve().parent
SCENARIO_TIMEOUT_S = 30

if str(LIB) not in sys.path:
    sys.path.insert(0, str(LIB))

import sensor_scenarios  # noqa: E402

NAMES = sorted(sensor_scenarios.SCENARIOS)


@pytest.mark.parametrize("name", NAMES)
def test_scenario_on_cpython(name: str) -> None:
    asyncio.run(asyncio.wait_for(sensor_scenarios.SCENARIOS[name](), SCENARIO_TIMEOUT_S))


@pytest.mark.parametrize("name", NAMES)
def test_scenario_on_micropython(name: str) -> None:
    env = dict(os.environ, MICROPYPATH=os.pathsep.join([".frozen", str(LIB)]))
    result = subprocess.run(
        [micropython_executable(), str(TESTS / "sensor_scenarios.py"), name],
        env=env, capture_output=True, text=True, timeout=SCENARIO_TIMEOUT_S,
    )
    assert result.returncode == 0 and result.stdout.strip().endswith("PASS " + name), result.stdout + result.stderr


def test_pir_interrupt_handler_is_one_flag_set() -> None:
    """A hard interrupt handler on a board may not allocate: the PIR's is exactly
    `self._flag.set()`, and ThreadSafeFlag.set allocates nothing."""
    tree = ast.parse((LIB / "mqnode" / "drivers" / "pir.py").read_text())
    handler = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "_irq")
    assert [ast.unparse(stmt) for stmt in handler.body] == ["self._flag.set()"]


def test_internal_temp_on_esp32_s3_c3_uses_mcu_temperature(monkeypatch: pytest.MonkeyPatch) -> None:
    from mqnode import drivers

    class ESP32:
        CHIP = "esp32"

    esp32 = types.ModuleType("esp32")
    esp32.mcu_temperature = lambda: 41.257  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "esp32", esp32)
    sensor = drivers.make({"name": "chip", "driver": "internal_temp"}, ESP32)
    assert asyncio.run(sensor.read()) == [41.26]
    del esp32.mcu_temperature  # the classic ESP32's esp32 module has none
    with pytest.raises(OSError, match="no internal temperature sensor"):
        asyncio.run(sensor.read())


@pytest.mark.parametrize("name", ["t#1", "a/b", "", None, "living room", "küche", "a.b"],
                         ids=["hash", "slash", "empty", "missing", "space", "umlaut", "dot"])
def test_a_part_whose_name_cannot_be_a_topic_level_or_an_object_id_is_refused_at_boot(
        name: object, tmp_path: Path) -> None:
    """As a topic level, its state topic would make every publish raise and the node reset on
    each boot; Home Assistant takes only [a-zA-Z0-9_-] in a discovery topic's object id, so the
    part would run and its entity never appear. The board file is refused as it is read."""
    from mqnode import board

    (tmp_path / "b.json").write_text(json.dumps({"name": "b", "chip": "sim",
                                                 "switches": [{"name": name, "driver": "relay", "pin": 16}]}))
    with pytest.raises(ValueError, match="b.json: part .*: its name must be 1..64 letters, digits, _ or -"):
        board.load("b", str(tmp_path))


# --- hardware.py over stand-ins for the firmware's modules --------------------------------------


class FakePin:
    IN, OUT, OPEN_DRAIN, PULL_UP = 0, 1, 2, 3

    def __init__(self, n: Any, *args: Any, **kwargs: Any) -> None:
        self.n = n
        self.args = args


class FakeI2C:
    made: List[Dict[str, Any]] = []

    def __init__(self, bus: int, sda: FakePin, scl: FakePin, freq: int) -> None:
        FakeI2C.made.append({"bus": bus, "sda": sda.n, "scl": scl.n, "freq": freq})


class FakeDHT22:
    error: Exception | None = None

    def __init__(self, pin: FakePin) -> None:
        self.pin = pin

    def measure(self) -> None:
        if FakeDHT22.error:
            raise FakeDHT22.error

    def temperature(self) -> float:
        return 21.5

    def humidity(self) -> float:
        return 40.1


@pytest.fixture
def board_hardware(monkeypatch: pytest.MonkeyPatch) -> Any:
    """mqnode.hardware imported over stand-ins for machine, network, dht and onewire."""
    machine = types.SimpleNamespace(Pin=FakePin, ADC=object, I2C=FakeI2C, unique_id=lambda: b"\x01\x02")
    network = types.SimpleNamespace()
    dht = types.SimpleNamespace(DHT22=FakeDHT22, DHT11=FakeDHT22)
    onewire = types.SimpleNamespace(OneWire=lambda pin: ("OneWire", pin.n))
    for name, module in (("machine", machine), ("network", network), ("dht", dht), ("onewire", onewire)):
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.delitem(sys.modules, "mqnode.hardware", raising=False)
    FakeI2C.made = []
    FakeDHT22.error = None
    hardware = importlib.import_module("mqnode.hardware")
    yield hardware
    sys.modules.pop("mqnode.hardware", None)


def test_hardware_dht_pulls_its_line_up(board_hardware: Any) -> None:
    """dht's reads drive the pin open drain and leave its pulls alone; an RP2040 pin starts pulled
    down, so without this a sensor lacking its own resistor never answered."""
    part = board_hardware.dht(15, "dht22")
    assert part._part.pin.args == (FakePin.OPEN_DRAIN, FakePin.PULL_UP)


def test_hardware_dht_turns_a_checksum_error_into_oserror(board_hardware: Any) -> None:
    part = board_hardware.dht(15, "dht22")
    part.measure()
    assert (part.temperature(), part.humidity()) == (21.5, 40.1)
    FakeDHT22.error = Exception("checksum error")  # what MicroPython's dht.py raises
    with pytest.raises(OSError, match="checksum error"):
        part.measure()
    FakeDHT22.error = OSError(110)  # the firmware's timeout passes through as it is
    with pytest.raises(OSError) as e:
        part.measure()
    assert e.value.args == (110,)


def test_hardware_i2c_shares_a_bus_and_refuses_other_pins(board_hardware: Any) -> None:
    first = board_hardware.i2c(0, 8, 9, 100000)
    assert board_hardware.i2c(0, 8, 9) is first
    assert FakeI2C.made == [{"bus": 0, "sda": 8, "scl": 9, "freq": 100000}]
    with pytest.raises(ValueError, match="already on sda 8"):
        board_hardware.i2c(0, 4, 5)


def test_hardware_onewire_is_the_firmware_bus_on_that_pin(board_hardware: Any) -> None:
    assert board_hardware.onewire(22) == ("OneWire", 22)


# --- hardware.py's WiFi join and rp2 deep sleep, over stand-ins with each port's real behaviour ----


class FakeWLAN:
    """network.WLAN's station: status() answers from a script, one entry a poll, the last one
    repeating; an entry of None means connected."""

    def __init__(self, script: List[Any], connect_error: Exception | None = None, pm_none: int | None = None) -> None:
        self.script = list(script)
        self.connect_error = connect_error
        self.calls: List[str] = []
        if pm_none is not None:  # WLAN.PM_NONE: MicroPython 1.21 and later
            self.PM_NONE = pm_none

    def active(self, on: bool) -> None:
        self.calls.append("active")

    def config(self, **kwargs: int) -> None:
        self.calls.append(" ".join(["config"] + ["%s=%#x" % kv for kv in sorted(kwargs.items())]))

    def connect(self, ssid: str, password: str) -> None:
        self.calls.append("connect")
        if self.connect_error:
            raise self.connect_error

    def disconnect(self) -> None:
        self.calls.append("disconnect")

    def deinit(self) -> None:
        self.calls.append("deinit")

    def isconnected(self) -> bool:
        return self.script[0] is None

    def status(self) -> int:
        s = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        return 1010 if s is None else s

    def ifconfig(self) -> tuple:
        return ("192.168.1.23", "255.255.255.0", "192.168.1.1", "192.168.1.1")


GRACE_MS = 500  # hardware.FAIL_GRACE_MS (2 s) cut short: a poll is 100 ms, the scripts a few polls long


def _wifi(hardware: Any, monkeypatch: pytest.MonkeyPatch, chip: str, wlan: FakeWLAN, timeout_ms: int = 2000,
          **options: Any) -> Any:
    # Each port's own STAT_* numbers: ports/esp32/modnetwork_globals.h, ports/rp2/mpconfigport.h.
    stat = {"esp32": (202, 201, 203), "rp2040": (-3, -2, -1)}[chip]
    for name, value in zip(("STAT_WRONG_PASSWORD", "STAT_NO_AP_FOUND", "STAT_CONNECT_FAIL"), stat):
        setattr(hardware.network, name, value)
    hardware.network.STA_IF = 0
    hardware.network.WLAN = lambda itf: wlan
    monkeypatch.setattr(hardware, "CHIP", chip)
    monkeypatch.setattr(hardware, "FAIL_GRACE_MS", GRACE_MS)
    monkeypatch.setattr(asyncio, "sleep_ms", lambda ms: asyncio.sleep(ms / 1000), raising=False)
    return asyncio.run(hardware.wifi_connect("home", "secret", timeout_ms, **options))


def test_hardware_wifi_esp32_waits_through_a_failure_status(board_hardware: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """ESP32: status() still says 202 from the last attempt after connect(), and the firmware
    retries by itself through 202 and 201 before a good connection: not the end of the attempt."""
    wlan = FakeWLAN([202, 202, 201, 1001, None])
    assert _wifi(board_hardware, monkeypatch, "esp32", wlan) == "192.168.1.23"
    assert "disconnect" not in wlan.calls


def test_hardware_wifi_esp32_rides_the_firmwares_own_reconnect(board_hardware: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """connect() refused with "Wifi Internal Error" is asked once more after a moment (the firmware
    may be winding down the last attempt's disconnect, and then nothing joins unless asked);
    refused again, the firmware's own reconnect is running and the join goes on."""
    wlan = FakeWLAN([1001, None], connect_error=OSError("Wifi Internal Error"))
    assert _wifi(board_hardware, monkeypatch, "esp32", wlan) == "192.168.1.23"
    assert wlan.calls == ["active", "connect", "connect"]


def test_hardware_wifi_esp32_gives_up_at_the_timeout_naming_the_status(board_hardware: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    wlan = FakeWLAN([201])
    with pytest.raises(OSError, match=r"wifi 'home': no ap found \(status 201, after \d+ ms\)") as gave_up:
        _wifi(board_hardware, monkeypatch, "esp32", wlan, timeout_ms=300)
    assert wlan.calls[-1] == "disconnect"
    assert int(re.search(r"after (\d+) ms", str(gave_up.value)).group(1)) >= 300  # at the timeout, not before


def test_hardware_wifi_pico_w_stops_at_a_failed_join(board_hardware: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """CYW43 ends a join that failed (cyw43_ctrl.c sets BADAUTH and stops): a failure that lasts
    FAIL_GRACE_MS ends the attempt, with no waiting out the timeout."""
    wlan = FakeWLAN([1, -3])
    with pytest.raises(OSError, match=r"wrong password \(status -3, after \d+ ms\)") as failed:
        _wifi(board_hardware, monkeypatch, "rp2040", wlan, timeout_ms=60000)
    took = int(re.search(r"after (\d+) ms", str(failed.value)).group(1))
    assert GRACE_MS <= took < 5000  # not waited out


def test_hardware_wifi_pico_w_rides_out_a_passing_wrong_password(board_hardware: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """cyw43_ctrl.c: "A good-auth follows a bad-auth, so change the join state back to active"."""
    wlan = FakeWLAN([1, -3, -3, 1, None])
    assert _wifi(board_hardware, monkeypatch, "rp2040", wlan, timeout_ms=60000) == "192.168.1.23"


def test_hardware_wifi_pico_w_joins_again_once_after_no_ap(board_hardware: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """One scan that missed the network says "no AP"; the pico-sdk's connect loop joins again, and
    so does the node, once: the second scan finds it. A network that stays away ends the attempt
    FAIL_GRACE_MS later, not at the timeout."""
    wlan = FakeWLAN([1, -2, 1, None])
    assert _wifi(board_hardware, monkeypatch, "rp2040", wlan, timeout_ms=60000) == "192.168.1.23"
    assert wlan.calls.count("connect") == 2
    monkeypatch.setattr(board_hardware, "_wlan", None)
    wlan = FakeWLAN([1, -2])
    with pytest.raises(OSError, match=r"no ap found \(status -2, after \d+ ms\)"):
        _wifi(board_hardware, monkeypatch, "rp2040", wlan, timeout_ms=60000)
    assert wlan.calls.count("connect") == 2


@pytest.mark.parametrize("pm_none, asked", [(0x10, "pm=0x10"), (None, "pm=0xa11140")], ids=["PM_NONE", "before-1.21"])
def test_hardware_wifi_pico_w_always_on_turns_power_save_off_a_battery_wake_keeps_it(
    board_hardware: Any, monkeypatch: pytest.MonkeyPatch, pm_none: Any, asked: str
) -> None:
    """active(True) puts the CYW43 in its default power save (CYW43_DEFAULT_PM, PM2), in which
    an incoming packet can wait up to ~200 ms: an always-on node asks for none after it, with
    WLAN.PM_NONE where the firmware has it (1.21+) and mqtt_as's 0xA11140 before. A battery
    wake leaves the chip's default."""
    wlan = FakeWLAN([1, None], pm_none=pm_none)
    assert _wifi(board_hardware, monkeypatch, "rp2040", wlan, power_save=False) == "192.168.1.23"
    assert wlan.calls == ["active", "config " + asked, "connect"]
    monkeypatch.setattr(board_hardware, "_wlan", None)  # the next boot, in battery mode
    wlan = FakeWLAN([1, None], pm_none=pm_none)
    assert _wifi(board_hardware, monkeypatch, "rp2040", wlan, power_save=True) == "192.168.1.23"
    assert wlan.calls == ["active", "connect"]


def test_hardware_rp2_deepsleep_powers_wifi_down_caps_the_time_and_is_told_from_a_watchdog(
    board_hardware: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """rp2: deepsleep() is lightsleep() (cut short by a pending WiFi event, at most 2**32 us)
    and a watchdog reboot, after which reset_cause() is WDT_RESET as after a timeout."""
    wlan = FakeWLAN([None])
    slept: List[int] = []
    hardware = board_hardware
    hardware.network.STA_IF = 0
    hardware.network.WLAN = lambda itf: wlan
    hardware.machine.deepsleep = slept.append
    hardware.machine.WDT_RESET, hardware.machine.PWRON_RESET = 3, 1
    hardware.machine.reset_cause = lambda: 3
    monkeypatch.setattr(hardware, "CHIP", "rp2040")
    monkeypatch.setattr(hardware, "SLEPT", str(tmp_path / "slept"))
    hardware.deepsleep(8 * 600 * 1000)  # sleep_s 600, third failed wake
    assert wlan.calls == ["deinit"] and slept == [4294966]
    assert hardware.reset_cause() == "deepsleep"
    assert hardware.reset_cause() == "deepsleep"  # the same all boot, though the note is gone
    monkeypatch.setattr(hardware, "_cause", None)  # the next boot, without deepsleep() before it
    assert hardware.reset_cause() == "watchdog or reset"


def test_hardware_rp2_a_sleep_cut_by_power_loss_leaves_no_note_for_a_later_reset(
    board_hardware: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """deepsleep() wrote its note, then the power went: that boot is a power-on, and the note must
    go with it, or the next reset would read as a wake."""
    hardware = board_hardware
    hardware.machine.WDT_RESET, hardware.machine.PWRON_RESET = 3, 1
    monkeypatch.setattr(hardware, "CHIP", "rp2040")
    monkeypatch.setattr(hardware, "SLEPT", str(tmp_path / "slept"))
    (tmp_path / "slept").write_text("")
    hardware.machine.reset_cause = lambda: 1
    monkeypatch.setattr(hardware, "_cause", None)
    assert hardware.reset_cause() == "power-on"
    hardware.machine.reset_cause = lambda: 3  # then machine.reset(), through the watchdog
    monkeypatch.setattr(hardware, "_cause", None)
    assert hardware.reset_cause() == "watchdog or reset"


BOARD_PIR = '''
import asyncio, micropython
from mqnode import drivers, hardware

pir = drivers.make({"name": "motion", "driver": "pir", "pin": 15}, hardware)
assert type(pir._flag).__name__ == "ThreadSafeFlag", type(pir._flag)
pin = hardware.Pin.made[15]

async def main():
    waiter = asyncio.create_task(pir.changed())
    await asyncio.sleep_ms(20)
    pin.level = 1
    micropython.heap_lock()  # a hard interrupt on a board may not allocate
    try:
        pin.handler(pin)
    finally:
        micropython.heap_unlock()
    print("CHANGED", await asyncio.wait_for_ms(waiter, 2000))

asyncio.run(main())
'''
BOARD_MACHINE = '''
class Pin:
    IN, OUT, IRQ_RISING, IRQ_FALLING = 0, 1, 1, 2
    made = {}

    def __init__(self, n, mode=0, pull=None):
        self.level = 0
        self.handler = None
        Pin.made[n] = self

    def value(self):
        return self.level

    def irq(self, handler=None, trigger=3):
        self.handler = handler

ADC = object
'''


def test_pir_on_a_board_wakes_its_task_from_a_heap_locked_interrupt(tmp_path: Path) -> None:
    """The board's path, in the Unix port: hardware.py (over stand-ins for machine and network)
    gives the PIR a ThreadSafeFlag, its handler runs with the heap locked as a hard IRQ's must,
    and the motion task wakes with the new state."""
    (tmp_path / "machine.py").write_text(BOARD_MACHINE)
    (tmp_path / "network.py").write_text("")
    (tmp_path / "board_pir.py").write_text(BOARD_PIR)
    env = dict(os.environ, MICROPYPATH=os.pathsep.join([str(tmp_path), ".frozen", str(LIB)]))
    result = subprocess.run([micropython_executable(), str(tmp_path / "board_pir.py")], env=env,
                            capture_output=True, text=True, timeout=SCENARIO_TIMEOUT_S)
    assert result.returncode == 0 and result.stdout.strip() == "CHANGED True", result.stdout + result.stderr
