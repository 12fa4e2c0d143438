"""mqnode's blocking client, `from mqtt import MQTTClient`."""
from clients import BIG_PACKET, HOST, KEEPALIVE, Blocking


class Adapter(Blocking):
    def load(self):
        from mqtt import MQTTClient

        self.cls = MQTTClient

    def make(self, cid, port, big=False):
        if big:
            return self.cls(cid, HOST, port, keepalive=KEEPALIVE, max_packet=BIG_PACKET)
        return self.cls(cid, HOST, port, keepalive=KEEPALIVE)
