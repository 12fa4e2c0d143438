"""A scripted fake MQTT broker on 127.0.0.1: a test fixture for what a real broker never does.

mosquitto is the reference for correct behaviour; this plays the hostile cases. Each accepted
connection follows one entry of the script, a list of steps:

    script = [
        [Expect(CONNECT), Send(connack(0)), Send(b"\\x30\\xff\\xff\\xff\\x7f"), Stall()],  # 1st
        [Expect(CONNECT), Send(connack(0)), Serve()],                                     # 2nd
    ]
    with FakeBroker(script) as fake:
        c = start_client(port=fake.port, reconnect=False)
        ...
    fake.connections[0].packets   # what the client sent on the first connection, parsed

Connections are served one at a time, in order (a reconnect waits in the listen backlog until the
previous connection's script ends); a connection beyond the script is accepted, counted and closed.
What the client sends is split and checked with lib/mqtt's own codec (packet.py for the framing
and flags, broker_codec.py for CONNECT/SUBSCRIBE/UNSUBSCRIBE), so a malformed client packet is a
script failure too. Failures are collected, never raised in the server thread; `check()` raises
them in the test.

Every wait is bounded: by the step's own timeout, by the broker's `lifetime_s`, and by POLL_S
wake-ups that notice stop().
"""
from __future__ import annotations

import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence, Tuple, Union

from runtime import LIB

if str(LIB) not in sys.path:
    sys.path.insert(0, str(LIB))

from mqtt import broker_codec, packet  # noqa: E402
from mqtt.errors import ProtocolError  # noqa: E402
from mqtt.packet import (  # noqa: E402
    CONNECT, DISCONNECT, PINGREQ, PINGRESP, PUBACK, PUBCOMP, PUBLISH, PUBREC, PUBREL, SUBSCRIBE,
    UNSUBACK, UNSUBSCRIBE,
)

HOST = "127.0.0.1"
POLL_S = 0.05  # how often a blocked accept/recv looks at the stop flag and the deadlines
RECV_CHUNK = 65536
TRICKLE_CHUNK = 16384  # a Trickle reads this much at a time, then sleeps for its share of the rate
DEFAULT_EXPECT_S = 5.0  # a client under test sends its next packet well within this
DEFAULT_STALL_S = 30.0  # longer than any client timeout a test uses; EOF or stop() ends it sooner
DEFAULT_SERVE_S = 30.0
DEFAULT_LIFETIME_S = 60.0
DEFAULT_ACCEPT_S = 15.0  # how long the next scripted connection may take to arrive
MAX_READS = 1_000_000  # with the deadlines, bounds every read loop even if data never stops
MAX_EXTRA_CONNECTIONS = 32  # unscripted connections accepted (and closed) before giving up
SEND_TIMEOUT_S = 5.0
JOIN_TIMEOUT_S = 3.0


# --- what the client sent --------------------------------------------------------------------------


@dataclass(frozen=True)
class Packet:
    """One packet from the client: its type, flags, body, and the exact bytes on the wire."""

    kind: int
    flags: int
    body: bytes
    raw: bytes

    @property
    def packet_id(self) -> int:
        """The packet id of a PUBLISH (0 for QoS 0), an ack, SUBSCRIBE or UNSUBSCRIBE."""
        if self.kind == PUBLISH:
            return self.publish()[1]
        return packet.get_u16(self.body, 0)

    def publish(self) -> Tuple[bytes, int, bytes, int]:
        """(topic, packet id, payload, qos) of a PUBLISH."""
        return packet.decode_publish(self.flags, self.body)


@dataclass
class Connection:
    """One accepted connection: the client's packets in order, and any script failure."""

    number: int
    packets: List[Packet] = field(default_factory=list)
    received: bytearray = field(default_factory=bytearray)  # every byte the client sent
    closed_by_client: bool = False
    failure: Optional[str] = None

    def kinds(self) -> List[int]:
        return [p.kind for p in self.packets]


# --- the script --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Expect:
    """The client's next packet must be of this type (it is recorded either way)."""

    kind: int
    timeout_s: float = DEFAULT_EXPECT_S


@dataclass(frozen=True)
class Send:
    """Write these bytes as they are: a whole packet, half of one, or garbage."""

    data: bytes


