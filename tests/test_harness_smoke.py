"""The broker fixture's three listeners behave as the client tests assume.

Checked with paho-mqtt on CPython, not with our client, so a failure here points at the
harness (mosquitto config, certificates), not at lib/mqtt.
"""
from __future__ import annotations

import ssl
from pathlib import Path
from typing import List, Optional

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion, ConnackCode
from paho.mqtt.reasoncodes import ReasonCode

from broker import Broker

CONNACK_WAIT_LOOPS = 50  # x 0.1 s


def connack(broker: Broker, port: int, user: Optional[str] = None, password: Optional[str] = None,
            ca_pem: Optional[Path] = None) -> ReasonCode:
    """Connect with paho and return the CONNACK's code (paho turns 3.1.1 codes into ReasonCodes)."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="harness-smoke")
    if user is not None:
        client.username_pw_set(user, password)
    if ca_pem is not None:
        client.tls_set(ca_certs=str(ca_pem))
    codes: List[ReasonCode] = []
    client.on_connect = lambda _c, _u, _f, code, _p: codes.append(code)
    client.connect(broker.host, port, keepalive=10)
    try:
        for _ in range(CONNACK_WAIT_LOOPS):
            client.loop(timeout=0.1)
            if codes:
                return codes[0]
        raise AssertionError("no CONNACK within %.1f s" % (CONNACK_WAIT_LOOPS * 0.1))
    finally:
        client.disconnect()


def as_reason(code: ConnackCode) -> ReasonCode:
    return paho.convert_connack_rc_to_reason_code(code)


def test_anonymous_listener_accepts_anyone(broker: Broker) -> None:
    assert connack(broker, broker.port) == as_reason(ConnackCode.CONNACK_ACCEPTED)


def test_auth_listener_refuses_a_wrong_password_with_code_5(broker: Broker) -> None:
    refused = as_reason(ConnackCode.CONNACK_REFUSED_NOT_AUTHORIZED)
    assert connack(broker, broker.auth_port, broker.user, "wrong") == refused
    assert connack(broker, broker.auth_port) == refused


def test_auth_listener_accepts_the_right_password(broker: Broker) -> None:
    code = connack(broker, broker.auth_port, broker.user, broker.password)
    assert code == as_reason(ConnackCode.CONNACK_ACCEPTED)


def test_tls_listener_is_trusted_with_the_broker_ca(broker: Broker) -> None:
    assert connack(broker, broker.tls_port, ca_pem=broker.ca_pem) == as_reason(ConnackCode.CONNACK_ACCEPTED)


def test_tls_listener_fails_verification_with_an_unrelated_ca(broker: Broker) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        connack(broker, broker.tls_port, ca_pem=broker.wrong_ca_pem)


def test_ca_files_hold_the_same_certificate_as_pem_and_der(broker: Broker) -> None:
    for pem, der in ((broker.ca_pem, broker.ca_der), (broker.wrong_ca_pem, broker.wrong_ca_der)):
        assert ssl.PEM_cert_to_DER_cert(pem.read_text()) == der.read_bytes()
    assert broker.ca_der.read_bytes() != broker.wrong_ca_der.read_bytes()
