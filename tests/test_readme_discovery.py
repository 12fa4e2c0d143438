"""The discovery configs the README shows are the ones lib/mqnode/discovery.py builds for the
simulated node sim-1 (boards/sim.json's parts), topic and payload, so the README cannot drift
from what Home Assistant is sent (a new key, a version bump)."""
from __future__ import annotations

import json
import re
import sys
from types import SimpleNamespace
from typing import Dict

from runtime import LIB, REPO

if str(LIB) not in sys.path:
    sys.path.insert(0, str(LIB))

from mqnode import discovery, drivers  # noqa: E402
from mqnode import hardware_sim as hw  # noqa: E402

SHOWN = re.compile(r"^`(homeassistant/[^`]+/config)`\n```json\n(.*?)\n```", re.M | re.S)


def readme_configs() -> Dict[str, dict]:
    text = (REPO / "README.md").read_text()
    section = text[text.index("### Home Assistant discovery"):]
    section = section[: section.index("\n### ", 1)]
    return {topic: json.loads(body) for topic, body in SHOWN.findall(section)}


def sim_1_configs() -> Dict[str, dict]:
    """What the node builds, from boards/sim.json's parts made by their real drivers."""
    board = json.loads((REPO / "boards" / "sim.json").read_text())
    parts = [drivers.make(spec, hw) for spec in board["sensors"] + board["switches"]]
    node = SimpleNamespace(
        base="mqnode/sim-1", node_id="sim-1", board_name=board["name"], discovery_prefix="homeassistant",
        cfg={"battery": False},  # always on, as the README's sim-1 is
        sensors=[p for p in parts if p.component == "sensor"],
        binaries=[p for p in parts if p.component == "binary_sensor"],
        switches=[p for p in parts if p.component == "switch"])
    return {topic: json.loads(payload) for topic, payload in discovery.configs(node)}


def test_readme_shows_exactly_the_configs_the_sim_node_sends() -> None:
    shown = readme_configs()
    assert len(shown) == 3, shown
    assert shown == sim_1_configs()
