"""A board on a serial port, through mpremote's own transport (its raw REPL and file calls).

One open port for a whole command: `mpremote` the CLI re-opens the port and soft-resets for
every invocation, and deploy needs a dozen steps. What mpremote already does (raw REPL, raw-paste,
chunked file writes and reads) is called, not redone; what is added is a few board-side
snippets that do in one round trip what would take one per file (hashing a tree).
"""
from __future__ import annotations

import ast
import contextlib
import io
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Optional

from mpremote.transport import TransportError, TransportExecError
from mpremote.transport_serial import SerialTransport
from serial import SerialException

from mqnode_tools.serial_port import PortError, resolve, why_not_open

# pyserial's read timeout: without one, a board that stops answering blocks mpremote for ever
READ_TIMEOUT_S = 10.0
RESET_TIMEOUT_S = 10.0
WRITE_CHUNK = 512  # bytes per exec when writing a file (mpremote's default is 256)
# After machine.reset(): an ESP32 boots in 1-2 s; a board with its own USB (RP2040, ESP32-S3) is
# off the bus meanwhile and its port comes back when it has booted and enumerated again.
REBOOT_TIMEOUT_S = 20.0
REBOOT_POLL_S = 0.25
REBOOT_ATTEMPTS = int(REBOOT_TIMEOUT_S / REBOOT_POLL_S)
REPL_ATTEMPT_S = 2.0  # one try at the raw REPL; a board still booting may lose the Ctrl-A
RESET_MARK = "_mqnode_before_reset"  # a global only a board that did not reset still has

PROBE = """\
import sys, os
try:
    _m = os.uname().machine
except Exception:
    _m = sys.platform
print(repr((getattr(sys.implementation, '_mpy', None), tuple(sys.implementation.version[:3]), sys.platform, _m)))
del _m
"""

# sha256 of every file under DIRS and of each path in FILES (None: missing), in one round trip
HASHES = """\
import os
def _sha(p):
    import hashlib, binascii
    try:
        f = open(p, 'rb')
    except OSError:
        return None
    h = hashlib.sha256()
    b = bytearray(512)
    m = memoryview(b)
    with f:
        while True:
            n = f.readinto(b)
            if not n:
                break
            h.update(m[:n])
    return binascii.hexlify(h.digest()).decode()
def _walk(d, out):
    try:
        es = list(os.ilistdir(d))
    except OSError:
        return
    for e in es:
        p = d + '/' + e[0]
        if e[1] & 0x4000:
            _walk(p, out)
        else:
            out.append(p)
_ps = list(%(files)r)
for _d in %(dirs)r:
    _walk(_d, _ps)
print(repr(dict((p, _sha(p)) for p in _ps)))
del _sha, _walk, _ps
"""

MKDIRS = """\
import os
for _d in %r:
    try:
        os.mkdir(_d)
    except OSError:
        pass
"""


class BoardError(RuntimeError):
    """The port could not be opened, or the board did not answer as MicroPython does."""


@dataclass(frozen=True)
class BoardInfo:
    mpy: Optional[int]  # sys.implementation._mpy
    version: str  # "1.24.1"
    platform: str  # sys.platform: esp32, rp2, linux
    machine: str  # os.uname().machine, e.g. "Generic ESP32 module with ESP32"


