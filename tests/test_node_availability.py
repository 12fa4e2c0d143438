"""Availability: `<prefix>/<node>/status` is `online` (birth) while the node is up and `offline`
(its last will) once it is gone, both retained, so Home Assistant and anyone subscribing later
know whether the node is there.
"""
from __future__ import annotations

import signal

from node_observer import on
from sim_node import (  # noqa: F401 (fixtures)
    KEEPALIVE_S, NodeFactory, ObserverFactory, make_node, observe, wait_announced,
)

BIRTH_TIMEOUT_S = 10.0
# A killed process's socket is closed by the kernel, so mosquitto publishes the will at once; the
# spec's bound is the keepalive one [MQTT-3.1.2-24], 1.5 x keepalive, plus 1 s for the broker's
# and paho's threads to be scheduled on a loaded 2-core machine.
WILL_DEADLINE_S = 1.5 * KEEPALIVE_S + 1.0
# A frozen process keeps its socket open: only the broker's keepalive check notices. mosquitto
# 2.0.11 runs that check when more than 5 s have passed since the last one, on whole-second clocks
# (src/keepalive.c, `last_keepalive_check + 5 < db.now_s`), so it can come up to 6 s + 1 s of
# rounding after the 1.5 x keepalive deadline.
FROZEN_WILL_DEADLINE_S = 1.5 * KEEPALIVE_S + 6.0 + 1.0 + 1.0


def test_birth_is_online_and_retained(make_node: NodeFactory, observe: ObserverFactory) -> None:
    node = make_node(start=False)
    live = observe([node.topic("status")])
    node.start()

    birth = live.wait(on(node.topic("status")), BIRTH_TIMEOUT_S)
    assert birth.text == "online"

    late = observe([node.topic("status")])
    kept = late.wait(on(node.topic("status")), BIRTH_TIMEOUT_S)
    assert (kept.text, kept.retain) == ("online", True)


def test_birth_comes_before_anything_else_the_node_says(make_node: NodeFactory, observe: ObserverFactory) -> None:
    """As ESPHome and Tasmota do: a subscriber learns the node is online before its readings,
    and the birth goes at QoS 1 (the observer subscribes at QoS 1, so it sees what was sent)."""
    node = make_node(start=False)
    live = observe([node.topic("#")])
    node.start()

    live.wait(on(node.topic("info")), BIRTH_TIMEOUT_S)  # the end of the announcement
    first = live.messages()[0]
    assert (first.topic, first.text, first.qos) == (node.topic("status"), "online", 1), live.summary()


def test_killed_node_goes_offline_within_one_and_a_half_keepalives_and_stays_offline(
    make_node: NodeFactory, observe: ObserverFactory
) -> None:
    node = make_node(start=False)
    live = observe([node.topic("#")])
    node.start()
    wait_announced(live, node)

    mark = live.mark()
    killed = node.signal(signal.SIGKILL)
    will = live.wait(on(node.topic("status")), WILL_DEADLINE_S + 1, mark)
    assert (will.text, will.qos) == ("offline", 1)  # a QoS 1 will: the observer asked for up to 1
    assert will.at - killed <= WILL_DEADLINE_S

    late = observe([node.topic("status")])
    kept = late.wait(on(node.topic("status")), BIRTH_TIMEOUT_S)
    assert (kept.text, kept.retain) == ("offline", True)


def test_frozen_node_goes_offline_and_comes_back_online_when_it_resumes(
    make_node: NodeFactory, observe: ObserverFactory
) -> None:
    """SIGSTOP keeps the socket open: only the keepalive deadline can reveal a hung node."""
    node = make_node(start=False)
    live = observe([node.topic("status")])
    node.start()
    live.wait(on(node.topic("status"), "online"), BIRTH_TIMEOUT_S)

    mark = live.mark()
    stopped = node.signal(signal.SIGSTOP)
    will = live.wait(on(node.topic("status")), FROZEN_WILL_DEADLINE_S + 1, mark)
    assert will.text == "offline"
    assert will.at - stopped <= FROZEN_WILL_DEADLINE_S

    mark = live.mark()
    node.signal(signal.SIGCONT)
    back = live.wait(on(node.topic("status")), BIRTH_TIMEOUT_S, mark)
    assert back.text == "online"
