"""paho-mqtt on CPython, used the way its documentation shows: loop_start() runs the network
thread, publish() returns an MQTTMessageInfo, wait_for_publish() blocks until the PUBACK."""
import threading

from clients import HOST, KEEPALIVE, Blocking


class _Session:
    def __init__(self, paho, cid, port):
        self.port = port
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
        info = self.c.publish(topic, msg, qos, retain)
        if qos:
            info.wait_for_publish(10)

    def disconnect(self):
        self.c.disconnect()
        self.c.loop_stop()


class Adapter(Blocking):
    def load(self):
        import paho.mqtt.client as paho

        self.paho = paho

    def make(self, cid, port, big=False):
        return _Session(self.paho, cid, port)
