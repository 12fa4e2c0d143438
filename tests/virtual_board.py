"""A virtual MicroPython board on a pseudo-terminal, for testing the host tools with the real
mpremote: `mpremote connect <board.port> ...` runs exec, eval, fs ls/cp/cat/sha256sum/mkdir,
soft-reset and reset against it as against a board on USB.

Two halves. tests/virtual_board/repl.py is the board's firmware: a MicroPython program for the
Unix port that speaks the friendly REPL, the raw REPL and raw-paste mode, mounts a temp folder as
the board's "/" and runs boot.py and main.py from it. This launcher is the USB cable and the
reset circuit: it owns the pty, relays bytes between it and the process, and starts the process
again when it ends in a reset, so the port stays open across resets as a USB-serial adapter's
does. A soft reset is a new process too (fresh heap, sockets closed, modules forgotten); the
cause reaches the new boot as an argument, and machine.reset_cause() reports it.

Ctrl-C. A board's UART interrupt raises KeyboardInterrupt in whatever runs, even main.py's
endless loop; a process reading a pipe cannot see a byte it has not read. So the launcher turns
0x03 from the host into SIGINT, and holds back the input queued and what follows until the
board acknowledges the interrupt (or INTERRUPT_ACK_S passes): otherwise code that reads stdin
(the sim board's pin commands) could swallow the Ctrl-A mpremote sends right after.
- The signal is repeated every INTERRUPT_RESEND_S until acknowledged: the Unix port raises a
  pending KeyboardInterrupt only when the VM runs or a system call ends in EINTR, so a signal
  landing while C code is between two reads (sys.stdin.readline) would wait in the next read.
- A boot takes signals once it says "ready" (after boot.py, before main.py); a Ctrl-C that
  comes earlier, while the board resets, is sent at that moment, so it stops main.py as the
  host meant it to. Once a boot says "exit N" it takes none (the Unix port's own handler is gone
  then, and SIGINT would kill it), and N is its exit code whatever the signal did.

What else a board on a cable does, each only when asked for (the other tests see none of it):
- watchdog_ms: the board has a machine.WDT (tests/virtual_board/machine.py). Its timer is kept
  here, outside the board's process, as a hardware watchdog is outside the CPU: a boot that lets
  it run out is killed, whatever it was doing (no code of its own runs after the timeout), and
  the board boots again with cause "watchdog" (machine.reset_cause() is WDT_RESET). A soft reset
  leaves it running, as on the ESP32 and RP2040; a hard reset, deep sleep or power-off stops it.
- baud: the line's speed (ten bits a byte, both ways), so that copying files takes as long as
  it would over a USB-serial adapter; it may be changed while the board runs.
- native_usb: the port is a board's own USB (ESP32-S3, RP2040): on a hard reset the device goes
  away, the host's open handle fails, and after USB_GONE_S the port is back under its name.

Bounded: the relay polls every POLL_S and ends with stop(); a board restarts at most max_boots
times; every wait here has a timeout.
"""
from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tty
from collections import deque
from pathlib import Path
from typing import Callable, Deque, Dict, Iterator, List, Optional

import pytest

from runtime import micropython_executable

FIRMWARE = Path(__file__).resolve().parent / "virtual_board"
REPL = FIRMWARE / "repl.py"
# repl.py's and machine.py's exit codes -> the cause of the next boot; any other code halts it
RESTARTS = {77: "deepsleep", 78: "hard", 79: "soft-friendly", 80: "soft-raw"}
SOFT = ("soft-friendly", "soft-raw")  # resets that leave a hardware watchdog running
CTRL_C = b"\x03"
INTERRUPT_ACK_S = 0.5
INTERRUPT_RESEND_S = 0.1
# Output kept for a host that is not reading (a UART with nobody listening loses it too)
PENDING_OUTPUT_MAX = 64 * 1024
SERIAL_LOG_MAX = 4 * 1024 * 1024
EVENTS_KEPT = 200
POLL_S = 0.02
READ_CHUNK = 4096
MAX_BOOTS = 200
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
MPREMOTE_TIMEOUT_S = 30.0
USB_GONE_S = 0.5  # native USB: how long the port is away after a hard reset
LINE_BURST_S = 0.05  # a paced line may catch up this much time at once (the relay wakes every POLL_S)


