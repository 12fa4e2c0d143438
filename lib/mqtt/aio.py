"""An asyncio MQTT client over the same Session as MQTTClient, for MicroPython and CPython.

    async with Client("127.0.0.1", client_id="node-1") as c:
        await c.subscribe("cmd/#", qos=1)
        await c.publish("sensor/t", "21.5", qos=1)
        async for msg in c.messages:
            print(msg.topic, msg.payload)

One task owns the connection: it reads, feeds the session and wakes whoever waits for what
arrived (an acknowledgement sets that publisher's Event at once: no polling). A second task
sleeps until the session's next keepalive deadline, then pings, or closes a link gone silent.
Publishes run concurrently up to the in-flight window; when the link drops, the connection task
reconnects with backoff and the session resends what was in flight. Unlike the blocking client,
nothing is resent while a connection lives: the publisher waits for its acknowledgement.
"""
import asyncio
from collections import namedtuple

from .backoff import STABLE_MS, delay_ms
from .compat import (
    const, stream_close, stream_flushed, stream_nodelay, stream_read, ticks_diff, ticks_ms, tidy_heap,
)
from .errors import MQTTException, MQTTTimeout, SubscribeRefused
from .session import MAX_INFLIGHT, MAX_PACKET, QUEUE_BYTES, QUEUE_COUNT, Session

_READ = const(512)  # bytes per read: one buffer, allocated once per client
INCOMING = const(32)  # default bound of the incoming message queue

# Packet types as in packet.py, private so that MicroPython inlines them (session.py says why).
_PUBLISH = const(3)
_PUBACK = const(4)
_PUBCOMP = const(7)
_SUBACK = const(9)
_UNSUBACK = const(11)
_DROPPED = const(16)  # session.DROPPED


# A received message: msg.topic, msg.payload (bytes), msg.qos, msg.retain, msg.dup. A named tuple
# rather than a class: on MicroPython its type costs a third of a class's heap, each message half.
Message = namedtuple("Message", ("topic", "payload", "qos", "retain", "dup"))


class _Messages:
    """The bounded incoming queue, iterated with `async for`. When full, the oldest message is
    dropped and counted (Client.counters()["dropped_in"]): a slow consumer loses the stalest
    readings rather than stalling the connection task, which must keep acknowledging.

    Once nothing more can arrive the iteration ends, after what is queued: cleanly after
    disconnect(), with the cause when the link is lost and the client will not reconnect.
    A loop waiting on a finished client would otherwise wait forever. connect() opens it again."""

    def __init__(self, bound):
        self.bound = bound
        self.items = []
        self.dropped = 0
        self._ready = asyncio.Event()
        self._end = None  # None while messages may come; then True, or the exception to raise

    def end(self, why):
        self._end = why
        self._ready.set()

    def put(self, m):
        self.items.append(m)
        if len(self.items) > self.bound:
            self.items.pop(0)
            self.dropped += 1
        self._ready.set()

    def __aiter__(self):
        return self

    async def __anext__(self):
        while not self.items:
            if self._end is True:
                raise StopAsyncIteration
            if self._end is not None:
                why = self._end
                self._end = True  # raised once; a loop entered again just ends
                raise why
            self._ready.clear()
            await self._ready.wait()
        return self.items.pop(0)


class _Sent:
    """An awaitable that is done already, with True: what publish() returns for a QoS 0 message
    the stream took at once. One is made, with its StopIteration made up front and raised again
    at every await, as MicroPython asyncio's SingletonGenerator does for sleep(0). It has a
    coroutine's send, throw and close, which create_task() and gather() look for."""

    def __await__(self):
        return self

    __iter__ = close = __await__  # close: nothing to clean up

    def send(self, *_):
        _DONE.__traceback__ = None  # raised again and again: no traceback may pile up on it
        raise _DONE

    # Thrown into (a task cancelled before it ran), it is still done: the message went out.
    __next__ = throw = send


_DONE = StopIteration(True)
_SENT = _Sent()


