"""TLS material for the test broker, generated fresh per test session with trustme.

Every CA is written twice: PEM for CPython and mosquitto, DER for MicroPython, whose
`SSLContext.load_verify_locations(cadata=...)` refuses PEM on the Unix port.
"""
from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme


@dataclass(frozen=True)
class CAFiles:
    pem: Path
    der: Path


@dataclass(frozen=True)
class TLSFiles:
    ca: CAFiles  # signs the broker's certificate
    wrong_ca: CAFiles  # unrelated: a client trusting only this must refuse the broker
    server_cert: Path
    server_key: Path


def _write_ca(ca: trustme.CA, directory: Path, name: str) -> CAFiles:
    pem_text = ca.cert_pem.bytes().decode("ascii")
    pem, der = directory / (name + ".pem"), directory / (name + ".der")
    pem.write_text(pem_text)
    der.write_bytes(ssl.PEM_cert_to_DER_cert(pem_text))
    return CAFiles(pem=pem, der=der)


def make_tls_files(directory: Path) -> TLSFiles:
    """Write a CA, a broker certificate for 127.0.0.1 and localhost, and an unrelated CA."""
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    server_cert, server_key = directory / "server.pem", directory / "server.key"
    server_cert.write_bytes(b"".join(blob.bytes() for blob in server.cert_chain_pems))
    server.private_key_pem.write_to_path(str(server_key))
    return TLSFiles(
        ca=_write_ca(ca, directory, "ca"),
        wrong_ca=_write_ca(trustme.CA(), directory, "wrong_ca"),
        server_cert=server_cert,
        server_key=server_key,
    )
