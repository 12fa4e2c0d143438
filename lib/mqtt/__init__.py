"""mqtt: an MQTT 3.1.1 client for MicroPython and CPython.

`from mqtt import MQTTClient` replaces `from umqtt.simple import MQTTClient`. The client loads on
first use (PEP 562 module __getattr__, which MicroPython shares), so an asyncio program that
imports mqtt.aio never pays RAM for the blocking client.
"""
from .errors import ConnectionRefused, MQTTException, MQTTTimeout, ProtocolError, SubscribeRefused


def __getattr__(name):
    if name == "MQTTClient":
        from .client import MQTTClient

        return MQTTClient
    if name[:1] == "_":
        raise AttributeError(name)
    # `from mqtt import packet`: MicroPython asks __getattr__ before it looks for a submodule, so
    # import it here (an unknown name raises ImportError, as `from mqtt import nope` should).
    __import__("mqtt." + name)
    return globals()[name]