@dataclass(frozen=True)
class Reply:
    """Write build(p), p being the packet the last Expect matched (for answers that echo its id)."""

    build: Callable[[Packet], bytes]


@dataclass(frozen=True)
class Stall:
    """Answer nothing for up to `seconds`, still recording what arrives; ends early at the client's EOF."""

    seconds: float = DEFAULT_STALL_S


@dataclass(frozen=True)
class Trickle:
    """Answer nothing for up to `seconds` and read at most `rate` bytes a second meanwhile, still
    recording what arrives: a slow link, on which a client's large send waits for room."""

    rate: int
    seconds: float = DEFAULT_STALL_S


@dataclass(frozen=True)
class Close:
    """Close the connection (FIN) now; the remaining steps, if any, are skipped."""


@dataclass(frozen=True)
class Serve:
    """Behave like a correct broker for up to `seconds`: CONNACK(0) a CONNECT, ack PUBLISH (PUBACK /
    PUBREC), PUBREL, SUBSCRIBE (granting the QoS asked for), UNSUBSCRIBE, PINGREQ. Ends at
    DISCONNECT or EOF. [Serve()] alone is a well-behaved connection. ack_publish=False: a broker
    gone wrong that confirms no PUBLISH yet answers everything else, pings included. refuse: topic
    filters a subscription to which is answered 0x80, as a broker's access rules do."""

    seconds: float = DEFAULT_SERVE_S
    ack_publish: bool = True
    refuse: Tuple[bytes, ...] = ()


Step = Union[Expect, Send, Reply, Stall, Trickle, Close, Serve]


# --- what a broker sends ---------------------------------------------------------------------------


def connack(code: int = 0, session_present: int = 0) -> bytes:
    out = bytearray()
    broker_codec.encode_connack(out, session_present, code)
    return bytes(out)


def suback(pid: int, codes: Sequence[int]) -> bytes:
    out = bytearray()
    broker_codec.encode_suback(out, pid, codes)
    return bytes(out)


def ack(kind: int, pid: int) -> bytes:
    """PUBACK, PUBREC, PUBREL, PUBCOMP or UNSUBACK for `pid`."""
    out = bytearray()
    packet.encode_ack(out, kind, pid)
    return bytes(out)


def empty(kind: int) -> bytes:
    """A packet with no body (PINGRESP; or, to provoke a client, PINGREQ, DISCONNECT ...)."""
    out = bytearray()
    packet.encode_empty(out, kind)
    return bytes(out)


def publish(topic: bytes, payload: bytes, qos: int = 0, pid: int = 0, retain: int = 0, dup: int = 0) -> bytes:
    out = bytearray()
    broker_codec.encode_publish(out, dup << 3 | qos << 1 | retain, topic, payload, pid)
    return bytes(out)


# --- the server ----------------------------------------------------------------------------------------


class _ClientClosed(Exception):
    pass


class _Stopped(Exception):
    pass


class _ScriptFailure(Exception):
    pass


