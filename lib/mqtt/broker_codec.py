"""The broker's half of the MQTT 3.1.1 codec: parse what clients send, build what brokers send.

A client never imports this module (it would only cost a board RAM). It exists so that the codec
covers all fourteen packets, for the round-trip tests and for the scripted fake broker the tests
use for hostile cases. mqnode does not include a broker and never will.
"""
from .errors import ProtocolError
from .packet import SUBACK, encode_publish_head, get_str, get_u16, put_u16, put_varint


def decode_connect(body):
    """(client_id, keepalive, clean, will, user, password); will is None or (topic, msg, qos, retain)."""
    name, i = get_str(body, 0)
    if name != b"MQTT" or i >= len(body) or body[i] != 4:
        raise ProtocolError("not an MQTT 3.1.1 CONNECT [MQTT-3.1.2-1, -2]")
    if i + 4 > len(body):
        raise ProtocolError("CONNECT variable header is truncated")
    flags = body[i + 1]
    if flags & 1:
        raise ProtocolError("CONNECT reserved flag set [MQTT-3.1.2-3]")
    keepalive = get_u16(body, i + 2)
    client_id, i = get_str(body, i + 4)
    will = None
    if flags & 0x04:
        qos = flags >> 3 & 3
        if qos == 3:
            raise ProtocolError("will QoS 3 [MQTT-3.1.2-14]")
        topic, i = get_str(body, i)
        n = get_u16(body, i)
        if i + 2 + n > len(body):
            raise ProtocolError("will message runs past the packet")
        will = (topic, bytes(body[i + 2 : i + 2 + n]), qos, flags >> 5 & 1)
        i += 2 + n
    elif flags & 0x38:
        raise ProtocolError("will QoS or retain without a will [MQTT-3.1.2-11, -13, -15]")
    user = password = None
    if flags & 0x80:
        user, i = get_str(body, i)
    if flags & 0x40:
        if user is None:
            raise ProtocolError("password without user name [MQTT-3.1.2-22]")
        n = get_u16(body, i)
        if i + 2 + n > len(body):
            raise ProtocolError("password runs past the packet")
        password = bytes(body[i + 2 : i + 2 + n])
        i += 2 + n
    if i != len(body):
        raise ProtocolError("%d bytes after the CONNECT payload" % (len(body) - i))
    return client_id, keepalive, flags >> 1 & 1, will, user, password


def decode_subscribe(body):
    """(packet id, [(filter, requested qos), ...])."""
    pid = get_u16(body, 0)
    i = 2
    filters = []
    while i < len(body):
        f, i = get_str(body, i)
        if i >= len(body):
            raise ProtocolError("SUBSCRIBE filter without a QoS byte")
        if body[i] > 2:
            raise ProtocolError("SUBSCRIBE requested QoS byte 0x%x [MQTT-3.8.3-4]" % body[i])
        filters.append((f, body[i]))
        i += 1
    if not filters:
        raise ProtocolError("SUBSCRIBE without filters [MQTT-3.8.3-3]")
    return pid, filters


def decode_unsubscribe(body):
    """(packet id, [filter, ...])."""
    pid = get_u16(body, 0)
    i = 2
    filters = []
    while i < len(body):
        f, i = get_str(body, i)
        filters.append(f)
    if not filters:
        raise ProtocolError("UNSUBSCRIBE without filters [MQTT-3.10.3-2]")
    return pid, filters


def encode_publish(out, flags, topic, payload, pid):
    """A whole PUBLISH, payload and all, as a broker sends it to a client (flags and pid as for
    packet.encode_publish_head, which the client's session uses to keep large payloads apart)."""
    encode_publish_head(out, flags, topic, len(payload), pid)
    out.extend(payload)


def encode_connack(out, session_present, code):
    out.extend(b"\x20\x02")
    out.append(session_present)
    out.append(code)


def encode_suback(out, pid, codes):
    out.append(SUBACK << 4)
    put_varint(out, 2 + len(codes))
    put_u16(out, pid)
    out.extend(bytes(codes))
