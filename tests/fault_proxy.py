"""A TCP fault proxy on 127.0.0.1 between a client under test and the broker: the network's
failures, made on demand.

    with FaultProxy(broker.host, broker.port) as proxy:
        c = start_client(port=proxy.port)
        proxy.cut()                  # every current connection dies (RST both ways); new ones work
        proxy.stall(); ...; proxy.resume()   # nothing moves either way, nothing is closed
        proxy.slow(0.02)             # each forwarded chunk waits 20 ms first
        proxy.byte_at_a_time(True)   # one byte per send(), both ways
        proxy.refuse(True)           # accept, then close at once (a broker that is half up)
        proxy.cut_after([(UP, 700), (DOWN, 35), (EITHER, 90)])   # cut after 700 more bytes
                                     # client->broker, then 35 more broker->client, then 90 more
                                     # either way, ...
        proxy.counters()             # accepted, refused, cuts, bytes each way

Each accepted connection gets its own connection to the target and one pump thread per direction.
A cut lands exactly at the scheduled byte: the pump forwards the bytes up to it, then closes every
connection with SO_LINGER 0, so both peers see a reset, the way a dropped WiFi link or a NAT
timeout looks to them, and a packet may be cut anywhere inside.

Every loop is bounded: the proxy lives at most `lifetime_s`, accepts at most `max_connections`,
each pump reads at most MAX_PUMP_READS times and wakes every POLL_S to notice cuts, stalls, stop()
and the deadline.
"""
from __future__ import annotations

import fcntl
import random
import select
import socket
import struct
import termios
import threading
import time
from dataclasses import dataclass
from typing import Iterable, List, Optional, Tuple

from tcp_relay import Recording

HOST = "127.0.0.1"
UP = "up"  # client -> broker
DOWN = "down"  # broker -> client
EITHER = "either"  # a cut_after count over both directions: the cut follows whichever byte is last
POLL_S = 0.02  # how often a blocked pump or accept looks at the flags, the stop flag and the deadline
CHUNK = 65536
DEFAULT_LIFETIME_S = 120.0  # longer than any test that uses a proxy
DEFAULT_MAX_CONNECTIONS = 1000  # a 50-cut run with backoff retries needs a few hundred at most
CONNECT_TIMEOUT_S = 2.0  # to the target; a dead target fails fast (refused) anyway
SEND_TIMEOUT_S = 10.0  # a peer that stops reading for this long ends the connection
MAX_PUMP_READS = 10_000_000  # with the deadline, bounds a pump even if data never stops
JOIN_TIMEOUT_S = 2.0
DELIVERED_WAIT_S = 2.0  # how long a scheduled cut waits for its last bytes to be acknowledged (ms
# on an idle machine; a loaded one can take far longer, and a cut that came early would be wrong)
_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST and drops unsent data


@dataclass(frozen=True)
class Counters:
    accepted: int  # connections the listener accepted (refused ones included)
    refused: int  # of those, closed at once because refuse(True) was on or the target was down
    cuts: int  # times cut() ran, by hand or by the cut_after schedule
    bytes_up: int  # forwarded client -> broker
    bytes_down: int  # forwarded broker -> client


@dataclass(frozen=True)
class Cut:
    at: float  # time.monotonic()
    direction: Optional[str]  # the direction whose byte count triggered it; None for cut()
    after: int  # bytes forwarded in that direction since the schedule armed this cut
    connections: int  # connections it closed


