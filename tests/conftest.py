"""Fixtures for every test: the session's broker, the runtime matrix, and client processes.

A test that takes `start_client` runs twice, once with the client on CPython and once on
MicroPython, both through tests/driver/mqtt_driver.py.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable, Iterator, List, Optional, Sequence

import pytest

from aio_process import AioProcess
from broker import Broker
from client_process import ClientProcess
from runtime import RUNTIMES, aio_driver_command, ca_file_for, driver_command, driver_environment, micropython_build

LOG_OFFSET = pytest.StashKey[int]()
CLIENTS = pytest.StashKey[List[ClientProcess]]()
STDERR_TAIL_CHARS = 4000


def pytest_collection_modifyitems(items: List[pytest.Item]) -> None:
    """Tests marked `tls` need the interpreter's ssl module: on MicroPython (a node test, or the
    micropython case of a runtime pair) they are skipped, and say why, when the build under test
    ($MICROPYTHON) has none. The PyPI Unix port has it; a port built without mbedtls has not."""
    marked = [item for item in items if item.get_closest_marker("tls") and _runtime_of(item) != "cpython"]
    if marked and not micropython_build()["ssl"]:
        skip = pytest.mark.skip(reason="this MicroPython has no ssl module")
        for item in marked:
            item.add_marker(skip)


def _runtime_of(item: pytest.Item) -> Optional[str]:
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("runtime") if callspec else None


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    b = Broker(tmp_path_factory.mktemp("broker"))
    b.start()
    yield b
    b.stop()


@pytest.fixture(params=RUNTIMES)
def runtime(request: pytest.FixtureRequest) -> str:
    return request.param


def _node_label(request: pytest.FixtureRequest) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", request.node.name)


@pytest.fixture
def topic_root(request: pytest.FixtureRequest) -> bytes:
    """A topic prefix of this test's own: the session-wide broker keeps retained messages."""
    return ("mqnode-test/" + _node_label(request)).encode()


@pytest.fixture
def start_client(
    runtime: str, broker: Broker, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[..., ClientProcess]]:
    """Factory: start(client_id=None, *, tls=False, ca="broker", verify=True, legacy_tls=False,
    heapsize=None, extra_path=(), **client_kwargs) -> ClientProcess, with the client constructed.

    Defaults: a client id unique to this test (the broker keeps sessions across tests), the
    anonymous port, or the TLS port when tls=True. ca="wrong" trusts the unrelated CA.
    legacy_tls: TLS as umqtt.simple programs ask for it, ssl=True with ssl_params.
    client_kwargs go to MQTTClient (port, user, password, keepalive, ...). Every process is
    killed at teardown.
    """
    started = request.node.stash.setdefault(CLIENTS, [])

    def start(
        client_id: Any = None, *, tls: bool = False, ca: str = "broker", verify: bool = True,
        legacy_tls: bool = False, heapsize: Optional[str] = None, extra_path: Sequence[Path] = (),
        **client_kwargs: Any,
    ) -> ClientProcess:
        n = len(started)
        process = ClientProcess(
            driver_command(runtime, heapsize),
            driver_environment(runtime, extra_path),
            tmp_path / ("client%d.stderr" % n),
        )
        started.append(process)
        kwargs = {
            "client_id": "%s-%d" % (_node_label(request), n) if client_id is None else client_id,
            "server": broker.host,
            "port": broker.tls_port if tls else broker.port,
        }
        if tls:
            pem, der = (broker.ca_pem, broker.ca_der) if ca == "broker" else (broker.wrong_ca_pem, broker.wrong_ca_der)
            kwargs["tls"] = {"ca": str(ca_file_for(runtime, pem, der)), "verify": verify, "legacy": legacy_tls}
        kwargs.update(client_kwargs)
        process.new(**kwargs)
        return process

    yield start
    for process in started:
        process.kill()


@pytest.fixture
def start_aio(
    runtime: str, broker: Broker, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[..., AioProcess]]:
    """Factory: start(heapsize=None, extra_path=(), module=None) -> AioProcess, a process of
    tests/driver/aio_driver.py (the asyncio client's scenarios) on this test's runtime.

    Every scenario it runs gets server/port (the anonymous listener) and a client-id prefix
    unique to this test and process, unless the test passes its own. Killed at teardown, and its
    stderr is shown with a failure, like start_client's processes.
    """
    started = request.node.stash.setdefault(CLIENTS, [])

    def start(heapsize: Optional[str] = None, extra_path: Sequence[Path] = (),
              module: Optional[str] = None) -> AioProcess:
        n = len(started)
        process = AioProcess(
            aio_driver_command(runtime, heapsize, module),
            driver_environment(runtime, extra_path),
            tmp_path / ("client%d.stderr" % n),
            {"server": broker.host, "port": broker.port, "prefix": "%s-%d" % (_node_label(request), n)},
        )
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()


@pytest.fixture
def run_aio(start_aio: Callable[..., AioProcess]) -> Callable[..., Any]:
    """run(scenario, **params) -> the scenario's result, from one aio driver process per test
    (started on first use). A scenario's exception is raised as client_process.RemoteError."""
    processes: List[AioProcess] = []

    def run(scenario: str, **params: Any) -> Any:
        if not processes:
            processes.append(start_aio())
        return processes[0].run(scenario, **params)

    return run


@pytest.fixture(autouse=True)
def _mark_broker_log(request: pytest.FixtureRequest) -> None:
    """Remember where the broker log stood, so a failure shows only this test's part."""
    if "broker" in request.fixturenames:
        request.node.stash[LOG_OFFSET] = request.getfixturevalue("broker").log_size()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    """On failure, append the broker's log and each client's stderr (its tracebacks) to the report."""
    report = yield
    if report.failed and call.when != "teardown":
        broker = getattr(item, "funcargs", {}).get("broker")
        log = broker.log_tail(since=item.stash[LOG_OFFSET]) if broker and LOG_OFFSET in item.stash else ""
        if log:
            report.sections.append(("mosquitto log", log))
        for n, client in enumerate(item.stash.get(CLIENTS, [])):
            text = client.stderr()
            if text:
                report.sections.append(("client %d stderr" % n, text[-STDERR_TAIL_CHARS:]))
    return report
