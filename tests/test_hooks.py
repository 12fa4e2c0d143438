"""The blocking client's connection hooks as a program sees them: on_connect(session_present)
after each connect, on_disconnect(None) after disconnect(), and nothing more.
"""
from __future__ import annotations


def test_on_connect_then_on_disconnect_with_none_after_disconnect(start_client) -> None:
    client = start_client()
    client.connect()
    client.disconnect()

    assert client._events() == [["connect", False], ["disconnect", None, "None"]]


def test_disconnect_when_not_connected_calls_no_hook(start_client) -> None:
    client = start_client()
    client.disconnect()

    assert client._events() == []