class Client:
    def __init__(self, server, port=0, client_id="", user=None, password=None, keepalive=60, ssl=None,
                 clean_session=True, will=None, timeout=10, max_packet=MAX_PACKET, reconnect=True,
                 backoff=(0.1, 1.0), inflight=MAX_INFLIGHT, incoming=INCOMING,
                 queue_count=QUEUE_COUNT, queue_bytes=QUEUE_BYTES, queue_qos0=False, store=None):
        if port == 0:
            port = 8883 if ssl else 1883
        self.server = server
        self.port = port
        self.user = user
        self.password = password
        self.ssl = ssl
        self.clean_session = clean_session
        self.timeout = timeout
        self.reconnect = reconnect
        self.reconnects = 0
        self.messages = _Messages(incoming)
        self.connected = asyncio.Event()  # set while connected
        self.disconnected = asyncio.Event()  # set while not connected
        self.disconnected.set()
        self.last_error = None  # what ended the last connection
        self.on_oversized = None  # f(topic, size): a message above max_packet, acknowledged and dropped
        self._dead = None  # set by the keepalive task when it closed a silent link
        self._s = Session(client_id, keepalive, max_packet, inflight, 0, queue_count, queue_bytes, queue_qos0)
        if will:
            self._s.set_will(*will)  # (topic, message, qos, retain)
        self._store = None
        if store:
            from .store import FileStore  # only a client with a store pays for the module

            self._store = FileStore(store, self._s)  # restores what a reset left in the file
        self._backoff = (int(backoff[0] * 1000), int(backoff[1] * 1000))
        self._attempt = 0  # failed attempts since the last stable connection
        self._waiters = {}  # (kind, pid) -> [Event, result]
        self._room = asyncio.Event()  # set when the in-flight window has room
        self._reader = self._writer = None
        self._buf = bytearray(_READ)
        self._view = memoryview(self._buf)
        self._tasks = []
        self._flusher = None  # the task draining a backed-up stream (see _write)
        self._flushed = asyncio.Event()  # set while there is none
        self._flushed.set()
        self._up_since = 0
        self._closing = False

    async def __aenter__(self):
        await self.connect()
        return self

    async def __aexit__(self, *exc):
        await self.disconnect()

    # --- public API ------------------------------------------------------------------------------

    async def connect(self):
        """Connect (errors are raised: the first connection is the caller's), then keep the
        connection up in the background; returns the session-present flag."""
        self._closing = False
        present = await self._open()
        self.messages._end = None
        self._tasks = [asyncio.create_task(self._run()), asyncio.create_task(self._keepalive())]
        return present

    def publish(self, topic, payload, qos=0, retain=False):
        """Awaitable: True once the QoS flow is complete; False when it was not sent: offline, a
        QoS 1/2 message (a QoS 0 one too with queue_qos0) waits in the outbox and goes after the
        reconnect, any other QoS 0 one is dropped. Cancelling the caller never cancels the flow.

        Not a coroutine function: a QoS 0 message is handed to the stream here, and when the
        stream took it all, what is returned is an awaitable finished already (_Sent), so the
        message costs no heap; a coroutine would be ~220 B of garbage per message. Like a
        coroutine, it can be awaited, passed to create_task() or gathered; unlike one, it has done
        its work before it is awaited, and it does not yield to the event loop (nor do CPython's
        write() and drain() while the socket keeps up): a task that only publishes QoS 0 lets the
        others run when it awaits something else, or when the socket is full: a publish made
        while the stream is backed up waits for it (the slow path, _publish), as one made offline
        returns False.
        """
        s = self._s
        if qos or not s.connected or self._flusher or len(s.flows) >= s.max_inflight:
            return self._publish(topic, payload, qos, retain)
        s.publish(ticks_ms(), topic, payload, 0, retain)
        self._write()
        return _SENT

    async def _publish(self, topic, payload, qos, retain):
        s = self._s
        while s.connected and len(s.flows) >= s.max_inflight:
            self._room.clear()
            await self._room.wait()
        pid = s.publish(ticks_ms(), topic, payload, qos, retain)
        if not pid:
            await self._send()
            return pid is not None
        key = (_PUBACK if qos == 1 else _PUBCOMP, pid)
        w = self._waiters[key] = [asyncio.Event(), None]
        try:
            await self._send()
            await w[0].wait()
        finally:
            self._waiters.pop(key, None)  # also when cancelled: the flow itself goes on
        return w[1]

    async def subscribe(self, topic_filter, qos=0):
        """Returns the granted QoS; raises SubscribeRefused on 0x80. Restored on reconnect."""
        codes = await self._request(_SUBACK, self._s.subscribe(ticks_ms(), ((topic_filter, qos),)))
        if codes[0] == 0x80:
            raise SubscribeRefused(topic_filter, 0x80)
        return codes[0]

    async def unsubscribe(self, topic_filter):
        await self._request(_UNSUBACK, self._s.unsubscribe(ticks_ms(), (topic_filter,)))

    async def disconnect(self):
        """DISCONNECT (the broker drops the will), close, and stop reconnecting."""
        self._closing = True
        for t in self._tasks:
            t.cancel()
        self._tasks = []
        if self._writer:
            self._s.disconnect()
            try:
                await self._send(True)
            except Exception:
                pass  # already gone, or a broker that reads nothing: closing is all that is left
            await self._close(False)
        self._lost()
        self._wake_all(OSError("disconnected"))
        if self.messages._end is None:  # a lost link's cause, not yet raised, is kept
            self.messages.end(True)

    def counters(self):
        s = self._s
        return {"reconnects": self.reconnects, "resends": s.resends, "dropped": s.outbox.dropped,
                "queued": len(s.outbox.items), "inflight": len(s.flows), "dropped_in": self.messages.dropped,
                "too_large": s.too_large}

    # --- the connection ----------------------------------------------------------------------------

    async def _open(self):
        s = self._s
        self._dead = None
        try:
            self._reader, self._writer = await asyncio.wait_for(
                asyncio.open_connection(self.server, self.port, ssl=self.ssl,
                                        server_hostname=self.server if self.ssl else None),
                self.timeout,
            )
            stream_nodelay(self._writer)
            s.connect(ticks_ms(), self.clean_session, self.user, self.password)
            await self._send(True)
            ev = None
            while ev is None:
                if self._reader is None:  # the flusher gave the link up; _dead says why
                    raise self._dead or OSError("connection lost")
                n = await asyncio.wait_for(stream_read(self._reader, self._buf), self.timeout)
                if not n:
                    raise OSError("connection closed by the broker before CONNACK")
                s.receive_data(self._view[:n], ticks_ms())
                ev = s.next_event()
            await self._send(True)  # resends, subscriptions, the outbox
        except BaseException as e:
            await self._close()
            if isinstance(e, asyncio.TimeoutError):  # (on MicroPython no OSError: callers expect this)
                raise MQTTTimeout("no connection or CONNACK from %s:%d within %d s" % (
                    self.server, self.port, self.timeout))
            raise e
        self._up_since = ticks_ms()
        tidy_heap()  # connecting left ~4 KB of garbage around the streams that stay
        self.connected.set()
        self.disconnected.clear()
        # A publisher whose flow a clean session re-queued under a new id will never see its
        # old id acknowledged: tell it the message went to the outbox.
        for key, w in self._waiters.items():
            if key[0] in (_PUBACK, _PUBCOMP) and s.flow(key[1]) is None and not w[0].is_set():
                w[1] = False
                w[0].set()
        return ev[1]

    async def _run(self):
        """Read and dispatch until the link fails; then reconnect with backoff, unless closing."""
        while True:
            try:
                await self._read_loop()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                # After a keepalive timeout the read fails on the closed stream: keep the cause.
                self.last_error = self._dead or e
            self._dead = None
            await self._close()
            self._lost()
            if not self.reconnect or self._closing:
                e = self.last_error or OSError("disconnected")
                self._wake_all(e)
                self.messages.end(e)
                for t in self._tasks[1:]:
                    t.cancel()  # the keepalive task: no link left to keep
                return
            if ticks_diff(ticks_ms(), self._up_since) >= STABLE_MS:
                self._attempt = 0
            else:
                # A connection that died young (a broker that drops us at once, a queued message
                # we refuse) must not turn into a reconnect storm: back off as after a failure.
                await asyncio.sleep(delay_ms(self._attempt, self._backoff) / 1000)
                self._attempt += 1
            while True:
                try:
                    await self._open()
                    self.reconnects += 1
                    break
                except asyncio.CancelledError:
                    raise
                except Exception as e:
                    self.last_error = e
                    await asyncio.sleep(delay_ms(self._attempt, self._backoff) / 1000)
                    self._attempt += 1

    def _wake_all(self, e):
        """Nobody will answer now: publishers learn their message is not confirmed (it stays in
        the session for the next connection), requests get the error."""
        for key, w in self._waiters.items():
            w[1] = False if key[0] in (_PUBACK, _PUBCOMP) else e
            w[0].set()

    async def _read_loop(self):
        s = self._s
        while True:
            # Events first: what arrived with the CONNACK is already buffered.
            ev = s.next_event()
            while ev is not None:
                kind = ev[0]
                if kind == _PUBLISH:
                    self.messages.put(Message(ev[1], ev[2], ev[3], ev[4], ev[5]))
                    # Let a consumer waiting in `async for` take it before the next one: a burst
                    # larger than the queue must not overflow it while someone is reading.
                    await asyncio.sleep(0)
                elif kind == _DROPPED:
                    if self.on_oversized:
                        self.on_oversized(ev[1], ev[2])
                elif kind in (_PUBACK, _PUBCOMP, _SUBACK, _UNSUBACK):
                    w = self._waiters.get((kind, ev[1]))
                    if w:
                        w[1] = ev[2] if kind == _SUBACK else True
                        w[0].set()
                    if kind == _PUBACK or kind == _PUBCOMP:
                        self._room.set()
                ev = s.next_event()
            # The acknowledgements the session queued; behind a backlog they wait for the
            # flusher, and reading goes on meanwhile.
            self._write()
            n = await stream_read(self._reader, self._buf)
            if not n:
                raise OSError("connection closed by the broker")
            s.receive_data(self._view[:n], ticks_ms())

    async def _keepalive(self):
        """Sleep until the session's next deadline; ping, or drop a dead link."""
        s = self._s
        while True:
            now = ticks_ms()
            if s.dead(now):
                self._dead = MQTTTimeout("no packet from the broker for 1.5 x keepalive")
                await self._close()  # the connection task sees the closed stream and reconnects
                wait = None
            else:
                wait = s.tick(now)
                try:
                    self._write()  # a ping; behind a backlog it waits, and this task does not
                except (OSError, MQTTException):
                    pass  # the connection task handles the failure
            await asyncio.sleep((1000 if wait is None else max(wait, 10)) / 1000)

    def _send(self, within=False):
        """Write what the session queued; returns what to await: the end of the backlog when the
        stream held bytes back (within: the timeout, TimeoutError past it; the flusher goes
        on), else a bare yield, as drain() gives, so a loop of acknowledged requests cannot
        starve the reader. Not a coroutine: that would be one more heap object per call."""
        if self._write():
            w = self._flushed.wait()
            return asyncio.wait_for(w, self.timeout) if within else w
        return asyncio.sleep(0)

    def _write(self):
        """Hand what the session queued to the stream; true when it waits behind a backlog.

        One drain at a time, in a task of its own. MicroPython's Stream.drain() empties its
        buffer only when done: a write meanwhile was lost, a second drain sent bytes twice, and
        a drain cancelled with its caller left a part to be sent again (the broker then read
        payload bytes as a packet and dropped the link). While the stream is backed up, new
        packets wait in the session's out; the flusher hands them over after. No drain is ever
        cancelled: on MicroPython that takes the socket out of the poll set, reader and all. A
        broker that reads nothing is a silent broker: the keepalive task closes the link after
        1.5 x keepalive, which ends the drain."""
        if self._store:
            self._store.sync()  # before the bytes leave, as MQTTClient does
        w = self._writer
        s = self._s
        if not self._flusher and s.out and w:
            if s.passthrough:  # large payloads, written from their own buffers
                for piece in s.pieces():
                    w.write(piece)
            else:
                w.write(s.out)  # sent at once, or copied (CPython's transport, MicroPython's out_buf)
            s.out[0:] = b""
            if not stream_flushed(w):
                self._flushed.clear()
                self._flusher = asyncio.create_task(self._flush(w))  # kept: CPython's loop holds tasks weakly
        return self._flusher

    async def _flush(self, w):
        """The flusher: drain w, then hand over what queued meanwhile (which may back the
        stream up again, and start the next flusher)."""
        try:
            await w.drain()
            if self._writer is w:  # still this link (_close resets the flusher with it)
                self._flusher = None
                self._write()
        except Exception as e:
            if self._writer is w:  # not closed meanwhile: the connection task reconnects
                self._dead = e
                await self._close()
        if not self._flusher:
            self._flushed.set()

    async def _request(self, kind, pid):
        w = self._waiters[(kind, pid)] = [asyncio.Event(), None]
        try:
            await self._send(True)
            await asyncio.wait_for(w[0].wait(), self.timeout)
        except asyncio.TimeoutError:
            raise MQTTTimeout("no answer from the broker within %d s" % self.timeout)
        finally:
            self._waiters.pop((kind, pid), None)
        if isinstance(w[1], Exception):
            raise w[1]
        return w[1]

    async def _close(self, abort=True):
        """Close the link; abort: it is given up, so what the stream still holds is dropped
        (closing it cleanly would wait for a broker that may never read it)."""
        w = self._writer
        self._reader = self._writer = None
        self._s.connection_lost()
        if w:
            if self._flusher:  # its drain ends on the closed stream; the next link starts clean
                self._flusher = None
                self._flushed.set()
            await stream_close(w, abort, self.timeout)

    def _lost(self):
        self.connected.clear()
        self.disconnected.set()
        self._room.set()  # publishers waiting for room go to the outbox now


tidy_heap()  # compat.tidy_heap: the garbage this import left, collected on a board
