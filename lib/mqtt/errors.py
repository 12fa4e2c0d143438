"""The exceptions mqtt raises: one base class, one subclass per way a broker can let a program down.

Every error says what happened in words, so a line on a serial console is enough to act on it.
"""


class MQTTException(Exception):
    """Base class; named as in umqtt.simple so `except MQTTException` keeps working after a port."""


class ConnectionRefused(MQTTException):
    """The broker answered CONNECT with a non-zero return code.

    args[0] is the code (as umqtt.simple's MQTTException carried it), args[1] its name from the
    spec's table 3.1 [MQTT-3.2.2-3]; `code` is args[0] too.
    """

    def __init__(self, code):
        if 1 <= code <= 5:
            name = ("unacceptable protocol version", "identifier rejected", "server unavailable",
                    "bad user name or password", "not authorized")[code - 1]
        else:
            name = "undefined return code"
        super().__init__(code, name)
        self.code = code


class SubscribeRefused(MQTTException):
    """The broker granted a subscription with 0x80 (failure); args: (filter, code)."""


class ProtocolError(MQTTException):
    """The broker sent something MQTT 3.1.1 forbids: malformed, unexpected, or larger than allowed.

    The connection cannot be trusted after this; drivers close it.
    """


class MQTTTimeout(MQTTException):
    """A deadline passed: no answer from the broker, or a peer that stopped reading."""
