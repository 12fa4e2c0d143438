# mqnode build and test entry points. `make test` is what CI runs (.ci/run).
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
# The tests run the client on this MicroPython; override with MICROPYTHON=/path/to/micropython.
export MICROPYTHON ?= $(abspath $(VENV)/bin/micropython)
MOSQUITTO := $(shell command -v mosquitto || ls /usr/sbin/mosquitto 2>/dev/null)
# mosquitto_pub, which the demo suggests and its test runs, is Debian's mosquitto-clients.
MOSQUITTO_PUB := $(shell command -v mosquitto_pub)

.PHONY: venv mosquitto test reliability demo bench clean

venv: $(STAMP)

# Reinstall only when the dependency pins change. A fresh Debian has no python3, or one without
# its venv module (python3-venv): installed with apt-get as root, else the command is printed.
$(STAMP): pyproject.toml
	@if ! $(PYTHON) -c "import ensurepip, venv" 2>/dev/null; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			apt-get update && apt-get install -y python3-venv; \
		fi; \
		$(PYTHON) -c "import ensurepip, venv" 2>/dev/null || { \
			echo "$(PYTHON) with its venv module is missing: run 'sudo apt-get install -y python3-venv'" >&2; exit 2; }; \
	fi
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q -e '.[dev]'
	touch $@

# The test broker is the system mosquitto; CI machines run as root and can install it themselves.
mosquitto:
ifeq ($(and $(MOSQUITTO),$(MOSQUITTO_PUB)),)
	@if [ "$$(id -u)" = 0 ]; then \
		apt-get update && apt-get install -y mosquitto mosquitto-clients; \
	else \
		echo "mosquitto or its clients are missing: run 'sudo apt-get install -y mosquitto mosquitto-clients'" >&2; exit 2; \
	fi
else
	@:
endif

# Every run logs what the reliability cases saw (lost, duplicated, errors) to build/; the README's
# reliability table is that log rendered (`make reliability` refreshes it).
RELIABILITY_LOG := build/reliability.jsonl

test: venv mosquitto
	@mkdir -p build && rm -f $(RELIABILITY_LOG)
	MQNODE_RELIABILITY_LOG=$(abspath $(RELIABILITY_LOG)) $(VENV)/bin/python -m pytest -q $(PYTEST_ARGS)
	-@$(VENV)/bin/python tests/reliability_report.py $(RELIABILITY_LOG) > build/reliability.md

reliability: venv mosquitto
	@mkdir -p build && rm -f $(RELIABILITY_LOG)
	MQNODE_RELIABILITY_LOG=$(abspath $(RELIABILITY_LOG)) $(VENV)/bin/python -m pytest -q \
		tests/test_fault_cut.py tests/test_broker_kill.py tests/test_stall_and_slow.py \
		tests/test_hostile_broker.py tests/test_persistence.py tests/test_soak.py
	$(VENV)/bin/python tests/reliability_report.py $(RELIABILITY_LOG) --readme

# The main job: a private mosquitto, three simulated nodes and the live monitor (Ctrl-C stops).
# DURATION=10 runs for 10 s and exits 0 with a summary.
demo: venv mosquitto
	$(VENV)/bin/mqnode demo $(if $(DURATION),--duration $(DURATION))

# mqnode against umqtt.simple, umqtt.robust, mqtt_as (Unix port) and paho-mqtt (CPython), side by
# side, on a private mosquitto: tables on the terminal and in bench/results.md. ANCHORS=DIR takes
# the anchors from DIR; without it they come from build/bench/anchors (fetched with mip if missing).
# BENCH_ARGS passes more options, e.g. BENCH_ARGS=--quick; see `python -m mqnode_tools.bench -h`.
bench: venv mosquitto
	$(VENV)/bin/python -m mqnode_tools.bench $(if $(ANCHORS),--anchors $(ANCHORS)) $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
