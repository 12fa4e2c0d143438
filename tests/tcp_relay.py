"""A TCP relay on 127.0.0.1 between a client under test and the broker, recording both directions.

    with TcpRelay(broker.host, broker.port) as relay:
        c = start_client(port=relay.port)
        ...
        sent = relay.connections[0].upstream.chunks()   # what the client sent, and when

Each accepted connection becomes a RelayedConnection: one socket to the client, one to the target,
and a pump thread per direction that forwards bytes and records them with the time they passed
(tests/mqtt_frames.py splits them into packets). It forwards faithfully; breaking connections on
purpose is tests/fault_proxy.py's job, and the pumps are where such faults would hook in.

Every loop here is bounded: the relay lives at most `lifetime_s`, accepts at most
`max_connections`, and each pump wakes every POLL_S to notice stop() or the deadline.
"""
from __future__ import annotations

import select
import socket
import threading
import time
from dataclasses import dataclass
from typing import List, Optional, Tuple

HOST = "127.0.0.1"
POLL_S = 0.05  # how often a blocked accept/recv looks at the stop flag and the deadline
CHUNK = 65536
DEFAULT_LIFETIME_S = 60.0  # longer than any test that uses a relay
DEFAULT_MAX_CONNECTIONS = 16
SEND_TIMEOUT_S = 10.0  # a peer that stops reading for this long ends the connection
MAX_PUMP_READS = 1_000_000  # with the deadline, bounds a pump even if data never stops
JOIN_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class Chunk:
    at: float  # time.monotonic() when the relay read it
    data: bytes


class Recording:
    """The bytes one direction carried, in order, with the time each read returned them."""

    def __init__(self) -> None:
        self._chunks: List[Chunk] = []
        self._lock = threading.Lock()

    def add(self, data: bytes) -> None:
        with self._lock:
            self._chunks.append(Chunk(time.monotonic(), data))

    def chunks(self) -> List[Chunk]:
        with self._lock:
            return list(self._chunks)

    def data(self) -> bytes:
        return b"".join(c.data for c in self.chunks())


class RelayedConnection:
    """One client connection and its connection to the target; `upstream` is client -> target."""

    def __init__(self, client: socket.socket, target: socket.socket, deadline: float) -> None:
        self.opened_at = time.monotonic()
        self.upstream = Recording()
        self.downstream = Recording()
        self._client = client
        self._target = target
        self._deadline = deadline
        self._stop = threading.Event()
        self._close_once = threading.Lock()
        self._threads = [
            threading.Thread(target=self._pump, args=(client, target, self.upstream), daemon=True),
            threading.Thread(target=self._pump, args=(target, client, self.downstream), daemon=True),
        ]

    def start(self) -> None:
        for t in self._threads:
            t.start()

    @property
    def open(self) -> bool:
        return not self._stop.is_set()

    def close(self) -> None:
        """Close both sockets: each peer sees the connection end (FIN, or RST if data was unread)."""
        self._stop.set()
        if self._close_once.acquire(blocking=False):
            for s in (self._client, self._target):
                try:
                    s.close()
                except OSError:
                    pass

    def join(self, timeout_s: float = JOIN_TIMEOUT_S) -> None:
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(timeout_s)

    def _pump(self, source: socket.socket, sink: socket.socket, recording: Recording) -> None:
        try:
            for _ in range(MAX_PUMP_READS):
                if self._stop.is_set() or time.monotonic() > self._deadline:
                    break
                readable, _, _ = select.select([source], [], [], POLL_S)
                if not readable:
                    continue
                data = source.recv(CHUNK)
                if not data:
                    break  # this side closed; MQTT has no half-close, so end the whole connection
                recording.add(data)
                sink.sendall(data)
        except (OSError, ValueError):
            pass  # the other pump or close() closed the sockets (select() on fd -1: ValueError)
        finally:
            self.close()


class TcpRelay:
    """Listens on 127.0.0.1 (a free port) and relays each connection to (target_host, target_port)."""

    def __init__(self, target_host: str, target_port: int, *, lifetime_s: float = DEFAULT_LIFETIME_S,
                 max_connections: int = DEFAULT_MAX_CONNECTIONS) -> None:
        self.target: Tuple[str, int] = (target_host, target_port)
        self.lifetime_s = lifetime_s
        self.max_connections = max_connections
        self.connections: List[RelayedConnection] = []
        self._listener: Optional[socket.socket] = None
        self._thread: Optional[threading.Thread] = None
        self._stop = threading.Event()
        self._deadline = 0.0

    @property
    def port(self) -> int:
        if self._listener is None:
            raise RuntimeError("the relay is not started")
        return self._listener.getsockname()[1]

    def start(self) -> "TcpRelay":
        self._deadline = time.monotonic() + self.lifetime_s
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind((HOST, 0))
        listener.listen(self.max_connections)
        listener.settimeout(POLL_S)
        self._listener = listener
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, close every relayed connection, and wait for the threads (bounded)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(JOIN_TIMEOUT_S)
        if self._listener is not None:
            self._listener.close()
        for c in self.connections:
            c.close()
        for c in self.connections:
            c.join()

    def __enter__(self) -> "TcpRelay":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _accept_loop(self) -> None:
        assert self._listener is not None
        max_wakeups = int(self.lifetime_s / POLL_S) + 1
        for _ in range(max_wakeups):
            if self._stop.is_set() or time.monotonic() > self._deadline:
                return
            if len(self.connections) >= self.max_connections:
                return
            try:
                client, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return  # stop() closed the listener
            try:
                target = socket.create_connection(self.target, timeout=POLL_S * 20)
            except OSError:
                client.close()  # the target is down: the client sees its connection refused late
                continue
            for s in (client, target):
                s.settimeout(SEND_TIMEOUT_S)  # recv waits in select; this bounds sendall
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            connection = RelayedConnection(client, target, self._deadline)
            self.connections.append(connection)
            connection.start()
