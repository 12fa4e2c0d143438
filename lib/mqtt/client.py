"""MQTTClient: the blocking driver, a drop-in superset of micropython-lib's umqtt.simple.

It owns the socket, the clock and the reconnect policy; the Session owns the protocol. Each call
sends what the session queued in one write, then reads until the event it waits for, delivering
any message that arrives meanwhile to the callback. Every wait has a deadline (`timeout` s).

After the first successful connect() the client reconnects by itself (unless reconnect=False):
a call that finds the link dead closes it, and the same or a later call reconnects with backoff,
resends what was in flight and restores subscriptions. No QoS 1/2 message is dropped on the way
while the outbox has room: what cannot be sent waits there (and in `store`, a file, if one is
given); past its bounds (queue_count, queue_bytes) the oldest goes, counted in counters().
"""
from .backoff import STABLE_MS, delay_ms
from .compat import const, sleep_ms, ticks_add, ticks_diff, ticks_ms, tidy_heap
from .errors import MQTTException, MQTTTimeout, ProtocolError, SubscribeRefused
from .link import open_link
from .session import MAX_PACKET, QUEUE_BYTES, QUEUE_COUNT, Session

_CHUNK = const(512)  # bytes read per recv: small enough for a board, one PUBACK or many
_IDLE_MS = const(60000)  # wait_msg() with neither timeout nor keepalive still wakes this often

# Packet types as in packet.py, private so that MicroPython inlines them (session.py says why).
_CONNACK = const(2)
_PUBLISH = const(3)
_PUBACK = const(4)
_PUBCOMP = const(7)
_SUBACK = const(9)
_UNSUBACK = const(11)
_DROPPED = const(16)  # session.DROPPED


