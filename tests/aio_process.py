"""The asyncio client in its own process (CPython or MicroPython), driven one scenario at a time.

    p = AioProcess(aio_driver_command(runtime), driver_environment(runtime), stderr_path, defaults)
    result = p.run("pubsub", topic=b"t", payloads=[b"x"], pub_qos=1, sub_qos=1)

A scenario is an async function in tests/driver/aio_scenarios.py (or aio_small.py) that runs in
the event loop of the driver (tests/driver/aio_driver.py) and returns plain data. A scenario may
stop at a checkpoint: `p.start(...)`, then `p.wait_pause("stall")`, make the fault,
`p.proceed("stall")`, ..., `p.result()`. Errors raised in the scenario come back as
client_process.RemoteError; a dead or hung driver as DriverError with its stderr.
"""
from __future__ import annotations

import json
import queue
from pathlib import Path
from typing import IO, Any, Dict, List, Optional

from broker import Broker
from client_process import ClientProcess, DriverError, RemoteError, decode, encode
from runtime import ca_file_for

DEFAULT_BOUND_S = 30.0  # the driver's own bound on one scenario
DEFAULT_MODULE = "aio_scenarios"  # where the driver finds scenarios; aio_small holds 64 KB ones
HOST_MARGIN_S = 10.0  # on top of the bound, before the host gives up on the process
MAX_STRAY_LINES = 10_000


class AioProcess(ClientProcess):
    """A driver process; `defaults` are merged into every scenario's params (server, port, prefix)."""

    def __init__(self, command: List[str], env: Dict[str, str], stderr_path: Path,
                 defaults: Optional[Dict[str, Any]] = None) -> None:
        super().__init__(command, env, stderr_path)
        self.defaults = dict(defaults or {})
        self._running: Optional[str] = None
        self._bound_s = DEFAULT_BOUND_S

    def __getattr__(self, name: str) -> Any:
        # ClientProcess turns unknown attributes into remote method calls; scenarios are not.
        raise AttributeError(name)

    def start(self, scenario: str, bound_s: float = DEFAULT_BOUND_S, module: str = DEFAULT_MODULE,
              **params: Any) -> None:
        """Send the request for `scenario` from driver module `module`; it runs until result()
        (or a pause) is read."""
        if self._running is not None:
            raise DriverError("%s() is still running; read its result() first" % self._running)
        request = {"scenario": scenario, "params": encode({**self.defaults, **params}), "bound_s": bound_s,
                   "from": module}
        self._write(request, scenario)
        self._running = scenario
        self._bound_s = bound_s

    def wait_pause(self, label: str, timeout_s: Optional[float] = None) -> None:
        """Wait until the scenario stops at checkpoint `label` (see tests/driver/aio_wire.pause)."""
        line = self._next_line(timeout_s or self._bound_s + HOST_MARGIN_S)
        if line.get("n") != label:
            raise self._failure("expected checkpoint %r, got %r" % (label, line))

    def proceed(self, label: str) -> None:
        self._write({"go": label}, label)

    def result(self, timeout_s: Optional[float] = None) -> Any:
        """The scenario's return value; raises RemoteError if it raised."""
        scenario = self._running or "?"
        line = self._next_line(timeout_s or self._bound_s + HOST_MARGIN_S)
        if "n" in line:
            raise self._failure("%s() paused at %r where a result was expected" % (scenario, line["n"]))
        self._running = None
        if "e" in line:
            raise RemoteError(line["e"], decode(line.get("args", [])), line.get("msg", ""))
        return decode(line["r"])

    def run(self, scenario: str, bound_s: float = DEFAULT_BOUND_S, module: str = DEFAULT_MODULE,
            **params: Any) -> Any:
        self.start(scenario, bound_s, module, **params)
        return self.result()

    def _write(self, obj: Dict[str, Any], what: str) -> None:
        stdin: IO[bytes] = self.process.stdin  # type: ignore[assignment]
        try:
            stdin.write(json.dumps(obj).encode() + b"\n")
            stdin.flush()
        except (BrokenPipeError, ValueError) as e:
            raise self._failure("driver gone before %s: %r" % (what, e)) from None

    def _next_line(self, timeout_s: float) -> Dict[str, Any]:
        """The next reply or checkpoint line; other output (a stray print) is kept aside."""
        what = self._running or "?"
        for _ in range(MAX_STRAY_LINES):
            try:
                line = self._lines.get(timeout=timeout_s)
            except queue.Empty:
                raise self._failure("no reply from %s() within %.1f s" % (what, timeout_s)) from None
            if line is None:
                raise self._failure("driver died during %s()" % what)
            try:
                reply = json.loads(line)
            except ValueError:
                reply = None
            if isinstance(reply, dict) and ("r" in reply or "e" in reply or "n" in reply):
                return reply
            self.stray_output.append(line)
        raise self._failure("no reply from %s() among %d stray lines" % (what, MAX_STRAY_LINES))


def tls_params(runtime: str, broker: Broker, ca: str = "broker", verify: bool = True) -> Dict[str, Any]:
    """The driver's `tls` param: the CA file in the format this runtime's ssl reads."""
    pem, der = (broker.ca_pem, broker.ca_der) if ca == "broker" else (broker.wrong_ca_pem, broker.wrong_ca_der)
    return {"ca": str(ca_file_for(runtime, pem, der)), "verify": verify}
