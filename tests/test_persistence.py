"""With `store=<file>`, an unacknowledged QoS 1/2 message survives the process dying, and a damaged
store file costs its contents, never the boot.

The kill comes at a moment the test controls: the fake broker (tests/fake_broker.py) takes the
PUBLISH and never answers, so the client is provably between publish and PUBACK when SIGKILL
arrives. A new process on the same file then delivers the message through the real mosquitto to a
subscriber (or, for the same-message resend, to a fake broker that records it).
"""
from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import List, Tuple

import pytest

from client_process import DriverError
from compiled_lib import compile_lib
from fake_broker import (
    CONNECT, PUBACK, PUBLISH, Close, Expect, FakeBroker, Reply, Send, Serve, Stall, ack, connack,
)
from mqtt.store import FileStore  # lib/ is on sys.path once fake_broker is imported
from reliability_log import record

TIMEOUT_S = 10.0  # long: the publish must still be waiting for its PUBACK when the kill comes
SEEN_WITHIN_S = 5.0
DELIVERY_DEADLINE_S = 5.0
JOIN_TIMEOUT_S = 5.0
OFFLINE_TIMEOUT_S = 1.0  # how long publish() waits for a PUBACK that cannot come
HELD_BACK_S = 1.0  # how long a message held back is watched for, and the client serviced after
SMALL_HEAP = "64k"
HUGE_STORED_PAYLOAD = 48_000  # its file and its copy cannot both fit a 64 KiB heap
Record = Tuple[int, int, int, bytes, bytes, int]  # (pid, qos, state, topic, payload, retain)


def _publish_then_kill(start_client, store: Path, topic: bytes, payload: bytes) -> None:
    """A client publishes at QoS 1 to a broker that never acks, and is SIGKILLed while it waits."""
    script = [[Expect(CONNECT), Send(connack(0)), Expect(PUBLISH), Stall()]]
    with FakeBroker(script) as fake:
        c = start_client(port=fake.port, store=str(store), timeout=TIMEOUT_S)
        c.connect()
        outcome: List[object] = []

        def publish() -> None:
            try:
                outcome.append(c.publish(topic, payload, qos=1, call_timeout=TIMEOUT_S + 5))
            except DriverError as e:
                outcome.append(e)

        waiter = threading.Thread(target=publish, daemon=True)
        waiter.start()
        assert fake.wait_for(lambda f: PUBLISH in f.kinds(0), SEEN_WITHIN_S), "no PUBLISH reached the broker"
        c.kill()
        waiter.join(JOIN_TIMEOUT_S)
    fake.check()
    assert len(outcome) == 1 and isinstance(outcome[0], DriverError), outcome  # it died inside publish()


def _stored(store: Path) -> List[Record]:
    loader = FileStore(str(store))
    records = loader.load()
    assert loader.problem is None
    return [tuple(r) for r in records]  # type: ignore[misc]


