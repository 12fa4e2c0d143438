"""mqtt: an MQTT 3.1.1 client for MicroPython and CPython.

`from mqtt import MQTTClient` replaces `from umqtt.simple import MQTTClient`. The asyncio client
is a separate module so a blocking program never pays for it.
"""
from .client import MQTTClient
from .errors import ConnectionRefused, MQTTException, MQTTTimeout, ProtocolError, SubscribeRefused