class BoardLink:
    def __init__(self, port: str, soft_reset: bool = True) -> None:
        """Opens the port and stops whatever runs (Ctrl-C) for the raw REPL; with `soft_reset`,
        from a clean interpreter (boot.py runs again, main.py does not) so the node's RAM is free.
        port "auto": the one USB serial port there is (serial_port.resolve)."""
        try:
            self.port = port = resolve(port)
        except PortError as e:
            raise BoardError(str(e))
        try:
            self.transport = _open(port)
        except TransportError as e:
            raise BoardError("%s: %s" % (port, why_not_open(port, str(e))))
        try:
            self.transport.enter_raw_repl(soft_reset=soft_reset)
        except TransportError as e:
            _close(self.transport)
            raise BoardError("%s: no MicroPython raw REPL (%s)" % (port, e))
        except OSError as e:
            # The port went away under us: the board reset while we connected (its node's
            # watchdog, which stops being fed at our Ctrl-C, or a button). Once it is back, again.
            _close(self.transport)
            self.transport = self._reconnect(time.monotonic(), str(e), soft_reset)

    def _reconnect(self, started: float, problem: str, soft_reset: bool) -> SerialTransport:
        """The port opened again and in the raw REPL, tried until REBOOT_TIMEOUT_S after `started`."""
        deadline = started + REBOOT_TIMEOUT_S
        transport: Optional[SerialTransport] = None
        for _ in range(REBOOT_ATTEMPTS):
            if time.monotonic() > deadline:
                break
            time.sleep(REBOOT_POLL_S)
            try:
                transport = transport or _open(self.port)
                with contextlib.redirect_stdout(io.StringIO()):  # mpremote prints what it got instead
                    transport.enter_raw_repl(soft_reset=soft_reset, timeout_overall=REPL_ATTEMPT_S)
            except TransportError as e:  # open but no raw REPL yet (still booting): try again
                problem = str(e)
            except OSError as e:  # the port went away under us: open it again
                problem = str(e)
                _close(transport)
                transport = None
            else:
                return transport
        if transport is not None:
            _close(transport)
        raise BoardError("%s: the board was not back within %.0f s (%s)" % (self.port, REBOOT_TIMEOUT_S, problem))

    def close(self) -> None:
        try:
            if self.transport.in_raw_repl:
                self.transport.exit_raw_repl()
        except (TransportError, OSError):
            pass  # a port that went away: closing is all there is left to do
        _close(self.transport)

    def __enter__(self) -> "BoardLink":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def exec(self, code: str) -> bytes:
        try:
            return self.transport.exec(code)
        except TransportExecError as e:
            raise BoardError("the board said: %s" % e.error_output.strip().splitlines()[-1])
        except (TransportError, OSError) as e:  # OSError: pyserial's, a port that went away
            raise BoardError("%s: %s" % (self.port, e))

    def eval_output(self, code: str) -> Any:
        """Run code that prints one Python literal, and return it."""
        return ast.literal_eval(self.exec(code).decode().strip())

    def info(self) -> BoardInfo:
        mpy, version, platform, machine = self.eval_output(PROBE)
        return BoardInfo(mpy, ".".join(str(n) for n in version), platform, machine)

    def hashes(self, dirs: Iterable[str], files: Iterable[str]) -> Dict[str, Optional[str]]:
        """{path: sha256 hex or None if missing} for every file under `dirs` and for `files`.
        Raises BoardError if the board cannot hash (no hashlib.sha256)."""
        return self.eval_output(HASHES % {"dirs": list(dirs), "files": list(files)})

    def makedirs(self, dirs: Iterable[str]) -> None:
        """Each folder in order (parents first); existing ones are fine."""
        self.exec(MKDIRS % list(dirs))

    def write(self, path: str, data: bytes, progress: Optional[Callable[[int, int], None]] = None) -> None:
        try:
            self.transport.fs_writefile(path, data, chunk_size=WRITE_CHUNK, progress_callback=progress)
        except (TransportError, OSError) as e:
            raise BoardError("writing %s: %s" % (path, e))

    def read(self, path: str) -> Optional[bytes]:
        """The file's bytes, or None if it does not exist."""
        try:
            return bytes(self.transport.fs_readfile(path))
        except SerialException as e:  # an OSError too, but the port's, not the board's "no file"
            raise BoardError("reading %s: %s" % (path, e))
        except OSError:
            return None
        except TransportError as e:
            raise BoardError("reading %s: %s" % (path, e))

    def remove(self, paths: List[str]) -> None:
        if paths:
            self.exec("import os\nfor _p in %r:\n    os.remove(_p)\n" % paths)

    def drain(self) -> bytes:
        """Whatever the board printed that has not been read yet (never waits)."""
        try:
            waiting = self.transport.serial.in_waiting
            return self.transport.serial.read(waiting) if waiting else b""
        except OSError:
            return b""

    def soft_reset(self) -> None:
        """Ctrl-D at the friendly REPL: a soft reset that runs boot.py and then main.py (mpremote's
        own soft-reset, from the raw REPL, skips main.py). The port stays usable afterwards."""
        try:
            if self.transport.in_raw_repl:
                self.transport.exit_raw_repl()
            self.transport.serial.write(b"\x04")
            seen = self.transport.read_until(1, b"soft reboot\r\n", timeout=RESET_TIMEOUT_S)
        except (TransportError, OSError) as e:
            raise BoardError("%s: soft reset: %s" % (self.port, e))
        if not seen.endswith(b"soft reboot\r\n"):
            raise BoardError("%s: the board did not soft-reset (it said %r)" % (self.port, seen[-80:]))

    def hard_reset(self) -> float:
        """machine.reset(), then the board again, in the raw REPL; returns the seconds it took.
        The one reset that stops a hardware watchdog: a soft reset leaves it running on the ESP32
        and the RP2040. The port is closed and opened again, as a board with its own USB
        vanishes for a moment; both are retried until REBOOT_TIMEOUT_S."""
        started = time.monotonic()
        self.exec(RESET_MARK + " = 1")
        try:
            self.transport.exec_raw_no_follow("import machine\nmachine.reset()\n")
            self.transport.serial.flush()
        except (TransportError, OSError):
            pass  # the board may be gone before its "OK" reaches us; RESET_MARK tells below
        _close(self.transport)
        self.transport = self._reconnect(started, "the port did not open", False)
        if self.eval_output("print(%r in globals())" % RESET_MARK):
            raise BoardError("%s: the board did not reset" % self.port)
        return time.monotonic() - started


def _open(port: str) -> SerialTransport:
    return SerialTransport(port, baudrate=115200, timeout=READ_TIMEOUT_S)


def _close(transport: Optional[SerialTransport]) -> None:
    """Close a port that may be gone already (a board with its own USB that reset)."""
    if transport is None:
        return
    try:
        transport.close()
    except OSError:
        try:
            transport.serial.close()
        except OSError:
            pass