def test_message_unacked_at_a_kill_is_delivered_after_the_next_connect(
    start_client, runtime, topic_root: bytes, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    topic = topic_root + b"/unacked"
    _publish_then_kill(start_client, store, topic, b"survives the kill")
    assert _stored(store) == [(1, 1, 0, topic, b"survives the kill", 0)]

    subscriber = start_client()
    subscriber.connect()
    subscriber.subscribe(topic, qos=1)
    node = start_client(store=str(store))
    node.connect()  # the restored message goes out right after CONNACK
    received = subscriber.wait_messages(1, DELIVERY_DEADLINE_S)
    node.wait_msg(timeout=DELIVERY_DEADLINE_S)  # its PUBACK; the store is then empty
    record("persistence/unacked_at_kill", runtime, delivered=len(received), store_left=int(store.exists()))

    assert [(t, m, q) for t, m, _, q, _ in received] == [(topic, b"survives the kill", 1)]
    assert not store.exists()
    node.disconnect()


def test_message_unacked_at_a_kill_is_resent_as_the_same_message_on_a_session_resume(
    start_client, runtime, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    topic = b"mqnode/persistence/resume"
    _publish_then_kill(start_client, store, topic, b"same message")

    script = [[Expect(CONNECT), Send(connack(0, session_present=1)), Expect(PUBLISH),
               Reply(lambda p: ack(PUBACK, p.packet_id)), Serve()]]
    with FakeBroker(script) as fake:
        node = start_client(port=fake.port, store=str(store))
        assert node.connect(clean_session=False) == 1
        node.wait_msg(timeout=DELIVERY_DEADLINE_S)  # the PUBACK
        node.disconnect()
        assert fake.wait_done(DELIVERY_DEADLINE_S)
    fake.check()
    resent = fake.connections[0].packets[1]
    record("persistence/resent_on_resume", runtime, dup=resent.flags >> 3 & 1, pid=resent.packet_id)

    # [MQTT-4.4.0-1] with [MQTT-3.3.1-1]: the same packet id, marked DUP, the same content.
    assert resent.publish() == (topic, 1, b"same message", 1)
    assert resent.flags & 0x08
    assert not store.exists()


def test_message_in_flight_when_the_broker_vanished_stays_stored_offline_and_survives_a_kill(
    start_client, runtime, topic_root: bytes, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    topic = topic_root + b"/in-flight"
    with FakeBroker([[Expect(CONNECT), Send(connack(0)), Expect(PUBLISH), Close()]]) as fake:
        node = start_client(port=fake.port, store=str(store), reconnect=True, backoff=(0.05, 0.2),
                            timeout=OFFLINE_TIMEOUT_S)
        node.connect()
        # The broker takes the PUBLISH and closes without a PUBACK; reconnects find nobody to
        # serve them: publish() gives up waiting and keeps the message.
        assert node.publish(topic, b"in flight", qos=1) is False
    node._poll_for(0.2)  # retries against the port that now refuses
    on_disk = _stored(store)
    node.kill()

    subscriber = start_client()
    subscriber.connect()
    subscriber.subscribe(topic, qos=1)
    revived = start_client(store=str(store))
    revived.connect()
    received = subscriber.wait_messages(1, DELIVERY_DEADLINE_S)
    record("persistence/in_flight_offline_kill", runtime, stored=len(on_disk), delivered=len(received))

    assert [(r[1], r[3], r[4]) for r in on_disk] == [(1, topic, b"in flight")]
    assert [(t, m, q) for t, m, _, q, _ in received] == [(topic, b"in flight", 1)]
    revived.disconnect()


def _valid_store_bytes(tmp_path: Path) -> bytes:
    path = tmp_path / "valid"
    FileStore(str(path)).save([(1, 1, 0, b"mqnode/persistence/old", b"first", 0),
                               (2, 2, 0, b"mqnode/persistence/old", b"second", 1)])
    return path.read_bytes()


def _damaged(kind: str, tmp_path: Path) -> bytes:
    if kind == "random_bytes":
        return os.urandom(200)
    valid = _valid_store_bytes(tmp_path)
    if kind == "bad_crc":
        flipped = bytearray(valid)
        flipped[len(valid) // 2] ^= 0xFF  # a byte inside a record; the CRC at the end no longer fits
        return bytes(flipped)
    return valid[: len(valid) // 2]  # truncated: a write cut short


@pytest.mark.parametrize("kind", ["random_bytes", "bad_crc", "truncated"])
def test_damaged_store_is_reported_set_aside_and_the_client_still_works(
    start_client, runtime, topic_root: bytes, tmp_path: Path, kind: str
) -> None:
    store = tmp_path / "store"
    damaged = _damaged(kind, tmp_path)
    store.write_bytes(damaged)

    node = start_client(store=str(store))
    reports = [line for line in node.stray_output if line.startswith("mqtt:")]
    counters = node.counters()
    node.connect()
    published = node.publish(topic_root + b"/after", b"still works", qos=1)
    record("persistence/damaged_store_" + kind, runtime, reports=len(reports),
           published=int(published is True))

    assert len(reports) == 1 and str(store) in reports[0], node.stray_output
    assert Path(str(store) + ".bad").read_bytes() == damaged  # kept for a post-mortem
    assert (counters["queued"], counters["inflight"]) == (0, 0)  # nothing from the damaged file
    assert published is True
    assert not store.exists()  # the new message was acked: nothing left to keep
    node.disconnect()


def test_messages_published_while_offline_are_in_the_store_and_survive_a_kill(
    start_client, runtime, topic_root: bytes, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    topic = topic_root + b"/offline"
    payloads = [b"offline-%d" % i for i in range(3)]
    with FakeBroker([[Expect(CONNECT), Send(connack(0)), Stall(0.2)]]) as fake:
        node = start_client(port=fake.port, store=str(store), reconnect=True, backoff=(0.05, 0.2),
                            timeout=OFFLINE_TIMEOUT_S)
        node.connect()
        assert fake.wait_done(SEEN_WITHIN_S)
    # The fake broker is gone and its port refuses: the broker is unreachable from now on.
    node._poll_for(0.5)
    events = node._events()
    assert events[0] == ["connect", 0] and events[1][0] == "disconnect", events
    results = [node.publish(topic, p, qos=1) for p in payloads]
    assert results == [False, False, False]  # queued, not confirmed
    assert node.counters()["queued"] == 3
    on_disk = _stored(store)
    node.kill()
    record("persistence/offline_kept", runtime, stored=len(on_disk))

    # Packet id 0: queued in the outbox, never sent, so no id was given yet.
    assert [(r[0], r[1], r[3], r[4]) for r in on_disk] == [(0, 1, topic, p) for p in payloads]

    subscriber = start_client()
    subscriber.connect()
    subscriber.subscribe(topic, qos=1)
    revived = start_client(store=str(store))
    revived.connect()
    received = subscriber.wait_messages(len(payloads), DELIVERY_DEADLINE_S)
    assert [m for _, m, _, _, _ in received] == payloads
    revived.disconnect()


def test_a_store_that_cannot_be_written_holds_the_message_back_until_it_can(
    start_client, runtime, topic_root: bytes, tmp_path: Path
) -> None:
    # A full flash, played by a directory where the store writes its next version: every save
    # fails. The message must not leave before its record is saved (after a reset it would come
    # back from a stale file), and must go once saving works again.
    store = tmp_path / "store"
    blocker = tmp_path / "store.tmp"
    topic = topic_root + b"/unsaved"
    subscriber = start_client()
    subscriber.connect()
    subscriber.subscribe(topic, qos=1)
    blocker.mkdir()
    node = start_client(store=str(store), timeout=OFFLINE_TIMEOUT_S, backoff=(0.05, 0.2))
    node.connect()
    node._events()
    result = node.publish(topic, b"held", qos=1)
    meanwhile = subscriber.wait_messages(1, HELD_BACK_S)
    failures = [e for e in node._events() if e[0] == "disconnect"]
    blocker.rmdir()
    node._poll_for(HELD_BACK_S)  # reconnects, saves, sends
    received = subscriber.wait_messages(1, DELIVERY_DEADLINE_S)
    record("persistence/store_not_writable", runtime, held_back=int(not meanwhile), delivered_after=len(received))

    assert result is False and meanwhile == []
    assert failures and all("message store %s not saved" % store in e[2] for e in failures), failures
    assert [m[1] for m in received] == [b"held"]
    assert node.counters()["inflight"] == 0 and not store.exists()  # acknowledged: nothing left to keep


def test_a_save_that_a_fat_rename_cut_short_is_loaded_from_its_tmp(tmp_path: Path) -> None:
    # FAT renames over a file as remove + rename: a reset between them leaves the new file alone,
    # under its temporary name. It holds the latest save, whole (its CRC says so).
    store = tmp_path / "store"
    records = [(1, 1, 0, b"t/a", b"first", 0), (2, 2, 1, b"t/b", b"second", 1)]
    FileStore(str(store)).save(records)
    store.rename(str(store) + ".tmp")
    loader = FileStore(str(store))
    assert [tuple(r) for r in loader.load()] == records and loader.problem is None
    assert store.exists() and not Path(str(store) + ".tmp").exists()  # the rename, finished


def test_a_lone_torn_tmp_is_a_save_cut_short_and_is_dropped_quietly(tmp_path: Path) -> None:
    store = tmp_path / "store"
    Path(str(store) + ".tmp").write_bytes(_valid_store_bytes(tmp_path)[:30])
    loader = FileStore(str(store))
    assert loader.load() == [] and loader.problem is None
    assert not Path(str(store) + ".tmp").exists()


def test_emptying_the_store_removes_a_stale_tmp_too(tmp_path: Path) -> None:
    # A save whole in .tmp but never renamed (a reset between the two) is older than the file; once
    # the store is emptied, a lone .tmp would be taken for the latest save and resent.
    store = tmp_path / "store"
    FileStore(str(store)).save([(1, 1, 0, b"t/a", b"first", 0)])
    Path(str(store) + ".tmp").write_bytes(store.read_bytes())
    FileStore(str(store)).save([])
    assert not store.exists() and not Path(str(store) + ".tmp").exists()


@pytest.mark.parametrize("left_as", ["", ".tmp"], ids=["file", "tmp"])
def test_a_store_too_large_for_the_heap_is_set_aside_instead_of_failing_every_boot(
    start_client, runtime, tmp_path: Path, left_as: str
) -> None:
    # left_as=".tmp": the latest save, left by FAT's cut rename; too large, it is reported too,
    # not dropped as a torn one is.
    if runtime != "micropython":
        pytest.skip("a heap limit is the Unix port's -X heapsize")
    store = tmp_path / "store"
    FileStore(str(store)).save([(1, 1, 0, b"t/big", bytes(HUGE_STORED_PAYLOAD), 0)])
    saved = store.read_bytes()
    left = Path(str(store) + left_as)
    store.rename(left)
    # From .mpy files, as a board holds them: a 64 KiB heap cannot compile the sources.
    node = start_client(store=str(store), heapsize=SMALL_HEAP, extra_path=[compile_lib(tmp_path / "mpy")])
    reports = [line for line in node.stray_output if line.startswith("mqtt:")]
    assert len(reports) == 1 and "too large for the free memory" in reports[0], node.stray_output
    assert Path(str(left) + ".bad").read_bytes() == saved and not left.exists()
    assert (node.counters()["queued"], node.counters()["inflight"]) == (0, 0)
