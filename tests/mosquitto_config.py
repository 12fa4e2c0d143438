"""The test broker's mosquitto.conf and password file.

mosquitto 2.0 defaults matter here: without `per_listener_settings true`, `allow_anonymous`
and `password_file` would apply to every listener, so the anonymous and password listeners
could not coexist.
"""
from __future__ import annotations

import base64
import getpass
import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from certs import TLSFiles

# Above the 1,000-message tests' backlog, so a queued session never drops a message.
MAX_QUEUED_MESSAGES = 10_000


@dataclass(frozen=True)
class Ports:
    anonymous: int
    auth: int
    tls: int


def write_password_file(path: Path, user: str, password: str) -> None:
    """Prefer mosquitto_passwd; else write its default sha512-pbkdf2 line ($7$, 101 rounds)."""
    tool = shutil.which("mosquitto_passwd")
    if tool:
        subprocess.run([tool, "-c", "-b", str(path), user, password], check=True, timeout=10)
        return
    salt = os.urandom(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, 101)
    encoded = [base64.b64encode(raw).decode() for raw in (salt, digest)]
    path.write_text("%s:$7$101$%s$%s\n" % (user, *encoded))


def write_config(path: Path, ports: Ports, password_file: Path, tls: TLSFiles) -> None:
    """Three 127.0.0.1 listeners: anonymous, username/password, and TLS (anonymous)."""
    # `user` = ourselves: as root, mosquitto would otherwise switch to user "mosquitto",
    # which cannot read our 0700 temp dir.
    # Sessions (clean_session=False) live in memory, so persistence stays off; they are
    # lost on restart(). TCP_NODELAY: QoS flows are ping-pongs of tiny packets, which Nagle's
    # algorithm plus delayed ACKs would stall for ~40 ms each.
    path.write_text(
        f"""\
per_listener_settings true
persistence false
user {getpass.getuser()}
log_dest stderr
log_type all
log_timestamp_format %H:%M:%S
max_queued_messages {MAX_QUEUED_MESSAGES}
set_tcp_nodelay true

listener {ports.anonymous} 127.0.0.1
allow_anonymous true

listener {ports.auth} 127.0.0.1
allow_anonymous false
password_file {password_file}

listener {ports.tls} 127.0.0.1
allow_anonymous true
certfile {tls.server_cert}
keyfile {tls.server_key}
"""
    )
