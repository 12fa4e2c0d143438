"""A private mosquitto on a free 127.0.0.1 port, for `mqnode demo` and the benchmark."""
from __future__ import annotations

import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Optional

from mqnode_tools.paths import mosquitto

START_TIMEOUT_S = 10.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalBroker:
    def __init__(self, max_connections: int = -1) -> None:
        self.port = free_port()
        self._dir = tempfile.TemporaryDirectory(prefix="mqnode-broker-")
        self.log = Path(self._dir.name) / "mosquitto.log"
        config = Path(self._dir.name) / "mosquitto.conf"
        config.write_text(
            "listener %d 127.0.0.1\nallow_anonymous true\nmax_connections %d\nset_tcp_nodelay true\n"
            "max_queued_messages 10000\n" % (self.port, max_connections)
        )
        self._config = config
        self._process: Optional[subprocess.Popen] = None

    def start(self) -> "LocalBroker":
        with open(self.log, "ab") as log:
            self._process = subprocess.Popen([mosquitto(), "-c", str(self._config)], stdout=log, stderr=log)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline and self._process.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("mosquitto did not start on port %d: %s" % (self.port, self.log.read_text()[-500:]))

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(5)
            self._process = None
        self._dir.cleanup()
