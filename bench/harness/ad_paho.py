"""paho-mqtt on CPython, used the way its documentation shows: loop_start() runs the network
thread, publish() returns an MQTTMessageInfo, wait_for_publish() blocks until the PUBACK."""
import threading

from clients import HOST, KEEPALIVE, Blocking


class _Session:
    def __init__(self, paho, cid, port):
        self.port = port
        self.last = None  # the MQTTMessageInfo of the latest publish
        self.up = threading.Event()
        self.c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=cid, protocol=paho.MQTTv311)
        self.c.on_connect = lambda *a: self.up.set()

    def connect(self):
        self.c.connect(HOST, self.port, KEEPALIVE)
        self.c.loop_start()
        if not self.up.wait(10):
            raise OSError("paho: no CONNACK within 10 s")

    def publish(self, topic, msg, retain=False, qos=0):
        if isinstance(topic, bytes):
            topic = topic.decode()  # paho takes str topics only
        self.last = info = self.c.publish(topic, msg, qos, retain)
        if qos:
            info.wait_for_publish(10)

    def sent(self):
        """A QoS 0 publish() only queues the message for the network thread: the last one has
        gone to the socket once paho calls it published."""
        if self.last is not None:
            self.last.wait_for_publish(10)

    def disconnect(self):
        self.c.disconnect()
        self.c.loop_stop()


class Adapter(Blocking):
    def load(self):
        import paho.mqtt.client as paho

        self.paho = paho

    def make(self, cid, port, big=False):
        return _Session(self.paho, cid, port)

    def sent(self, c):
        return c.sent

    def pipelined(self, c, topic, msg, n, limit_us, window):
        """QoS 1 msg/s with up to `window` messages in flight: publish() queues each, and the
        oldest is waited for once `window` are open (paho's network thread sends and acks)."""
        from collections import deque

        from clients import ticks_diff, ticks_us

        topic = topic.decode()
        open_ = deque()
        i = 0
        t0 = ticks_us()
        while i < n:
            if len(open_) >= window:
                open_.popleft().wait_for_publish(10)
            open_.append(c.c.publish(topic, msg, 1))
            i += 1
            if ticks_diff(ticks_us(), t0) >= limit_us:
                break
        for info in open_:
            info.wait_for_publish(10)
        return i * 1000000 / max(ticks_diff(ticks_us(), t0), 1)
