"""The client side of one MQTT session, as a state machine with no I/O and no clock.

Bytes from the broker go in with receive_data(); events come out of next_event(); every packet to
send is appended to `out`, which the driver writes and then empties. A payload of PASSTHROUGH bytes
or more is the exception: `out` holds the packet up to it, and the driver writes pieces(), which
put the caller's own buffer in its place, so a large message is never in RAM twice. Time comes in
as `now`, a ticks_ms() value the driver reads. Everything the spec makes the client remember lives
here:

- packet ids in use (never reused while in flight) [MQTT-2.3.1-2];
- outgoing QoS 1 and 2 flows, kept until PUBACK / PUBCOMP, resent with DUP [MQTT-4.4.0-1];
- incoming QoS 2 ids, held from PUBLISH until PUBREL so a redelivery is not delivered twice
  [MQTT-4.3.3-2];
- keepalive: when to ping, and when silence means the link is dead;
- what outlives a connection: subscriptions (sent again when the broker lost them) and the outbox
  of messages published while offline, sent in order once connected, before any newer message.

`dirty` tells a message store (store.py) that the unacknowledged messages changed.

Sized for a board: once loaded from .mpy, every function costs heap beyond its code (about
100 bytes on the 64-bit Unix port) and so does every name, so one-caller helpers are inline,
except where a split keeps a per-message call's frame off the heap: MicroPython allocates the
frame of a call needing more than 11 slots (arguments, locals, stack; 3 per try block) from the
heap on every call. So _handle dispatches to a method per packet kind, and next_event and tick
stay small.

Events are tuples whose first item is the packet type they came from (packet.PUBLISH, ...):
  (CONNACK, session_present)
  (PUBLISH, topic, payload, qos, retain, dup)         a message to deliver
  (PUBACK, pid) / (PUBCOMP, pid)                      an outgoing QoS 1 / QoS 2 flow completed
  (PUBREC, pid) / (PUBREL, pid)                       a step inside a QoS 2 flow, already answered
  (SUBACK, pid, [granted qos or 0x80, ...])
  (UNSUBACK, pid)
  (PINGRESP,)
  (DROPPED, topic, size)                              a PUBLISH above max_packet: acknowledged and
                                                      discarded as it arrived, never delivered
Acknowledgements for unknown ids are returned too (the driver ignores ids it does not wait for),
never an error: brokers may repeat them after a reconnect.
"""
from .compat import body_view, const, str_bytes, ticks_diff, tidy_heap
from .errors import ConnectionRefused, MQTTException, ProtocolError
from .packet import (
    check_flags, decode_ack, decode_connack, decode_empty, decode_publish, decode_suback,
    encode_ack, encode_connect, encode_empty, encode_publish_head, encode_subscribe,
    encode_unsubscribe, parse_header, utf8,
)
from .outbox import Outbox
from .topic import topic_filter, topic_name

MAX_PACKET = const(16384)  # default largest incoming packet body; a board's heap sets the real bound
MAX_INFLIGHT = const(16)  # outgoing QoS 1/2 flows at once; mosquitto's default is 20
# Incoming QoS 2 ids awaiting PUBREL. MQTT 3.1.1 sets no limit and mosquitto 2.0.11 overshoots its own
# max_inflight_messages (20) after reconnects (200+ seen): the bound is for a broker gone wrong.
MAX_HELD = const(256)
OUT_RESERVE = const(512)  # bytes the output buffer holds from the start
IN_ROOM_FROM = const(1024)  # a packet arriving larger than this gets the input buffer's room at once
# A payload this long or longer is not copied into out: the driver writes it from the caller's
# buffer (pieces()), so sending a large message needs one copy of it in RAM, not two.
PASSTHROUGH = const(256)
MAX_SUBS = const(32)  # subscriptions remembered for restoring; each costs its filter's bytes
QUEUE_COUNT = const(32)  # default outbox bound in messages ...
QUEUE_BYTES = const(8192)  # ... and in topic + payload bytes
DROPPED = const(16)  # the event of an incoming PUBLISH too large to take (no packet has this type)