class VirtualBoard:
    """`root` becomes the board's "/": it must be a folder under the system temp dir, because a
    VfsPosix mount is not a jail ("/../.." leaves it). `env` adds variables for the board's
    process: VB_FAKE_MPY=0x0a05 makes sys.implementation._mpy lie, VB_UNIQUE_ID=hex sets
    machine.unique_id(). watchdog_ms, baud and native_usb: see the module's docstring."""

    def __init__(self, root: Path, *, heapsize: Optional[str] = None, env: Optional[Dict[str, str]] = None,
                 max_boots: int = MAX_BOOTS, watchdog_ms: Optional[int] = None, baud: Optional[int] = None,
                 native_usb: bool = False) -> None:
        self.root = Path(root).resolve()
        temp = Path(tempfile.gettempdir()).resolve()
        if temp not in self.root.parents:
            raise ValueError("the virtual board's / must be a folder under %s, not %s" % (temp, self.root))
        self.root.mkdir(parents=True, exist_ok=True)
        self.heapsize = heapsize
        self.env = dict(env or {})
        if watchdog_ms:
            self.env["VB_WATCHDOG_MS"] = str(watchdog_ms)
        self.baud = baud
        self.max_boots = max_boots
        self.boots: List[str] = []  # why each boot happened: power, hard, soft-raw, ...
        self.exits: List[int] = []  # how each boot's process ended
        self.stderr_log = ""  # the board process's own errors (a bug in repl.py shows here)
        self.events: Deque[str] = deque(maxlen=EVENTS_KEPT)  # boots, signals, acks: for failures
        self._serial = bytearray()  # everything the board wrote to its port
        self._master: Optional[int] = None
        self._slave: Optional[int] = None
        self._link: Optional[Path] = None  # native USB: the port's name, a link to this pty
        self._usb_back_at: Optional[float] = None
        self._plug()
        if native_usb:
            self._link = self.root.parent / (self.root.name + "-ttyACM0")
            self._link.unlink(missing_ok=True)
            self._link.symlink_to(os.ttyname(self._slave))
        self.port = str(self._link) if self._link else os.ttyname(self._slave)
        self._line = {"host": _Pace(), "board": _Pace()}  # host->board, board->host
        self._watchdog_ms: Optional[int] = None
        self._watchdog_due: Optional[float] = None
        self._watchdog_fired = False
        self._proc: Optional[subprocess.Popen] = None
        self._ready = False  # this boot takes Ctrl-C as SIGINT
        self._exit_code: Optional[int] = None  # what this boot said it ends with
        self._eof = {"out": False, "err": False}
        self._err_partial = ""
        self._to_board = bytearray()
        self._held = bytearray()  # input waiting behind a Ctrl-C
        self._holding = False
        self._interrupt_pending = False  # a Ctrl-C for the boot that is not ready yet
        self._ack_deadline: Optional[float] = None
        self._resend_at = 0.0
        self._to_host = bytearray()
        self._lock = threading.Condition()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._relay, name="virtual-board", daemon=True)

    # --- the test's side ---------------------------------------------------------------------

    def start(self) -> "VirtualBoard":
        self._spawn("power")
        self._thread.start()
        if not self._wait(lambda: self._ready, START_TIMEOUT_S):
            self.stop()
            raise RuntimeError("the virtual board did not start: %s" % self.stderr_log[-2000:])
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(STOP_TIMEOUT_S)
        self._end_process()
        self._unplug()

    def __enter__(self) -> "VirtualBoard":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def serial_log(self) -> bytes:
        with self._lock:
            return bytes(self._serial)

    def mark(self) -> int:
        """A position in the serial log, for wait_output(since=...)."""
        with self._lock:
            return len(self._serial)

    def wait_output(self, text: bytes, timeout_s: float, since: int = 0) -> bool:
        return self._wait(lambda: text in self._serial[since:], timeout_s)

    def wait_boots(self, count: int, timeout_s: float) -> bool:
        """True once `count` boots have started and the last one is ready."""
        return self._wait(lambda: len(self.boots) >= count and self._ready, timeout_s)

    def wait_boot(self, cause: str, since: int, timeout_s: float) -> bool:
        """True once a boot after the first `since` had this cause and is ready."""
        return self._wait(lambda: cause in self.boots[since:] and self._ready, timeout_s)

    @property
    def halted(self) -> bool:
        """The process ended with a code that is not a reset (or max_boots was reached)."""
        with self._lock:
            return self._proc is None and bool(self.exits)

    def report(self) -> str:
        """What a failing test should show: the launcher's events and the serial log's tail."""
        return "events:\n  %s\nboard stderr:\n%s\nserial log tail:\n%s" % (
            "\n  ".join(self.events), self.stderr_log[-1000:], self.serial_log[-1500:].decode("utf-8", "replace"))

    def _wait(self, ready: Callable[[], bool], timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while not ready():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(min(left, 0.1))
            return True

    # --- the relay (its own thread) -----------------------------------------------------------

    def _event(self, what: str) -> None:
        self.events.append("%.3f %s" % (time.monotonic(), what))

    def _plug(self) -> None:
        self._master, self._slave = pty.openpty()
        tty.setraw(self._slave)  # echo on our end would send the board's output back to it
        os.set_blocking(self._master, False)

    def _unplug(self) -> None:
        """The pty goes: a host still holding it gets an error on its next read or write."""
        for fd in (self._master, self._slave):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._master = self._slave = None
        self._to_host.clear()  # what the board says meanwhile is lost, as with no USB host
        if self._link is not None:
            self._link.unlink(missing_ok=True)

    def _usb_reset(self) -> None:
        """Native USB: a hard reset takes the device off the bus for a moment."""
        self._unplug()
        self._usb_back_at = time.monotonic() + USB_GONE_S
        self._event("usb gone")

    def _usb_back(self) -> None:
        self._usb_back_at = None
        self._plug()
        assert self._link is not None and self._slave is not None
        self._link.symlink_to(os.ttyname(self._slave))
        self._event("usb back")

    def _spawn(self, cause: str) -> None:
        self._event("boot " + cause)
        env = {k: v for k, v in os.environ.items() if k != "MICROPYPATH"}
        env.update(self.env)
        heap = ["-X", "heapsize=" + self.heapsize] if self.heapsize else []
        self._proc = subprocess.Popen(
            [micropython_executable(), *heap, str(REPL), str(self.root), cause],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
            cwd=str(FIRMWARE), bufsize=0,
        )
        assert self._proc.stdin is not None
        os.set_blocking(self._proc.stdin.fileno(), False)
        self._exit_code = None
        self._eof = {"out": False, "err": False}
        if self._ack_deadline is not None:
            # the boot that was signalled ended without taking it: the host meant to stop
            # whatever runs, so the new boot gets it when ready
            self._ack_deadline = None
            self._interrupt_pending = True
        with self._lock:
            self._ready = False
            self.boots.append(cause)
            self._lock.notify_all()

    def _relay(self) -> None:
        try:
            while not self._stopping.is_set():
                self._step()
        except Exception as e:  # a bug here: say so in the report rather than hang the test
            self._event("relay failed: %r" % e)
            raise
        finally:
            self._end_process()

    def _step(self) -> None:
        proc = self._proc
        if self._usb_back_at is not None and time.monotonic() >= self._usb_back_at:
            self._usb_back()
        fds: Dict[int, str] = {}
        host_room = self._line["host"].room(self.baud, READ_CHUNK)
        if self._master is not None and host_room:
            fds[self._master] = "host"
        if proc is not None:
            assert proc.stdout is not None and proc.stderr is not None
            if not self._eof["out"]:
                fds[proc.stdout.fileno()] = "out"
            if not self._eof["err"]:
                fds[proc.stderr.fileno()] = "err"
        readable, _, _ = select.select(list(fds), [], [], POLL_S)
        for fd in readable:
            try:
                data = os.read(fd, host_room if fds[fd] == "host" else READ_CHUNK)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            source = fds[fd]
            if source == "host":
                self._line["host"].spend(self.baud, len(data))
                self._from_host(data)
            elif not data:
                self._eof[source] = True
            elif source == "out":
                self._from_board(data)
            else:
                self._control(data.decode("utf-8", "replace"))
        if self._ack_deadline is not None:
            now = time.monotonic()
            if now > self._ack_deadline:
                self._release()
            elif now > self._resend_at:
                self._signal("SIGINT again")
        if self._watchdog_due is not None and proc is not None and time.monotonic() > self._watchdog_due:
            self._watchdog_reset(proc)
        self._flush()
        if proc is not None and self._eof["out"] and self._eof["err"]:
            self._ended(proc)

    def _from_host(self, data: bytes) -> None:
        pieces = data.split(CTRL_C)
        for i, piece in enumerate(pieces):
            (self._held if self._holding else self._to_board).extend(piece)
            if i < len(pieces) - 1:
                self._ctrl_c()

    def _ctrl_c(self) -> None:
        if self._holding:
            self._held.extend(CTRL_C)  # a second one while the first is on its way: a plain byte
            return
        # the queued input waits too: it is a byte or two of protocol ("\r"), fine after the
        # interrupt, and a read blocked on an empty pipe ends in EINTR at once
        self._holding = True
        self._held, self._to_board = self._to_board, bytearray()
        if self._proc is not None and self._ready:
            self._signal("SIGINT")
        else:
            self._interrupt_pending = True
            self._event("Ctrl-C waits for the boot")

    def _signal(self, what: str) -> None:
        if self._proc is None or self._proc.poll() is not None:
            return  # it ended meanwhile; the next boot gets the held input
        self._proc.send_signal(signal.SIGINT)
        self._event(what)
        now = time.monotonic()
        if self._ack_deadline is None:
            self._ack_deadline = now + INTERRUPT_ACK_S
        self._resend_at = now + INTERRUPT_RESEND_S

    def _release(self) -> None:
        self._event("input released (%d bytes)" % len(self._held))
        self._holding = False
        self._interrupt_pending = False
        self._ack_deadline = None
        self._to_board += self._held
        self._held = bytearray()

    def _watchdog_reset(self, proc: subprocess.Popen) -> None:
        """The watchdog ran out: reset the board from outside, as the chip's watchdog does."""
        self._event("watchdog: not fed for %d ms, reset" % self._watchdog_ms)
        self._watchdog_due = None
        self._watchdog_fired = True
        proc.kill()

    def _control(self, text: str) -> None:
        lines = (self._err_partial + text).split("\n")
        self._err_partial = lines.pop()
        with self._lock:
            for line in lines:
                if not line.startswith("vb:"):
                    self.stderr_log += line + "\n"
                    continue
                if line == "vb:feed":  # once a second: not an event, it would crowd them out
                    if self._watchdog_ms is not None and not self._watchdog_fired:
                        self._watchdog_due = time.monotonic() + self._watchdog_ms / 1000
                    continue
                self._event(line[3:])
                if line.startswith("vb:wdt ") and not self._watchdog_fired:
                    self._watchdog_ms = int(line.split()[1])
                    self._watchdog_due = time.monotonic() + self._watchdog_ms / 1000
                if line == "vb:ready":
                    self._ready = True
                    if self._interrupt_pending and self._proc is not None:
                        self._interrupt_pending = False
                        self._signal("SIGINT (held from before the boot)")
                elif line == "vb:intr":
                    if self._ack_deadline is not None:
                        self._release()
                elif line.startswith("vb:exit "):
                    self._ready = False
                    self._exit_code = int(line.split()[1])
            self._lock.notify_all()

    def _from_board(self, data: bytes) -> None:
        with self._lock:
            self._serial += data
            if len(self._serial) > SERIAL_LOG_MAX:
                del self._serial[: len(self._serial) - SERIAL_LOG_MAX]
            self._lock.notify_all()
        if self._master is None:
            return  # native USB, away: nobody to hear it
        self._to_host += data
        if len(self._to_host) > PENDING_OUTPUT_MAX:
            del self._to_host[: len(self._to_host) - PENDING_OUTPUT_MAX]

    def _flush(self) -> None:
        room = self._line["board"].room(self.baud, len(self._to_host))
        if self._to_host and self._master is not None and room:
            try:
                sent = os.write(self._master, self._to_host[:room])
                self._line["board"].spend(self.baud, sent)
                del self._to_host[:sent]
            except (BlockingIOError, InterruptedError):
                pass
        proc = self._proc
        if proc is not None and proc.stdin is not None and self._to_board:
            try:
                del self._to_board[: os.write(proc.stdin.fileno(), self._to_board)]
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                self._to_board.clear()  # the process is gone; a reset loses what was in flight

    def _ended(self, proc: subprocess.Popen) -> None:
        try:
            code = proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait(STOP_TIMEOUT_S)
        if self._exit_code is not None:
            code = self._exit_code  # it said how it ends; a signal after that only hurried it
        self._event("ended with %d" % code)
        self._close_pipes(proc)
        with self._lock:
            self.exits.append(code)
            self._proc = None
            self._ready = False
            self._lock.notify_all()
        cause = "watchdog" if self._watchdog_fired else RESTARTS.get(code)
        self._watchdog_fired = False
        if cause not in SOFT:  # a hard reset, deep sleep or power-off stops the watchdog
            self._watchdog_ms = self._watchdog_due = None
            if cause is not None and self._link is not None and not self._stopping.is_set():
                self._usb_reset()
        if cause is not None and len(self.boots) < self.max_boots and not self._stopping.is_set():
            self._spawn(cause)

    def _end_process(self) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(STOP_TIMEOUT_S)
        self._close_pipes(proc)
        self._proc = None

    @staticmethod
    def _close_pipes(proc: subprocess.Popen) -> None:
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass


class _Pace:
    """One direction of a serial line at a given baud: how many bytes may pass now."""

    def __init__(self) -> None:
        self._credit = 0.0
        self._at = time.monotonic()

    def room(self, baud: Optional[int], wanted: int) -> int:
        if not baud:
            return wanted
        now = time.monotonic()
        per_s = baud / 10
        self._credit = min(self._credit + (now - self._at) * per_s, per_s * LINE_BURST_S)
        self._at = now
        return min(wanted, int(self._credit))

    def spend(self, baud: Optional[int], sent: int) -> None:
        if baud:
            self._credit -= sent


def mpremote(board: VirtualBoard, *args: str, timeout_s: float = MPREMOTE_TIMEOUT_S) -> subprocess.CompletedProcess:
    """The real mpremote CLI against the board: `mpremote connect <port> ARGS...`."""
    return subprocess.run([sys.executable, "-m", "mpremote", "connect", board.port, *args],
                          capture_output=True, timeout=timeout_s)


@pytest.fixture
def virtual_board(tmp_path: Path) -> Iterator[VirtualBoard]:
    """A started board whose "/" is tmp_path/board, its first boot done (at the REPL prompt)."""
    board = VirtualBoard(tmp_path / "board")
    board.start()
    if not board.wait_output(b">>> ", START_TIMEOUT_S):
        board.stop()
        raise RuntimeError("the virtual board did not reach its REPL:\n" + board.report())
    yield board
    board.stop()
