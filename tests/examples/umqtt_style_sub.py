# A subscriber written against umqtt.simple's documented API, exactly as its users write one:
# default port, bytes topics, the two-argument callback, a bare wait_msg() loop. Only the import
# differs from the umqtt.simple original (`from umqtt.simple import MQTTClient`).
import sys

from mqtt import MQTTClient


def sub_cb(topic, msg):
    print((topic, msg))


def main(server="localhost"):
    c = MQTTClient("umqtt_client", server)
    c.set_callback(sub_cb)
    c.connect()
    c.subscribe(b"foo_topic")
    print("subscribed")
    while True:
        c.wait_msg()


if __name__ == "__main__":
    main(sys.argv[1])
