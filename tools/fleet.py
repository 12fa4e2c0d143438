"""What the monitor knows about each node, rebuilt from the MQTT messages nodes publish.

Pure state: feed it (topic, payload, time) and read it back; the monitor command draws it.
"""
from __future__ import annotations

import json
import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Deque, Dict, Optional, Tuple

HISTORY = 24  # readings kept per sensor for the sparkline


@dataclass
class Reading:
    value: str
    at: float
    history: Deque[float] = field(default_factory=lambda: deque(maxlen=HISTORY))


@dataclass
class NodeState:
    status: str = "?"
    sensors: Dict[str, Reading] = field(default_factory=dict)
    binaries: Dict[str, Reading] = field(default_factory=dict)
    switches: Dict[str, str] = field(default_factory=dict)
    info: Dict[str, Any] = field(default_factory=dict)
    messages: int = 0


class Fleet:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.nodes: Dict[str, NodeState] = {}

    def update(self, topic: str, payload: bytes, now: float) -> Optional[Tuple[str, str, str]]:
        """Apply one message; returns (node, what, value) if it was a node's topic."""
        parts = topic.split("/")
        if len(parts) < 3 or parts[0] != self.prefix:
            return None
        node_id, rest = parts[1], parts[2:]
        node = self.nodes.setdefault(node_id, NodeState())
        node.messages += 1
        text = payload.decode("utf-8", "replace")
        if rest == ["status"]:
            node.status = text
            return node_id, "status", text
        if rest == ["info"]:
            try:
                info = json.loads(text)
            except ValueError:
                info = None
            node.info = info if isinstance(info, dict) else {"error": "unreadable info"}
            return node_id, "info", text
        if len(rest) == 3 and rest[2] == "state":
            kind, name = rest[0], rest[1]
            if kind == "switch":
                node.switches[name] = text
            else:
                table = node.sensors if kind == "sensor" else node.binaries
                r = table.setdefault(name, Reading(text, now))
                r.value, r.at = text, now
                if kind != "sensor":
                    r.history.append(1.0 if text == "ON" else 0.0)
                else:
                    try:
                        value = float(text)
                    except ValueError:
                        value = math.nan  # "None" from a sensor that stopped answering
                    if math.isfinite(value):  # shown, and plotted only when it is a number
                        r.history.append(value)
            return node_id, "%s/%s" % (kind, name), text
        return None


SPARKS = "▁▂▃▄▅▆▇█"


def sparkline(values: Deque[float]) -> str:
    if not values:
        return ""
    lo, hi = min(values), max(values)
    span = (hi - lo) or 1.0
    if not math.isfinite(span):  # readings a whole float range apart: nothing sensible to draw
        return ""
    return "".join(SPARKS[int((v - lo) / span * (len(SPARKS) - 1))] for v in values)
