"""When to try the broker again: exponential backoff with jitter, capped, reset once stable.

Jitter spreads a fleet's reconnects after a broker restart (each delay is 50-100 % of the
nominal one); the cap bounds how late a node notices that the broker is back.
"""
from .compat import const

STABLE_MS = const(10000)  # a connection that lasted this long resets the backoff


class Backoff:
    def __init__(self, first_ms, cap_ms):
        self.first_ms = first_ms
        self.cap_ms = cap_ms
        self._next = first_ms

    def delay(self, rand16):
        """The next delay in ms; rand16 is a random number in 0..65535 (the caller's RNG)."""
        nominal = self._next
        self._next = min(nominal * 2, self.cap_ms)
        return nominal // 2 + (nominal // 2) * rand16 // 65535

    def connection_ended(self, lasted_ms):
        if lasted_ms >= STABLE_MS:
            self._next = self.first_ms
