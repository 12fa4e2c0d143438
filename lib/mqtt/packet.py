"""MQTT 3.1.1 control packets as bytes: what a client sends and what it receives.

Encoders append one whole packet to the caller's bytearray, so a driver sends it with one write and
reuses the buffer. Decoders take a packet's body (bytes or memoryview) and return plain values or
tuples: no packet objects, because on a board each object is heap. The broker's half (CONNECT,
SUBSCRIBE and UNSUBSCRIBE parsing; CONNACK and SUBACK building) lives in broker_codec.py so that a
client never loads it.

MQTT 5 fits this shape: a `level` argument would add properties after each variable header and
reason codes to the acks, without changing the callers' structure.
"""
from .compat import const, tidy_heap
from .errors import ProtocolError

# Packet types, the high nibble of the first byte [MQTT-2.2.1].
CONNECT = const(1)
CONNACK = const(2)
PUBLISH = const(3)
PUBACK = const(4)
PUBREC = const(5)
PUBREL = const(6)
PUBCOMP = const(7)
SUBSCRIBE = const(8)
SUBACK = const(9)
UNSUBSCRIBE = const(10)
UNSUBACK = const(11)
PINGREQ = const(12)
PINGRESP = const(13)
DISCONNECT = const(14)

MAX_REMAINING = const(268435455)  # the largest 4-byte variable-length integer [MQTT-2.2.3]
MAX_STRING = const(65535)  # UTF-8 strings carry a 16-bit length [MQTT-1.5.3]

# [MQTT-2.2.2-1]: PUBREL, SUBSCRIBE and UNSUBSCRIBE carry flags 0b0010, all others but PUBLISH 0.
_FLAGS_0010 = const(0b0000010101000000)  # bit n set: type n needs flags 0b0010


def check_flags(kind, flags):
    if kind == 0 or kind == 15:
        raise ProtocolError("reserved packet type %d" % kind)
    if kind != PUBLISH and flags != (2 if _FLAGS_0010 >> kind & 1 else 0):
        raise ProtocolError("packet type %d with flags 0x%x [MQTT-2.2.2-2]" % (kind, flags))


def parse_header(buf, start, end, max_size):
    """(body start, body end) of the packet at buf[start], or None while its header is incomplete.

    The size limit is checked here, before a byte of the body is stored, so a declared 256 MB
    packet costs nothing but this error.
    """
    n = 0
    shift = 0
    i = start + 1
    while True:
        if i >= end:
            return None
        b = buf[i]
        i += 1
        n |= (b & 0x7F) << shift
        if not b & 0x80:
            break
        shift += 7
        if shift == 28:
            raise ProtocolError("remaining length longer than 4 bytes [MQTT-2.2.3]")
    if n > max_size:
        raise ProtocolError("packet type %d of %d bytes exceeds max_packet %d" % (buf[start] >> 4, n, max_size))
    return i, i + n


def put_varint(out, n):
    if n > MAX_REMAINING:
        raise ValueError("packet of %d bytes > 268435455 [MQTT-2.2.3]" % n)
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)


def put_u16(out, n):
    out.append(n >> 8)
    out.append(n & 0xFF)


def put_str(out, s):
    """A length-prefixed string; s is bytes already checked by utf8()."""
    put_u16(out, len(s))
    out.extend(s)


def utf8(s, what):
    """s (str or bytes) as the bytes of a valid MQTT string, or ValueError naming `what`.

    [MQTT-1.5.3-1]: well-formed UTF-8; [MQTT-1.5.3-2]: no U+0000; at most 65,535 bytes.
    """
    if isinstance(s, str):
        b = s.encode()
    else:
        b = bytes(s)
        if not well_formed(b):
            raise ValueError("%s is not valid UTF-8" % what)
    if len(b) > MAX_STRING:
        raise ValueError("%s: %d bytes > 65535 [MQTT-1.5.3]" % (what, len(b)))
    if b"\x00" in b:
        raise ValueError("%s contains NUL [MQTT-1.5.3-2]" % what)
    return b


def well_formed(b):
    """Whether b is well-formed UTF-8 [MQTT-1.5.3-1]. ASCII, the usual topic, takes one C-level
    scan; anything else loads the full RFC 3629 check (utf8.py) on first use."""
    if not b or max(b) < 0x80:
        return True
    from .utf8 import well_formed_utf8

    return well_formed_utf8(b)


def get_u16(body, i):
    if i + 2 > len(body):
        raise ProtocolError("packet ends in a 2-byte field")
    return body[i] << 8 | body[i + 1]


def get_str(body, i):
    """(bytes, index after it) of the length-prefixed string at body[i], checked as UTF-8."""
    n = get_u16(body, i)
    i += 2
    if i + n > len(body):
        raise ProtocolError("%d-byte string past packet end" % n)
    s = bytes(body[i : i + n])
    if not well_formed(s):
        raise ProtocolError("ill-formed UTF-8 [MQTT-1.5.3-1]")
    if b"\x00" in s:
        raise ProtocolError("U+0000 in string [MQTT-1.5.3-2]")
    return s, i + n


