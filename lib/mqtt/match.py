"""Whether a topic matches a subscription filter, for a program that routes its messages by filter
(paho-mqtt's topic_matches_sub). Apart from topic.py because no client needs it: every function a
module holds costs a board's heap when the module loads (this one about 450 bytes)."""
from .compat import tidy_heap


def matches(f, t):
    """Whether topic t (bytes) matches filter f (bytes).

    [MQTT-4.7.2-1] a filter starting with a wildcard does not match a topic starting with '$'.
    """
    if t[:1] == b"$" and f[:1] in (b"+", b"#"):
        return False
    fl = f.split(b"/")
    tl = t.split(b"/")
    for i, level in enumerate(fl):
        if level == b"#":
            return True
        if i >= len(tl) or (level != b"+" and level != tl[i]):
            return False
    return len(fl) == len(tl)


tidy_heap()  # compat.tidy_heap: the garbage this import left, collected on a board
