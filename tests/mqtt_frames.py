"""Split a recorded MQTT byte stream into packets, independently of lib/mqtt's codec.

The tests that sniff a connection through tests/tcp_relay.py use this to say which packets a
client sent and when, so a bug in lib/mqtt/packet.py cannot hide itself.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import List, Sequence

from tcp_relay import Chunk

# Packet types [MQTT-2.2.1], the ones the tests look for.
CONNECT, PUBLISH, SUBSCRIBE, PINGREQ, PINGRESP = 1, 3, 8, 12, 13
MAX_LENGTH_BYTES = 4  # the Remaining Length is at most four bytes [MQTT-2.2.3]


@dataclass(frozen=True)
class Frame:
    at: float  # when the chunk holding the packet's first byte was read
    kind: int
    flags: int
    body: bytes


def split_frames(chunks: Sequence[Chunk]) -> List[Frame]:
    """The complete packets in `chunks`, in order; a trailing partial packet is left out."""
    data = b"".join(c.data for c in chunks)
    offsets: List[int] = []  # where each chunk starts in `data`
    total = 0
    for c in chunks:
        offsets.append(total)
        total += len(c.data)
    frames: List[Frame] = []
    pos = 0
    for _ in range(len(data)):  # each packet is at least two bytes: bounded by the data
        if pos + 2 > len(data):
            break
        length, shift, i = 0, 0, pos + 1
        for _ in range(MAX_LENGTH_BYTES):
            if i >= len(data):
                return frames
            byte = data[i]
            length |= (byte & 0x7F) << shift
            shift += 7
            i += 1
            if not byte & 0x80:
                break
        else:
            raise ValueError("Remaining Length over four bytes at offset %d" % pos)
        if i + length > len(data):
            break
        at = chunks[bisect.bisect_right(offsets, pos) - 1].at
        frames.append(Frame(at, data[pos] >> 4, data[pos] & 0x0F, data[i : i + length]))
        pos = i + length
    return frames
