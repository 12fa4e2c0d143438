"""Messages accepted by publish() that could not go out yet: the offline queue.

A node keeps publishing while its WiFi or broker is away; the outbox holds those messages, oldest
first, until the session is connected again. It is bounded both in messages and in bytes, because
a board has no room for an unbounded backlog; when full, the oldest message is dropped and counted.
"""
from .compat import tidy_heap


class Outbox:
    def __init__(self, max_count, max_bytes):
        self.max_count = max_count
        self.max_bytes = max_bytes
        self.items = []  # (topic, payload, qos, retain), oldest first
        self.bytes = 0
        self.dropped = 0

    def put(self, msg):
        size = len(msg[0]) + len(msg[1])
        if size > self.max_bytes:  # it could never fit: making room would empty the queue first
            self.dropped += 1
            return
        self.items.append(msg)
        self.bytes += size
        while len(self.items) > self.max_count or self.bytes > self.max_bytes:
            self.pop()
            self.dropped += 1

    def put_front(self, msgs):
        """Put back messages that must go before everything queued (a lost in-flight window)."""
        self.items[0:0] = msgs
        for m in msgs:
            self.bytes += len(m[0]) + len(m[1])

    def pop(self):
        """The oldest message, taken out."""
        m = self.items.pop(0)
        self.bytes -= len(m[0]) + len(m[1])
        return m


tidy_heap()  # compat.tidy_heap: the garbage this import left, collected on a board
