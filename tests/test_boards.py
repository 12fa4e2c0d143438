"""Every board description in boards/ is one a node can start on and a flasher can flash.

A board file is read by the host tools (chip, firmware, flash method and offset) and by the node
(which drivers on which pins), so a mistake in one is a board that bricks on flashing, a relay on a
pin that cannot drive, or two parts fighting over one wire. The pin rules below are the chips'
datasheets and the dev boards' user guides, reduced to tables.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List, Set, Tuple

import pytest

from runtime import LIB, REPO

BOARDS = sorted((REPO / "boards").glob("*.json"))
DRIVER_DIR = LIB / "mqnode" / "drivers"

if str(LIB) not in sys.path:
    sys.path.insert(0, str(LIB))

# MicroPython's board names (firmware family) and how each family is flashed. The offsets are
# MicroPython's own board.json values: the classic ESP32's bootloader sits at 0x1000, the newer
# chips' at 0x0.
CHIPS: Dict[str, Dict[str, Any]] = {
    "esp32": {"firmware": {"ESP32_GENERIC"}, "flash": {"method": "esptool", "offset": "0x1000"}},
    "esp32c3": {"firmware": {"ESP32_GENERIC_C3"}, "flash": {"method": "esptool", "offset": "0x0"}},
    "esp32s3": {"firmware": {"ESP32_GENERIC_S3"}, "flash": {"method": "esptool", "offset": "0x0"}},
    "rp2040": {"firmware": {"RPI_PICO_W"}, "flash": {"method": "uf2"}},
    "sim": {"firmware": {"unix"}, "flash": {"method": "none"}},
}

# GPIO numbers that exist on each chip, and why some of them are off limits for wiring parts.
PINS: Dict[str, Set[int]] = {
    "esp32": set(range(40)) - {20, 24, 28, 29, 30, 31},  # no such pads on the ESP32
    "esp32c3": set(range(22)),
    "esp32s3": set(range(49)) - {22, 23, 24, 25},
    "rp2040": set(range(30)),
}
RESERVED: Dict[str, Dict[int, str]] = {
    "esp32": {
        **{p: "SPI flash" for p in range(6, 12)},
        1: "UART0 TX (REPL)", 3: "UART0 RX (REPL)",
        16: "PSRAM on WROVER modules", 17: "PSRAM on WROVER modules",
    },
    "esp32c3": {
        **{p: "SPI flash (ESP32-C3-MINI-1)" for p in range(11, 18)},
        18: "USB D-", 19: "USB D+", 20: "UART0 RX (REPL)", 21: "UART0 TX (REPL)",
    },
    "esp32s3": {
        **{p: "SPI flash / PSRAM" for p in range(26, 33)},
        **{p: "octal flash / PSRAM on N8R8, N16R8 and WROOM-2 modules" for p in range(33, 38)},
        19: "USB D-", 20: "USB D+", 43: "UART0 TX (REPL)", 44: "UART0 RX (REPL)",
    },
    "rp2040": {23: "WiFi chip (Pico W)", 24: "WiFi chip (Pico W)", 25: "WiFi chip (Pico W)",
               29: "WiFi chip / VSYS sense (Pico W)"},
}
# Strapping pins decide the boot mode from their level at reset: a part that pulls one the wrong
# way stops the board from booting. The board's own BOOT button and LED live there by design, so
# the rule covers wired parts only.
STRAPPING: Dict[str, Set[int]] = {"esp32": {0, 2, 5, 12, 15}, "esp32c3": {2, 8, 9}, "esp32s3": {0, 3, 45, 46}}
INPUT_ONLY: Dict[str, Set[int]] = {"esp32": {34, 35, 36, 37, 38, 39}}
I2C_BUSES: Dict[str, Set[int]] = {"esp32": {0, 1}, "esp32c3": {0}, "esp32s3": {0, 1}, "rp2040": {0, 1}}
# The RP2040 routes each I2C controller to fixed pins (datasheet 1.4.3, GPIO functions).
RP2040_I2C = {0: ({0, 4, 8, 12, 16, 20, 24, 28}, {1, 5, 9, 13, 17, 21, 25, 29}),
              1: ({2, 6, 10, 14, 18, 22, 26}, {3, 7, 11, 15, 19, 23, 27})}

# Per driver: the list it belongs in, its required and optional keys (beyond name and driver),
# the object ids its fields get, and how it uses each pin ("in" or "drive": outputs and the
# open-drain data lines of 1-Wire, DHT and I2C alike need an output driver).
DRIVERS: Dict[str, Dict[str, Any]] = {
    "ds18b20": {"list": "sensors", "required": {"pin": int}, "optional": {"rom": str},
                "fields": [""], "pins": {"pin": "drive"}},
    "dht": {"list": "sensors", "required": {"pin": int}, "optional": {"model": str},
            "fields": ["_temperature", "_humidity"], "pins": {"pin": "drive"}},
    "bme280": {"list": "sensors", "required": {"i2c": dict}, "optional": {"address": str},
               "fields": ["_temperature", "_humidity", "_pressure"], "pins": {}},
    "internal_temp": {"list": "sensors", "required": {}, "optional": {"adc": int}, "fields": [""], "pins": {}},
    "pir": {"list": "sensors", "required": {"pin": int}, "optional": {"active_low": bool, "debounce_ms": int},
            "fields": [""], "pins": {"pin": "in"}},
    "relay": {"list": "switches", "required": {"pin": int}, "optional": {"active_low": bool},
              "fields": [""], "pins": {"pin": "drive"}},
}
TOP_KEYS = {"name": str, "chip": str, "description": str, "firmware": str, "flash": dict,
            "sensors": list, "switches": list}
OPTIONAL_TOP_KEYS = {"safe_mode_pin": int, "status_led": dict}
OBJECT_ID = re.compile(r"^[a-z][a-z0-9_]*$")  # Home Assistant object ids and MQTT topic levels


def load(path: Path) -> Dict[str, Any]:
    return json.loads(path.read_text())


def board_id(path: Path) -> str:
    return path.stem


def parts(board: Dict[str, Any]) -> Iterator[Tuple[str, Dict[str, Any]]]:
    for key in ("sensors", "switches"):
        for spec in board.get(key, []):
            yield key, spec


def pin_uses(board: Dict[str, Any]) -> List[Tuple[Any, str, str]]:
    """(pin, "in" | "drive", who) for every pin the board uses; an I2C bus counts once however
    many parts share it."""
    uses: List[Tuple[Any, str, str]] = []
    buses: Dict[int, Tuple[int, int]] = {}
    for _, spec in parts(board):
        rules = DRIVERS.get(spec.get("driver"), {"pins": {}})
        for key, how in rules["pins"].items():
            uses.append((spec[key], how, spec["name"]))
        if "i2c" in spec:
            bus = spec["i2c"]
            if bus["bus"] not in buses:
                buses[bus["bus"]] = (bus["sda"], bus["scl"])
                uses.append((bus["sda"], "drive", "i2c%d sda" % bus["bus"]))
                uses.append((bus["scl"], "drive", "i2c%d scl" % bus["bus"]))
    if "safe_mode_pin" in board:
        uses.append((board["safe_mode_pin"], "in", "safe_mode_pin"))
    if "status_led" in board:
        uses.append((board["status_led"]["pin"], "drive", "status_led"))
    return uses


def test_there_is_a_board_per_supported_chip() -> None:
    chips = {load(p)["chip"] for p in BOARDS}
    assert chips >= set(CHIPS), "no board file for %s" % sorted(set(CHIPS) - chips)


@pytest.mark.parametrize("path", BOARDS, ids=board_id)
def test_board_file_has_the_schema(path: Path) -> None:
    board = load(path)
    for key, kind in TOP_KEYS.items():
        assert isinstance(board.get(key), kind), "%s: %r must be a %s" % (path.name, key, kind.__name__)
    for key, kind in OPTIONAL_TOP_KEYS.items():
        if key in board:
            assert isinstance(board[key], kind) and not isinstance(board[key], bool), "%s: %s" % (path.name, key)
    unknown = set(board) - set(TOP_KEYS) - set(OPTIONAL_TOP_KEYS)
    assert not unknown, "%s: unknown keys %s" % (path.name, sorted(unknown))
    assert board["name"] == path.stem, "the name is what config.json's 'board' names: keep it the file's"
    assert board["chip"] in CHIPS, board["chip"]
    if "status_led" in board:
        led = board["status_led"]
        assert set(led) <= {"pin", "kind", "active_low"} and led.get("kind") in ("gpio", "ws2812"), led
        # The Pico W's LED hangs off the WiFi chip, reachable only as Pin("LED").
        assert isinstance(led["pin"], int) or (board["chip"] == "rp2040" and led["pin"] == "LED"), led


@pytest.mark.parametrize("path", BOARDS, ids=board_id)
def test_firmware_and_flash_method_match_the_chip_family(path: Path) -> None:
    board = load(path)
    family = CHIPS[board["chip"]]
    assert board["firmware"] in family["firmware"], "%s firmware %r" % (board["chip"], board["firmware"])
    assert board["flash"] == family["flash"], \
        "%s flash %r, expected %r" % (board["chip"], board["flash"], family["flash"])


@pytest.mark.parametrize("path", BOARDS, ids=board_id)
def test_every_part_names_a_driver_that_exists_with_the_keys_it_reads(path: Path) -> None:
    board = load(path)
    object_ids: List[str] = []
    for key, spec in parts(board):
        driver = spec.get("driver")
        assert isinstance(driver, str) and (DRIVER_DIR / (driver + ".py")).is_file(), \
            "%s: %r has no driver module %s.py" % (path.name, spec.get("name"), driver)
        rules = DRIVERS.get(driver)
        assert rules is not None, "%s: driver %r: add its keys to DRIVERS here" % (path.name, driver)
        assert key == rules["list"], "%s: %s belongs in %r" % (path.name, spec["name"], rules["list"])
        assert isinstance(spec.get("name"), str) and OBJECT_ID.match(spec["name"]), spec.get("name")
        for k, kind in rules["required"].items():
            assert isinstance(spec.get(k), kind), \
                "%s: %s needs %r (%s)" % (path.name, spec["name"], k, kind.__name__)
        for k, kind in rules["optional"].items():
            if k in spec:
                assert isinstance(spec[k], kind), \
                    "%s: %s.%s must be a %s" % (path.name, spec["name"], k, kind.__name__)
        unknown = set(spec) - {"name", "driver"} - set(rules["required"]) - set(rules["optional"])
        assert not unknown, "%s: %s has unknown keys %s (a typo?)" % (path.name, spec["name"], sorted(unknown))
        object_ids += [spec["name"] + suffix for suffix in rules["fields"]]
        if driver == "bme280":
            assert set(spec["i2c"]) <= {"bus", "sda", "scl", "freq"} and {"bus", "sda", "scl"} <= set(spec["i2c"])
            assert spec.get("address", "0x76") in ("0x76", "0x77")
        if driver == "dht":
            assert spec.get("model", "dht22") in ("dht22", "dht11")
        if driver == "internal_temp":
            assert board["chip"] != "esp32", "the classic ESP32 has no internal temperature sensor in MicroPython"
            if board["chip"] == "rp2040":
                assert spec.get("adc", 4) == 4, "the RP2040's temperature sensor is ADC channel 4"
    dupes = sorted({o for o in object_ids if object_ids.count(o) > 1})
    assert not dupes, "%s: entities named twice: %s" % (path.name, dupes)


@pytest.mark.parametrize("path", BOARDS, ids=board_id)
def test_pins_exist_are_free_and_fit_their_use(path: Path) -> None:
    board = load(path)
    chip = board["chip"]
    uses = pin_uses(board)
    for pin, how, who in uses:
        if pin == "LED" and who == "status_led":
            continue
        assert isinstance(pin, int) and not isinstance(pin, bool) and pin >= 0, \
            "%s: %s pin %r" % (path.name, who, pin)
        if chip == "sim":
            continue
        assert pin in PINS[chip], "%s: %s on GPIO%d, which the %s does not have" % (path.name, who, pin, chip)
        assert pin not in RESERVED[chip], "%s: %s on GPIO%d: %s" % (path.name, who, pin, RESERVED[chip][pin])
        if how == "drive":
            assert pin not in INPUT_ONLY.get(chip, set()), \
                "%s: %s needs to drive GPIO%d, which is input-only" % (path.name, who, pin)
        if who not in ("safe_mode_pin", "status_led"):
            assert pin not in STRAPPING.get(chip, set()), "%s: %s on strapping pin GPIO%d" % (path.name, who, pin)
    pins = [pin for pin, _, _ in uses]
    twice = sorted({str(p) for p in pins if pins.count(p) > 1})
    assert not twice, "%s: pins used twice: %s (%s)" % (path.name, twice, uses)


def check_i2c(name: str, board: Dict[str, Any]) -> None:
    chip = board["chip"]
    seen: Dict[int, Tuple[int, int]] = {}
    for _, spec in parts(board):
        if "i2c" not in spec:
            continue
        bus = spec["i2c"]
        pins = (bus["sda"], bus["scl"])
        assert seen.setdefault(bus["bus"], pins) == pins, "%s: i2c%d on two pin pairs" % (name, bus["bus"])
        if chip != "sim":
            assert bus["bus"] in I2C_BUSES[chip], \
                "%s: the %s has no I2C controller %d" % (name, chip, bus["bus"])
        if chip == "rp2040":
            sda, scl = RP2040_I2C[bus["bus"]]
            assert bus["sda"] in sda and bus["scl"] in scl, \
                "%s: I2C%d cannot use GP%d/GP%d" % (name, bus["bus"], *pins)


@pytest.mark.parametrize("path", BOARDS, ids=board_id)
def test_i2c_buses_exist_and_are_wired_consistently(path: Path) -> None:
    check_i2c(path.name, load(path))


def _rp2040_with_bme280(bus: int, sda: int, scl: int) -> Dict[str, Any]:
    return {"chip": "rp2040", "sensors": [
        {"name": "air", "driver": "bme280", "i2c": {"bus": bus, "sda": sda, "scl": scl}}]}


def test_i2c_check_knows_the_rp2040s_pin_pairs() -> None:
    """No board file wires I2C on an RP2040 yet, so the check's RP2040 table is held to the
    datasheet's pin functions here: I2C0 on GP4/GP5 is fine, on GP2/GP3 (I2C1's) it is not."""
    check_i2c("made-up", _rp2040_with_bme280(0, 4, 5))
    check_i2c("made-up", _rp2040_with_bme280(1, 2, 3))
    with pytest.raises(AssertionError, match="cannot use GP2/GP3"):
        check_i2c("made-up", _rp2040_with_bme280(0, 2, 3))


@pytest.mark.parametrize("path", BOARDS, ids=board_id)
def test_every_part_starts_on_the_simulated_hardware(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The board's specs go through the drivers' make() as they would on the board: the keys a
    driver reads are there, and each part lands in the component its list says."""
    from mqnode import drivers
    from mqnode import hardware_sim

    monkeypatch.setattr(hardware_sim, "parts", {})  # this board's buses only, not another test's
    expected = {"sensors": ("sensor", "binary_sensor"), "switches": ("switch",)}
    for key, spec in parts(load(path)):
        part = drivers.make(spec, hardware_sim)
        assert part.component in expected[key], "%s: %s is a %s" % (path.name, spec["name"], part.component)