# Packet types as in packet.py, private here so that MicroPython inlines them: an imported name
# costs a dictionary entry and a lookup, and `kind in (PUBACK, ...)` over imported names builds
# a tuple on the heap for every packet.
_CONNACK = const(2)
_PUBLISH = const(3)
_PUBACK = const(4)
_PUBREC = const(5)
_PUBREL = const(6)
_PUBCOMP = const(7)
_SUBACK = const(9)
_UNSUBACK = const(11)
_PINGREQ = const(12)
_PINGRESP = const(13)
_DISCONNECT = const(14)
_MAX_REMAINING = const(268435455)  # packet.MAX_REMAINING

# An outgoing QoS 1/2 flow is a list [pid, qos, state, topic, payload, retain, sent_at], kept in a
# list in the order first sent: MicroPython dicts do not keep insertion order, and the resend
# after a reconnect must [MQTT-4.6.0-1]. The window is small, so a scan is as fast as a lookup.
# store.py saves and restores these records (and the outbox), so it shares this layout. A completed
# record is kept (in _spare, at most one per flow the window held at once) and filled again by
# the next flow: allocating one per message cost more than its 96 bytes. MicroPython's allocator
# looks for a run of free blocks from its first free one onwards, past all the garbage made since
# the last collection, so on a large heap (a board with PSRAM, the Unix port's default) every
# allocation of a message slowed the next: the blocking client's QoS 1 rate went from about 9,500
# to 15,500 msg/s in a 2 MB heap without it.
_SENT = const(0)  # PUBLISH sent; waiting for PUBACK (QoS 1) or PUBREC (QoS 2)
_RELEASED = const(1)  # PUBREL sent; waiting for PUBCOMP


