"""MQTTClient: the blocking driver, a drop-in superset of micropython-lib's umqtt.simple.

It owns the socket and the clock; the Session owns the protocol. Each call sends what the session
queued in one write, then reads until the event it waits for, delivering any message that arrives
meanwhile to the callback. Every wait has a deadline (`timeout` seconds, default 10).
"""
from .compat import Link, const, open_link, ticks_add, ticks_diff, ticks_ms
from .errors import MQTTTimeout, SubscribeRefused
from .packet import CONNACK, PUBACK, PUBCOMP, PUBLISH, SUBACK, UNSUBACK
from .session import MAX_PACKET, Session

_CHUNK = const(512)  # bytes read per recv: small enough for a board, one PUBACK or many


class MQTTClient:
    def __init__(self, client_id, server, port=0, user=None, password=None, keepalive=0, ssl=None,
                 timeout=10, max_packet=MAX_PACKET):
        if port == 0:
            port = 8883 if ssl else 1883
        self.server = server
        self.port = port
        self.ssl = ssl
        self.user = user
        self.pswd = password
        self.keepalive = keepalive
        self.timeout_ms = int(timeout * 1000)
        self.cb = None
        self.sock = None  # the Link while connected
        self._flags = False
        # Resend an unanswered QoS 1/2 PUBLISH halfway to the caller's deadline.
        self._s = Session(client_id, keepalive, max_packet, retry_ms=self.timeout_ms // 2)
        self._buf = bytearray(_CHUNK)
        self._view = memoryview(self._buf)

    def set_callback(self, f, flags=False):
        """f(topic, msg) for each message; with flags=True, f(topic, msg, retain, qos, dup)."""
        self.cb = f
        self._flags = flags

    def set_last_will(self, topic, msg, retain=False, qos=0):
        self._s.set_will(topic, msg, qos, retain)

    def connect(self, clean_session=True):
        """Open the connection and wait for CONNACK; returns the session-present flag (0 or 1)."""
        self.close()
        self.sock = open_link(self.server, self.port, self.ssl, self.timeout_ms)
        try:
            self._s.connect(ticks_ms(), clean_session, self.user, self.pswd)
            self._flush()
            return self._wait(CONNACK, None)[1]
        except Exception:
            self.close()
            raise

    def publish(self, topic, msg, retain=False, qos=0):
        """Send a message; returns once its QoS flow is complete (PUBACK, or PUBCOMP for QoS 2)."""
        pid = self._s.publish(ticks_ms(), topic, msg, qos, retain)
        self._flush()
        if qos:
            self._wait(PUBACK if qos == 1 else PUBCOMP, pid)

    def subscribe(self, topic, qos=0):
        """Subscribe and wait for SUBACK; returns the granted QoS, raises SubscribeRefused on 0x80."""
        pid = self._s.subscribe(ticks_ms(), ((topic, qos),))
        self._flush()
        granted = self._wait(SUBACK, pid)[2][0]
        if granted == 0x80:
            raise SubscribeRefused(topic, granted)
        return granted

    def unsubscribe(self, topic):
        pid = self._s.unsubscribe(ticks_ms(), (topic,))
        self._flush()
        self._wait(UNSUBACK, pid)

    def ping(self):
        """Send PINGREQ now; the PINGRESP is handled by the next wait_msg/check_msg."""
        self._s.ping(ticks_ms())
        self._flush()

    def wait_msg(self, timeout=None):
        """Handle one incoming packet; returns its type (PUBLISH is 3), or None if `timeout`
        seconds passed without one. With timeout=None it waits for a packet as long as it takes,
        pinging as keepalive requires, so a dead broker shows as MQTTTimeout in 1.5 x keepalive.
        """
        ms = None if timeout is None else int(timeout * 1000)
        ev = self._next(ms)
        return None if ev is None else ev[0]

    def check_msg(self):
        """Handle one packet if one has arrived, else return None at once (umqtt.simple's poll)."""
        return self.wait_msg(0)

    def poll(self):
        """Service the connection without blocking: handle everything that has arrived, send pings
        and resends that are due. Returns the number of packets handled. Call it in idle loops."""
        n = 0
        while self._next(0) is not None:
            n += 1
        return n

    def disconnect(self):
        """Send DISCONNECT (the broker then drops the will) and close."""
        if self.sock:
            self._s.disconnect()
            try:
                self._flush()
            finally:
                self.close()

    def close(self):
        """Close the socket without DISCONNECT: the broker will publish the last will."""
        if self.sock:
            self._s.connection_lost()
            sock = self.sock
            self.sock = None
            sock.close()

    # --- internals ---------------------------------------------------------------------------------

    def _flush(self):
        out = self._s.out
        if out:
            if not self.sock:
                raise OSError("not connected")
            self.sock.send(out, self.timeout_ms)
            out[0:] = b""  # truncate in place: the buffer keeps its capacity for the next packet

    def _wait(self, kind, pid):
        deadline = ticks_add(ticks_ms(), self.timeout_ms)
        while True:
            left = ticks_diff(deadline, ticks_ms())
            ev = self._next(max(left, 0))
            if ev is not None and ev[0] == kind and (pid is None or ev[1] == pid):
                return ev
            if left <= 0:
                raise MQTTTimeout("no answer from the broker within %d ms" % self.timeout_ms)

    def _next(self, ms):
        """Handle the next packet, waiting up to ms (None: no limit) while keeping the link alive."""
        s = self._s
        if not self.sock:
            raise OSError("not connected")
        deadline = None if ms is None else ticks_add(ticks_ms(), ms)
        while True:
            ev = s.next_event()
            if ev is not None:
                self._flush()  # acks the session queued while parsing
                if ev[0] == PUBLISH and self.cb:
                    if self._flags:
                        self.cb(ev[1], ev[2], ev[4], ev[3], ev[5])
                    else:
                        self.cb(ev[1], ev[2])
                return ev
            now = ticks_ms()
            if s.dead(now):
                self.close()
                raise MQTTTimeout("no packet from the broker for 1.5 x keepalive (%d s)" % self.keepalive)
            wait = s.tick(now)
            self._flush()
            if deadline is not None:
                left = ticks_diff(deadline, now)
                if wait is None or left < wait:
                    wait = left
            if wait is None:
                wait = 60000  # idle without keepalive: wake now and then, still waiting
            n = self.sock.recv_into(self._buf, max(wait, 0))
            if n is None:
                if deadline is not None and ticks_diff(deadline, ticks_ms()) <= 0:
                    return None
                continue
            if n == 0:
                self.close()
                raise OSError("connection closed by the broker")
            s.receive_data(self._view[:n] if n < _CHUNK else self._buf, ticks_ms())
