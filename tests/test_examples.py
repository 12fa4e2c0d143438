"""Programs as users write them run as written: the README's example, and umqtt.simple-style
programs with only their import changed.

These use MQTT's default port, as the programs do, so they get a mosquitto of their own on
127.0.0.1:1883 and are skipped (saying why) when something else already listens there.
"""
from __future__ import annotations

import queue
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Iterator, List

import pytest

from broker import HOST, find_mosquitto, wait_until_listening
from runtime import REPO, RUNTIMES, driver_environment, micropython_executable

DEFAULT_PORT = 1883
RUN_TIMEOUT_S = 20.0
EXAMPLES = Path(__file__).resolve().parent / "examples"


@pytest.fixture(scope="module")
def default_port_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    with socket.socket() as s:
        try:
            s.bind((HOST, DEFAULT_PORT))
        except OSError:
            pytest.skip("127.0.0.1:1883 is in use; these tests need MQTT's default port")
    workdir = tmp_path_factory.mktemp("broker1883")
    config = workdir / "mosquitto.conf"
    config.write_text("listener %d %s\nallow_anonymous true\n" % (DEFAULT_PORT, HOST))
    with open(workdir / "log", "wb") as log:
        process = subprocess.Popen([find_mosquitto(), "-c", str(config)], stdout=log, stderr=log)
        try:
            assert wait_until_listening(DEFAULT_PORT, process, 10.0), (workdir / "log").read_text()
            yield
        finally:
            process.terminate()
            process.wait(5)


def command(runtime: str, script: Path, *args: str) -> List[str]:
    exe = micropython_executable() if runtime == "micropython" else sys.executable
    return [exe, str(script), *args]


def read_line(process: subprocess.Popen, timeout_s: float) -> str:
    """The process's next stdout line, or "" if none comes within timeout_s (never hangs)."""
    lines: "queue.Queue[str]" = queue.Queue()
    threading.Thread(target=lambda: lines.put(process.stdout.readline()), daemon=True).start()
    try:
        return lines.get(timeout=timeout_s)
    except queue.Empty:
        return ""


def readme_example(tmp_path: Path, name: str = "readme-pubsub") -> Path:
    text = (REPO / "README.md").read_text()
    block = re.search(r"<!-- example: %s -->\n```python\n(.*?)```" % re.escape(name), text, re.S)
    assert block, "README.md lost its marked example %s" % name
    path = tmp_path / (name.replace("-", "_") + ".py")
    path.write_text(block.group(1))
    return path


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_readme_example_runs_as_written(runtime: str, default_port_broker: None, tmp_path: Path) -> None:
    out = subprocess.run(
        command(runtime, readme_example(tmp_path)), env=driver_environment(runtime),
        capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "b'mqnode/demo/hello' b'world'"


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_readme_asyncio_example_runs_as_written(runtime: str, default_port_broker: None, tmp_path: Path) -> None:
    out = subprocess.run(
        command(runtime, readme_example(tmp_path, "readme-aio")), env=driver_environment(runtime),
        capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "b'mqnode/demo/aio' b'hello' 1 0 0"


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_umqtt_simple_programs_run_with_only_the_import_changed(runtime: str, default_port_broker: None) -> None:
    env = driver_environment(runtime)
    sub = subprocess.Popen(
        command(runtime, EXAMPLES / "umqtt_style_sub.py", HOST), env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert read_line(sub, RUN_TIMEOUT_S).strip() == "subscribed"
        pub = subprocess.run(
            command(runtime, EXAMPLES / "umqtt_style_pub.py", HOST), env=env,
            capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
        )
        assert pub.returncode == 0, pub.stderr
        assert read_line(sub, RUN_TIMEOUT_S).strip() == "(b'foo_topic', b'hello')"
    finally:
        sub.kill()
        sub.wait(5)