# --- what a client sends -------------------------------------------------------------------------


def encode_connect(out, client_id, keepalive, clean, will, user, password):
    """CONNECT; will is None or (topic, message, qos, retain), every string already bytes."""
    n = 10 + 2 + len(client_id)
    flags = clean << 1
    if will:
        n += 4 + len(will[0]) + len(will[1])
        flags |= 0x04 | will[2] << 3 | will[3] << 5
    if user is not None:
        n += 2 + len(user)
        flags |= 0x80
    if password is not None:
        n += 2 + len(password)
        flags |= 0x40
    out.append(0x10)
    put_varint(out, n)
    out.extend(b"\x00\x04MQTT\x04")  # protocol name and level 4 [MQTT-3.1.2-1, -2]
    out.append(flags)
    put_u16(out, keepalive)
    put_str(out, client_id)
    if will:
        put_str(out, will[0])
        put_str(out, will[1])
    if user is not None:
        put_str(out, user)
    if password is not None:
        put_str(out, password)


def encode_publish_head(out, flags, topic, size, pid):
    """A PUBLISH up to its payload of `size` bytes; flags are the fixed header's low bits,
    DUP << 3 | QoS << 1 | RETAIN, and pid is 0 for QoS 0. The session appends a small payload
    itself and has a large one written from the caller's buffer (Session.pieces), never copied;
    broker_codec.encode_publish is the whole packet at once."""
    out.append(0x30 | flags)
    put_varint(out, (4 if flags & 6 else 2) + len(topic) + size)
    put_str(out, topic)
    if flags & 6:
        put_u16(out, pid)


def encode_ack(out, kind, pid):
    """PUBACK, PUBREC, PUBREL, PUBCOMP and UNSUBACK: a packet id and nothing else."""
    out.append(kind << 4 | (2 if kind == PUBREL else 0))
    out.append(2)
    put_u16(out, pid)


def encode_subscribe(out, pid, filters):
    """filters: a list of (filter bytes, requested qos)."""
    n = 2
    for f, _ in filters:
        n += 3 + len(f)
    out.append(0x82)
    put_varint(out, n)
    put_u16(out, pid)
    for f, qos in filters:
        put_str(out, f)
        out.append(qos)


def encode_unsubscribe(out, pid, filters):
    n = 2
    for f in filters:
        n += 2 + len(f)
    out.append(0xA2)
    put_varint(out, n)
    put_u16(out, pid)
    for f in filters:
        put_str(out, f)


def encode_empty(out, kind):
    """PINGREQ, PINGRESP and DISCONNECT: a type and a zero length."""
    out.append(kind << 4)
    out.append(0)


# --- what a client receives ----------------------------------------------------------------------


def decode_connack(body):
    """(session present, return code)."""
    if len(body) != 2:
        raise ProtocolError("CONNACK: %d bytes, not 2" % len(body))
    if body[0] & 0xFE:
        raise ProtocolError("CONNACK flags 0x%x [MQTT-3.2.2-1]" % body[0])
    return body[0], body[1]


def decode_publish(flags, body):
    """(topic, packet id or 0, payload, qos), every rule on the topic checked."""
    qos = flags >> 1 & 3
    if qos == 3:
        raise ProtocolError("PUBLISH QoS 3 [MQTT-3.3.1-4]")
    topic, i = get_str(body, 0)
    if not topic:
        raise ProtocolError("empty PUBLISH topic [MQTT-4.7.3-1]")
    if b"+" in topic or b"#" in topic:
        raise ProtocolError("wildcard in PUBLISH topic %r [MQTT-3.3.2-2]" % topic)
    pid = 0
    if qos:
        pid = get_u16(body, i)
        i += 2
        if pid == 0:
            raise ProtocolError("PUBLISH packet id 0 [MQTT-2.3.1-1]")
    return topic, pid, bytes(body[i:]), qos


def decode_ack(kind, body):
    """The packet id of a PUBACK, PUBREC, PUBREL, PUBCOMP or UNSUBACK."""
    if len(body) != 2:
        raise ProtocolError("packet type %d: %d bytes, not 2" % (kind, len(body)))
    return body[0] << 8 | body[1]


def decode_suback(body):
    """(packet id, [granted qos or 0x80 per filter])."""
    pid = get_u16(body, 0)
    codes = list(body[2:])
    if not codes:
        raise ProtocolError("SUBACK with no codes [MQTT-3.9.3]")
    for c in codes:
        if c > 2 and c != 0x80:
            raise ProtocolError("SUBACK return code 0x%x [MQTT-3.9.3-2]" % c)
    return pid, codes


def decode_empty(kind, body):
    if len(body):
        raise ProtocolError("packet type %d: %d bytes, not 0" % (kind, len(body)))


tidy_heap()  # compat.tidy_heap: the garbage this import left, collected on a board
