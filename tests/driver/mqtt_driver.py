# Runs lib/mqtt's MQTTClient for a test, under CPython or MicroPython, so both runtimes
# execute the same client code through the same requests (tests/client_process.py is the
# host side).
#
# Protocol: one JSON object per line. Request {"m": method, "a": [args], "k": {kwargs}};
# reply {"r": result} or {"e": class name, "args": [...], "msg": str(e)}. Bytes travel as
# {"b": "<hex>"} both ways. Methods starting with "_" are the driver's own; any other is
# called on the client.
#
# Must run on MicroPython 1.22+ and CPython 3.9+: only json, sys, binascii, ssl, time, gc;
# no typing, no f-strings.
import binascii
import gc
import json
import sys
import time

IS_MICROPYTHON = sys.implementation.name == "micropython"
MAX_REQUESTS = 1000000  # bounds the request loop; the host normally ends it with _exit or EOF
MAX_WAIT_ITERATIONS = 100000  # bounds _wait_messages even if every wait returns at once
WAIT_SLICE_S = 0.2


def encode(value):
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"b": binascii.hexlify(bytes(value)).decode()}
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        return {k: encode(v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


def decode(value):
    if isinstance(value, dict):
        if len(value) == 1 and "b" in value:
            return binascii.unhexlify(value["b"])
        return {k: decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value


def now_ms():
    if IS_MICROPYTHON:
        return time.ticks_ms()
    return int(time.monotonic() * 1000)


def elapsed_ms(start):
    if IS_MICROPYTHON:
        return time.ticks_diff(time.ticks_ms(), start)
    return now_ms() - start


def wall_ns():
    # CLOCK_REALTIME on both runtimes (the Unix port has time.time_ns), the one clock the host
    # shares with this process.
    return time.time_ns()


class Driver:
    def __init__(self):
        self.client = None
        self.messages = []
        self.events = []  # ["connect", session_present] / ["disconnect", class name, str(reason)]
        self.timeline = []  # [wall_ns(), "connect", session_present] / [wall_ns(), "disconnect", class name]

    def record(self, topic, msg, retain, qos, dup):
        # Copies: a client may hand out views into a buffer it reuses.
        self.messages.append([bytes(topic), bytes(msg), retain, qos, dup])

    def _new(self, **kwargs):
        from mqtt import MQTTClient

        tls = kwargs.pop("tls", None)
        if tls and tls.get("legacy"):
            from tls_context import legacy_ssl_params  # only TLS tests pay for it

            kwargs["ssl"] = True
            kwargs["ssl_params"] = legacy_ssl_params(tls["ca"], tls.get("verify", True))
        elif tls:
            from tls_context import make_ssl_context

            kwargs["ssl"] = make_ssl_context(tls["ca"], tls.get("verify", True))
        self.client = MQTTClient(**kwargs)
        self.client.set_callback(self.record, flags=True)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect

    def _on_connect(self, present):
        self.events.append(["connect", present])
        self.timeline.append([wall_ns(), "connect", present])

    def _on_disconnect(self, e):
        name = None if e is None else type(e).__name__
        self.events.append(["disconnect", name, str(e)])
        self.timeline.append([wall_ns(), "disconnect", name])

    def _timeline(self):
        # The same events with the wall-clock time (ns) each happened: the host's time.time_ns()
        # reads the same clock, so a test can time them against what it did meanwhile.
        taken, self.timeline = self.timeline, []
        return taken

    def _events(self):
        taken, self.events = self.events, []
        return taken

    def _publish_many(self, topic, count, qos, first=0, payload_size=0):
        # Publishes count messages whose payloads are the decimal sequence numbers first..,
        # padded with "." to payload_size; one request instead of count, so the driver's
        # round trips do not dominate. Returns the publish() results that were not True.
        not_confirmed = []
        for i in range(first, first + count):
            p = str(i)
            if len(p) < payload_size:
                p = p + "." * (payload_size - len(p))
            r = self.client.publish(topic, p, qos=qos)
            if r is not True and qos:
                not_confirmed.append(i)
        return not_confirmed

    def _publish_timed(self, topic, qos, payload_size):
        # One publish of payload_size bytes, timed here around the call alone: building a large
        # payload, and the request's round trip, stay out of the figure. Returns [result, ms].
        payload = b"." * payload_size
        start = now_ms()
        r = self.client.publish(topic, payload, qos=qos)
        return [r, elapsed_ms(start)]

    def _poll_for(self, seconds):
        # Keeps the client serviced (pings, resends, reconnects, deliveries) for a while.
        start, limit = now_ms(), int(seconds * 1000)
        for _ in range(MAX_WAIT_ITERATIONS):
            left = limit - elapsed_ms(start)
            if left <= 0:
                break
            self.client.wait_msg(timeout=min(left / 1000, WAIT_SLICE_S))
        return len(self.messages)

    def _messages(self):
        taken, self.messages = self.messages, []
        return taken

    def _wait_messages(self, n, timeout_s):
        from mqtt import MQTTTimeout

        start, limit = now_ms(), int(timeout_s * 1000)
        for _ in range(MAX_WAIT_ITERATIONS):
            left = limit - elapsed_ms(start)
            if len(self.messages) >= n or left <= 0:
                break
            try:
                self.client.wait_msg(timeout=min(left / 1000, WAIT_SLICE_S))
            except MQTTTimeout:
                pass
        return self._messages()

    def _mem(self):
        # MicroPython: bytes in use on the GC heap. CPython has no equivalent: always 0.
        gc.collect()
        return gc.mem_alloc() if hasattr(gc, "mem_alloc") else 0

    def _exit(self):
        pass  # main() stops after replying

    def call(self, method, args, kwargs):
        if method.startswith("_"):
            return getattr(self, method)(*args, **kwargs)
        if self.client is None:
            raise RuntimeError("call _new before " + method)
        return getattr(self.client, method)(*args, **kwargs)


def print_traceback(e):
    if IS_MICROPYTHON:
        sys.print_exception(e, sys.stderr)
    else:
        sys.excepthook(type(e), e, e.__traceback__)


def reply(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    if hasattr(sys.stdout, "flush"):
        sys.stdout.flush()


def main():
    driver = Driver()
    for _ in range(MAX_REQUESTS):
        line = sys.stdin.readline()
        if not line:
            return  # the host closed stdin or died
        request = json.loads(line)
        method = request["m"]
        try:
            result = driver.call(method, decode(request.get("a", [])), decode(request.get("k", {})))
        except Exception as e:
            print_traceback(e)
            reply({"e": type(e).__name__, "args": encode(list(e.args)), "msg": str(e)})
        else:
            reply({"r": encode(result)})
        if method == "_exit":
            return


main()
