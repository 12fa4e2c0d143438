"""When to try the broker again: exponential backoff with jitter, capped, reset once stable.

Jitter spreads a fleet's reconnects after a broker restart (each delay is 50-100 % of the
nominal one); the cap bounds how late a node notices that the broker is back. A function, not a
class: the drivers keep the attempt count, and a board saves a class's worth of RAM.
"""
from .compat import const, getrandbits, tidy_heap

STABLE_MS = const(10000)  # a connection that lasted this long resets the attempt count


def delay_ms(attempt, limits, rand16=None):
    """Delay before retry number `attempt` (0-based); limits = (first_ms, cap_ms). rand16, in
    0..65535, is drawn here unless given (tests give it to check the bounds)."""
    if rand16 is None:
        rand16 = getrandbits(16)
    nominal = min(limits[0] << min(attempt, 16), limits[1])
    return nominal // 2 + (nominal // 2) * rand16 // 65535


tidy_heap()  # compat.tidy_heap: the garbage this import left, collected on a board
