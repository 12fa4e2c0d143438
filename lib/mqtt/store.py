"""Unacknowledged QoS 1/2 messages kept in a file, so they survive a reset or deep sleep.

The file is rewritten whole (to path + ".tmp", then renamed over the old one) whenever the set of
unacknowledged messages changes, so a power cut leaves either the old file or the new one (on FAT,
which renames over a file in two steps, possibly the new one alone as path + ".tmp"). A CRC32
over the content catches a torn or corrupted file: it is reported in `problem`, moved aside to
path + ".bad", and the client starts empty instead of failing to boot; so does a file too large
to load in the free heap.

A driver hands its Session to the store: the store puts back what a reset left in the file, and
sync() saves the session's unacknowledged messages (its in-flight flows and the QoS 1/2 messages
in its outbox) whenever they changed, before the driver lets any bytes leave. That code lives
here, not in session.py, so a client without a store never loads it.

Format: b"MQS2", then per message: flags (qos | state << 2 | retain << 4, | 0x20 for a released
QoS 2 flow whose payload was not kept), packet id (0 while queued), topic length (2 bytes),
payload length (4 bytes), topic, payload; then the CRC32 of all that, 4 bytes big-endian. A
b"MQS1" file (before mqnode kept a QoS 2 payload until PUBCOMP) is read too: its released
flows have no payload.
"""
import os
import struct
from binascii import crc32

from .compat import const, ticks_ms, tidy_heap

_MAGIC = b"MQS2"
_MAGIC_1 = b"MQS1"  # released flows saved without their payload
_NO_PAYLOAD = const(0x20)  # a record's flag: a released flow whose payload was not kept
_RELEASED = const(1)  # session.py's state of a QoS 2 flow past PUBREC
_HEAD = ">BHHI"
_SENT = const(0)  # session.py's state of a flow whose PUBLISH awaits PUBACK / PUBREC


class FileStore:
    def __init__(self, path, session=None):
        """With a session: take back into it what the file holds (flows keep their ids, so a
        clean_session=False reconnect resends them as the same messages); a damaged file is
        reported on the console, because that is how a board reports."""
        self.path = path
        self.problem = None  # why the last load() found nothing usable, for the console
        self.session = session
        if session is None:
            return
        now = ticks_ms()
        for pid, qos, state, topic, payload, retain in self.load():
            # A released QoS 2 flow stays a flow even past the window (a smaller one than when
            # it was saved): sent as a new message, it could arrive twice.
            if pid and session.flow(pid) is None and (state != _SENT or len(session.flows) < session.max_inflight):
                session.flows.append([pid, qos, state, topic, payload, retain, now])
            elif payload is not None:
                session.outbox.put((topic, payload, qos, retain))
        if self.problem:
            print("mqtt:", self.problem)

    def sync(self):
        """Save the session's unacknowledged QoS 1/2 messages, oldest first, if they changed.

        A save that fails (a full flash) raises OSError and is tried again by the next sync: the
        driver sends nothing meanwhile, because bytes that left ahead of their record could come
        back after a reset as a QoS 2 message the broker has already released, delivered twice.
        """
        s = self.session
        if not s.dirty:
            return
        records = s.flows[:]  # save() reads the first six items of each
        for m in s.outbox.items:
            if m[2]:
                records.append((0, m[2], _SENT, m[0], m[1], m[3]))  # pid 0: not sent yet
        try:
            self.save(records)
        except OSError as e:
            raise OSError("message store %s not saved: %s" % (self.path, e))
        s.dirty = False

    def save(self, records):
        """records: (pid, qos, state, topic, payload, retain) tuples or lists; [] deletes the file."""
        tmp = self.path + ".tmp"
        if not records:
            self._remove(tmp)  # first: load() would take a lone .tmp for the latest save
            self._remove(self.path)
            return
        crc = 0
        with open(tmp, "wb") as f:
            f.write(_MAGIC)
            crc = crc32(_MAGIC, crc)
            for r in records:
                pid, qos, state, topic, payload, retain = r[0], r[1], r[2], r[3], r[4], r[5]
                flags = qos | state << 2 | retain << 4
                if payload is None:
                    flags |= _NO_PAYLOAD
                    payload = b""
                head = struct.pack(_HEAD, flags, pid, len(topic), len(payload))
                for part in (head, topic, payload):
                    f.write(part)
                    crc = crc32(part, crc)
            f.write(struct.pack(">I", crc & 0xFFFFFFFF))
        os.rename(tmp, self.path)

    def load(self):
        """The saved records, oldest first; [] (and `problem` set) if the file is damaged or too
        large for the heap (a boot that fails on it would fail at every boot).

        With no file, a whole path + ".tmp" is the last save: FAT renames over a file in two
        steps (remove, then rename), and a reset between them leaves only the new file. A torn
        one is a save a reset cut short, before any of its bytes were sent: dropped quietly.
        """
        self.problem = None
        path = self.path
        try:
            data = _read(path)
            if data is None:
                path = path + ".tmp"
                data = _read(path)
                if data is None:
                    return []  # no file: nothing was pending
            records = _parse(data)
        except (ValueError, MemoryError) as e:
            data = None  # the file's buffer, freed before the report is built
            if path != self.path and isinstance(e, ValueError):
                self._remove(path)  # torn: a save cut short before its bytes were sent
                return []
            self.problem = "%s: %s; its messages are skipped (kept as %s.bad)" % (
                path, e if isinstance(e, ValueError) else "too large for the free memory", path)
            self._remove(path + ".bad")
            os.rename(path, path + ".bad")
            return []
        if path != self.path:
            os.rename(path, self.path)  # the rename the reset cut short
        return records

    def _remove(self, path):
        try:
            os.remove(path)
        except OSError:
            pass  # already gone


