"""Authentication and TLS against the broker's password and TLS listeners: a wrong password is
refused with CONNACK code 5, the right one connects; TLS connects only when the broker's
certificate verifies against the CA the client trusts.
"""
from __future__ import annotations

import pytest

from client_process import RemoteError

DELIVERY_DEADLINE_S = 5.0
# What connect() raises when the broker's certificate does not verify. Neither is an OSError on
# both runtimes: MicroPython's ssl (mbedTLS) raises ValueError for a failed verification.
CERT_REFUSED = {"cpython": "SSLCertVerificationError", "micropython": "ValueError"}


def _round_trip_qos1(client, topic: bytes) -> None:
    client.subscribe(topic, qos=1)
    client.publish(topic, b"over the wire", qos=1)
    assert client.wait_messages(1, DELIVERY_DEADLINE_S) == [(topic, b"over the wire", 0, 1, 0)]


@pytest.mark.parametrize("password", ["wrong", None], ids=["wrong_password", "no_credentials"])
def test_auth_listener_refuses_bad_credentials_with_code_5(start_client, broker, password) -> None:
    credentials = {} if password is None else {"user": broker.user, "password": password}
    client = start_client(port=broker.auth_port, **credentials)

    with pytest.raises(RemoteError) as refused:
        client.connect()

    assert refused.value.name == "ConnectionRefused"
    assert refused.value.remote_args == [5, "not authorized"]


def test_auth_listener_accepts_the_right_password(start_client, broker, topic_root: bytes) -> None:
    client = start_client(port=broker.auth_port, user=broker.user, password=broker.password)

    assert client.connect() == 0
    _round_trip_qos1(client, topic_root + b"/auth")


@pytest.mark.tls
def test_tls_with_the_broker_ca_connects_and_round_trips_qos1(start_client, topic_root: bytes) -> None:
    client = start_client(tls=True, ca="broker", verify=True)

    assert client.connect() == 0
    _round_trip_qos1(client, topic_root + b"/tls")


@pytest.mark.tls
def test_tls_with_an_unrelated_ca_is_refused(start_client, runtime: str) -> None:
    client = start_client(tls=True, ca="wrong", verify=True)

    with pytest.raises(RemoteError) as refused:
        client.connect()

    assert refused.value.name == CERT_REFUSED[runtime], refused.value
    # A failed handshake leaves the client able to try again, and to fail the same way.
    with pytest.raises(RemoteError) as again:
        client.connect()
    assert again.value.name == CERT_REFUSED[runtime]


# --- umqtt.simple's forms: a program written for it runs unchanged -------------------------------


@pytest.mark.tls
@pytest.mark.parametrize("verify", [True, False], ids=["ca_in_ssl_params", "no_ssl_params"])
def test_umqtt_style_ssl_true_with_ssl_params_connects(start_client, topic_root: bytes, verify: bool) -> None:
    """MQTTClient(..., ssl=True, ssl_params={"cert_reqs": ssl.CERT_REQUIRED, "cadata": ca}), as
    umqtt.simple takes it: TLS through the ssl module's wrap_socket; with no ssl_params, unverified."""
    client = start_client(tls=True, legacy_tls=True, verify=verify)

    assert client.connect() == 0
    _round_trip_qos1(client, topic_root + b"/legacy-tls")


@pytest.mark.tls
def test_umqtt_style_ssl_params_with_an_unrelated_ca_is_refused(start_client, runtime: str) -> None:
    client = start_client(tls=True, legacy_tls=True, ca="wrong")

    with pytest.raises(RemoteError) as refused:
        client.connect()

    assert refused.value.name == CERT_REFUSED[runtime], refused.value


def test_umqtt_style_ssl_false_and_connect_timeout(start_client, topic_root: bytes) -> None:
    """ssl=False means no TLS, and connect(timeout=s) is accepted (umqtt.simple's signature)."""
    client = start_client(ssl=False)

    assert client.connect(timeout=5) == 0
    _round_trip_qos1(client, topic_root + b"/plain")