class _Connection:
    """One client connection and its connection to the target."""

    def __init__(self, proxy: "FaultProxy", client: socket.socket, target: socket.socket) -> None:
        self.proxy = proxy
        self.client = client
        self.target = target
        self.opened_at = time.monotonic()
        # What was forwarded each way, when the proxy records (tcp_relay's Recording, so
        # mqtt_frames.split_frames parses it).
        self.recordings = {UP: Recording(), DOWN: Recording()} if proxy.record else None
        self.closed = threading.Event()
        self._close_lock = threading.Lock()
        self.threads = [
            threading.Thread(target=self._pump, args=(client, target, UP), daemon=True),
            threading.Thread(target=self._pump, args=(target, client, DOWN), daemon=True),
        ]

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def close(self, reset: bool) -> None:
        with self._close_lock:
            if self.closed.is_set():
                return
            self.closed.set()
            for s in (self.client, self.target):
                try:
                    if reset:
                        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
                    s.close()
                except OSError:
                    pass  # already closed by the peer's reset

    def join(self) -> None:
        for t in self.threads:
            if t is not threading.current_thread():
                t.join(JOIN_TIMEOUT_S)

    def _pump(self, source: socket.socket, sink: socket.socket, direction: str) -> None:
        proxy = self.proxy
        try:
            for _ in range(MAX_PUMP_READS):
                if self.closed.is_set() or not proxy._running():
                    break
                if not proxy._flowing.wait(POLL_S):
                    continue  # stalled: read nothing, so the sender's buffers fill as on a dead link
                readable, _, _ = select.select([source], [], [], POLL_S)
                if not readable:
                    continue
                data = source.recv(CHUNK)
                if not data:
                    break  # this side closed; MQTT has no half-close, so end the whole connection
                if not self._forward(sink, data, direction):
                    break
        except (OSError, ValueError):
            pass  # cut() or the other pump closed the sockets (select() on fd -1: ValueError)
        finally:
            self.close(reset=False)

    def _forward(self, sink: socket.socket, data: bytes, direction: str) -> bool:
        """Send data on, applying stall, slow, byte-at-a-time and the cut schedule. False: stop."""
        proxy = self.proxy
        view = memoryview(data)
        sent = 0
        for _ in range(len(data) + 1):
            if sent >= len(data):
                return True
            # A stall set after the recv above still holds these bytes back.
            for _ in range(int(proxy.lifetime_s / POLL_S) + 1):
                if proxy._flowing.wait(POLL_S) or self.closed.is_set() or not proxy._running():
                    break
            if self.closed.is_set():
                return False
            delay = proxy._delay_s
            if delay and self.closed.wait(delay):
                return False
            size = 1 if proxy._one_byte else len(data) - sent
            allowed, cut = proxy._take(direction, size)
            if allowed:
                try:
                    sink.sendall(view[sent : sent + allowed])
                except OSError:
                    # Another cut closed sink meanwhile. A cut taken off the schedule is still
                    # made: dropped here, it left the schedule one short for good (49 of 50).
                    if cut is not None:
                        proxy._cut(direction, cut)
                    raise
                if self.recordings is not None:
                    self.recordings[direction].add(bytes(view[sent : sent + allowed]))
                sent += allowed
            if cut is not None:  # the schedule's last byte has just gone; the rest never does
                try:
                    _wait_delivered(sink)
                finally:
                    proxy._cut(direction, cut)  # even if another cut closed sink meanwhile
                return False
        return True


def _wait_delivered(sock: socket.socket) -> None:
    """Wait (bounded) until the peer has acknowledged everything sent on sock. A reset discards
    whatever still sits in the send queue, so without this a scheduled cut could land a few
    bytes before the point it was scheduled for."""
    for _ in range(int(DELIVERED_WAIT_S / 0.002) + 1):
        try:
            unacked = struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0"))[0]
        except (OSError, ValueError):
            return  # closed meanwhile: nothing more will be delivered
        if unacked == 0:
            return
        time.sleep(0.002)


