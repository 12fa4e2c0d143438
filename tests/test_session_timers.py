"""The Session's clock: keepalive pings, the dead-link verdict and in-session resends.

Time is the `now` each call passes (ms), so every deadline is checked to the millisecond on both
sides of it, with no sleeping.
"""
from __future__ import annotations

import sys

from runtime import LIB

if str(LIB) not in sys.path:
    sys.path.insert(0, str(LIB))

from mqtt.packet import PINGREQ, PINGRESP, PUBREC, PUBREL  # noqa: E402
from sans_io import ack, connected, empty, receive, sent, sent_ack, sent_publish  # noqa: E402

# --- keepalive ------------------------------------------------------------------------------------


def test_keepalive_pings_after_half_the_keepalive_idle() -> None:
    """Pinging at half the keepalive keeps the broker's 1.5x deadline [MQTT-3.1.2-24] far away."""
    s = connected(keepalive=10)
    assert s.tick(4999) == 1
    assert sent(s) == []
    s.tick(5000)
    assert sent(s) == [(PINGREQ, 0, b"")]
    s.tick(9999)
    assert sent(s) == [], "a second PINGREQ while the first is unanswered"


def test_link_is_dead_at_one_and_a_half_keepalives_without_input() -> None:
    """A half-open TCP link shows nothing but silence; 1.5 x keepalive is the spec's own measure."""
    s = connected(keepalive=10)
    s.tick(5000)
    assert not s.dead(14999)
    assert s.dead(15000)


def test_input_restarts_the_dead_link_clock() -> None:
    """Any packet from the broker, PINGRESP included, proves the link alive."""
    s = connected(keepalive=10)
    s.tick(5000)
    assert receive(s, empty(PINGRESP), now=10000) == (PINGRESP,)
    assert not s.dead(24999)
    assert s.dead(25000)


def test_keepalive_zero_never_pings_and_never_declares_the_link_dead() -> None:
    """keepalive=0 turns the mechanism off [MQTT-3.1.2-10]."""
    s = connected(keepalive=0)
    assert s.tick(10 ** 9) is None
    assert sent(s) == []
    assert not s.dead(10 ** 9)


# --- resending within a connection ----------------------------------------------------------------


def test_unacknowledged_qos1_publish_is_resent_with_dup_after_retry_ms() -> None:
    """[MQTT-3.3.1-1] a resend carries DUP=1 and the same id, so the broker can tell it is one."""
    s = connected(retry_ms=1000)
    pid = s.publish(0, "t", b"m", 1)
    s.out[0:] = b""
    s.tick(999)
    assert sent(s) == []
    s.tick(1000)
    assert sent(s) == [sent_publish(b"t", b"m", 1, pid, 1)]
    s.tick(1999)
    assert sent(s) == []
    s.tick(2000)
    assert sent(s) == [sent_publish(b"t", b"m", 1, pid, 1)]


def test_qos2_flow_past_pubrec_is_retried_with_pubrel_not_publish() -> None:
    """Once PUBREC came, the broker has the message: resending PUBLISH could deliver it twice."""
    s = connected(retry_ms=1000)
    pid = s.publish(0, "t", b"m", 2)
    receive(s, ack(PUBREC, pid), now=0)
    s.out[0:] = b""
    s.tick(1000)
    assert sent(s) == [sent_ack(PUBREL, pid)]


def test_pubrel_is_retried_retry_ms_after_it_was_sent() -> None:
    """The PUBREL is a new packet awaiting PUBCOMP; resending it sooner than retry_ms only doubles
    traffic (the blocking client sets retry_ms to half its timeout, so a late PUBREC meets an
    immediate PUBREL resend)."""
    s = connected(retry_ms=1000)
    pid = s.publish(0, "t", b"m", 2)
    receive(s, ack(PUBREC, pid), now=900)
    assert sent(s) == [sent_publish(b"t", b"m", 2, pid, 0), sent_ack(PUBREL, pid)]
    s.tick(1000)
    assert sent(s) == [], "PUBREL resent 100 ms after it was sent"
    s.tick(1900)
    assert sent(s) == [sent_ack(PUBREL, pid)]
