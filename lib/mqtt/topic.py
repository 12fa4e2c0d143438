"""Topic names and topic filters: the spec's rules for each (matching one against the other is in match.py)."""
from .compat import tidy_heap
from .packet import utf8


def topic_name(t):
    """A topic to publish to, as bytes; ValueError if it breaks a rule.

    [MQTT-4.7.3-1] at least one character; [MQTT-3.3.2-2] no wildcards; utf8() checks NUL and size.
    """
    b = utf8(t, "topic")
    if not b:
        raise ValueError("empty topic [MQTT-4.7.3-1]")
    if b"+" in b or b"#" in b:
        raise ValueError("wildcard in topic %r [MQTT-3.3.2-2]" % b)
    return b


def topic_filter(f):
    """A filter to subscribe with, as bytes; ValueError if a wildcard is misplaced.

    [MQTT-4.7.1-2] '#' only alone in the last level; [MQTT-4.7.1-3] '+' only alone in a level.
    """
    b = utf8(f, "filter")
    if not b:
        raise ValueError("empty filter [MQTT-4.7.3-1]")
    levels = b.split(b"/")
    last = len(levels) - 1
    for i, level in enumerate(levels):
        if (b"#" in level and (level != b"#" or i != last)) or (b"+" in level and level != b"+"):
            raise ValueError("misplaced wildcard in filter %r [MQTT-4.7.1-2/3]" % b)
    return b


tidy_heap()  # compat.tidy_heap: the garbage this import left, collected on a board
