# A publisher written against umqtt.simple's documented API; only the import differs from the
# umqtt.simple original (`from umqtt.simple import MQTTClient`).
import sys

from mqtt import MQTTClient


def main(server="localhost"):
    c = MQTTClient("umqtt_pub", server)
    c.connect()
    c.publish(b"foo_topic", b"hello")
    c.disconnect()


if __name__ == "__main__":
    main(sys.argv[1])
