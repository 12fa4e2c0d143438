"""`mqnode provision`: config.json and secrets.json from flags (or prompts), checked by the node's
own rules (lib/mqnode/config.py), written to the virtual board or a folder; values the node would
refuse are refused with nothing written, passwords never show in the output, and a person who
takes longer to answer than the node's watchdog allows does not get the board reset under them."""
from __future__ import annotations

import json
import stat
import time
from pathlib import Path
from typing import Any, Dict, List

import pytest

from broker import Broker
from mqnode_tools import node_config
from mqnode_tools.cli import main
from runtime import REPO
from virtual_board import START_TIMEOUT_S, VirtualBoard, mpremote, virtual_board  # noqa: F401 (fixture)

BROKER_PASSWORD = "s3cret-broker-pw"
WIFI_PASSWORD = "s3cret-wifi-pw"
FLAGS = ["--node-id", "kitchen", "--board", "sim", "--broker", "10.0.0.5:1884", "--user", "node",
         "--wifi-ssid", "home", "--telemetry", "15", "--keepalive", "20", "--prefix", "house",
         "--no-discovery", "--battery", "--sleep", "600", "--no-input"]


@pytest.fixture
def passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MQNODE_BROKER_PASSWORD", BROKER_PASSWORD)
    monkeypatch.setenv("MQNODE_WIFI_PASSWORD", WIFI_PASSWORD)


def expect_flags(settings: Dict[str, Any]) -> None:
    """The node's view of FLAGS, as config.load gives it to the node at boot."""
    assert settings["node_id"] == "kitchen" and settings["board"] == "sim" and settings["prefix"] == "house"
    assert (settings["broker.host"], settings["broker.port"], settings["broker.user"]) == ("10.0.0.5", 1884, "node")
    assert settings["wifi.ssid"] == "home"
    assert (settings["telemetry_s"], settings["keepalive_s"], settings["sleep_s"]) == (15, 20, 600)
    assert settings["discovery"] is False and settings["battery"] is True
    assert settings["broker_password"] == BROKER_PASSWORD and settings["wifi_password"] == WIFI_PASSWORD


