"""micropython-lib's umqtt.robust (umqtt.simple plus reconnect-and-retry)."""
from clients import HOST, KEEPALIVE, Blocking


class Adapter(Blocking):
    def load(self):
        from umqtt.robust import MQTTClient

        self.cls = MQTTClient

    def make(self, cid, port, big=False):
        return self.cls(cid, HOST, port, keepalive=KEEPALIVE)
