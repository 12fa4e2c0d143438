"""A broker killed with SIGKILL and restarted: a node publishing 1,000 QoS 1 and QoS 2 messages loses
none of them, duplicates no QoS 2 one, and is publishing again within 1 s of the broker accepting
connections, each of three times.

The broker is a mosquitto of this test's own (tests/private_mosquitto.py) that keeps sessions and
queued messages on disk and saves after every change; SIGKILL gives it no chance to save at exit,
so it comes back with what its last save held. The subscriber is paho-mqtt with a persistent
session, so what the broker owes it survives too; it connects through a recording fault proxy
that does nothing but record, so a duplicate can be traced on the wire (tests/wire_audit.py).

Whose loss is it? publish() returning True means the broker acknowledged the message (PUBACK, or
PUBCOMP for QoS 2). A lost message the node had never seen confirmed is the client's fault: it
should still have been in flight or queued and sent after the restart. One the broker had
acknowledged is the broker's: it said "mine" and then did not have it after the restart.
"""
from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Dict, List, Tuple

import pytest

from fault_proxy import FaultProxy
from private_mosquitto import PrivateMosquitto, persistence_config
from reliability_log import record
import two_way_traffic
import wire_audit

PER_QOS = 500  # 1,000 messages in all
BATCH = 25  # messages per driver call; the publisher alternates QoS 1 and QoS 2 batches
PACE_S = 0.03  # between batches, so the run lasts long enough for three kills in it
KILLS_AT = (200, 450, 700)  # kill when the subscriber has this many distinct messages
RESUME_BOUND_S = 1.0  # [the brief's claim] publishing again within 1 s of the broker accepting
RUN_DEADLINE_S = 60.0
IDLE_S = 7.0  # give up waiting for the rest after this long with nothing new
SLICE_S = 0.02
QUEUE = {"queue_count": 2 * PER_QOS, "queue_bytes": 1 << 20}  # the outbox is not what is tested here


def _numbers(messages, root: bytes, tally: Dict[int, Counter]) -> None:
    for m in messages:
        for qos in (1, 2):
            if m[0] == b"%s/q%d" % (root, qos):
                tally[qos][int(m[1])] += 1


def test_nothing_lost_and_publishing_resumes_within_1_s_when_the_broker_is_killed_three_times(
    start_client, tmp_path, runtime: str
) -> None:
    root = b"mqnode-test/kill/" + runtime.encode()
    db = tmp_path / "db"
    db.mkdir()
    tally: Dict[int, Counter] = {1: Counter(), 2: Counter()}
    not_confirmed: List[Tuple[int, int]] = []
    errors: List[BaseException] = []
    kills: List[Tuple[float, float, bool]] = []  # (killed at, accepting again at, publisher still busy)

    with PrivateMosquitto(tmp_path, persistence_config(db)) as broker, \
            FaultProxy(broker.host, broker.port, record=True) as sub_link:
        sub = two_way_traffic.Peer(broker.host, sub_link.port, "kill-sub-" + runtime, clean_session=False)
        try:
            sub.subscribe(root + b"/#", 2)
            node = start_client("kill-pub-" + runtime, port=broker.port, **QUEUE)
            node.connect(clean_session=False)

            def publish() -> None:
                try:
                    for first in range(0, PER_QOS, BATCH):
                        for qos in (1, 2):
                            missed = node._publish_many(b"%s/q%d" % (root, qos), BATCH, qos, first=first,
                                                        call_timeout=RUN_DEADLINE_S)
                            not_confirmed.extend((qos, i) for i in missed)
                            time.sleep(PACE_S)
                except BaseException as e:  # re-raised below
                    errors.append(e)

            publisher = threading.Thread(target=publish, daemon=True)
            started = time.monotonic()
            publisher.start()
            last_new, seen = time.monotonic(), 0
            pending_kills = list(KILLS_AT)
            for _ in range(int(RUN_DEADLINE_S / SLICE_S) + 1):
                _numbers(sub.wait_messages(1 << 30, SLICE_S), root, tally)
                now = sum(len(t) for t in tally.values())
                if now > seen:
                    seen, last_new = now, time.monotonic()
                if pending_kills and now >= pending_kills[0]:
                    pending_kills.pop(0)
                    killed_at = time.time()
                    broker.kill()
                    kills.append((killed_at, broker.start(), publisher.is_alive()))
                done = seen == 2 * PER_QOS and not publisher.is_alive()
                if done or time.monotonic() - started > RUN_DEADLINE_S or (
                        not publisher.is_alive() and time.monotonic() - last_new > IDLE_S):
                    break
            publisher.join(RUN_DEADLINE_S)
            _numbers(sub.wait_messages(1 << 30, 0.5), root, tally)  # late duplicates
            timeline = node._timeline()
            counters = node.counters()
        finally:
            sub.close()
        wire = wire_audit.qos2_events(sub_link.recordings(), root + b"/q2")
    if errors:
        raise errors[0]

    resumed = []
    for killed_at, accepting_at, _ in kills:
        connects = [e[0] / 1e9 for e in timeline if e[1] == "connect" and e[0] / 1e9 > killed_at]
        resumed.append(None if not connects else round(max(0.0, connects[0] - accepting_at), 3))
    unconfirmed = set(not_confirmed)
    lost = {q: [i for i in range(PER_QOS) if i not in tally[q]] for q in (1, 2)}
    lost_acked = {q: [i for i in lost[q] if (q, i) not in unconfirmed] for q in (1, 2)}
    doubled_q2 = sorted(i for i, n in tally[2].items() if n > 1)
    blame = wire_audit.blame(wire, [], doubled_q2)
    record("broker kill/SIGKILL x3 during 1000 messages", runtime, kills=len(kills), resumed_after_s=resumed,
           sent_q1=PER_QOS, received_q1=len(tally[1]), lost_q1=len(lost[1]),
           duplicates_q1=sum(n - 1 for n in tally[1].values()), sent_q2=PER_QOS, received_q2=len(tally[2]),
           lost_q2=len(lost[2]), duplicates_q2=len(doubled_q2), lost_after_broker_ack=sum(map(len, lost_acked.values())),
           doubled_by_broker=len(blame["doubled_broker"]), reconnects=counters["reconnects"])
    context = ("kills (killed, accepting, publisher busy) %r\nresumed after %r s\nlost %r\nof which the broker had "
               "acknowledged %r\nQoS 2 doubled %r, blame %r\n%s\nnode counters %r\nnode timeline %r" % (
                   kills, resumed, lost, lost_acked, doubled_q2, blame,
                   "\n".join("  %d: %s" % (n, wire_audit.story_text(wire, n)) for n in doubled_q2[:5]),
                   counters, timeline[-12:]))
    print(context)

    assert len(kills) == len(KILLS_AT) and all(busy for _, _, busy in kills), context
    assert all(r is not None and r <= RESUME_BOUND_S for r in resumed), context
    client_lost = {q: [i for i in lost[q] if (q, i) in unconfirmed] for q in (1, 2)}
    assert not client_lost[1] and not client_lost[2], context
    assert not blame["doubled_client"], context
    if lost_acked[1] or lost_acked[2] or blame["doubled_broker"]:
        pytest.xfail("mosquitto 2.0.11 under SIGKILL, not the client: lost %d messages it had acknowledged, "
                     "resent %d QoS 2 messages after their PUBREL (see the printed context)"
                     % (len(lost_acked[1]) + len(lost_acked[2]), len(blame["doubled_broker"])))
