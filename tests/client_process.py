"""A client running in its own process (CPython or MicroPython), driven over JSON lines.

Tests call the client as if it were local: `c.publish(b"t", b"x", qos=1)`. A dead or hung
driver raises DriverError carrying the driver's stderr, so a crash in the client under test
is shown, not hidden behind a timeout. tests/driver/mqtt_driver.py is the other end.
"""
from __future__ import annotations

import functools
import json
import queue
import subprocess
import threading
from pathlib import Path
from typing import IO, Any, Callable, Dict, List, Optional, Tuple

DEFAULT_CALL_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 5.0
MAX_STRAY_LINES = 10_000
Message = Tuple[bytes, bytes, Any, int, Any]  # topic, msg, retain, qos, dup


class DriverError(RuntimeError):
    """The driver process died, hung, or broke the protocol."""


class RemoteError(Exception):
    """The client raised inside the driver; `name` is its class name, e.g. "ConnectionRefused"."""

    def __init__(self, name: str, remote_args: List[Any], msg: str) -> None:
        super().__init__("%s: %s" % (name, msg))
        self.name = name
        self.remote_args = remote_args
        self.msg = msg


def encode(value: Any) -> Any:
    """Bytes become {"b": hex}, as JSON has no bytes; the driver's decode() undoes it."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"b": bytes(value).hex()}
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        return {k: encode(v) for k, v in value.items()}
    return value


def decode(value: Any) -> Any:
    if isinstance(value, dict):
        if value.keys() == {"b"}:
            return bytes.fromhex(value["b"])
        return {k: decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value


class ClientProcess:
    def __init__(self, command: List[str], env: Dict[str, str], stderr_path: Path) -> None:
        self.command = command
        self.stderr_path = stderr_path
        self.stray_output: List[str] = []  # stdout lines that were not replies, e.g. a client's print()
        self._lines: "queue.Queue[Optional[str]]" = queue.Queue()
        with open(stderr_path, "wb") as stderr:
            self.process = subprocess.Popen(
                command, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr
            )
        threading.Thread(target=self._read_stdout, daemon=True).start()

    def _read_stdout(self) -> None:
        stdout: IO[bytes] = self.process.stdout  # type: ignore[assignment]
        with stdout:
            for raw in stdout:
                self._lines.put(raw.decode("utf-8", "replace"))
        self._lines.put(None)  # EOF: the process ended

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def call(self, method: str, *args: Any, call_timeout: float = DEFAULT_CALL_TIMEOUT_S, **kwargs: Any) -> Any:
        """Run `method` in the driver; returns its result or raises RemoteError."""
        request = json.dumps({"m": method, "a": encode(args), "k": encode(kwargs)})
        stdin: IO[bytes] = self.process.stdin  # type: ignore[assignment]
        try:
            stdin.write(request.encode() + b"\n")
            stdin.flush()
        except (BrokenPipeError, ValueError) as e:
            raise self._failure("driver gone before %s(): %r" % (method, e)) from None
        reply = self._next_reply(method, call_timeout)
        if "e" in reply:
            raise RemoteError(reply["e"], decode(reply.get("args", [])), reply.get("msg", ""))
        return decode(reply["r"])

    def _next_reply(self, method: str, timeout_s: float) -> Dict[str, Any]:
        for _ in range(MAX_STRAY_LINES):
            try:
                line = self._lines.get(timeout=timeout_s)
            except queue.Empty:
                raise self._failure("no reply to %s() within %.1f s" % (method, timeout_s)) from None
            if line is None:
                raise self._failure("driver died during %s()" % method)
            try:
                reply = json.loads(line)
            except ValueError:
                reply = None
            if isinstance(reply, dict) and ("r" in reply or "e" in reply):
                return reply
            self.stray_output.append(line)
        raise self._failure("no reply to %s() among %d stray lines" % (method, MAX_STRAY_LINES))

    def _failure(self, what: str) -> DriverError:
        self.kill()  # a late reply would be taken for the next call's: this process is spent
        return DriverError(
            "%s\ncommand: %s\nexit code: %s\nstdout that was not a reply:\n%s\nstderr:\n%s"
            % (what, " ".join(self.command), self.process.returncode,
               "".join(self.stray_output[-20:]), self.stderr()[-4000:])
        )

    def __getattr__(self, name: str) -> Callable[..., Any]:
        """Any other attribute is a client method: `c.subscribe(b"t", qos=1)`."""
        if name.startswith("__"):
            raise AttributeError(name)
        return functools.partial(self.call, name)

    def new(self, **client_kwargs: Any) -> None:
        """Construct the client in the driver (its `_new`)."""
        self.call("_new", **client_kwargs)

    def messages(self) -> List[Message]:
        """Messages the callback recorded since the last look, as (topic, msg, retain, qos, dup)."""
        return [tuple(m) for m in self.call("_messages")]  # type: ignore[misc]

    def wait_messages(self, n: int, timeout_s: float = 5.0) -> List[Message]:
        """Service the client until `n` messages arrived or `timeout_s` passed; returns them all."""
        found = self.call("_wait_messages", n, timeout_s, call_timeout=timeout_s + DEFAULT_CALL_TIMEOUT_S)
        return [tuple(m) for m in found]  # type: ignore[misc]

    def mem(self) -> int:
        """MicroPython: GC heap bytes in use after gc.collect(). CPython: always 0."""
        return self.call("_mem")

    def exit(self) -> None:
        """Let the driver end by itself (the client is left as it is: no DISCONNECT)."""
        self.call("_exit")
        try:
            self.process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            pass  # kill() below ends it
        self.kill()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(STOP_TIMEOUT_S)
        if self.process.stdin and not self.process.stdin.closed:
            try:
                self.process.stdin.close()
            except OSError:
                pass  # the pipe broke with the process
