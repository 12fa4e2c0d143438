"""Authentication and TLS with the asyncio client: a wrong password is refused with CONNACK
code 5 as ConnectionRefused; TLS connects when the broker's certificate verifies against the
trusted CA, and is refused when it does not.
"""
from __future__ import annotations

import pytest

from aio_process import tls_params
from client_process import RemoteError

# What connect() raises when the certificate does not verify (MicroPython's mbedTLS: ValueError).
CERT_REFUSED = {"cpython": "SSLCertVerificationError", "micropython": "ValueError"}


@pytest.mark.parametrize("password", ["wrong", None], ids=["wrong_password", "no_credentials"])
def test_bad_credentials_are_refused_with_code_5(run_aio, broker, password) -> None:
    credentials = {} if password is None else {"user": broker.user, "password": password}

    with pytest.raises(RemoteError) as refused:
        run_aio("connect_only", port=broker.auth_port, **credentials)

    assert refused.value.name == "ConnectionRefused"
    assert refused.value.remote_args == [5, "not authorized"]


def test_right_password_connects_and_round_trips_qos1(run_aio, broker, topic_root: bytes) -> None:
    topic = topic_root + b"/auth"

    r = run_aio("pubsub", port=broker.auth_port, user=broker.user, password=broker.password,
                topic=topic, payloads=[b"let in"], pub_qos=1, sub_qos=1)

    assert r["received"] == [[topic, b"let in", 1, 0, 0]]


@pytest.mark.tls
def test_tls_with_the_broker_ca_round_trips_qos1(run_aio, broker, runtime: str, topic_root: bytes) -> None:
    topic = topic_root + b"/tls"

    r = run_aio("pubsub", port=broker.tls_port, tls=tls_params(runtime, broker),
                topic=topic, payloads=[b"over tls"], pub_qos=1, sub_qos=1)

    assert r["published"] == [True]
    assert r["received"] == [[topic, b"over tls", 1, 0, 0]]


@pytest.mark.tls
def test_tls_with_an_unrelated_ca_is_refused(run_aio, broker, runtime: str) -> None:
    with pytest.raises(RemoteError) as refused:
        run_aio("connect_only", port=broker.tls_port, tls=tls_params(runtime, broker, ca="wrong"))

    assert refused.value.name == CERT_REFUSED[runtime], refused.value
