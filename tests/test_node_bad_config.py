"""A bad configuration stops the node with one clear line (the file, the key, what was expected)
and a clean exit, never a traceback or a reset: on a board, a reset would boot-loop and keep the
USB console too busy to fix the file. The safe-mode flag file keeps the app from starting at all.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import List

import pytest

from node_observer import Observer
from sim_node import (  # noqa: F401 (fixtures)
    NodeFactory, NodeProcess, ObserverFactory, firmware_with_board, make_node, observe,
)

EXIT_TIMEOUT_S = 10.0
NOTHING_PUBLISHED_WAIT_S = 0.2  # the process has exited by then; its packets would be here


# id: (config.json text, or None for no file; secrets.json text or None; the file the line names;
# what the line must also say)
CASES = {
    "missing_config": (None, None, "config.json", ["missing", "expected a JSON file"]),
    "invalid_json": ('{"node_id": "x", "broker": {', None, "config.json", ["not valid JSON"]),
    "port_not_integer": ('{"broker": {"host": "127.0.0.1", "port": "x"}}', None, "config.json",
                         ["broker.port", "expected an integer 1..65535", '"x"']),
    "port_out_of_range": ('{"broker": {"host": "127.0.0.1", "port": 70000}}', None, "config.json",
                          ["broker.port", "expected an integer 1..65535", "70000"]),
    "host_missing": ('{"broker": {"port": 1883}}', None, "config.json", ["broker.host", "required"]),
    "broker_not_object": ('{"broker": "127.0.0.1"}', None, "config.json", ["broker", "expected an object"]),
    "bool_for_integer": ('{"broker": {"host": "127.0.0.1"}, "telemetry_s": true}', None, "config.json",
                         ["telemetry_s", "expected a number above 0, at most 86400", "true"]),
    "unknown_key": ('{"broker": {"host": "127.0.0.1"}, "telemetry": 5}', None, "config.json",
                    ["telemetry", "unknown key"]),
    "unknown_nested_key": ('{"broker": {"host": "127.0.0.1", "prot": 1883}}', None, "config.json",
                           ["broker.prot", "unknown key"]),
    "node_id_with_slash": ('{"node_id": "a/b", "broker": {"host": "127.0.0.1"}}', None, "config.json",
                           ["node_id", "expected 1..64 letters, digits, _ or -", '"a/b"']),
    # Home Assistant takes only [a-zA-Z0-9_-] in a discovery topic's node id: the node would run
    # and its entities never appear.
    "node_id_with_dot": ('{"node_id": "kitchen.node", "broker": {"host": "127.0.0.1"}}', None, "config.json",
                         ["node_id", "letters, digits, _ or -", '"kitchen.node"']),
    "empty_host": ('{"broker": {"host": ""}}', None, "config.json", ["broker.host", "expected a non-empty string"]),
    "empty_ssid": ('{"broker": {"host": "127.0.0.1"}, "wifi": {"ssid": ""}}', None, "config.json",
                   ["wifi.ssid", "expected a non-empty string"]),
    # Every real board's only network is WiFi: without an SSID the node used to run, fail every
    # connect and reboot every reboot_after_s, never saying why.
    "no_ssid_on_a_wifi_board": ('{"broker": {"host": "127.0.0.1"}, "board": "esp32-devkitc"}', None, "config.json",
                                ["wifi.ssid", "required on esp32-devkitc (esp32)"]),
    "ca_without_tls": ('{"broker": {"host": "127.0.0.1", "ca": "ca.der"}}', None, "config.json",
                       ["broker.ca", "needs broker.tls true"]),
    # JSON's 1e400 is infinity; a board's tick differences stop at 6.2 days, so a day is the limit.
    "infinite_telemetry": ('{"broker": {"host": "127.0.0.1"}, "telemetry_s": 1e400}', None, "config.json",
                           ["telemetry_s", "at most 86400"]),
    "store_with_battery": ('{"broker": {"host": "127.0.0.1"}, "battery": true, "store": "mqtt.dat"}', None, "config.json",
                           ["store", "not with battery"]),
    "keepalive_above_mqtt": ('{"broker": {"host": "127.0.0.1"}, "keepalive_s": 70000}', None, "config.json",
                             ["keepalive_s", "expected an integer 1..65535", "70000"]),
    "secret_wrong_type": ('{"broker": {"host": "127.0.0.1"}}', '{"broker_password": 5}', "secrets.json",
                          ["broker_password", "expected a string", "5"]),
    "unknown_board": ('{"broker": {"host": "127.0.0.1"}, "board": "nosuch"}', None, "nosuch.json",
                      ["board", "nosuch"]),
    "password_without_user": ('{"broker": {"host": "127.0.0.1"}}', '{"broker_password": "pw"}', "secrets.json",
                              ["broker_password", "needs broker.user"]),
    "missing_ca_file": ('{"broker": {"host": "127.0.0.1", "tls": true, "ca": "nosuch.der"}}', None, "config.json",
                        ["broker.ca", "no file nosuch.der"]),
    "store_in_missing_folder": ('{"broker": {"host": "127.0.0.1"}, "store": "nosuch/mqtt.dat"}', None, "config.json",
                                ["store", "no folder nosuch for nosuch/mqtt.dat"]),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_bad_config_prints_one_clear_line_and_exits_cleanly(case: str, make_node: NodeFactory) -> None:
    config, secrets, fname, says = CASES[case]
    node: NodeProcess = make_node(start=False, config=config)
    if config is None:
        node.config_path.unlink(missing_ok=True)
    if secrets is not None:
        (node.folder / "secrets.json").write_text(secrets)
    node.start()

    code = node.wait_exit(EXIT_TIMEOUT_S)

    out, err = node.stdout(), node.errors()
    assert "Traceback" not in out + err
    assert err == ""
    assert code == 0  # not 78 (reset) or 77 (deep sleep): nothing would start it again
    naming: List[str] = [line for line in out.splitlines() if fname in line]
    assert len(naming) == 1, out
    for words in says:
        assert words in naming[0], naming[0]


def test_config_error_publishes_nothing(make_node: NodeFactory, observe: ObserverFactory) -> None:
    """The broker in the file is reachable, but a node with one bad key does not half-start."""
    node = make_node(start=False, telemetry=1)  # misspelt telemetry_s; the rest is good
    live: Observer = observe(["mqnode/%s/#" % node.node_id, "homeassistant/+/%s/#" % node.node_id])
    node.start()

    assert node.wait_exit(EXIT_TIMEOUT_S) == 0
    assert "telemetry: unknown key" in node.stdout()
    time.sleep(NOTHING_PUBLISHED_WAIT_S)
    assert live.messages() == [], live.summary()


def test_safemode_flag_file_skips_the_app_with_a_message(make_node: NodeFactory, observe: ObserverFactory) -> None:
    node = make_node(start=False)
    live: Observer = observe(["mqnode/%s/#" % node.node_id])
    (node.folder / "safemode").write_text("")
    node.start()

    assert node.wait_exit(EXIT_TIMEOUT_S) == 0
    out = node.stdout()
    assert "safe mode" in out and str(node.folder / "safemode") in out, out
    assert "Traceback" not in out + node.errors()
    time.sleep(NOTHING_PUBLISHED_WAIT_S)
    assert live.messages() == [], live.summary()



def test_unknown_key_line_says_what_was_expected(make_node: NodeFactory) -> None:
    node = make_node(start=False, config='{"broker": {"host": "127.0.0.1"}, "telemetry": 5}')
    node.start()
    assert node.wait_exit(EXIT_TIMEOUT_S) == 0
    (line,) = [line for line in node.stdout().splitlines() if "config.json" in line]
    assert "telemetry_s" in line, line  # the near miss is among the keys it lists


# id: (the board file's text, what the line must also say)
BOARD_CASES = {
    "part_without_pin": ('{"name": "bad", "chip": "sim", "sensors": [{"name": "motion", "driver": "pir"}]}',
                         ["motion: no 'pin', which the pir driver needs"]),
    "bus_without_scl": ('{"name": "bad", "chip": "sim", "sensors": [{"name": "air", "driver": "bme280", '
                        '"i2c": {"bus": 0, "sda": 8}}]}', ["air: no 'scl', which the bme280 driver needs"]),
    "unknown_driver": ('{"name": "bad", "chip": "sim", "sensors": [{"name": "t", "driver": "nosuch"}]}',
                       ["t: no driver named 'nosuch'"]),
    "no_chip": ('{"name": "bad", "sensors": []}', ["chip: required"]),
    "bad_part_name": ('{"name": "bad", "chip": "sim", "switches": [{"name": "a/b", "driver": "relay", "pin": 16}]}',
                      ["'a/b'", "letters, digits, _ or -"]),
}


@pytest.mark.parametrize("case", list(BOARD_CASES), ids=list(BOARD_CASES))
def test_bad_board_file_prints_one_line_naming_the_file_and_the_part(
    case: str, make_node: NodeFactory, tmp_path: Path
) -> None:
    """A board file is configuration too: a part missing a pin, an unknown driver, no chip."""
    text, says = BOARD_CASES[case]
    main = firmware_with_board(tmp_path / "fw", "bad", text)
    node: NodeProcess = make_node(start=False)
    config = json.loads(node.config_path.read_text())
    node.write_config(dict(config, board="bad"))
    node.start(main=main)

    assert node.wait_exit(EXIT_TIMEOUT_S) == 0
    out = node.stdout()
    assert "Traceback" not in out + node.errors(), out
    (line,) = [line for line in out.splitlines() if "bad.json" in line]
    assert "configuration error" in line, line
    for words in says:
        assert words in line, line