class FakeBroker:
    """Listens on a free 127.0.0.1 port and plays `script`, one step list per connection."""

    def __init__(self, script: Sequence[Sequence[Step]], *, lifetime_s: float = DEFAULT_LIFETIME_S,
                 accept_timeout_s: float = DEFAULT_ACCEPT_S, rcvbuf: Optional[int] = None) -> None:
        """rcvbuf: SO_RCVBUF of the accepted connections, fixed (Linux then stops growing it), so
        that what a client can have in flight to a Trickle is bounded by its own send buffer."""
        self.script = [list(steps) for steps in script]
        self.rcvbuf = rcvbuf
        self.lifetime_s = lifetime_s
        self.accept_timeout_s = accept_timeout_s
        self.connections: List[Connection] = []
        self.failures: List[str] = []
        self._listener: Optional[socket.socket] = None
        self._sock: Optional[socket.socket] = None  # the connection being served
        self._thread: Optional[threading.Thread] = None
        self._stop = threading.Event()
        self._done = threading.Event()  # every scripted connection has ended, or the broker stopped
        self._deadline = 0.0

    @property
    def port(self) -> int:
        if self._listener is None:
            raise RuntimeError("the fake broker is not started")
        return self._listener.getsockname()[1]

    def start(self) -> "FakeBroker":
        self._deadline = time.monotonic() + self.lifetime_s
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if self.rcvbuf is not None:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)  # accepted ones inherit it
        listener.bind((HOST, 0))
        listener.listen(8)
        listener.settimeout(POLL_S)
        self._listener = listener
        self._thread = threading.Thread(target=self._run, name="fake-broker", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop playing, close the listener (the port then refuses connections) and the connection."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(JOIN_TIMEOUT_S)
        if self._listener is not None:
            self._listener.close()
        sock = self._sock
        if sock is not None:
            sock.close()

    def __enter__(self) -> "FakeBroker":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_done(self, timeout_s: float) -> bool:
        """Wait until every scripted connection has ended; False if that took longer than timeout_s."""
        return self._done.wait(timeout_s)

    def wait_for(self, predicate: Callable[["FakeBroker"], bool], timeout_s: float) -> bool:
        """Poll `predicate(self)` until it holds or timeout_s passes (e.g. a packet was recorded)."""
        deadline = time.monotonic() + timeout_s
        for _ in range(int(timeout_s / POLL_S) + 2):
            if predicate(self):
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(POLL_S)
        return predicate(self)

    def check(self) -> None:
        """Raise AssertionError naming every script step that did not go as written."""
        if self.failures:
            raise AssertionError("fake broker script failed:\n" + "\n".join(self.failures))

    def kinds(self, connection: int = 0) -> List[int]:
        """The packet types the client has sent so far on connection `connection` (0: the first)."""
        return self.connections[connection].kinds() if connection < len(self.connections) else []

    # --- the server thread -------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            for steps in self.script:
                sock = self._accept(self.accept_timeout_s)
                if sock is None:
                    self.failures.append("connection %d never came" % (len(self.connections) + 1))
                    return
                self._play(sock, steps)
            self._done.set()
            for _ in range(MAX_EXTRA_CONNECTIONS):
                sock = self._accept(self._deadline - time.monotonic())
                if sock is None:
                    return
                self.connections.append(Connection(len(self.connections) + 1))
                sock.close()
        except _Stopped:
            pass
        finally:
            self._done.set()

    def _accept(self, timeout_s: float) -> Optional[socket.socket]:
        assert self._listener is not None
        deadline = min(time.monotonic() + timeout_s, self._deadline)
        for _ in range(int(max(timeout_s, 0) / POLL_S) + 2):
            if self._stop.is_set():
                raise _Stopped()
            if time.monotonic() > deadline:
                return None
            try:
                sock, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                raise _Stopped() from None  # stop() closed the listener
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(POLL_S)
            return sock
        return None

    def _play(self, sock: socket.socket, steps: List[Step]) -> None:
        conn = Connection(len(self.connections) + 1)
        self.connections.append(conn)
        self._sock = sock
        buf = bytearray()
        last: Optional[Packet] = None
        try:
            for n, step in enumerate(steps):
                where = "connection %d step %d %r" % (conn.number, n + 1, step)
                if isinstance(step, Expect):
                    try:
                        p = self._read_packet(sock, conn, buf, step.timeout_s)
                    except _ClientClosed:
                        conn.closed_by_client = True
                        raise _ScriptFailure("%s: the client closed the connection instead" % where) from None
                    if p is None:
                        raise _ScriptFailure("%s: nothing within %.1f s" % (where, step.timeout_s))
                    if p.kind != step.kind:
                        raise _ScriptFailure("%s: got packet type %d" % (where, p.kind))
                    last = p
                elif isinstance(step, Send):
                    self._send(sock, step.data)
                elif isinstance(step, Reply):
                    if last is None:
                        raise _ScriptFailure("%s: no packet to reply to" % where)
                    self._send(sock, step.build(last))
                elif isinstance(step, Stall):
                    self._stall(sock, conn, buf, step.seconds)
                elif isinstance(step, Trickle):
                    self._trickle(sock, conn, buf, step)
                elif isinstance(step, Serve):
                    self._serve(sock, conn, buf, step)
                elif isinstance(step, Close):
                    break
        except _ClientClosed:
            conn.closed_by_client = True
        except (_ScriptFailure, ProtocolError) as e:
            conn.failure = str(e)
            self.failures.append(str(e))
        except OSError:
            conn.closed_by_client = True  # reset by the client, or closed under us by stop()
        finally:
            self._sock = None
            sock.close()

    def _send(self, sock: socket.socket, data: bytes) -> None:
        sock.settimeout(SEND_TIMEOUT_S)
        try:
            sock.sendall(data)
        finally:
            sock.settimeout(POLL_S)

    def _read_packet(self, sock: socket.socket, conn: Connection, buf: bytearray,
                     timeout_s: float) -> Optional[Packet]:
        """The client's next packet, or None if none was complete within timeout_s."""
        deadline = min(time.monotonic() + timeout_s, self._deadline)
        for _ in range(MAX_READS):
            p = self._split(conn, buf)
            if p is not None:
                return p
            if self._stop.is_set():
                raise _Stopped()
            if time.monotonic() > deadline:
                return None
            self._receive(sock, conn, buf, RECV_CHUNK)
        return self._split(conn, buf)

    def _receive(self, sock: socket.socket, conn: Connection, buf: bytearray, size: int) -> int:
        """Up to size bytes from the client into buf (and the record); 0 when POLL_S passed first."""
        try:
            data = sock.recv(size)
        except socket.timeout:
            return 0
        if not data:
            raise _ClientClosed()
        conn.received.extend(data)
        buf.extend(data)
        return len(data)

    def _split(self, conn: Connection, buf: bytearray) -> Optional[Packet]:
        """Take one whole packet off the front of buf, checked with lib/mqtt's codec."""
        if not buf:
            return None
        kind, flags = buf[0] >> 4, buf[0] & 15
        packet.check_flags(kind, flags)
        span = packet.parse_header(buf, 0, len(buf), packet.MAX_REMAINING)
        if span is None or span[1] > len(buf):
            return None
        p = Packet(kind, flags, bytes(buf[span[0] : span[1]]), bytes(buf[: span[1]]))
        del buf[: span[1]]
        if kind == CONNECT:
            broker_codec.decode_connect(p.body)
        elif kind == SUBSCRIBE:
            broker_codec.decode_subscribe(p.body)
        elif kind == UNSUBSCRIBE:
            broker_codec.decode_unsubscribe(p.body)
        elif kind == PUBLISH:
            p.publish()
        conn.packets.append(p)
        return p

    def _stall(self, sock: socket.socket, conn: Connection, buf: bytearray, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        for _ in range(MAX_READS):
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._read_packet(sock, conn, buf, min(left, POLL_S))

    def _trickle(self, sock: socket.socket, conn: Connection, buf: bytearray, step: Trickle) -> None:
        deadline = time.monotonic() + step.seconds
        for _ in range(MAX_READS):
            left = deadline - time.monotonic()
            if left <= 0 or self._stop.is_set():
                return
            n = self._receive(sock, conn, buf, TRICKLE_CHUNK)
            while self._split(conn, buf) is not None:
                pass
            time.sleep(min(n / step.rate, left))

    def _serve(self, sock: socket.socket, conn: Connection, buf: bytearray, step: Serve) -> None:
        deadline = time.monotonic() + step.seconds
        for _ in range(MAX_READS):
            left = deadline - time.monotonic()
            if left <= 0:
                return
            p = self._read_packet(sock, conn, buf, min(left, POLL_S))
            if p is None:
                continue
            if p.kind == DISCONNECT:
                return
            if p.kind == PUBLISH and not step.ack_publish:
                continue
            answer = _well_behaved_answer(p, step.refuse)
            if answer:
                self._send(sock, answer)


def _well_behaved_answer(p: Packet, refuse: Sequence[bytes] = ()) -> Optional[bytes]:
    """What a correct broker sends back for p, or None (nothing); a subscription to a filter in
    `refuse` is refused."""
    if p.kind == CONNECT:
        return connack(0)
    if p.kind == PUBLISH:
        qos = p.publish()[3]
        return ack(PUBACK if qos == 1 else PUBREC, p.packet_id) if qos else b""
    if p.kind == PUBREL:
        return ack(PUBCOMP, p.packet_id)
    if p.kind == SUBSCRIBE:
        pid, filters = broker_codec.decode_subscribe(p.body)
        return suback(pid, [0x80 if f in refuse else qos for f, qos in filters])
    if p.kind == UNSUBSCRIBE:
        return ack(UNSUBACK, p.packet_id)
    if p.kind == PINGREQ:
        return empty(PINGRESP)
    return None  # PUBACK, PUBREC, PUBCOMP: this broker sends no messages to acknowledge