def _read(path):
    """The file's bytes, or None if there is no such file. Read into one buffer of the file's
    size: if the heap has no room for it, that one allocation fails and leaves nothing behind,
    where read() would leave the buffers it grew, and the report of the failure could then find
    no room either."""
    try:
        with open(path, "rb") as f:
            data = bytearray(os.stat(path)[6])
            f.readinto(data)
            return data
    except OSError:
        return None


def _parse(data):
    if len(data) < 8 or data[:4] not in (_MAGIC, _MAGIC_1):
        raise ValueError("not a message store (%d bytes)" % len(data))
    kept = data[3] != 0x31  # MQS1: a released flow's payload is not in the file
    # A view, not a slice: a copy of the file would double what loading it needs.
    if crc32(memoryview(data)[:-4]) & 0xFFFFFFFF != struct.unpack(">I", data[-4:])[0]:
        raise ValueError("checksum mismatch (truncated or corrupt)")
    records = []
    i = 4
    end = len(data) - 4
    size = struct.calcsize(_HEAD)
    while i < end:
        if i + size > end:
            raise ValueError("record header cut at byte %d" % i)
        flags, pid, tlen, plen = struct.unpack_from(_HEAD, data, i)
        i += size
        # QoS 1 or 2, state sent (0) or released (4), and "no payload" only on a released QoS 2 flow.
        if (i + tlen + plen > end or flags & 3 not in (1, 2) or flags & 0xC8
                or flags & _NO_PAYLOAD and (flags & 0x0F != 0x06 or not pid)):
            raise ValueError("bad record at byte %d" % (i - size))
        topic = bytes(data[i : i + tlen])
        payload = bytes(data[i + tlen : i + tlen + plen])
        if flags & _NO_PAYLOAD or not kept and flags >> 2 & 3 == _RELEASED:
            payload = None
        i += tlen + plen
        records.append((pid, flags & 3, flags >> 2 & 3, topic, payload, flags >> 4 & 1))
    return records


tidy_heap()  # compat.tidy_heap: the garbage this import left, collected on a board
