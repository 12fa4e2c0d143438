"""micropython-lib's umqtt.simple."""
from clients import HOST, KEEPALIVE, Blocking


class Adapter(Blocking):
    def load(self):
        from umqtt.simple import MQTTClient

        self.cls = MQTTClient

    def make(self, cid, port, big=False):
        return self.cls(cid, HOST, port, keepalive=KEEPALIVE)
