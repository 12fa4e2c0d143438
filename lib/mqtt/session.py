"""The client side of one MQTT session, as a state machine with no I/O and no clock.

Bytes from the broker go in with receive_data(); events come out of next_event(); every packet to
send is appended to `out`, which the driver writes and then empties. Time comes in as `now`, a
ticks_ms() value the driver reads. Everything the spec makes the client remember lives here:

- packet ids in use (never reused while in flight) [MQTT-2.3.1-2];
- outgoing QoS 1 and 2 flows, kept until PUBACK / PUBCOMP, resent with DUP [MQTT-4.4.0-1];
- incoming QoS 2 ids, held from PUBLISH until PUBREL so a redelivery is not delivered twice
  [MQTT-4.3.3-2];
- keepalive: when to ping, and when silence means the link is dead.

Events are tuples whose first item is the packet type they came from (packet.PUBLISH, ...):
  (CONNACK, session_present)
  (PUBLISH, topic, payload, qos, retain, dup)         a message to deliver
  (PUBACK, pid) / (PUBCOMP, pid)                      an outgoing QoS 1 / QoS 2 flow completed
  (PUBREC, pid) / (PUBREL, pid)                       a step inside a QoS 2 flow, already answered
  (SUBACK, pid, [granted qos or 0x80, ...])
  (UNSUBACK, pid)
  (PINGRESP,)
Acknowledgements for unknown ids are returned too (the driver ignores ids it does not wait for),
never an error: brokers may repeat them after a reconnect.
"""
from .compat import const, ticks_diff
from .errors import ConnectionRefused, MQTTException, ProtocolError
from .packet import (
    CONNACK, DISCONNECT, PINGREQ, PINGRESP, PUBACK, PUBCOMP, PUBLISH, PUBREC, PUBREL, SUBACK, UNSUBACK,
    check_flags, decode_ack, decode_connack, decode_empty, decode_publish, decode_suback,
    encode_ack, encode_connect, encode_empty, encode_publish, encode_subscribe,
    encode_unsubscribe, parse_header, utf8,
)
from .topic import topic_filter, topic_name

MAX_PACKET = const(16384)  # default largest incoming packet body; a board's heap sets the real bound
MAX_INFLIGHT = const(16)  # outgoing QoS 1/2 flows at once; mosquitto's default is 20
MAX_HELD = const(64)  # incoming QoS 2 ids awaiting PUBREL; a broker sending more is misbehaving

# An outgoing QoS 1/2 flow is a list [pid, qos, state, topic, payload, retain, sent_at], kept in a
# list in the order first sent: MicroPython dicts do not keep insertion order, and the resend
# after a reconnect must [MQTT-4.6.0-1]. The window is small, so a scan is as fast as a lookup.
_SENT = const(0)  # PUBLISH sent; waiting for PUBACK (QoS 1) or PUBREC (QoS 2)
_RELEASED = const(1)  # PUBREL sent; waiting for PUBCOMP


