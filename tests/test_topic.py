"""Topic names, topic filters and matching follow MQTT 3.1.1 section 4.7 (lib/mqtt/topic.py, match.py).

The client checks names and filters before sending, so a typo fails in the program that made it
rather than as a disconnect from the broker; matching decides which callback sees a message.
"""
from __future__ import annotations

import sys

import pytest

from runtime import LIB

if str(LIB) not in sys.path:
    sys.path.insert(0, str(LIB))

from mqtt.match import matches  # noqa: E402
from mqtt.topic import topic_filter, topic_name  # noqa: E402


@pytest.mark.parametrize("name", ["a", "a/b", "/", "a//b", "$SYS/x", "with space", "\u00fcber/\u6e29\u5ea6"])
def test_topic_name_accepts_any_nonempty_string_without_wildcards(name: str) -> None:
    """Empty levels, leading '/', '$' and non-ASCII are all legal in a topic name."""
    assert topic_name(name) == name.encode()


@pytest.mark.parametrize("name", ["a/+", "a/#", "#", "+", "a+b", "a\x00b", ""])
def test_topic_name_refuses_wildcards_nul_and_empty(name: str) -> None:
    """[MQTT-3.3.2-2] no wildcards in a name; [MQTT-1.5.3-2] no U+0000; [MQTT-4.7.3-1] not empty."""
    with pytest.raises(ValueError):
        topic_name(name)


@pytest.mark.parametrize("f", ["#", "a/#", "+/b", "+", "a/+/c", "+/+", "/#", "$SYS/#", "a/b"])
def test_topic_filter_accepts_wildcards_that_fill_whole_levels(f: str) -> None:
    """[MQTT-4.7.1-2] '#' alone in the last level; [MQTT-4.7.1-3] '+' alone in any level."""
    assert topic_filter(f) == f.encode()


@pytest.mark.parametrize("f", ["a#", "a/#/b", "#/a", "a+", "+a/b", "a/b+", "", "a\x00"])
def test_topic_filter_refuses_misplaced_wildcards_nul_and_empty(f: str) -> None:
    """A broker closes the connection on such a filter; refusing it here names the mistake."""
    with pytest.raises(ValueError):
        topic_filter(f)


MATCHES = [
    ("#", "a", True),
    ("#", "a/b/c", True),
    ("a/#", "a", True),  # '#' also matches the parent level [MQTT-4.7.1-2]
    ("a/#", "a/b/c", True),
    ("a/#", "ab", False),
    ("+", "a", True),
    ("+", "a/b", False),
    ("+/b", "a/b", True),
    ("+/+", "/finance", True),  # the leading '/' makes an empty first level
    ("/+", "/finance", True),
    ("+", "/finance", False),
    ("a/+/c", "a/b/c", True),
    ("a/+/c", "a/c", False),
    ("a/+", "a", False),
    ("a/b", "a/b", True),
    ("a/b", "a/b/", False),
    ("a/b", "A/b", False),  # case matters
    ("#", "$SYS/x", False),  # [MQTT-4.7.2-1] a leading wildcard does not reach '$' topics
    ("+/x", "$SYS/x", False),
    ("$SYS/#", "$SYS/x", True),
    ("$SYS/+", "$SYS/x", True),
]


@pytest.mark.parametrize("f,t,expected", MATCHES)
def test_matches_follows_the_spec_examples(f: str, t: str, expected: bool) -> None:
    """The examples of sections 4.7.1 and 4.7.2, plus the edges an implementation gets wrong."""
    assert matches(f.encode(), t.encode()) is expected