class Session:
    def __init__(self, client_id, keepalive=0, max_packet=MAX_PACKET, max_inflight=MAX_INFLIGHT, retry_ms=0,
                 queue_count=QUEUE_COUNT, queue_bytes=QUEUE_BYTES, queue_qos0=False):
        self.client_id = utf8(client_id, "client_id")
        if not 0 <= keepalive <= 65535:
            raise ValueError("keepalive %d s not in 0..65535" % keepalive)
        self.keepalive_ms = keepalive * 1000
        self.max_packet = max_packet
        self.max_inflight = max_inflight
        self.retry_ms = retry_ms  # resend an unacknowledged flow after this long; 0: only on reconnect
        self.will = None
        # Room for a typical packet from the start, while the heap still has large free blocks:
        # truncated in place after every send, out then never grows (and moves) for a reading.
        self.out = bytearray(OUT_RESERVE)
        self.out[0:] = b""
        self.passthrough = []  # (offset in out, payload): payloads to write after out[:offset]
        self.connected = False
        self._in = bytearray()
        self._room = 0  # the capacity _make_room gave _in (MicroPython keeps it when truncating)
        self._pos = 0  # start of the first unparsed byte in _in
        self._pid = 0
        self.flows = []  # outgoing QoS 1/2 flows, oldest first
        self._spare = []  # completed flow records, to be filled again
        self._pending = {}  # pid -> (True, [filter, ...]) awaiting SUBACK, (False, ...) UNSUBACK
        self._held = set()  # incoming QoS 2 ids: delivered, not yet released
        self.subs = {}  # filter -> qos, restored after a reconnect that lost them
        self.outbox = Outbox(queue_count, queue_bytes)
        self.queue_qos0 = queue_qos0  # also keep QoS 0 messages published while offline
        self.resends = 0
        self.too_large = 0  # incoming PUBLISHes above max_packet, acknowledged and discarded
        self._skip = 0  # bytes of such a PUBLISH still to arrive, to be dropped as they come
        self.dirty = False  # the unacknowledged messages changed since the store last saved them
        self._awaiting_connack = False
        self._clean = True
        self._last_in = self._last_out = 0
        self._pinging = False

    # --- commands: each appends to self.out -----------------------------------------------------

    def set_will(self, topic, message, qos=0, retain=False):
        _check_qos(qos)
        self.will = (topic_name(topic), _binary(message, "will message"), qos, bool(retain))

    def connect(self, now, clean_session=True, user=None, password=None):
        """Start a connection: a fresh input buffer, then CONNECT."""
        if not self.client_id and not clean_session:
            raise ValueError("an empty client_id needs clean_session=True [MQTT-3.1.3-7]")
        if password is not None and user is None:
            raise ValueError("password without user [MQTT-3.1.2-22]")
        # Checked before any state changes, so a bad argument leaves nothing half-queued.
        user = None if user is None else utf8(user, "user")
        password = None if password is None else _binary(password, "password")
        self._in = bytearray()
        self._room = 0
        self._pos = 0
        self._skip = 0
        self._clean = clean_session
        if clean_session and (self.flows or self._held):
            # [MQTT-3.1.2-6]: a clean session starts with no protocol state on either side. No
            # message in flight is dropped: each goes out again as a new one. That includes one
            # the broker answered with PUBREC: a broker may deliver it only at our PUBREL (as
            # mosquitto does), and the clean session discards its copy, so whether it was
            # delivered is unknown. Sent again, it arrives at least once (paho does the same).
            lost = []
            for f in self.flows:
                if f[4] is None:  # restored from a store that did not keep it: cannot go again
                    self.outbox.dropped += 1
                else:
                    lost.append((f[3], f[4], f[1], f[5]))
            self.outbox.put_front(lost)
            self.flows = []
            self._held = set()
            self.dirty = True
        self.connected = False
        self._awaiting_connack = True
        self._pinging = False
        self._last_in = self._last_out = now
        encode_connect(
            self.out, self.client_id, self.keepalive_ms // 1000, clean_session, self.will,
            user, password,
        )

    def publish(self, now, topic, payload, qos=0, retain=False):
        """Send a PUBLISH; returns its packet id (0 for QoS 0), or None if it went to the outbox.

        Offline, or behind earlier queued messages, or with the in-flight window full, a QoS 1/2
        message (QoS 0 too with queue_qos0) waits in the outbox; a QoS 0 one is dropped and
        counted in outbox.dropped.
        """
        _check_qos(qos)
        topic = topic_name(topic)
        if isinstance(payload, str):
            payload = str_bytes(payload)  # payloads are binary; a str goes as its UTF-8 bytes
        elif not (isinstance(payload, bytes) or isinstance(payload, bytearray)
                  or isinstance(payload, memoryview)):
            # Checked before any state changes: a flow holding None could never be sent, nor saved,
            # and a store would bring it back at every boot. (One isinstance at a time: a tuple of
            # types would be built on the heap for every publish.)
            raise TypeError("payload must be bytes or str, not %s" % type(payload).__name__)
        if len(payload) > _MAX_REMAINING - 4 - len(topic):
            raise ValueError("payload of %d bytes: no PUBLISH holds that [MQTT-2.2.3]" % len(payload))
        if self.connected and not self.outbox.items and len(self.flows) < self.max_inflight:
            return self._send_publish(now, topic, payload, qos, retain)
        if qos or self.queue_qos0:
            self.outbox.put((topic, payload, qos, retain))
            self.dirty = True
            self._drain(now)
        else:
            self.outbox.dropped += 1
        return None

    def _send_publish(self, now, topic, payload, qos, retain):
        pid = 0
        if qos:
            pid = self._new_pid()
            f = self._spare.pop() if self._spare else [0] * 7
            f[0] = pid  # one by one: unpacking 7 names would build a tuple
            f[1] = qos
            f[2] = _SENT
            f[3] = topic
            f[4] = payload
            f[5] = retain
            f[6] = now
            self.flows.append(f)
            self.dirty = True
        self._put_publish(qos << 1 | retain, topic, payload, pid)
        self._last_out = now
        return pid

    def _put_publish(self, flags, topic, payload, pid):
        encode_publish_head(self.out, flags, topic, len(payload), pid)
        if len(payload) < PASSTHROUGH:
            self.out.extend(payload)
        else:
            self.passthrough.append((len(self.out), payload))

    def _drain(self, now):
        """Send outbox messages, oldest first, while connected and the window has room."""
        box = self.outbox
        while self.connected and box.items and len(self.flows) < self.max_inflight:
            m = box.pop()
            self._send_publish(now, m[0], m[1], m[2], m[3])

    def subscribe(self, now, filters):
        """filters: a list of (filter, qos). Returns the SUBSCRIBE's packet id."""
        if not self.connected:
            raise MQTTException("not connected")
        checked = []
        for f, qos in filters:
            _check_qos(qos)
            checked.append((topic_filter(f), qos))
        if not checked:
            raise ValueError("SUBSCRIBE with no filter [MQTT-3.8.3-3]")
        for f, qos in checked:
            if f not in self.subs and len(self.subs) >= MAX_SUBS:
                raise MQTTException("more than %d subscriptions" % MAX_SUBS)
            self.subs[f] = qos
        return self._request(now, True, checked)

    def unsubscribe(self, now, filters):
        if not self.connected:
            raise MQTTException("not connected")
        checked = []
        for f in filters:
            checked.append(topic_filter(f))
        if not checked:
            raise ValueError("UNSUBSCRIBE with no filter [MQTT-3.10.3-2]")
        for f in checked:
            self.subs.pop(f, None)
        return self._request(now, False, checked)

    def _request(self, now, is_sub, items, pid=0):
        """Send SUBSCRIBE (items: (filter, qos) pairs) or UNSUBSCRIBE (items: filters) under pid
        (0: a new one); the filters wait in _pending for the answer. Returns the packet id."""
        pid = pid or self._new_pid()
        if is_sub:
            encode_subscribe(self.out, pid, items)
            filters = []
            for f, _ in items:
                filters.append(f)
        else:
            encode_unsubscribe(self.out, pid, items)
            filters = items
        self._pending[pid] = (is_sub, filters)
        self._last_out = now
        return pid

    def ping(self, now):
        if not self.connected:
            raise MQTTException("not connected")
        encode_empty(self.out, _PINGREQ)
        self._pinging = True
        self._last_out = now

    def disconnect(self):
        """Queue DISCONNECT; the broker then discards the will [MQTT-3.14.4-3]."""
        if self.connected:
            encode_empty(self.out, _DISCONNECT)
        self.connected = False

    def connection_lost(self):
        """The driver's link is gone; flows, subscriptions and the outbox wait for a reconnect."""
        self.connected = False
        self._awaiting_connack = False
        self.out[0:] = b""
        self.passthrough = []

    def pieces(self):
        """What to write when passthrough holds payloads: out cut at their places, with each
        payload between, in order. The driver writes them one after another and then empties
        out as always; passthrough is emptied here."""
        parts = []
        start = 0
        for at, payload in self.passthrough:
            parts.append(body_view(self.out, start, at))
            parts.append(payload)
            start = at
        if start < len(self.out):  # (an empty write still waits for the socket to take it)
            parts.append(body_view(self.out, start, len(self.out)))
        self.passthrough = []
        return parts

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
            wait = self._retry(now, wait)
        return None if wait is None else max(wait, 0)

    def _retry(self, now, wait):
        """Resend the flows unanswered for retry_ms; the earlier of wait and the next such time.
        Apart from tick() so that tick's frame (a for loop takes four slots) stays small."""
        for flow in self.flows:
            due = self.retry_ms - ticks_diff(now, flow[6])
            if due <= 0:
                self._resend(flow, now)
                due = self.retry_ms
            if wait is None or due < wait:
                wait = due
        return wait

    def dead(self, now):
        """True once the broker has been silent for 1.5 x keepalive: the link must be dropped."""
        ka = self.keepalive_ms
        return self.connected and ka and ticks_diff(now, self._last_in) >= ka + ka // 2

    # --- input ---------------------------------------------------------------------------------

    def receive_data(self, data, now):
        if self._pos:
            # Drop the packets already handled before a partial one, so steady traffic that
            # never ends exactly on a packet boundary does not grow the buffer.
            self._in[0 : self._pos] = b""
            self._pos = 0
        if self._skip:
            n = min(self._skip, len(data))  # the rest of an oversized PUBLISH: never stored
            self._skip -= n
            data = data[n:]
        self._in.extend(data)
        self._last_in = now

    def next_event(self):
        """The next event from buffered input, or None until more bytes arrive."""
        buf = self._in
        start = self._pos
        if start >= len(buf):
            return None
        first = buf[start]
        check_flags(first >> 4, first & 15)
        # A PUBLISH of any size is framed (one above max_packet is dropped in _oversized); any
        # other packet above max_packet is refused from its header.
        span = _MAX_REMAINING if first >> 4 == _PUBLISH else self.max_packet
        span = parse_header(buf, start, len(buf), span)
        if span is None:
            return None
        if span[1] - span[0] > self.max_packet:
            if self._awaiting_connack:
                return self._connack(first >> 4, None)  # a PUBLISH before CONNACK: raises
            return self._oversized(first, span)
        if span[1] > len(buf):
            return self._make_room(start, span[1])
        start = span[1]  # where the next packet begins
        body = body_view(buf, span[0], start)
        span = self._handle(first, body)  # span now holds the event: a separate local would push
        # this frame past 11 slots
        if start == len(buf):
            buf[0:] = b""  # everything consumed: truncate in place, keeping the capacity
            self._pos = 0
        else:
            self._pos = start
        return span

    def _make_room(self, start, end):
        """The packet at _in[start:end] is still arriving: when large, give _in room for all of it
        at once. Left to grow chunk by chunk, _in is reallocated every time, each time into a
        block larger than the last, which a fragmented board heap soon lacks; with the payload's
        own copy on delivery, receiving then took about three times the message. Returns None,
        next_event's answer until the rest arrives."""
        if end - start > IN_ROOM_FROM and end - start > self._room:
            buf = bytearray(end - start)
            buf[0:] = body_view(self._in, start, len(self._in))  # len: what arrived; the rest is room
            self._in = buf
            self._pos = 0
            self._room = end - start
        return None

    def _oversized(self, first, span):
        """A PUBLISH above max_packet: read as far as its packet id, acknowledged, and discarded
        as it streams in, so it is never buffered whole nor delivered. Refusing it is no way out:
        MQTT 3.1.1 has no refusal, and a dropped connection brings it back with the session,
        again and again. A QoS 2 one is held like any other, so its redelivery is not counted
        twice."""
        buf = self._in
        i = span[0]
        if i + 2 > len(buf):
            return None
        i += 2 + (buf[i] << 8 | buf[i + 1]) + (2 if first & 6 else 0)  # end of topic and packet id
        if span[1] >= i > len(buf):
            return None  # the variable header is still on its way
        topic, pid, _, qos = decode_publish(first & 15, body_view(buf, span[0], min(i, span[1], len(buf))))
        i = span[1]
        if i <= len(buf):
            buf[self._pos : i] = b""  # all of it had arrived already
        else:
            self._skip = i - len(buf)
            buf[self._pos :] = b""
        if qos == 1:
            encode_ack(self.out, _PUBACK, pid)
        elif qos == 2:
            encode_ack(self.out, _PUBREC, pid)
            if pid in self._held:
                return (_PUBREC, pid)  # a redelivery of one already dropped: ack only
            if len(self._held) >= MAX_HELD:
                raise ProtocolError("over %d QoS 2 ids awaiting PUBREL" % MAX_HELD)
            self._held.add(pid)
        self.too_large += 1
        return (DROPPED, topic, span[1] - span[0])

    def _handle(self, first, body):
        kind = first >> 4
        if self._awaiting_connack:
            return self._connack(kind, body)
        if kind == _PUBLISH:
            return self._incoming(first, body)
        if kind in (_PUBACK, _PUBREC, _PUBCOMP, _PUBREL, _UNSUBACK):
            return self._ack(kind, decode_ack(kind, body))
        if kind == _SUBACK:
            return self._suback(body)
        if kind == _PINGRESP:
            decode_empty(kind, body)
            self._pinging = False
            return (_PINGRESP,)
        if kind == _CONNACK:
            raise ProtocolError("a second CONNACK [MQTT-3.2.0-1]")
        raise ProtocolError("packet type %d is never sent to a client" % kind)

    def _connack(self, kind, body):
        if kind != _CONNACK:
            raise ProtocolError("packet type %d before CONNACK [MQTT-3.2.0-1]" % kind)
        present, code = decode_connack(body)
        self._awaiting_connack = False
        if code:
            raise ConnectionRefused(code)
        if present and self._clean:
            raise ProtocolError("session present on a clean session [MQTT-3.2.2-1]")
        self.connected = True
        if not present:
            # The broker kept nothing, so its packet ids start over: an id still held from the
            # old session would take a new QoS 2 message for a redelivery and swallow it.
            self._held = set()
        now = self._last_in
        # [MQTT-4.4.0-1]: unacknowledged PUBLISH and PUBREL go out again, oldest first. With
        # no session on the broker's side they still must: the message was never confirmed. A
        # PUBREL would then find no message to release (the broker answers PUBCOMP all the
        # same), so a released flow goes back to its PUBLISH (unless restored from an older store
        # without its payload).
        for flow in self.flows:
            if not present and flow[2] == _RELEASED and flow[4] is not None:
                flow[2] = _SENT
                self.dirty = True  # saved as sent before the PUBLISH leaves
            self._resend(flow, now)
        # Requests the old connection took with it unanswered go again under their own ids, so
        # whoever waits for that SUBACK or UNSUBACK gets it. If the broker has no session for us,
        # every other subscription goes too.
        pending = self._pending
        self._pending = {}
        covered = []
        # Oldest first, as they were sent: an UNSUBSCRIBE and a later SUBSCRIBE of one filter must
        # not swap (MicroPython's dicts are unordered). Ids are handed out upwards, so their order
        # is the order sent, except across the wrap from 65535 to 1 (a sort key for that would
        # cost a function's heap on every board, for two requests unanswered at that moment).
        for pid in sorted(pending):
            is_sub, filters = pending[pid]
            if is_sub:
                items = []
                for f in filters:
                    if f in self.subs:
                        items.append((f, self.subs[f]))
                        covered.append(f)
                if items:
                    self._request(now, True, items, pid)
            else:
                self._request(now, False, filters, pid)
        if not present:
            items = []
            for f, qos in self.subs.items():
                if f not in covered:
                    items.append((f, qos))
            if items:
                self._request(now, True, items)
        self._drain(now)
        return (_CONNACK, present)

    def _incoming(self, first, body):
        topic, pid, payload, qos = decode_publish(first & 15, body)
        if qos == 1:
            encode_ack(self.out, _PUBACK, pid)
        elif qos == 2:
            encode_ack(self.out, _PUBREC, pid)
            if pid in self._held:
                return (_PUBREC, pid)  # a redelivery of a message already delivered: ack only
            if len(self._held) >= MAX_HELD:
                raise ProtocolError("over %d QoS 2 ids awaiting PUBREL" % MAX_HELD)
            self._held.add(pid)
        return (_PUBLISH, topic, payload, qos, first & 1, first >> 3 & 1)

    def _ack(self, kind, pid):
        """PUBACK, PUBREC, PUBREL, PUBCOMP or UNSUBACK for packet id pid."""
        if kind == _PUBREL:
            # [MQTT-4.3.3-2]: release the id, and answer even an unknown one so the broker
            # can finish a flow we already completed before a reconnect.
            self._held.discard(pid)
            encode_ack(self.out, _PUBCOMP, pid)
        elif kind == _UNSUBACK:
            req = self._pending.get(pid)
            if req is not None and not req[0]:
                del self._pending[pid]
        else:
            flow = self.flow(pid)
            if flow is not None and flow[1] == (1 if kind == _PUBACK else 2):
                if kind == _PUBREC:
                    if flow[2] == _SENT:
                        # The payload stays until PUBCOMP: a broker that loses the session before
                        # our PUBREL reaches it has not delivered the message (see _connack).
                        flow[2] = _RELEASED
                        flow[6] = self._last_in  # the PUBREL's retry timer starts now
                        # The store must record it before the PUBREL leaves: restored as sent,
                        # it would be published again after a reset.
                        self.dirty = True
                    encode_ack(self.out, _PUBREL, pid)  # [MQTT-4.3.3-1], also for a repeat
                elif kind == _PUBCOMP and flow[2] != _RELEASED:
                    raise ProtocolError("PUBCOMP %d before PUBREC" % pid)
                else:
                    self.flows.remove(flow)
                    flow[3] = flow[4] = None  # the caller's topic and payload are not kept alive
                    self._spare.append(flow)
                    self.dirty = True
                    self._drain(self._last_in)
        return (kind, pid)

    def _suback(self, body):
        pid, codes = decode_suback(body)
        req = self._pending.get(pid)
        if req is not None and req[0]:
            filters = req[1]
            if len(filters) != len(codes):
                raise ProtocolError(
                    "SUBACK has %d codes for %d filters [MQTT-3.9.3-1]" % (len(codes), len(filters))
                )
            del self._pending[pid]
            for f, code in zip(filters, codes):
                if code == 0x80:
                    self.subs.pop(f, None)  # refused: nothing to restore later
        return (_SUBACK, pid, codes)

    # --- internals -------------------------------------------------------------------------------

    def _new_pid(self):
        if len(self.flows) + len(self._pending) >= 65535:
            raise MQTTException("all 65535 packet ids in flight")
        pid = self._pid
        while True:
            pid = pid % 65535 + 1  # ids run 1..65535 [MQTT-2.3.1-1]
            if self.flow(pid) is None and pid not in self._pending:
                self._pid = pid
                return pid

    def flow(self, pid):
        """The in-flight record of an outgoing QoS 1/2 message, or None once complete."""
        for flow in self.flows:
            if flow[0] == pid:
                return flow
        return None

    def _resend(self, flow, now):
        if flow[2] == _SENT:
            # DUP=1 and the same id [MQTT-3.3.1-1]
            self._put_publish(8 | flow[1] << 1 | flow[5], flow[3], flow[4], flow[0])
        else:
            encode_ack(self.out, _PUBREL, flow[0])
        flow[6] = self._last_out = now
        self.resends += 1


def _check_qos(qos):
    if qos not in (0, 1, 2):
        raise ValueError("QoS %r not 0, 1 or 2" % (qos,))


def _binary(p, what):
    """A length-prefixed binary field (will message, password): at most 65,535 bytes."""
    if isinstance(p, str):
        p = p.encode()
    if len(p) > 65535:
        raise ValueError("%s: %d bytes > 65535" % (what, len(p)))
    return p


tidy_heap()  # compat.tidy_heap: the garbage this import left, collected on a board