class Session:
    def __init__(self, client_id, keepalive=0, max_packet=MAX_PACKET, max_inflight=MAX_INFLIGHT, retry_ms=0):
        self.client_id = utf8(client_id, "client_id")
        if not 0 <= keepalive <= 65535:
            raise ValueError("keepalive %d s is outside 0..65535" % keepalive)
        self.keepalive_ms = keepalive * 1000
        self.max_packet = max_packet
        self.max_inflight = max_inflight
        self.retry_ms = retry_ms  # resend an unacknowledged flow after this long; 0: only on reconnect
        self.will = None
        self.out = bytearray()
        self.connected = False
        self._in = bytearray()
        self._pos = 0  # start of the first unparsed byte in _in
        self._pid = 0
        self._flows = []  # outgoing QoS 1/2 flows, oldest first
        self._pending = {}  # pid -> filters in a SUBSCRIBE (>0) or UNSUBSCRIBE (0) awaiting its ack
        self._held = set()  # incoming QoS 2 ids: delivered, not yet released
        self._awaiting_connack = False
        self._clean = True
        self._last_in = self._last_out = self._ping_at = 0
        self._pinging = False

    # --- commands: each appends to self.out -----------------------------------------------------

    def set_will(self, topic, message, qos=0, retain=False):
        _check_qos(qos)
        self.will = (topic_name(topic), _payload(message), qos, bool(retain))

    def connect(self, now, clean_session=True, user=None, password=None):
        """Start a connection: a fresh input buffer, then CONNECT."""
        if not self.client_id and not clean_session:
            raise ValueError("an empty client_id needs clean_session=True [MQTT-3.1.3-7]")
        if password is not None and user is None:
            raise ValueError("a password needs a user name [MQTT-3.1.2-22]")
        self._in = bytearray()
        self._pos = 0
        self._clean = clean_session
        if clean_session:
            # [MQTT-3.1.2-6]: a clean session starts with no state on either side.
            self._flows.clear()
            self._held.clear()
        self._pending.clear()  # an unanswered SUBSCRIBE died with the old connection
        self.connected = False
        self._awaiting_connack = True
        self._pinging = False
        self._last_in = self._last_out = now
        encode_connect(
            self.out, self.client_id, self.keepalive_ms // 1000, clean_session, self.will,
            None if user is None else utf8(user, "user"),
            None if password is None else _payload(password),
        )

    def publish(self, now, topic, payload, qos=0, retain=False):
        """Queue a PUBLISH; returns its packet id (0 for QoS 0)."""
        _check_qos(qos)
        self._need_connection()
        topic = topic_name(topic)
        payload = _payload(payload)
        pid = 0
        if qos:
            if len(self._flows) >= self.max_inflight:
                raise MQTTException("%d QoS 1/2 messages already in flight" % self.max_inflight)
            pid = self._new_pid()
            self._flows.append([pid, qos, _SENT, topic, payload, retain, now])
        encode_publish(self.out, topic, payload, qos, retain, 0, pid)
        self._last_out = now
        return pid

    def subscribe(self, now, filters):
        """filters: a list of (filter, qos). Returns the SUBSCRIBE's packet id."""
        self._need_connection()
        checked = []
        for f, qos in filters:
            _check_qos(qos)
            checked.append((topic_filter(f), qos))
        if not checked:
            raise ValueError("SUBSCRIBE needs at least one filter [MQTT-3.8.3-3]")
        pid = self._new_pid()
        self._pending[pid] = len(checked)
        encode_subscribe(self.out, pid, checked)
        self._last_out = now
        return pid

    def unsubscribe(self, now, filters):
        self._need_connection()
        checked = [topic_filter(f) for f in filters]
        if not checked:
            raise ValueError("UNSUBSCRIBE needs at least one filter [MQTT-3.10.3-2]")
        pid = self._new_pid()
        self._pending[pid] = 0
        encode_unsubscribe(self.out, pid, checked)
        self._last_out = now
        return pid

    def ping(self, now):
        self._need_connection()
        encode_empty(self.out, PINGREQ)
        self._pinging = True
        self._ping_at = self._last_out = now

    def disconnect(self):
        """Queue DISCONNECT; the broker then discards the will [MQTT-3.14.4-3]."""
        if self.connected:
            encode_empty(self.out, DISCONNECT)
        self.connected = False

    def connection_lost(self):
        """The driver's link is gone; keep the session's flows for a resend on reconnect."""
        self.connected = False
        self._awaiting_connack = False
        self.out[0:] = b""

    # --- time ----------------------------------------------------------------------------------

    def tick(self, now):
        """Ping and resend as due; returns ms until tick is due again, or None if never.

        Silence is reported by dead(), not raised here: the driver owns the error and the socket.
        """
        if not self.connected:
            return None
        wait = None
        ka = self.keepalive_ms
        if ka:
            # Ping after half the keepalive without traffic either way, so the broker's 1.5x
            # deadline [MQTT-3.1.2-24] is never near and a dead link shows within 1.5x ours.
            half = ka // 2
            quiet_in = ticks_diff(now, self._last_in)
            quiet = max(ticks_diff(now, self._last_out), quiet_in)
            if not self._pinging and quiet >= half:
                self.ping(now)
            wait = ka + half - quiet_in if self._pinging else half - quiet
        if self.retry_ms:
            for flow in self._flows:
                due = self.retry_ms - ticks_diff(now, flow[6])
                if due <= 0:
                    self._resend(flow, now)
                    due = self.retry_ms
                if wait is None or due < wait:
                    wait = due
        return None if wait is None else max(wait, 0)

    def dead(self, now):
        """True once the broker has been silent for 1.5 x keepalive: the link must be dropped."""
        ka = self.keepalive_ms
        return self.connected and ka and ticks_diff(now, self._last_in) >= ka + ka // 2

    # --- input ---------------------------------------------------------------------------------

    def receive_data(self, data, now):
        self._in.extend(data)
        self._last_in = now

    def next_event(self):
        """The next event from buffered input, or None until more bytes arrive."""
        buf = self._in
        start = self._pos
        end = len(buf)
        if start >= end:
            return None
        first = buf[start]
        kind = first >> 4
        check_flags(kind, first & 15)
        span = parse_header(buf, start, end, self.max_packet)
        if span is None or span[1] > end:
            return None
        try:
            event = self._handle(kind, first, memoryview(buf)[span[0] : span[1]])
        except Exception:
            # Tracebacks keep the body's memoryview alive, and CPython cannot resize a bytearray
            # with a live view: start a new buffer (the connection is finished anyway).
            self._in = bytearray()
            self._pos = 0
            raise
        if span[1] == end:
            buf[0:] = b""  # everything consumed: truncate in place, keeping the capacity
            self._pos = 0
        else:
            self._pos = span[1]
        return event

    def _handle(self, kind, first, body):
        if self._awaiting_connack:
            if kind != CONNACK:
                raise ProtocolError("packet type %d before CONNACK [MQTT-3.2.0-1]" % kind)
            present, code = decode_connack(body)
            self._awaiting_connack = False
            if code:
                raise ConnectionRefused(code)
            if present and self._clean:
                raise ProtocolError("session present on a clean session [MQTT-3.2.2-1]")
            self.connected = True
            # [MQTT-4.4.0-1]: unacknowledged PUBLISH and PUBREL go out again, oldest first. With
            # no session on the broker's side they still must: the message was never confirmed.
            for flow in self._flows:
                self._resend(flow, self._last_out)
            return (CONNACK, present)
        if kind == CONNACK:
            raise ProtocolError("a second CONNACK [MQTT-3.2.0-1]")
        if kind == PUBLISH:
            return self._incoming_publish(first, body)
        if kind in (PUBACK, PUBREC, PUBCOMP, PUBREL, UNSUBACK):
            pid = decode_ack(kind, body)
            if kind == PUBREL:
                # [MQTT-4.3.3-2]: release the id, and answer even an unknown one so the broker
                # can finish a flow we already completed before a reconnect.
                self._held.discard(pid)
                encode_ack(self.out, PUBCOMP, pid)
            elif kind == UNSUBACK:
                if self._pending.get(pid) == 0:
                    del self._pending[pid]
            else:
                flow = self._flow(pid)
                if flow is not None and flow[1] == (1 if kind == PUBACK else 2):
                    if kind == PUBREC:
                        if flow[2] == _SENT:
                            flow[2] = _RELEASED
                            flow[4] = None  # the payload is no longer needed: free it now
                        encode_ack(self.out, PUBREL, pid)  # [MQTT-4.3.3-1], also for a repeat
                    elif kind == PUBCOMP and flow[2] != _RELEASED:
                        raise ProtocolError("PUBCOMP for id %d before PUBREC" % pid)
                    else:
                        self._flows.remove(flow)
            return (kind, pid)
        if kind == SUBACK:
            pid, codes = decode_suback(body)
            n = self._pending.get(pid)
            if n:
                if n != len(codes):
                    raise ProtocolError("SUBACK has %d codes for %d filters [MQTT-3.9.3-1]" % (len(codes), n))
                del self._pending[pid]
            return (SUBACK, pid, codes)
        if kind == PINGRESP:
            decode_empty(kind, body)
            self._pinging = False
            return (PINGRESP,)
        raise ProtocolError("packet type %d is never sent to a client" % kind)

    def _incoming_publish(self, first, body):
        topic, pid, payload, qos = decode_publish(first & 15, body)
        dup = first >> 3 & 1
        if qos == 1:
            encode_ack(self.out, PUBACK, pid)
        elif qos == 2:
            encode_ack(self.out, PUBREC, pid)
            if pid in self._held:
                return (PUBREC, pid)  # a redelivery of a message already delivered: ack only
            if len(self._held) >= MAX_HELD:
                raise ProtocolError("more than %d QoS 2 messages awaiting PUBREL" % MAX_HELD)
            self._held.add(pid)
        return (PUBLISH, topic, payload, qos, first & 1, dup)

    # --- internals -------------------------------------------------------------------------------

    def _need_connection(self):
        if not self.connected:
            raise MQTTException("not connected")

    def _new_pid(self):
        if len(self._flows) + len(self._pending) >= 65535:
            raise MQTTException("all 65,535 packet ids are in flight")
        pid = self._pid
        while True:
            pid = pid % 65535 + 1  # ids run 1..65535 [MQTT-2.3.1-1]
            if self._flow(pid) is None and pid not in self._pending:
                self._pid = pid
                return pid

    def _flow(self, pid):
        for flow in self._flows:
            if flow[0] == pid:
                return flow
        return None

    def _resend(self, flow, now):
        if flow[2] == _SENT:
            # DUP=1 and the same id [MQTT-3.3.1-1]
            encode_publish(self.out, flow[3], flow[4], flow[1], flow[5], 1, flow[0])
        else:
            encode_ack(self.out, PUBREL, flow[0])
        flow[6] = self._last_out = now

    @property
    def inflight(self):
        return len(self._flows)


def _check_qos(qos):
    if qos not in (0, 1, 2):
        raise ValueError("QoS %r is not 0, 1 or 2" % (qos,))


def _payload(p):
    """Payloads are binary; a str is sent as its UTF-8 bytes."""
    return p.encode() if isinstance(p, str) else p