class FaultProxy:
    """Listens on a free 127.0.0.1 port and forwards each connection to (target_host, target_port)."""

    def __init__(self, target_host: str, target_port: int, *, lifetime_s: float = DEFAULT_LIFETIME_S,
                 max_connections: int = DEFAULT_MAX_CONNECTIONS, record: bool = False,
                 client_rcvbuf: Optional[int] = None) -> None:
        self.target: Tuple[str, int] = (target_host, target_port)
        self.record = record  # keep every forwarded byte, per connection and direction
        # SO_RCVBUF of the client-side sockets: small, a stalled proxy stops the client's sends
        # after a few KB instead of the megabytes loopback autotuning would absorb.
        self.client_rcvbuf = client_rcvbuf
        self.lifetime_s = lifetime_s
        self.max_connections = max_connections
        self.cut_log: List[Cut] = []
        self._lock = threading.Lock()
        self._connections: List[_Connection] = []
        self._all: List[_Connection] = []  # for the final join
        self._listener: Optional[socket.socket] = None
        self._thread: Optional[threading.Thread] = None
        self._stop = threading.Event()
        self._deadline = 0.0
        self._flowing = threading.Event()
        self._flowing.set()
        self._delay_s = 0.0
        self._one_byte = False
        self._refusing = False
        self._accepted = self._refused = self._cuts = 0
        self._bytes = {UP: 0, DOWN: 0}
        self._schedule: List[Tuple[str, int]] = []
        self._scheduled_cuts = 0  # cuts taken off the schedule, made or about to be
        self._armed_at = {UP: 0, DOWN: 0}  # byte counts when the current schedule item armed

    # --- life cycle -----------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._listener is None:
            raise RuntimeError("the proxy is not started")
        return self._listener.getsockname()[1]

    def start(self) -> "FaultProxy":
        self._deadline = time.monotonic() + self.lifetime_s
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if self.client_rcvbuf:
            # Set on the listener so accepted sockets start with it (the window is fixed at SYN).
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.client_rcvbuf)
        listener.bind((HOST, 0))
        listener.listen(64)
        listener.settimeout(POLL_S)
        self._listener = listener
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, close every connection, and wait for the threads (bounded)."""
        self._stop.set()
        self._flowing.set()  # wake stalled pumps so they see the stop flag
        if self._thread is not None:
            self._thread.join(JOIN_TIMEOUT_S)
        if self._listener is not None:
            self._listener.close()
        with self._lock:
            connections = list(self._all)
        for c in connections:
            c.close(reset=True)
        for c in connections:
            c.join()

    def __enter__(self) -> "FaultProxy":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- faults ---------------------------------------------------------------------------------

    def cut(self) -> int:
        """Reset every current connection, both sides; returns how many. New ones are accepted."""
        return self._cut(None, 0)

    def stall(self) -> None:
        """Stop forwarding both ways (no reads, so the senders' buffers fill); nothing is closed."""
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    def slow(self, delay_s: float) -> None:
        """Wait delay_s before forwarding each chunk (each byte with byte_at_a_time); 0: off."""
        self._delay_s = max(0.0, delay_s)

    def byte_at_a_time(self, on: bool) -> None:
        """Forward one byte per send(), both ways, so the receiver sees packets in pieces."""
        self._one_byte = on

    def refuse(self, on: bool) -> None:
        """Accept new connections and close them at once; current ones are left alone."""
        self._refusing = on

    def cut_after(self, schedule: Iterable[Tuple[str, int]]) -> None:
        """Cut after (direction, n) more bytes, then the next item from that moment on, and so on.

        The first item is counted from now; each next one from the cut before it, across the
        reconnections in between. Replaces any schedule still pending.
        """
        items = [(d, int(n)) for d, n in schedule]
        for d, n in items:
            if d not in (UP, DOWN, EITHER) or n < 1:
                raise ValueError("bad cut %r: direction is UP, DOWN or EITHER, bytes >= 1" % ((d, n),))
        with self._lock:
            self._schedule = items
            self._armed_at = dict(self._bytes)

    def pending_cuts(self) -> int:
        with self._lock:
            return len(self._schedule)

    def settle_cuts(self, timeout_s: float) -> None:
        """Wait (up to timeout_s) until no cut is pending and every cut taken off the schedule
        has been made: the last ones can fall on the acknowledgements that trail a run's final
        message, a moment after the test saw that message."""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            with self._lock:
                made = sum(1 for c in self.cut_log if c.direction is not None)  # cut() logs None
                if not self._schedule and made == self._scheduled_cuts:
                    return
            time.sleep(POLL_S)

    def counters(self) -> Counters:
        with self._lock:
            return Counters(self._accepted, self._refused, self._cuts, self._bytes[UP], self._bytes[DOWN])

    def recordings(self) -> List[Tuple[Recording, Recording]]:
        """(client -> broker, broker -> client) per forwarded connection, oldest first (record=True)."""
        with self._lock:
            return [(c.recordings[UP], c.recordings[DOWN]) for c in self._all if c.recordings is not None]

    def open_connections(self) -> int:
        with self._lock:
            return len(self._connections)

    # --- internals --------------------------------------------------------------------------------

    def _running(self) -> bool:
        return not self._stop.is_set() and time.monotonic() < self._deadline

    def _take(self, direction: str, size: int) -> Tuple[int, Optional[int]]:
        """Count up to `size` bytes as forwarded. Returns how many may go and, when the scheduled
        cut follows them, its byte count (the item is taken off the schedule here, atomically)."""
        with self._lock:
            allowed, cut = size, None
            if self._schedule and self._schedule[0][0] in (direction, EITHER):
                counted = (UP, DOWN) if self._schedule[0][0] == EITHER else (direction,)
                done = sum(self._bytes[d] - self._armed_at[d] for d in counted)
                left = self._schedule[0][1] - done
                if left <= size:
                    allowed = max(0, left)
                    cut = self._schedule.pop(0)[1]
                    self._scheduled_cuts += 1
            self._bytes[direction] += allowed
            if cut is not None:
                self._armed_at = dict(self._bytes)  # the next item counts from this cut
            return allowed, cut

    def _cut(self, direction: Optional[str], after: int) -> int:
        with self._lock:
            victims, self._connections = self._connections, []
            self._cuts += 1
            self.cut_log.append(Cut(time.monotonic(), direction, after, len(victims)))
        for c in victims:
            c.close(reset=True)
        return len(victims)

    def _accept_loop(self) -> None:
        assert self._listener is not None
        for _ in range(int(self.lifetime_s / POLL_S) + 1):
            if not self._running():
                return
            try:
                client, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return  # stop() closed the listener
            with self._lock:
                self._accepted += 1
                over = self._accepted > self.max_connections
            if self._refusing or over:
                self._refuse(client)
                continue
            try:
                target = socket.create_connection(self.target, timeout=CONNECT_TIMEOUT_S)
            except OSError:
                self._refuse(client)  # the target is down: the client sees a connection that ends at once
                continue
            for s in (client, target):
                s.settimeout(SEND_TIMEOUT_S)  # recv waits in select; this bounds sendall
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            connection = _Connection(self, client, target)
            with self._lock:
                self._connections.append(connection)
                self._all.append(connection)
                self._connections = [c for c in self._connections if not c.closed.is_set()]
            connection.start()

    def _refuse(self, client: socket.socket) -> None:
        with self._lock:
            self._refused += 1
        client.close()


def random_schedule(rng: random.Random, count: int, max_bytes: int,
                    directions: Tuple[str, ...] = (UP, DOWN)) -> List[Tuple[str, int]]:
    """`count` cuts at random points: each (one of `directions`, 1..max_bytes)."""
    return [(rng.choice(directions), rng.randint(1, max_bytes)) for _ in range(count)]
