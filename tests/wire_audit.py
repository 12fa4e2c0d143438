"""Whose fault is a lost or doubled QoS 2 message: the client's or the broker's? Read the wire.

The fault proxy (record=True) keeps every byte it forwarded on every connection. For one topic,
this replays what the broker sent the node (PUBLISH, PUBREL) and what the node answered (PUBREC,
PUBCOMP), in the order the proxy saw them, and judges each message by the MQTT 3.1.1 QoS 2 rules:

- the broker MUST NOT re-send a PUBLISH once it has sent the PUBREL for it [MQTT-4.3.3-1]. If it
  does, and the node had released the id at that PUBREL as it must [MQTT-4.3.3-2], the resend is
  a new message to the node: a second delivery that no client can prevent, the broker's fault;
- a node that answered PUBREC has taken the message [MQTT-4.3.3-2]: if it then never delivered it,
  that is the client's fault. A message the node never acknowledged and the broker stopped
  sending is the broker's.

Messages are told apart by their payload (the tests number them), so a packet id the broker
reuses for a later message does not mix the two up.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

from mqtt_frames import split_frames
from tcp_relay import Recording

PUBLISH, PUBREC, PUBREL, PUBCOMP = 3, 5, 6, 7


@dataclass(frozen=True)
class WireEvent:
    at: float
    connection: int
    kind: int  # PUBLISH / PUBREL from the broker, PUBREC / PUBCOMP from the node
    pid: int
    number: int  # the message's number for a PUBLISH, -1 for the acks
    dup: int


def qos2_events(recordings: Sequence[Tuple[Recording, Recording]], topic: bytes) -> List[WireEvent]:
    """Every QoS 2 PUBLISH on `topic` the broker sent, and every PUBREL/PUBREC/PUBCOMP, by time."""
    events = []
    for n, (up, down) in enumerate(recordings):
        for f in split_frames(down.chunks()):
            if f.kind == PUBLISH and (f.flags >> 1) & 3 == 2:
                size = struct.unpack(">H", f.body[:2])[0]
                if f.body[2 : 2 + size] != topic:
                    continue
                pid = struct.unpack(">H", f.body[2 + size : 4 + size])[0]
                try:
                    number = int(f.body[4 + size :].rstrip(b"."))
                except ValueError:
                    number = -2
                events.append(WireEvent(f.at, n, PUBLISH, pid, number, f.flags >> 3 & 1))
            elif f.kind == PUBREL:
                events.append(WireEvent(f.at, n, PUBREL, struct.unpack(">H", f.body[:2])[0], -1, 0))
        for f in split_frames(up.chunks()):
            if f.kind in (PUBREC, PUBCOMP):
                events.append(WireEvent(f.at, n, f.kind, struct.unpack(">H", f.body[:2])[0], -1, 0))
    events.sort(key=lambda e: (e.at, e.connection))
    return events


def _story(events: List[WireEvent], number: int) -> List[WireEvent]:
    """The events about one message: from its first PUBLISH until its id carries another message."""
    first = next((i for i, e in enumerate(events) if e.kind == PUBLISH and e.number == number), None)
    if first is None:
        return []
    pid = events[first].pid
    story = []
    for e in events[first:]:
        if e.pid != pid:
            continue
        if e.kind == PUBLISH and e.number != number:
            break  # the id was reused for the next message
        story.append(e)
    return story


def broker_resent_after_pubrel(events: List[WireEvent], number: int) -> bool:
    """The broker sent PUBLISH again after it had sent the PUBREL for it [MQTT-4.3.3-1]."""
    released = False
    for e in _story(events, number):
        if e.kind == PUBREL:
            released = True
        elif e.kind == PUBLISH and released:
            return True
    return False


def node_acknowledged(events: List[WireEvent], number: int) -> bool:
    """The node answered the message's PUBLISH with PUBREC: it had taken it."""
    seen = False
    for e in _story(events, number):
        if e.kind == PUBLISH:
            seen = True
        elif e.kind == PUBREC and seen:
            return True
    return False


def never_sent(events: List[WireEvent], number: int) -> bool:
    return not _story(events, number)


def blame(events: List[WireEvent], lost: Sequence[int], doubled: Sequence[int]) -> Dict[str, List[int]]:
    """Sort a flow's lost and doubled QoS 2 messages into the client's and the broker's."""
    out: Dict[str, List[int]] = {"lost_client": [], "lost_broker": [], "doubled_client": [], "doubled_broker": []}
    for n in lost:
        out["lost_client" if node_acknowledged(events, n) else "lost_broker"].append(n)
    for n in doubled:
        out["doubled_broker" if broker_resent_after_pubrel(events, n) else "doubled_client"].append(n)
    return out


def story_text(events: List[WireEvent], number: int) -> str:
    names = {PUBLISH: "PUBLISH<", PUBREL: "PUBREL<", PUBREC: "PUBREC>", PUBCOMP: "PUBCOMP>"}
    return " ".join("c%d:%s%s" % (e.connection, names[e.kind], "(dup)" if e.dup else "") for e in _story(events, number))