class MQTTClient:
    def __init__(self, client_id, server, port=0, user=None, password=None, keepalive=0, ssl=None,
                 ssl_params=None, timeout=10, max_packet=MAX_PACKET, reconnect=True, backoff=(0.1, 1.0),
                 store=None, queue_count=QUEUE_COUNT, queue_bytes=QUEUE_BYTES, queue_qos0=False):
        if port == 0:
            port = 8883 if ssl else 1883
        self.server = server
        self.port = port
        self.ssl = ssl  # an SSLContext; umqtt.simple's True (with ssl_params) or False work too
        self.ssl_params = ssl_params
        self.user = user
        self.pswd = password
        self.keepalive = keepalive
        self.timeout_ms = int(timeout * 1000)
        self.reconnect = reconnect
        self.cb = None
        self.on_connect = None  # f(session_present) after every (re)connect
        self.on_disconnect = None  # f(reason): what ended a connection or failed a reconnect; None after disconnect()
        self.on_oversized = None  # f(topic, size): a message above max_packet, acknowledged and dropped
        self.sock = None  # the Link while connected
        self.reconnects = 0
        self._flags = False
        self._clean = True
        self._ever_connected = False
        self._up_since = 0
        self._retry_at = 0
        self._present = 0
        self._backoff = (int(backoff[0] * 1000), int(backoff[1] * 1000))
        self._attempt = 0  # failed attempts since the last stable connection
        # Resend an unanswered QoS 1/2 PUBLISH halfway to the caller's deadline.
        self._s = s = Session(client_id, keepalive, max_packet, retry_ms=self.timeout_ms // 2,
                              queue_count=queue_count, queue_bytes=queue_bytes, queue_qos0=queue_qos0)
        self._store = None
        if store:
            from .store import FileStore  # only a client with a store pays for the module

            self._store = FileStore(store, s)  # restores what a reset left in the file
        self._buf = bytearray(_CHUNK)
        self._view = memoryview(self._buf)

    def set_callback(self, f, flags=False):
        """f(topic, msg) for each message; with flags=True, f(topic, msg, retain, qos, dup)."""
        self.cb = f
        self._flags = flags

    def set_last_will(self, topic, msg, retain=False, qos=0):
        self._s.set_will(topic, msg, qos, retain)

    def connect(self, clean_session=True, timeout=None):
        """Open the connection and wait for CONNACK; returns the session-present flag (0 or 1).

        Errors here are raised even with reconnect on: the first connection is the caller's.
        timeout (s), as umqtt.simple's: the deadline of this and every later wait, as if given
        to the constructor.
        """
        if timeout is not None:
            self.timeout_ms = int(timeout * 1000)
            self._s.retry_ms = self.timeout_ms // 2
        self._clean = clean_session
        self.close()
        self._open()
        self._ever_connected = True
        return self._present

    def publish(self, topic, msg, retain=False, qos=0):
        """Send a message; returns True once its QoS flow is complete (PUBACK, or PUBCOMP for
        QoS 2). With reconnect on it returns False instead of raising when the message could not
        be confirmed in time: it stays queued or in flight and goes out after a reconnect."""
        self._ensure_link()
        pid = self._s.publish(ticks_ms(), topic, msg, qos, retain)
        self._flush_or_lose()
        if not pid:
            return pid is not None  # QoS 0 sent, or queued/dropped while offline
        return self._wait(_PUBACK if qos == 1 else _PUBCOMP, pid) is not None

    def subscribe(self, topic, qos=0):
        """Subscribe and wait for SUBACK; returns the granted QoS, raises SubscribeRefused on 0x80.
        The subscription is restored after every reconnect that lost it."""
        self._ensure_link(True)
        pid = self._s.subscribe(ticks_ms(), ((topic, qos),))
        self._flush_or_lose()
        ev = self._wait(_SUBACK, pid)
        if ev is None:
            raise MQTTTimeout("no SUBACK within %d ms (it will be restored on reconnect)" % self.timeout_ms)
        if ev[2][0] == 0x80:
            raise SubscribeRefused(topic, 0x80)
        return ev[2][0]

    def unsubscribe(self, topic):
        self._ensure_link(True)
        pid = self._s.unsubscribe(ticks_ms(), (topic,))
        self._flush_or_lose()
        self._wait(_UNSUBACK, pid)

    def ping(self):
        """Send PINGREQ now; the PINGRESP is handled by the next wait_msg/check_msg/poll."""
        self._ensure_link(True)
        self._s.ping(ticks_ms())
        self._flush_or_lose()

    def wait_msg(self, timeout=None):
        """Handle one incoming packet; returns its type (PUBLISH is 3; CONNACK, 2, right after a
        reconnect), or None if `timeout` seconds passed without one. With timeout=None it waits
        as long as it takes, pinging as keepalive requires, so a dead broker shows within 1.5 x
        keepalive."""
        ev = self._next(None if timeout is None else int(timeout * 1000))
        return None if ev is None else ev[0]

    def check_msg(self):
        """Handle one packet if one has arrived, else return None at once (umqtt.simple's poll)."""
        return self.wait_msg(0)

    def poll(self):
        """Service the connection without blocking: handle everything that has arrived, send
        pings, resends and queued messages that are due, reconnect if due. Returns the number of
        packets handled. Call it from idle loops."""
        n = 0
        while self._next(0) is not None:
            n += 1
        return n

    def disconnect(self):
        """Send DISCONNECT (the broker then drops the will) and close; no reconnect follows.
        Then on_disconnect(None), as paho-mqtt reports a disconnect the program asked for."""
        self._ever_connected = False
        if self.sock:
            self._s.disconnect()
            try:
                self._flush()
            finally:
                self.close()
            if self.on_disconnect:
                self.on_disconnect(None)

    def close(self):
        """Close the socket without DISCONNECT: the broker will publish the last will."""
        if self.sock:
            self._s.connection_lost()
            sock = self.sock
            self.sock = None
            sock.close()

    def counters(self):
        """What a node reports about its link: reconnects, resends, dropped and queued messages."""
        s = self._s
        return {"reconnects": self.reconnects, "resends": s.resends, "dropped": s.outbox.dropped,
                "queued": len(s.outbox.items), "inflight": len(s.flows), "too_large": s.too_large}

    # --- internals ---------------------------------------------------------------------------------

    def _open(self):
        """One connection attempt: TCP (+TLS), CONNECT, CONNACK. Raises on any failure."""
        self.sock = open_link(self.server, self.port, self.ssl, self.timeout_ms, self.ssl_params)
        try:
            now = ticks_ms()
            self._s.connect(now, self._clean, self.user, self.pswd)
            self._flush()
            deadline = ticks_add(now, self.timeout_ms)
            while True:
                ev = self._read_event(ticks_diff(deadline, ticks_ms()))
                if ev is not None and ev[0] == _CONNACK:
                    break
                if ticks_diff(deadline, ticks_ms()) <= 0:
                    raise MQTTTimeout("no CONNACK from %s:%d within %d ms" % (self.server, self.port, self.timeout_ms))
            self._flush()  # resends, restored subscriptions and queued messages
        except Exception:
            self.close()
            raise
        self._present = ev[1]
        self._up_since = ticks_ms()
        tidy_heap()  # the garbage connecting left around the socket that stays
        if self.on_connect:
            self.on_connect(ev[1])

    def _ensure_link(self, need=False):
        """Before a command: reconnect if one is due. `need`: the command cannot be queued."""
        if self.sock is None:
            if self.reconnect and self._ever_connected:
                self._try_reconnect()
            if self.sock is None and (need or not self.reconnect):
                raise OSError("not connected")

    def _try_reconnect(self):
        """One attempt if the backoff allows it now; True if connected afterwards."""
        now = ticks_ms()
        if ticks_diff(self._retry_at, now) > 0:
            return False
        try:
            self._open()
        except (OSError, MQTTException) as e:
            self._retry_at = ticks_add(now, delay_ms(self._attempt, self._backoff))
            self._attempt += 1
            if self.on_disconnect:
                self.on_disconnect(e)
            return False
        self.reconnects += 1
        return True

    def _lose(self, reason):
        """The link failed: close it and, with reconnect off, raise `reason`."""
        now = ticks_ms()
        if ticks_diff(now, self._up_since) >= STABLE_MS:
            self._attempt = 0
            self._retry_at = now  # after a stable connection the first attempt is immediate
        else:
            # One that died young (a broker dropping us at once, a queued message we refuse)
            # backs off as a failed attempt would: no reconnect storm.
            self._retry_at = ticks_add(now, delay_ms(self._attempt, self._backoff))
            self._attempt += 1
        self.close()
        if self.on_disconnect:
            self.on_disconnect(reason)
        if not (self.reconnect and self._ever_connected):
            raise reason

    def _flush(self, ms=None):
        """Send what the session queued, within ms (default: timeout), but never less than
        timeout / 2. A caller's deadline bounds its sends, so a peer that stopped reading cannot
        stretch a call far past it; yet a send cannot stop halfway without breaking the stream,
        and a resend that falls due in check_msg() (no time left) must not cut a slow link."""
        if self._store:
            self._store.sync()  # before the bytes leave: a reset must not lose them
        out = self._s.out
        if out:
            ms = self.timeout_ms if ms is None else max(ms, self._s.retry_ms, 1)
            if self._s.passthrough:
                self._send_pieces(ms)
            else:
                self.sock.send(out, ms)
            out[0:] = b""  # truncate in place: the buffer keeps its capacity for the next packet

    def _send_pieces(self, ms):
        """out with large payloads written from their own buffers (Session.pieces), all within ms."""
        deadline = ticks_add(ticks_ms(), ms)
        for piece in self._s.pieces():
            self.sock.send(piece, max(ticks_diff(deadline, ticks_ms()), 1))

    def _flush_or_lose(self):
        if self.sock is None:
            if self._store:
                self._store.sync()  # a message queued offline must survive a reset too
            return
        try:
            self._flush()
        except (OSError, MQTTTimeout) as e:
            self._lose(e)

    def _wait(self, kind, pid):
        """The event (kind, pid), or None if the deadline passed (reconnect on; else it raises).
        None too, at once, for a publish (kind PUBACK or PUBCOMP) whose flow a clean reconnect
        re-queued under a new id: the message goes out again, and its old id is never answered."""
        deadline = ticks_add(ticks_ms(), self.timeout_ms)
        while True:
            left = ticks_diff(deadline, ticks_ms())
            ev = self._next(max(left, 0))
            if ev is not None and ev[0] == kind and ev[1] == pid:
                return ev
            if kind < _SUBACK and self._s.flow(pid) is None:
                return None
            if left <= 0:
                if self.reconnect:
                    return None
                raise MQTTTimeout("no answer from the broker within %d ms" % self.timeout_ms)

    def _next(self, ms):
        """Handle the next packet within ms (None: no limit), keeping the link alive and
        reconnecting as needed. Returns the event, or None when the time is up; after a
        reconnect, its CONNACK's (a waiting publish may have been settled by it)."""
        deadline = None if ms is None else ticks_add(ticks_ms(), ms)
        while True:
            if self.sock is None:
                if not (self.reconnect and self._ever_connected):
                    raise OSError("not connected")
                if self._try_reconnect():
                    return (_CONNACK, self._present)
                wait = ticks_diff(self._retry_at, ticks_ms())
                if deadline is not None:
                    left = ticks_diff(deadline, ticks_ms())
                    if left <= 0:
                        return None
                    wait = min(wait, left)
                sleep_ms(max(wait, 1))
                continue
            left = None if deadline is None else ticks_diff(deadline, ticks_ms())
            try:
                ev = self._read_event(left)
            except (OSError, MQTTTimeout, ProtocolError) as e:
                self._lose(e)
                continue
            if ev is None:
                if deadline is not None and ticks_diff(deadline, ticks_ms()) <= 0:
                    return None
                continue
            if ev[0] == _PUBLISH and self.cb:
                if self._flags:
                    self.cb(ev[1], ev[2], ev[4], ev[3], ev[5])
                else:
                    self.cb(ev[1], ev[2])
            elif ev[0] == _DROPPED and self.on_oversized:
                self.on_oversized(ev[1], ev[2])
            # Acknowledge after delivering: if the link dies now, the message was still
            # delivered, and the broker resends it with DUP: delivered again at QoS 1 (at least
            # once), only acknowledged at QoS 2 (its id is held until PUBREL).
            try:
                self._flush(None if deadline is None else ticks_diff(deadline, ticks_ms()))
            except (OSError, MQTTTimeout) as e:
                self._lose(e)
            return ev

    def _read_event(self, ms):
        """The next event from the link, or None after up to ms of nothing (keepalive served)."""
        s = self._s
        ev = s.next_event()
        if ev is not None:
            return ev  # the caller sends the acks the session queued, once it has delivered
        now = ticks_ms()
        # Silent for 1.5 x keepalive by the session's clock, which only moves when bytes are read:
        # a program that calls seldom may have the broker's answer waiting in the socket. So a
        # dead link is one with nothing there either.
        dead = s.dead(now)
        wait = 0 if dead else s.tick(now)
        self._flush(ms)
        if ms is not None and (wait is None or ms < wait):
            wait = ms
        n = self.sock.recv_into(self._buf, _IDLE_MS if wait is None else max(wait, 0))
        if n is None:
            if dead:
                raise MQTTTimeout("no packet from the broker for 1.5 x keepalive (%d s)" % self.keepalive)
            return None
        if n == 0:
            raise OSError("connection closed by the broker")
        s.receive_data(self._view[:n] if n < _CHUNK else self._buf, ticks_ms())
        return s.next_event()


tidy_heap()  # compat.tidy_heap: the garbage this import left, collected on a board