def test_out_round_trips_through_the_node_rules(passwords: None, tmp_path: Path,
                                                capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "node1"
    assert main(["provision", "--out", str(out), *FLAGS]) == 0
    printed = capsys.readouterr()
    expect_flags(node_config.check_files(out / "config.json", out / "secrets.json"))
    assert stat.S_IMODE((out / "secrets.json").stat().st_mode) == 0o600
    assert BROKER_PASSWORD not in printed.out + printed.err and WIFI_PASSWORD not in printed.out + printed.err
    assert BROKER_PASSWORD not in (out / "config.json").read_text()  # passwords only in secrets.json


def test_a_telemetry_period_below_a_second_is_taken_as_the_node_takes_it(tmp_path: Path) -> None:
    """The node takes 0.5 (telemetry_s is a number); provision refused it as no integer."""
    out = tmp_path / "fast"
    assert main(["provision", "--out", str(out), "--board", "sim", "--broker", "h", "--telemetry", "0.5",
                 "--no-input"]) == 0
    assert json.loads((out / "config.json").read_text())["telemetry_s"] == 0.5
    assert main(["provision", "--out", str(out), "--board", "sim", "--broker", "h", "--telemetry", "5",
                 "--no-input"]) == 0
    assert '"telemetry_s": 5\n' in (out / "config.json").read_text()  # 5, as written, not 5.0


def test_port_round_trips_through_the_boards_files(passwords: None, virtual_board: VirtualBoard,
                                                   tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["provision", "--port", virtual_board.port, *FLAGS]) == 0
    printed = capsys.readouterr()
    assert BROKER_PASSWORD not in printed.out + printed.err
    # read back as a host tool would, through mpremote, and check as the node would
    back = tmp_path / "back"
    back.mkdir()
    for name in ("config.json", "secrets.json"):
        result = mpremote(virtual_board, "resume", "fs", "cp", ":" + name, str(back / name))
        assert result.returncode == 0, result.stderr
    expect_flags(node_config.check_files(back / "config.json", back / "secrets.json"))
    assert virtual_board.boots[-1] == "soft-friendly"  # reset so the node starts with them


def test_the_board_is_taken_from_the_board(virtual_board: VirtualBoard, capsys: pytest.CaptureFixture) -> None:
    """With --port and no --board, the one board file deploy left in /boards/ says which."""
    (virtual_board.root / "boards").mkdir()
    (virtual_board.root / "boards" / "pico-w.json").write_bytes((REPO / "boards" / "pico-w.json").read_bytes())
    assert main(["provision", "--port", virtual_board.port, "--broker", "mqtt.lan", "--no-input", "--no-reset"]) == 0
    config = json.loads((virtual_board.root / "config.json").read_text())
    assert config == {"board": "pico-w", "broker": {"host": "mqtt.lan"}}
    assert json.loads((virtual_board.root / "secrets.json").read_text()) == {}


@pytest.mark.parametrize("argv, reason", [
    (["--board", "sim", "--broker", "h", "--telemetry", "0"], "telemetry_s: expected a number above 0, at most 86400, got 0"),
    (["--board", "sim", "--broker", "h", "--node-id", "a/b"], "node_id: expected 1..64 letters, digits, _ or -"),
    (["--board", "sim", "--broker", "h:70000"], "broker.port: expected an integer 1..65535, got 70000"),
    (["--board", "sim", "--broker", "h", "--prefix", "x" * 65], "prefix: expected a name"),
    (["--board", "no-such-board", "--broker", "h"], "board 'no-such-board': no file"),
])
def test_a_value_the_node_would_refuse_writes_nothing(
        argv: List[str], reason: str, virtual_board: VirtualBoard, tmp_path: Path,
        capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "out"
    assert main(["provision", "--out", str(out), "--no-input", *argv]) == 2
    assert reason in capsys.readouterr().err
    assert not out.exists()
    assert main(["provision", "--port", virtual_board.port, "--no-input", *argv]) == 2
    assert reason in capsys.readouterr().err
    assert not (virtual_board.root / "config.json").exists() and not (virtual_board.root / "secrets.json").exists()


def test_missing_broker_without_a_terminal_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["provision", "--out", str(tmp_path / "o"), "--board", "sim", "--no-input"]) == 2
    assert "--broker is required" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_prompts_ask_without_echo_and_never_print_the_password(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    asked = []
    monkeypatch.delenv("MQNODE_BROKER_PASSWORD", raising=False)
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda q: asked.append(q) or "broker.lan:1883")
    monkeypatch.setattr("getpass.getpass", lambda q: asked.append(q) or BROKER_PASSWORD)
    out = tmp_path / "o"
    assert main(["provision", "--out", str(out), "--board", "sim", "--user", "node"]) == 0
    assert asked == ["broker host[:port]: ", "broker password for node: "]
    printed = capsys.readouterr()
    assert BROKER_PASSWORD not in printed.out + printed.err
    settings = node_config.check_files(out / "config.json", out / "secrets.json")
    assert settings["broker_password"] == BROKER_PASSWORD and settings["broker.host"] == "broker.lan"


def test_a_slow_answer_on_a_board_whose_node_runs_a_watchdog(
        tmp_path: Path, broker: Broker, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    """Provision interrupts the node and then waits for a person; the node's watchdog (cut to
    2.5 s here, 8 s on a board) does not: without safe mode the board resets into the node while
    the WiFi password is typed, and the files never get written."""
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"node_id": "slow", "board": "sim",
                                  "broker": {"host": broker.host, "port": broker.port}}))
    with VirtualBoard(tmp_path / "board", watchdog_ms=2500) as board:
        assert board.wait_output(b">>> ", START_TIMEOUT_S), board.report()
        assert main(["deploy", "--port", board.port, "--config", str(config), "--broker",
                     "%s:%d" % (broker.host, broker.port), "--wait-online", "20"]) == 0, board.report()
        monkeypatch.delenv("MQNODE_WIFI_PASSWORD", raising=False)
        monkeypatch.setattr("sys.stdin.isatty", lambda: True)
        monkeypatch.setattr("getpass.getpass", lambda q: time.sleep(3.5) or WIFI_PASSWORD)
        capsys.readouterr()
        since = len(board.boots)
        status = main(["provision", "--port", board.port, "--node-id", "slow", "--board", "sim",
                       "--broker", "%s:%d" % (broker.host, broker.port), "--wifi-ssid", "home"])
        printed = capsys.readouterr()
        assert status == 0, printed.out + printed.err + board.report()
        assert "watchdog" not in board.boots, board.report()
        settings = node_config.check_files(board.root / "config.json", board.root / "secrets.json")
        assert settings["wifi.ssid"] == "home" and settings["wifi_password"] == WIFI_PASSWORD
        assert not (board.root / "safemode").exists()
        assert "safe mode off" in printed.out, printed.out
        assert board.wait_boot("soft-friendly", since, START_TIMEOUT_S), board.report()  # the node starts


def test_ctrl_c_at_a_question_says_the_board_stays_in_safe_mode(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    """Provision holds the node in safe mode before its first question; Ctrl-C there ends the job
    (130) and must say where the board is left, or the node stays off after every reset with
    nothing telling why."""
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"node_id": "held", "board": "sim", "broker": {"host": "127.0.0.1"}}))
    with VirtualBoard(tmp_path / "board") as board:
        assert board.wait_output(b">>> ", START_TIMEOUT_S), board.report()
        assert main(["deploy", "--port", board.port, "--config", str(config), "--no-reset"]) == 0, board.report()
        monkeypatch.delenv("MQNODE_WIFI_PASSWORD", raising=False)
        monkeypatch.setattr("sys.stdin.isatty", lambda: True)

        def interrupted(question: str) -> str:
            raise KeyboardInterrupt

        monkeypatch.setattr("getpass.getpass", interrupted)
        capsys.readouterr()
        status = main(["provision", "--port", board.port, "--node-id", "held", "--board", "sim",
                       "--broker", "127.0.0.1", "--wifi-ssid", "home"])
        err = capsys.readouterr().err
        assert status == 130
        assert "mqnode provision: interrupted (the board stays in safe mode, the node off" in err, err
        assert (board.root / "safemode").exists()
